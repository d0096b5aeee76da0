"""The stored field reports: each kept once per ``(receiver_id, seq)`` (the idempotency key of
spec/reports.md), and read back when a search's live state is rebuilt.

The server validates a report before it comes here; a row holds its JSON text exactly as the
spec writes it, with the columns a rebuild selects by (bracelet, channel, receiver, time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from registry.models import StoredReport

INSERT_CHUNK = 500  # rows per INSERT statement


@dataclass(frozen=True)
class ReportRow:
    """One validated report as it is stored (``body``: its JSON text)."""

    receiver_id: str
    seq: int
    kind: str
    t: datetime
    channel: int | None
    bracelet_id: str | None
    body: str
    received_at: datetime
    user_id: str | None


def _insert(session: Session) -> Any:
    """An INSERT that skips a row whose ``(receiver_id, seq)`` is already stored."""
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite_insert(StoredReport).on_conflict_do_nothing(
            index_elements=["receiver_id", "seq"]
        )
    if name == "postgresql":
        return pg_insert(StoredReport).on_conflict_do_nothing(constraint="report_once")
    return insert(StoredReport)


def store_reports(session: Session, rows: list[ReportRow]) -> set[tuple[str, int]]:
    """Store the rows not stored before; returns the ``(receiver_id, seq)`` of those it stored
    (the others were duplicates). The caller commits."""
    stored: set[tuple[str, int]] = set()
    if not rows:
        return stored
    statement = _insert(session).returning(StoredReport.receiver_id, StoredReport.seq)
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = [vars(row) for row in rows[start : start + INSERT_CHUNK]]
        for receiver_id, seq in session.execute(statement, chunk):
            stored.add((receiver_id, seq))
    return stored


def report_bodies_since(
    session: Session,
    since: datetime,
    receiver_ids: Iterable[str],
    bracelet_id: str | None,
    channel: int | None,
) -> list[str]:
    """The JSON text of every report since ``since`` from one of ``receiver_ids``, naming
    ``bracelet_id`` or on ``channel``, in the order they arrived (the locator saw them so)."""
    conditions: list[ColumnElement[bool]] = [StoredReport.receiver_id.in_(list(receiver_ids))]
    if bracelet_id is not None:
        conditions.append(StoredReport.bracelet_id == bracelet_id)
    if channel is not None:
        conditions.append(StoredReport.channel == channel)
    return list(
        session.scalars(
            select(StoredReport.body)
            .where(StoredReport.t >= since, or_(*conditions))
            .order_by(StoredReport.id)
        )
    )
