"""``safetynet locate``: reports in, fix reports out."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import datetime
from typing import Any

from locator.prior import CATEGORIES
from safetynet.errors import InputError
from safetynet.geodesy import check_lat_lon

log = logging.getLogger(__name__)

HELP = """\
Read reports (JSON Lines) and write fix reports (JSON Lines) to stdout.

With --batch, one fix per bracelet from all of its bearings, the person taken as stationary
(robust triangulation: wild bearings are outvoted). Without, the bearings and signal strengths
are taken in the order they arrived and a fix is written each time the tracker (a particle
filter of a person who walks and stops, with each place's bearing bias and the bracelet's
level and path-loss exponent unknown) takes one in, and between them about once a second.

With --last-known (and --last-seen), a track starts from where lost people of --category are
found that long after last seen (the probability map's prior) as well as from the radio.

examples:
  safetynet sim reports --scenario scenarios/quiet-suburb.toml --out r.jsonl
  safetynet locate --input r.jsonl --batch
  safetynet locate --input r.jsonl > fixes.jsonl
  safetynet locate --input r.jsonl --last-known 42.30206,-71.05761 \
      --last-seen 2026-11-28T14:00:00Z > fixes.jsonl
"""


def lat_lon(text: str) -> tuple[float, float]:
    """``LAT,LON`` in decimal degrees."""
    parts = text.split(",")
    try:
        lat, lon = (float(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a position as LAT,LON in decimal degrees, e.g. 42.30206,-71.05761; got {text!r}"
        ) from None
    try:
        check_lat_lon(lat, lon)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return lat, lon


def rfc3339(text: str) -> datetime:
    from safetynet.reports import parse_time

    try:
        return parse_time(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_parser(subparsers: Any) -> None:
    from safetynet.cli import existing_file

    p = subparsers.add_parser(
        "locate", help="bearings and signal strength in, fixes out", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--input", type=existing_file, required=True, help="reports (JSON Lines)")
    p.add_argument("--batch", action="store_true", help="one fix per bracelet from all bearings")
    p.add_argument("--skip-bad", action="store_true", help="skip bad lines instead of stopping")
    p.add_argument(
        "--last-known",
        type=lat_lon,
        metavar="LAT,LON",
        help="where the person was last seen (the tracker's prior)",
    )
    p.add_argument(
        "--last-seen",
        type=rfc3339,
        metavar="TIME",
        help="when (RFC 3339, e.g. 2026-11-28T14:00:00Z; needs --last-known)",
    )
    p.add_argument("--category", choices=CATEGORIES, default="dementia",
                   help="whose lost-person statistics (default dementia)")  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from locator.tracker import LastKnown, Locator, batch_fixes
    from safetynet.geodesy import LocalFrame
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
    if args.last_seen is not None and args.last_known is None:
        print("safetynet: --last-seen needs --last-known", file=sys.stderr)
        return 2
    if args.last_known is not None:
        if args.last_seen is None:
            first = min((r.t for r in reports), default=None)
            if first is None:
                return 0
            args.last_seen = first
            print("safetynet: no --last-seen: taken as the first report's time", file=sys.stderr)
        lat, lon = args.last_known
        known = LastKnown(lat, lon, args.last_seen, args.category)
        locator = Locator(frame=LocalFrame(lat, lon), last_known=known)
    for report in reports:
        for fix in locator.add(report):
            write_report(sys.stdout, fix)
    return 0
