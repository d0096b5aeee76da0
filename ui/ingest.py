"""The ingest API's core (``POST /api/v1/reports``, spec/reports.md "Ingest over HTTP").

A body is a JSON array of at most 1,000 reports or JSON Lines of as many, read strictly by
:func:`ui.bodies.report_items` (size, depth and integer limits; an unreadable element is refused
alone). Each item is validated on its own, its time checked against the window of
:mod:`ui.clock`: valid reports are stored once per ``(receiver_id, seq)`` and fed to the live
searches, invalid ones are listed with their index, field and message and not stored — partial
acceptance. Who may send what: a receiver token only reports with its own ``receiver_id``; a
searcher's (or dispatcher's) login only ``manual`` bearings and silences, under the receiver id
of its own browser (``WEB-<username>``), and a searcher only while on a team of an active
search. Fixes are the locator's output and are refused as input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from registry.access import may
from registry.models import Role
from registry.reports import ReportRow, store_reports
from registry.searches import on_active_team
from safetynet.errors import ReportError
from safetynet.reports import (
    Bearing,
    FieldReport,
    Fix,
    Pulse,
    Silence,
    parse_report,
    report_to_json,
)
from ui.bodies import INT64_MAX, Unreadable
from ui.clock import TimeWindow, report_window

# A report's time must lie in a window around the server's clock and its searches' last-seen
# times (ui/clock.py); the caller says which window a report falls under.
WindowOf = Callable[[FieldReport], TimeWindow]


@dataclass(frozen=True)
class Sender:
    """Who posts: a receiver (by token) or a logged-in user."""

    receiver_id: str | None = None
    user_id: str | None = None
    username: str | None = None
    role: Role | None = None


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    stored: list[FieldReport] = field(default_factory=list)

    def answer(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def web_receiver_id(username: str) -> str:
    """The receiver id of a user's browser (manual bearings, heard / not heard here)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in username)
    return f"WEB-{safe}"[:64]


def _any_time(_report: FieldReport) -> TimeWindow:
    return report_window(datetime.now(UTC))


def _permission(sender: Sender, report: FieldReport, on_team: bool) -> str | None:
    """Why ``sender`` may not send ``report`` (None: it may); ``on_team``: the sender is on a
    team of an active search."""
    if sender.receiver_id is not None:
        if report.receiver_id != sender.receiver_id:
            return f"this token belongs to receiver {sender.receiver_id}"
        return None
    if sender.role is None or not may(sender.role, "send_field_reports") or sender.username is None:
        return "only receivers, searchers and dispatchers may send reports"
    manual = isinstance(report, Silence) or (
        isinstance(report, Bearing) and report.method == "manual"
    )
    if not manual:
        return "a login may send only manual bearings and silences"
    own = web_receiver_id(sender.username)
    if report.receiver_id != own:
        return f"a login sends under its own receiver id {own}"
    if sender.role is Role.SEARCHER and not on_team:
        return "a searcher sends reports only while on a team of an active search"
    return None


def ingest(
    session: Session, sender: Sender, items: list[Any], window_of: WindowOf = _any_time
) -> IngestResult:
    """Validate and store ``items`` (decoded by :func:`ui.bodies.report_items`); the caller
    commits and feeds ``result.stored`` onwards. A report whose ``seq`` the database cannot
    hold, or whose time lies outside ``window_of(report)``, is refused with the others'."""
    result = IngestResult()
    now = datetime.now(UTC)
    rows: list[tuple[FieldReport, ReportRow]] = []
    seen_in_body: set[tuple[str, int]] = set()
    # Asked once per request, not per report.
    on_team = sender.role is Role.SEARCHER and on_active_team(session, sender.user_id)
    for index, item in enumerate(items):
        if isinstance(item, Unreadable):
            result.rejected.append({"index": index, "field": item.field, "message": item.message})
            continue
        try:
            report = parse_report(item)
        except ReportError as err:
            result.rejected.append({"index": index, "field": err.field or "", "message": str(err)})
            continue
        if isinstance(report, Fix):
            result.rejected.append(
                {
                    "index": index,
                    "field": "kind",
                    "message": "fix reports are the server's output, not input",
                }
            )
            continue
        why = _permission(sender, report, on_team)
        if why is not None:
            result.rejected.append({"index": index, "field": "receiver_id", "message": why})
            continue
        if report.seq > INT64_MAX:
            result.rejected.append(
                {"index": index, "field": "seq", "message": f"seq: must be within 0..{INT64_MAX}"}
            )
            continue
        late_or_early = window_of(report).problem(report.t)
        if late_or_early is not None:
            result.rejected.append({"index": index, "field": "t", "message": late_or_early})
            continue
        key = (report.receiver_id, report.seq)
        if key in seen_in_body:
            result.duplicates += 1
            continue
        seen_in_body.add(key)
        rows.append(
            (
                report,
                ReportRow(
                    receiver_id=report.receiver_id,
                    seq=report.seq,
                    kind=report.kind,
                    t=report.t,
                    channel=getattr(report, "channel", None),
                    bracelet_id=report.bracelet_id if isinstance(report, Pulse | Bearing) else None,
                    body=report_to_json(report),
                    received_at=now,
                    user_id=sender.user_id,
                ),
            )
        )
    if not rows:
        return result
    stored_keys = store_reports(session, [row for _, row in rows])
    for report, _ in rows:
        if (report.receiver_id, report.seq) in stored_keys:
            result.stored.append(report)
        else:
            result.duplicates += 1
    result.accepted = len(result.stored)
    return result
