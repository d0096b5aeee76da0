"""``safetynet locate``: reports in, fix reports out."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

HELP = """\
Read reports (JSON Lines) and write fix reports (JSON Lines) to stdout.

With --batch, one fix per bracelet from all of its bearings, the person taken as stationary
(robust triangulation: wild bearings are outvoted). Without, the bearings and signal strengths
are taken in the order they arrived and a fix is written each time the tracker (a particle
filter of a person who walks and stops, with each place's bearing bias and the bracelet's
level and path-loss exponent unknown) takes one in, and between them about once a second.

examples:
  safetynet sim reports --scenario scenarios/quiet-suburb.toml --out r.jsonl
  safetynet locate --input r.jsonl --batch
  safetynet locate --input r.jsonl > fixes.jsonl
"""


def add_parser(subparsers: Any) -> None:
    from safetynet.cli import existing_file

    p = subparsers.add_parser(
        "locate", help="bearings and signal strength in, fixes out", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--input", type=existing_file, required=True, help="reports (JSON Lines)")
    p.add_argument("--batch", action="store_true", help="one fix per bracelet from all bearings")
    p.add_argument("--skip-bad", action="store_true", help="skip bad lines instead of stopping")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from locator.tracker import Locator, batch_fixes
    from safetynet.report_lines import ReportReader, write_report

    with args.input.open(encoding="utf-8") as stream:
        reader = ReportReader(
            stream, on_error="skip" if args.skip_bad else "stop", source=str(args.input)
        )
        reports = list(reader)
    if reader.skipped:
        print(f"safetynet: skipped {len(reader.skipped)} bad lines", file=sys.stderr)
    if args.batch:
        fixes = batch_fixes(reports)
        if not fixes:
            print("safetynet: no bracelet has two bearings that cross", file=sys.stderr)
        for fix in fixes:
            write_report(sys.stdout, fix)
        return 0
    locator = Locator()
    for report in reports:
        for fix in locator.add(report):
            write_report(sys.stdout, fix)
    return 0
