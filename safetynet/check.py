"""``safetynet check``: validate JSON Lines files of reports against spec/reports.md."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from safetynet.cli import existing_file
from safetynet.report_lines import ReportReader


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate files of reports (JSON Lines)",
        description=(
            "Read JSON Lines files of reports and say, per file, how many reports of each kind "
            "are valid and which lines are not (with their line numbers and why). Exits 1 when "
            "any line is bad."
        ),
    )
    parser.add_argument("files", nargs="+", type=existing_file, metavar="FILE")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    any_bad = False
    for path in args.files:
        with path.open(encoding="utf-8") as stream:
            reader = ReportReader(stream, on_error="skip", source=str(path))
            kinds = Counter(report.kind for report in reader)
        summary = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"
        print(f"{path}: {sum(kinds.values())} valid reports ({summary}), {len(reader.skipped)} bad")
        for bad in reader.skipped:
            print(f"  {bad}", file=sys.stderr)
        any_bad = any_bad or bool(reader.skipped)
    return 1 if any_bad else 0
