"""The live push between several server processes on one PostgreSQL: an outbox table, with
LISTEN/NOTIFY as its doorbell, behind the :class:`~ui.broadcast.Broadcaster` interface.

Why PostgreSQL and not a broker of its own: every deployment of several processes already runs
one PostgreSQL (the registry), so two processes given the same database URL fan out to each other
with no other setting and no other service to run, secure and back up. NOTIFY alone would not
do: a notification is lost when nobody listens (a process restarting, a page reconnecting) and
carries at most 8,000 bytes. So each message is a row of ``live_event`` and NOTIFY only rings
the bell; the row's id is the event's id, a listener that missed a bell reads what it missed,
and a page that reconnects to any process asks for the rows after the last id it saw
(:meth:`OutboxBroadcaster.since`). A report's way to its search's owner is written in the same
transaction as the report (:meth:`OutboxBroadcaster.send_in`): stored and forwarded, or neither.

Ids grow in commit order: each insert first takes one transaction-level advisory lock, so an id
is taken and committed before the next one is taken, and a reader that has seen id n has seen
every id below it (a plain sequence commits out of order, and a reader would skip the late one).
That lock serialises only the insert and the commit, about a millisecond; ``bench/ui_scale.py``
measures what it carries. Rows older than :data:`RETAIN_S` are purged: a page away longer takes
a fresh snapshot instead. Redis Streams or NATS JetStream would carry more and would fit behind
the same interface.

Channels: a search's id (what its pages are pushed; each message gains its ``id``), and the
processes' own, prefixed ``~``: ``~reports`` (stored reports, for their searches' owners),
``~ask`` (a snapshot or probability map asked of a search's owner) and ``~reply:<process>``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ui.broadcast import QUEUE_LIMIT, InProcessBroadcaster, Message, Subscription

log = logging.getLogger(__name__)

DOORBELL = "safetynet_live"  # the NOTIFY channel
ORDER_LOCK = 0x5AFE_0E0E  # the advisory lock that keeps ids in commit order
RETAIN_S = 600.0  # outbox rows are kept this long (a page away longer takes a snapshot)
POLL_S = 1.0  # the listener reads the table this often even when no bell rings
READ_ROWS = 500  # rows read at a time
RESUME_ROWS = 5000  # a page further behind than this takes a snapshot instead

Handler = Callable[[int, str, Message], None]


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL (``postgresql+psycopg://…``) as libpq reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxBroadcaster:
    """Messages through the ``live_event`` table; each process's pages are served from its own
    :class:`~ui.broadcast.InProcessBroadcaster`, fed by one listener thread (:meth:`start`).
    ``handlers`` are called from that thread with (id, channel, message) for every event read
    (the processes' own channels included); each must return at once."""

    kind = "postgresql"

    def __init__(self, engine: Engine, process: str, queue_limit: int = QUEUE_LIMIT) -> None:
        self.engine = engine
        self.process = process
        self.local = InProcessBroadcaster(queue_limit)
        self.handlers: list[Handler] = []
        self.listening = threading.Event()  # set while the listener's connection is up
        self.error: str | None = None  # why it is not, if it is not
        self._cursor: int | None = None  # the last id read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- sending --------------------------------------------------------------------------------
    def publish(self, channel: str, message: Message) -> None:
        self.send(channel, message)

    def send(self, channel: str, message: Message) -> int | None:
        """Write ``message`` on ``channel`` in a transaction of its own; its id, or None when the
        database refused (logged: the pages take a fresh snapshot when they reconnect)."""
        try:
            with self.engine.begin() as conn:
                return self.send_in(conn, channel, message)
        except SQLAlchemyError:
            log.exception("the live event on %s could not be written", channel)
            return None

    def send_in(self, conn: Connection | Session, channel: str, message: Message) -> int:
        """Write ``message`` on ``channel`` in the caller's transaction (sent when it commits,
        never if it rolls back); its id. Keep it the transaction's last statement: the order
        lock is held until the commit."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORDER_LOCK})
        event_id = conn.execute(
            text("INSERT INTO live_event (channel, body, at) VALUES (:c, :b, now()) RETURNING id"),
            {"c": channel, "b": json.dumps(message, separators=(",", ":"))},
        ).scalar_one()
        conn.execute(text("SELECT pg_notify(:bell, '')"), {"bell": DOORBELL})
        return int(event_id)

    # --- this process's pages -----------------------------------------------------------------
    def subscribe(self, channel: str) -> Subscription:
        return self.local.subscribe(channel)

    def unsubscribe(self, channel: str, subscription: Subscription) -> None:
        self.local.unsubscribe(channel, subscription)

    def subscriber_count(self, channel: str) -> int:
        return self.local.subscriber_count(channel)

    def newest_id(self) -> int:
        """The id of the newest event written (0 if none is kept)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(text("SELECT coalesce(max(id), 0) FROM live_event")).scalar_one()
            )

    def since(self, channel: str, after: int) -> list[Message] | None:
        """The messages on ``channel`` after event ``after``, oldest first, each with its
        ``id``; None when some may have been purged (or too many): take a snapshot instead."""
        with self.engine.connect() as conn:
            oldest, newest = conn.execute(text("SELECT min(id), max(id) FROM live_event")).one()
            if oldest is None or after + 1 < int(oldest) or after > int(newest):
                return None  # purged, or an id this database never gave
            rows = conn.execute(
                text(
                    "SELECT id, body FROM live_event WHERE channel = :c AND id > :a "
                    "ORDER BY id LIMIT :n"
                ),
                {"c": channel, "a": after, "n": RESUME_ROWS},
            ).all()
        if len(rows) >= RESUME_ROWS:
            return None
        return [{**json.loads(body), "id": int(event_id)} for event_id, body in rows]

    def purge(self) -> int:
        """Delete the rows older than :data:`RETAIN_S`; how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                text("DELETE FROM live_event WHERE at < now() - make_interval(secs => :s)"),
                {"s": RETAIN_S},
            )
        return int(result.rowcount or 0)

    # --- the listener ---------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.listening.clear()

    def _run(self) -> None:
        url = libpq_url(self.engine.url.render_as_string(hide_password=False))
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    url, autocommit=True, application_name=f"safetynet listen {self.process}"
                ) as conn:
                    conn.execute(f"LISTEN {DOORBELL}")
                    if self._cursor is None:  # from now on: pages take a snapshot first
                        row = conn.execute("SELECT coalesce(max(id), 0) FROM live_event").fetchone()
                        self._cursor = int(row[0]) if row else 0
                    self.listening.set()
                    self.error = None
                    while not self._stop.is_set():
                        while self._read(conn) == READ_ROWS:
                            pass
                        for _ in conn.notifies(timeout=POLL_S, stop_after=1):
                            pass
            except psycopg.Error as err:
                self.listening.clear()
                self.error = str(err).strip() or type(err).__name__
                log.warning("live listener: %s; connecting again", self.error)
                self._stop.wait(1.0)
        self.listening.clear()

    def _read(self, conn: psycopg.Connection[Any]) -> int:
        """Deliver the rows after the cursor; how many were read. Other processes' replies are
        not read whole (only their ids)."""
        rows = conn.execute(
            "SELECT id, channel, CASE WHEN left(channel, 7) = '~reply:' AND channel <> %s "
            "THEN NULL ELSE body END FROM live_event WHERE id > %s ORDER BY id LIMIT %s",
            (f"~reply:{self.process}", self._cursor, READ_ROWS),
        ).fetchall()
        for event_id, channel, body in rows:
            self._cursor = int(event_id)
            if body is not None:
                self._deliver(int(event_id), channel, body)
        return len(rows)

    def _deliver(self, event_id: int, channel: str, body: str | bytes) -> None:
        """One event to this process's pages (a search's channel) and to the handlers."""
        if channel.startswith("~reply:") and channel != f"~reply:{self.process}":
            return  # another process's answer
        message: Message = json.loads(body)
        if not channel.startswith("~"):
            message["id"] = event_id
            self.local.publish(channel, message)
        for handler in self.handlers:
            try:
                handler(event_id, channel, message)
            except Exception:  # one handler's bug never stops the push
                log.exception("a live event handler failed on %s", channel)
