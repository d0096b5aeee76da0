"""The ``safetynet`` command line: one entry point, a subcommand per job.

Each subcommand is declared by a small ``add_parser`` function in the package that does the work
(``firmware_sim.commands``, ``receiver.commands`` …), which imports its heavy parts only when the
subcommand runs, so ``safetynet --help`` stays fast and a field computer needs only what it runs.
The packages register those functions as ``safetynet.commands`` entry points in
``pyproject.toml`` (as Stone Soup's plugins do), so this ground floor names none of them.

Exit codes: 0 success, 1 failure, 2 bad usage. Errors are one line on stderr; ``-v`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from safetynet import __version__
from safetynet.errors import SafetyNetError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]

# The entry-point group whose members contribute subcommands: each names an
# `add_parser(subparsers) -> None`; one whose package or extra is not installed is left out.
COMMAND_GROUP = "safetynet.commands"

DESCRIPTION = """\
SafetyNet finds people who wander and wear an SNTX-1 radio bracelet.

Receivers turn radio into reports (pulses, bearings, silences, status) as JSON Lines; the
locator turns reports into fixes with their 95 % ellipses; the simulator stands in for the
bracelets, the people and the radios.
"""

EPILOG = """\
examples:
  safetynet sim reports --scenario scenarios/quiet-suburb.toml --out r.jsonl
  safetynet locate --input r.jsonl       fixes as the tracker updates
  safetynet check reports.jsonl          validate a file of reports
  safetynet COMMAND --help               what a command does and its options

Settings come from SAFETYNET_* environment variables (data folder, database URL, server
address, secret key); see the README.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safetynet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"safetynet {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for entry in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        try:
            add_parser = entry.load()
        except ImportError as err:  # an optional part not installed
            log.debug("commands of %s unavailable: %s", entry.value, err)
            continue
        add_parser(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("safetynet: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as err:
        if args.verbose:
            raise
        # The core install is the field side; a server command reached without its extra.
        print(
            f"safetynet: error: {args.command} needs a package that is not installed "
            f"({err.name}); install the server extra: pip install 'safetynet[server]'",
            file=sys.stderr,
        )
        return 1
    except (SafetyNetError, OSError) as err:
        if args.verbose:
            raise
        print(f"safetynet: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        if args.verbose:
            raise
        print(
            f"safetynet: internal error: {type(err).__name__}: {err} (run with -v for details)",
            file=sys.stderr,
        )
        return 1


def existing_file(text: str) -> Path:
    """argparse type: a path that must name an existing file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


if __name__ == "__main__":
    sys.exit(main())
