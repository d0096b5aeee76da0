"""The ``safetynet`` command line: one entry point, a subcommand per job.

Each subcommand is declared by a small ``add_parser`` function in the package that does the work
(``firmware_sim.commands``, ``receiver.commands`` …), which imports its heavy parts only when the
subcommand runs, so ``safetynet --help`` stays fast and a field computer needs only what it runs.

Exit codes: 0 success, 1 failure, 2 bad usage. Errors are one line on stderr; ``-v`` adds the
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from safetynet import __version__
from safetynet.errors import SafetyNetError

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]

# Modules that contribute subcommands, in the order `--help` lists them. Each has
# `add_parser(subparsers) -> None`; a module whose package is not installed is left out.
COMMAND_MODULES = (
    "safetynet.check",
    "receiver.commands",
    "locator.commands",
    "registry.commands",
    "firmware_sim.commands",
    "ui.commands",
)

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
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:  # an optional part not installed
            log.debug("commands of %s unavailable: %s", module_name, err)
            continue
        module.add_parser(subparsers)
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
