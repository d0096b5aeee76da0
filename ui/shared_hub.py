"""The live searches when several server processes share one PostgreSQL: one owner per search,
the others forwarding to it, the push through the outbox (:mod:`ui.outbox`).

Exactly one process at a time runs a search's tracker and probability map: the one holding the
search's lease, a PostgreSQL session-level advisory lock (``pg_try_advisory_lock``) on a
connection of its own. PostgreSQL lets the lock go the moment that connection ends, so when the
owner dies (even by SIGKILL) another process takes it on its next look (every
:data:`LEASE_EVERY_S`) and rebuilds the state from the stored reports (:mod:`ui.hub`), and no
lease row waits out an expiry. A process takes the active searches nobody holds up to its
share (the active searches over the processes connected), and one that holds more (it started
first) hands one over every :data:`HAND_OVER_EVERY_S`, so the trackers spread over the processes.

The way of a report: any process stores it and, in the same transaction, writes it to the
outbox's ``~reports`` channel. The owner, if it is the process that stored it, takes it at once
(as one process does); otherwise its listener hands the event to one worker thread that takes
the reports in event order, pushes the changes and writes each batch's newest fix into the
search's log. Only the owner writes fixes, after checking it still holds the lease; a state
rebuilt after a failover skips the reports its replay already took (by ``(receiver_id, seq)``,
for the events up to the newest one written when the replay was read), logs the newest fix if
the log lacks it (the old owner died between the report and its fix), and tells the pages to
take a fresh snapshot. So no fix is written twice and none is lost, and the track goes on from
the same stored reports.

A page's snapshot and the probability map are asked of the owner through the outbox (``~ask``,
answered on ``~reply:<process>``); a snapshot carries the id of the newest event it includes,
so the page's socket skips what it already shows. On SQLite (one process) :class:`ui.hub.LiveHub`
serves alone, as simple as ever (:func:`ui.app.make_hub`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any, TypeVar
from uuid import uuid4

import psycopg
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from registry import searches
from registry.models import Search, SearchEvent, SearchStatus
from registry.searches import LiveSetup, active_search_ids, live_setup
from safetynet.errors import UnavailableError
from safetynet.reports import Bearing, FieldReport, Fix, Pulse, Status, parse_report, report_to_obj
from ui.broadcast import Message
from ui.clock import TimeWindow, report_window
from ui.hub import LiveHub
from ui.live import SearchState
from ui.outbox import OutboxBroadcaster, libpq_url

log = logging.getLogger(__name__)
T = TypeVar("T")

LEASE_SPACE = 0x5AFE  # the first key of every search's advisory lock
LEASE_EVERY_S = 0.25  # how often a process looks for searches nobody holds
SETUPS_EVERY_S = 10.0  # how often the active searches' setups are read again
PURGE_EVERY_S = 30.0
ASK_WAIT_S = 4.0  # a request waits this long for the owner's answer
TAKE_OVER_WAIT_S = 120.0  # a search just leased waits this long for a rebuild under way
DEAF_S = 3.0  # a process whose listener is down this long lets its searches go
HAND_OVER_EVERY_S = 5.0  # a process holding more than its share lets one search go this often
LEASE_APP = "safetynet lease "  # the lease connections' application_name, then the process
FORWARDED_KEYS = 20_000
SEND_TRIES = 3  # a report's send to the owners (a broker outside the database) is tried this often
SEND_RETRY_S = 0.2  # reports remembered as forwarded in their ingest's transaction


def lease_key(search_id: str) -> int:
    """The second key of a search's advisory lock (a 31-bit hash of its id; two searches that
    share one are held by one process, which is harmless)."""
    return zlib.crc32(search_id.encode()) & 0x7FFF_FFFF


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _about(setup: LiveSetup, report: FieldReport) -> bool:
    """Whether ``report`` is about the search (its bracelet, channel or teams' receivers), as
    :meth:`ui.live.SearchState.belongs` decides before any receiver was heard."""
    if isinstance(report, Status):
        return report.receiver_id in setup.teams
    bracelet = report.bracelet_id if isinstance(report, Pulse | Bearing) else None
    if bracelet is not None:
        return bracelet == setup.bracelet_id
    return setup.channel is not None and report.channel == setup.channel


class SharedHub(LiveHub):
    """A :class:`~ui.hub.LiveHub` that holds only the searches whose lease it has."""

    def __init__(
        self,
        engine: Engine,
        features: dict[str, Any] | None = None,
        process: str | None = None,
        broker_url: str | None = None,
    ) -> None:
        self.process = process or this_process()
        self.outbox = _broker(engine, self.process, broker_url)
        super().__init__(engine, features, self.outbox)
        self.outbox.handlers.append(self._on_event)
        self._owned: set[str] = set()
        self._lease_lock = threading.Lock()  # the lease connection and ``_owned``
        self._lease_conn: psycopg.Connection[Any] | None = None
        self._setups: dict[str, LiveSetup] = {}
        self._setups_read_s = 0.0
        self._replayed: dict[str, tuple[int, set[tuple[str, int]]]] = {}
        self._last_id: dict[str, int] = {}  # the newest event pushed per owned search
        self._waiting: dict[str, Future[Message]] = {}
        self._forwarded: set[tuple[str, int]] = set()
        self._forwarded_order: deque[tuple[str, int]] = deque()
        self._forwarded_lock = threading.Lock()
        self._work: queue.Queue[tuple[int, list[FieldReport]] | None] = queue.Queue()
        self._asks = ThreadPoolExecutor(4, thread_name_prefix="live-ask")
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- the lease ------------------------------------------------------------------------------
    def _connection(self) -> psycopg.Connection[Any]:
        """The lease connection (under ``_lease_lock``): its locks are this process's leases."""
        if self._lease_conn is None or self._lease_conn.closed:
            self._lease_conn = psycopg.connect(
                libpq_url(self.engine.url.render_as_string(hide_password=False)),
                autocommit=True,
                application_name=f"{LEASE_APP}{self.process}",
            )
        return self._lease_conn

    def _acquire(self, search_id: str) -> bool:
        """Take the search's lease if nobody holds it; whether this process holds it now."""
        with self._lease_lock:
            if search_id in self._owned:
                return True
            try:
                row = (
                    self._connection()
                    .execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (LEASE_SPACE, lease_key(search_id))
                    )
                    .fetchone()
                )
            except psycopg.Error as err:
                log.warning("lease of search %s not taken: %s", search_id, err)
                self._lost_connection()
                return False
            if not (row and row[0]):
                return False
            self._owned.add(search_id)
        log.info("search %s: this process (%s) holds its live state", search_id, self.process)
        return True

    def _claim(self, search_id: str) -> bool:
        """Whether this process holds the search, taking its lease if nobody does; a lease just
        taken is rebuilt in a thread (:meth:`_take_over`)."""
        if search_id in self._owned:
            return True
        if not self._active(search_id):
            return False  # found, closed or never opened: nothing to hold
        if self._threads and not self.outbox.listening.is_set():
            return False  # it would not hear the reports forwarded to it
        if not self._acquire(search_id):
            return False
        threading.Thread(
            target=self._take_over,
            args=(search_id, self.started.is_set()),  # after start-up: someone may have died
            name=f"live-rebuild-{search_id[:8]}",
            daemon=True,
        ).start()
        return True

    def _release(self, search_id: str) -> None:
        with self._lease_lock:
            if search_id not in self._owned:
                return
            self._owned.discard(search_id)
            with contextlib.suppress(psycopg.Error):
                self._connection().execute(
                    "SELECT pg_advisory_unlock(%s, %s)", (LEASE_SPACE, lease_key(search_id))
                )
        self._drop(search_id)

    def _lost_connection(self) -> None:
        """The lease connection failed (under ``_lease_lock``): its locks are gone with it, and
        so is every state this process held."""
        owned, self._owned = self._owned, set()
        if self._lease_conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._lease_conn.close()
        self._lease_conn = None
        for search_id in owned:
            self._drop(search_id)

    def _drop(self, search_id: str) -> None:
        with self._lock:
            self._states.pop(search_id, None)
            self._state_locks.pop(search_id, None)
        self._replayed.pop(search_id, None)

    def _may_hold(self, search_id: str) -> bool:
        # Under the hub's lock: a lease let go discards the search before it drops the state,
        # so a replay that ends after the release is not installed (it would take and push
        # reports for a search another process holds, and be found again, stale, on a reclaim).
        return search_id in self._owned

    def holds(self, search_id: str) -> bool:
        """Whether this process still holds the search's lease (asked of PostgreSQL)."""
        with self._lease_lock:
            if search_id not in self._owned:
                return False
            try:
                row = (
                    self._connection()
                    .execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                        "pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 2",
                        (LEASE_SPACE, lease_key(search_id)),
                    )
                    .fetchone()
                )
            except psycopg.Error:
                self._lost_connection()
                return False
            return bool(row and row[0])

    def _take_over(self, search_id: str, failover: bool) -> None:
        """Rebuild a search just leased (in a thread of its own); after a failover, log the
        newest fix if the old owner died before it did and tell the pages to resync."""
        try:  # a request may be rebuilding it: wait for that
            state = LiveHub.state(self, search_id, wait_s=TAKE_OVER_WAIT_S)
        except UnavailableError:
            log.warning("search %s: still rebuilding after %.0f s", search_id, TAKE_OVER_WAIT_S)
            return
        except Exception:
            log.exception("search %s: rebuild after taking its lease failed", search_id)
            self._release(search_id)
            return
        if state is None:
            self._release(search_id)
            return
        if state.fixes and failover:
            self._log_missing_fix(search_id, state)
        if failover:
            self.publish(search_id, {"type": "resync", "origin": self.process})

    def _log_missing_fix(self, search_id: str, state: SearchState) -> None:
        newest = state.fixes[-1]
        fix = parse_report(newest)
        with Session(self.engine) as session:
            logged = session.scalar(
                select(SearchEvent.at)
                .where(SearchEvent.search_id == search_id, SearchEvent.kind == "fix")
                .order_by(SearchEvent.at.desc())
                .limit(1)
            )
        if logged is None or logged < fix.t:
            assert isinstance(fix, Fix)
            self._log_fixes({search_id: [fix]})

    def _log_fixes(self, fixes: dict[str, list[Fix]]) -> None:
        """Each search's newest fix into its log, if this process still holds the search."""
        held = {sid: found for sid, found in fixes.items() if found and self.holds(sid)}
        if not held:
            return
        with Session(self.engine) as session, session.begin():
            for search_id, found in held.items():
                last = found[-1]
                searches.add_event(session, None, search_id, "fix", report_to_obj(last), at=last.t)

    # --- the threads ----------------------------------------------------------------------------
    def rebuild_in_background(self) -> threading.Thread:
        """Start the listener, the lease keeper and the worker (the server answers meanwhile)."""
        self._stop.clear()
        self.outbox.start()
        for target, name in ((self._keep_leases, "live-lease"), (self._worker, "live-worker")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self._threads[0]

    def stop(self) -> None:
        self._stop.set()
        self._work.put(None)
        self.outbox.stop()
        for thread in self._threads:
            thread.join(5)
        self._threads.clear()
        self._asks.shutdown(wait=False, cancel_futures=True)
        with self._lease_lock:
            self._lost_connection()

    def _keep_leases(self) -> None:
        purged_s = handed_s = 0.0
        first = True
        heard_s = time.monotonic()
        # Nothing is leased before the listener hears: reports forwarded meanwhile would be lost.
        self.outbox.listening.wait(10.0)
        while not self._stop.is_set():
            try:
                if self.outbox.listening.is_set():
                    heard_s = time.monotonic()
                elif time.monotonic() - heard_s > DEAF_S and self._owned:
                    log.warning("live listener down: this process lets its searches go")
                    for search_id in list(self._owned):
                        self._release(search_id)
                active = self._read_setups()
                with self._lease_lock:
                    try:  # the connection answers, so its locks are still held
                        self._connection().execute("SELECT 1")
                    except psycopg.Error as err:
                        log.warning("lease connection lost (%s): the searches are let go", err)
                        self._lost_connection()
                    owned = set(self._owned)
                for search_id in owned - active:
                    self._release(search_id)
                owned &= active
                # Each process takes searches nobody holds up to its share, and one holding
                # more than its share (it started first) lets one go now and then.
                share = math.ceil(len(active) / self._processes())
                for search_id in sorted(active - owned):
                    if len(self._owned) >= share:
                        break
                    self._claim(search_id)
                if len(owned) > share and time.monotonic() - handed_s > HAND_OVER_EVERY_S:
                    handed_s = time.monotonic()
                    search_id = max(owned)
                    log.info("search %s handed over: this process holds more than its share of "
                             "%d", search_id, share)  # fmt: skip
                    self._release(search_id)
                if time.monotonic() - purged_s > PURGE_EVERY_S:
                    purged_s = time.monotonic()
                    self.outbox.purge()
            except Exception:  # the database away: look again shortly
                log.exception("keeping the searches' leases failed")
            finally:
                if first:
                    first = False
                    self.started.set()
            self._stop.wait(LEASE_EVERY_S)

    def _processes(self) -> int:
        """How many server processes hold a lease connection to this database (1 at least)."""
        with self.engine.connect() as conn:
            count = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name LIKE :app"
                ),
                {"app": LEASE_APP + "%"},
            ).scalar_one()
        return max(1, int(count))

    def _read_setups(self) -> set[str]:
        """The active searches (their setups read again now and then, for the time window)."""
        with Session(self.engine) as session:
            ids = set(active_search_ids(session))
            again = time.monotonic() - self._setups_read_s > SETUPS_EVERY_S
            if again:
                self._setups_read_s = time.monotonic()
            setups = dict(self._setups)
            for search_id in ids:
                if again or search_id not in setups:
                    setup = live_setup(session, search_id)
                    if setup is not None:
                        setups[search_id] = setup
        self._setups = {sid: s for sid, s in setups.items() if sid in ids}
        return ids

    def _worker(self) -> None:
        """Reports forwarded by other processes, taken in event order."""
        while True:
            item = self._work.get()
            if item is None:
                return
            event_id, reports = item
            try:
                self._log_fixes(self.ingest_here(reports, event_id))
            except Exception:
                log.exception("forwarded reports (event %d) not taken", event_id)

    def _on_event(self, event_id: int, channel: str, message: Message) -> None:
        """Every live event, on the listener's thread (returns at once)."""
        if channel == "~reports":
            if message.get("origin") != self.process and self._owned:
                reports = [parse_report(obj) for obj in message.get("reports", [])]
                self._work.put((event_id, [r for r in reports if not isinstance(r, Fix)]))
        elif channel == "~ask":
            if message.get("search_id") in self._owned:
                self._asks.submit(self._answer, message)
        elif channel == f"~reply:{self.process}":
            waiting = self._waiting.pop(str(message.get("token")), None)
            if waiting is not None:
                waiting.set_result(message)
        elif (
            message.get("type") == "changed"
            and message.get("origin") != self.process
            and channel in self._owned
        ):
            self._drop(channel)  # its teams changed elsewhere: rebuilt with them
            threading.Thread(target=self._take_over, args=(channel, False), daemon=True).start()

    # --- asking the owner -----------------------------------------------------------------------
    def _answer(self, message: Message) -> None:
        search_id, what = str(message["search_id"]), message.get("what")
        reply: Message = {"token": message.get("token")}
        try:
            if search_id not in self._owned:
                return  # let go meanwhile: the asker waits for the next owner or gives up
            reply["body"] = self.snapshot(search_id) if what == "snapshot" else (
                self.probability(search_id))  # fmt: skip
        except UnavailableError as err:
            reply["unavailable"] = str(err)
        self.outbox.send(f"~reply:{message.get('to')}", reply)

    def _active(self, search_id: str) -> bool:
        if search_id in self._setups:
            return True
        with Session(self.engine) as session:
            status = session.scalar(select(Search.status).where(Search.id == search_id))
        return status == SearchStatus.ACTIVE

    def _ask(self, search_id: str, what: str) -> Any:
        if not self._active(search_id):
            return None
        token = uuid4().hex
        waiting: Future[Message] = Future()
        self._waiting[token] = waiting
        message = {"search_id": search_id, "what": what, "token": token, "to": self.process}
        self.outbox.send("~ask", message)
        try:
            reply = waiting.result(ASK_WAIT_S)
        except FutureTimeout:
            raise UnavailableError(
                f"search {search_id}: no server process holds its live state yet (one takes it "
                "within seconds); try again shortly",
                retry_after_s=2.0,
            ) from None
        finally:
            self._waiting.pop(token, None)
        if "unavailable" in reply:
            raise UnavailableError(str(reply["unavailable"]), retry_after_s=2.0)
        return reply.get("body")

    # --- the hub's face -------------------------------------------------------------------------
    def state(self, search_id: str, wait_s: float = 8.0) -> SearchState | None:
        """The state of a search this process holds (or can take now); None otherwise."""
        if not self._claim(search_id):
            return None
        return super().state(search_id, wait_s)

    def is_live(self, search_id: str) -> bool:
        if self._claim(search_id):
            return super().state(search_id) is not None
        return self._active(search_id)

    def _rebuild(self, search_id: str) -> tuple[SearchState | None, set[tuple[str, int]]]:
        state, keys = super()._rebuild(search_id)
        newest = self.outbox.newest_id()
        # Events up to ``newest`` may hold reports the replay read: they are skipped by key.
        self._replayed[search_id] = (newest, keys)
        self._last_id[search_id] = newest
        return state, keys

    def _fresh(
        self, search_id: str, reports: list[FieldReport], event_id: int | None
    ) -> list[FieldReport]:
        replayed = self._replayed.get(search_id)
        if replayed is None:
            return reports
        newest, keys = replayed
        if event_id is not None and event_id > newest:
            self._replayed.pop(search_id, None)  # past the replay: nothing more to skip
            return reports
        return [r for r in reports if (r.receiver_id, r.seq) not in keys]

    def snapshot(self, search_id: str) -> dict[str, Any] | None:
        if self._claim(search_id):

            def read(state: SearchState) -> dict[str, Any]:
                return {**state.snapshot(), "id": self._last_id.get(search_id, 0)}

            return self._read(search_id, read)
        return self._ask(search_id, "snapshot")  # type: ignore[no-any-return]

    def probability(self, search_id: str) -> dict[str, Any] | None:
        if self._claim(search_id):
            return super().probability(search_id)
        return self._ask(search_id, "probability")  # type: ignore[no-any-return]

    def read(self, search_id: str, read: Callable[[SearchState], T]) -> T | None:
        if search_id not in self._owned:
            return None  # another process holds it (and feeds its TAK users)
        return super().read(search_id, read)

    def window_of(self, now: datetime) -> Callable[[FieldReport], TimeWindow]:
        setups = list(self._setups.values())

        def window(report: FieldReport) -> TimeWindow:
            return report_window(now, [s.last_known_at for s in setups if _about(s, report)])

        return window

    def forward(self, session: Session, reports: list[FieldReport]) -> None:
        """Write the stored reports to the owners' channel, in the ingest's transaction. Only the
        outbox writes in it; a broker outside the database (Redis) is sent to by
        :meth:`ingest` once the reports are committed, where a failed send is seen and tried
        again (sent from a commit hook, a failure would only be logged, and the reports, marked
        forwarded, would never reach the owner's map)."""
        if not reports or self.outbox.kind != "postgresql":
            return
        self.outbox.send_in(session, "~reports", self._reports_message(reports))
        with self._forwarded_lock:
            for report in reports:
                key = (report.receiver_id, report.seq)
                self._forwarded.add(key)
                self._forwarded_order.append(key)
            while len(self._forwarded_order) > FORWARDED_KEYS:
                self._forwarded.discard(self._forwarded_order.popleft())

    def _reports_message(self, reports: list[FieldReport]) -> Message:
        return {"origin": self.process, "reports": [report_to_obj(r) for r in reports]}

    def ingest(
        self, reports: list[FieldReport], event_id: int | None = None
    ) -> dict[str, list[Fix]]:
        """Reports this process stored: to the owners (if not yet forwarded in their
        transaction), and to the searches this process holds at once."""
        with self._forwarded_lock:
            unsent = [r for r in reports if (r.receiver_id, r.seq) not in self._forwarded]
        if unsent:
            message = self._reports_message(unsent)
            for attempt in range(SEND_TRIES):
                if self.outbox.send("~reports", message) is not None:
                    break
                time.sleep(SEND_RETRY_S * (attempt + 1))
            else:
                log.error(
                    "%d stored reports could not be sent to the searches' owners; they reach "
                    "the maps at the next rebuild", len(unsent),
                )  # fmt: skip
        return self.ingest_here(reports, event_id)

    def ingest_here(
        self, reports: list[FieldReport], event_id: int | None = None
    ) -> dict[str, list[Fix]]:
        return super().ingest(reports, event_id)

    def forget(self, search_id: str) -> None:
        if search_id in self._owned:
            self._drop(search_id)
        self.publish(search_id, {"type": "changed", "origin": self.process})

    def since(self, search_id: str, after: int) -> list[Message] | None:
        return self.outbox.since(search_id, after)

    def publish(self, search_id: str, message: Message) -> None:
        event_id = self.outbox.send(search_id, message)
        if event_id is not None:
            self._last_id[search_id] = event_id
        for listener in self.listeners:
            try:
                listener(search_id, message)
            except Exception:  # a listener's bug never stops the pages' push
                log.exception("a listener of search %s failed", search_id)

    def live_search_ids(self) -> list[str]:
        with self._lock:
            return [sid for sid in self._states if sid in self._owned]

    def health(self) -> dict[str, Any]:
        """This process, whether its listener is connected, which searches it holds, which
        process holds each active search (from PostgreSQL's locks) and how many pages watch
        each through this process."""
        owners: dict[str, str | None] = dict.fromkeys(self._setups)
        by_key = {lease_key(sid): sid for sid in owners}
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT l.objid, a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.classid = :space "
                    "AND l.objsubid = 2 AND l.granted"
                ),
                {"space": LEASE_SPACE},
            ).all()
        for objid, application in rows:
            search_id = by_key.get(int(objid))
            if search_id is not None:
                owners[search_id] = str(application).removeprefix(LEASE_APP)
        return {
            "process": self.process,
            "broker": {"kind": self.outbox.kind, "ok": self.outbox.listening.is_set()},
            "owns": sorted(self._owned),
            "owners": owners,
            # the pages watching each search through this process
            "pages": {sid: n for sid in owners if (n := self.subscriber_count(sid))},
        }


def _broker(engine: Engine, process: str, url: str | None) -> OutboxBroadcaster:
    """The outbox on PostgreSQL, or the Redis stream ``SAFETYNET_BROKER_URL`` names."""
    if url is not None and url.startswith(("redis://", "rediss://", "unix://")):
        from ui.redis_broadcast import RedisBroadcaster

        return RedisBroadcaster(engine, process, url)
    return OutboxBroadcaster(engine, process)
