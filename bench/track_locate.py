"""Run one source tree's ``safetynet locate`` over report files: the tracking benchmark's driver.

Started by bench/locator_track.py as a child process whose ``PYTHONPATH`` puts one tree's
``locator`` and ``safetynet`` first — the working tree, or the last release extracted with
``git archive`` — so that both trackers are fed exactly as the command line feeds them: the
reports as JSON Lines, through the ``locate`` subcommand's own parser and handler. It answers
one JSON line on stdout at start (where ``locator`` was imported from) and one per request.

Requests, one per stdin line: ``<reports.jsonl>\\t<fixes.jsonl>\\t<more arguments, a JSON list>``
(the search's last known point and last-seen time, for one run of the working tree); the
answer gives the return code and the CPU seconds of the run, or the error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import traceback
from pathlib import Path


def main() -> None:
    import locator
    import safetynet
    from locator.commands import add_parser

    parser = argparse.ArgumentParser(prog="safetynet")
    add_parser(parser.add_subparsers())
    answer = sys.stdout
    answer.write(
        json.dumps({"locator": str(Path(locator.__file__).parent),
                    "safetynet": str(Path(safetynet.__file__).parent)}) + "\n"
    )  # fmt: skip
    answer.flush()
    for line in sys.stdin:
        src, dst, extra = line.rstrip("\n").split("\t")
        try:
            args = parser.parse_args(["locate", "--input", src, *json.loads(extra)])
            start = time.process_time()
            with open(dst, "w", encoding="utf-8") as out, contextlib.redirect_stdout(out):
                rc = args.handler(args)
            reply = {"rc": rc, "cpu_s": time.process_time() - start}
        except (Exception, SystemExit):  # report any failure of the tree under test, go on
            reply = {"error": traceback.format_exc(limit=6)}
        answer.write(json.dumps(reply) + "\n")
        answer.flush()


if __name__ == "__main__":
    main()
