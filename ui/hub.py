"""The live states of the active searches in this server process, kept from the registry, and
their changes pushed to the pages through a :class:`~ui.broadcast.Broadcaster`.

Reports reach a search's state as they are ingested; when the server starts (or first looks at
a search) the state is rebuilt from the stored reports, so nothing lives only in one process.
The states themselves are pure (:mod:`ui.live`); this module does the reading and the pushing.

A rebuild never holds the hub's lock while it replays: ingest and the other searches go on, the
reports ingested meanwhile are kept for the search and applied once its replay is done (those
the replay already read are not applied twice). Until then the search answers "rebuilding"
(:class:`~safetynet.errors.UnavailableError`, 503 with Retry-After). A replay is bounded: stored
reports outside the time window of :mod:`ui.clock` (a receiver's bad clock, stored before the
window was checked at ingest) are passed over, and at most :data:`MAX_REPLAYED` are replayed.
At start-up :meth:`LiveHub.rebuild_in_background` rebuilds every active search in a thread, so
the server answers from its first second.

Each search's state takes its reports under its own lock, and an ingest waits only for the
searches its reports belong to: a slow step of one search (its bracelet heard again after two
days, the tracker walking the gap) never holds up the reports of another.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from registry.reports import report_bodies_since
from registry.searches import active_search_ids, live_setup
from safetynet.errors import UnavailableError
from safetynet.reports import FieldReport, Fix, parse_report
from ui.broadcast import Broadcaster, InProcessBroadcaster, Message, Subscription
from ui.clock import TimeWindow, report_window
from ui.live import COUNTS_BEFORE_LAST_SEEN_S, SearchState, one_message

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_REPLAYED = 500_000  # a day of 1,000 reports a minute from the whole search, and then some
WAIT_FOR_REBUILD_S = 8.0  # a request waits this long for a rebuild before it says "rebuilding"
RETRY_REBUILD_S = 5.0


@dataclass
class _Building:
    """A search whose state is being rebuilt, and the reports ingested for it meanwhile."""

    done: threading.Event = field(default_factory=threading.Event)
    arrived: list[FieldReport] = field(default_factory=list)


class LiveHub:
    """The states of the active searches and the push of their changes."""

    def __init__(
        self,
        engine: Engine,
        features: dict[str, Any] | None = None,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        self.engine = engine
        self.features = features  # a GeoJSON FeatureCollection that shapes every search's prior
        self.broadcaster: Broadcaster = broadcaster or InProcessBroadcaster()
        self._states: dict[str, SearchState] = {}
        self._building: dict[str, _Building] = {}
        # The hub's lock guards the tables above; each state has its own lock for its steps, so
        # a slow step of one search never holds up the ingest of another.
        self._lock = threading.RLock()
        self._state_locks: dict[str, threading.Lock] = {}
        self.started = threading.Event()  # set once the start-up rebuild has run
        # Called with (search id, message) on every publish, from the publishing thread; each
        # must return at once (the TAK feed only marks the search changed).
        self.listeners: list[Callable[[str, Message], None]] = []

    # --- states ---------------------------------------------------------------------------------
    def state(self, search_id: str, wait_s: float = WAIT_FOR_REBUILD_S) -> SearchState | None:
        """The live state of an active search (rebuilt from the stored reports on first use);
        None if the search is not active. Raises :class:`UnavailableError` when another thread
        is still rebuilding it after ``wait_s``."""
        with self._lock:
            if search_id in self._states:
                return self._states[search_id]
            building = self._building.get(search_id)
            mine = building is None
            if building is None:
                building = self._building[search_id] = _Building()
        if not mine:
            if not building.done.wait(wait_s):
                raise UnavailableError(
                    f"search {search_id}: its live state is being rebuilt from the stored "
                    "reports; try again in a few seconds",
                    retry_after_s=RETRY_REBUILD_S,
                )
            with self._lock:
                return self._states.get(search_id)
        try:
            state, keys = self._rebuild(search_id)
            with self._lock:
                # Installed only if this process may still hold it (several processes: its
                # lease may have gone while the replay ran, and another owner rebuilds it).
                if state is not None and self._may_hold(search_id):
                    late = [r for r in building.arrived if (r.receiver_id, r.seq) not in keys]
                    state.take(late)
                    self._states[search_id] = state
                    self._state_locks[search_id] = threading.Lock()
        finally:
            with self._lock:
                self._building.pop(search_id, None)
            building.done.set()
        return state

    def _may_hold(self, search_id: str) -> bool:
        """Whether this process may keep a state rebuilt for the search (one process: yes;
        read under the hub's lock)."""
        return True

    def holds(self, search_id: str) -> bool:
        """Whether this process may write the search's fixes into its log (one process: yes;
        several: only its lease's holder)."""
        return True

    def rebuilding(self, search_id: str | None = None) -> bool:
        """Whether the start-up rebuild (or any rebuild) is still going on; for ``search_id``:
        whether that search's state is being rebuilt or still waits for the start-up rebuild
        (a page shows "rebuilding")."""
        with self._lock:
            if search_id is None:
                return bool(self._building) or not self.started.is_set()
            if search_id in self._building:
                return True
            return search_id not in self._states and not self.started.is_set()

    def window_of(self, now: datetime) -> Callable[[FieldReport], TimeWindow]:
        """The time window of a report at ``now``: from the last-seen times of the live
        searches it belongs to (:func:`ui.clock.report_window`)."""
        with self._lock:
            searches = [(state.belongs, state.last_known[2]) for state in self._states.values()]

        def window(report: FieldReport) -> TimeWindow:
            return report_window(now, [t for belongs, t in searches if belongs(report)])

        return window

    def probability(self, search_id: str) -> dict[str, Any] | None:
        """The probability map of an active search (see :meth:`SearchState.probability`)."""
        return self._read(search_id, SearchState.probability)

    def snapshot(self, search_id: str) -> dict[str, Any] | None:
        """What a page draws of an active search, read under the search's lock (an ingest
        adding a receiver meanwhile would change the tables being read)."""
        return self._read(search_id, SearchState.snapshot)

    def live_search_ids(self) -> list[str]:
        """The searches whose live state this process holds now (none is rebuilt for this)."""
        with self._lock:
            return list(self._states)

    def read(self, search_id: str, read: Callable[[SearchState], T]) -> T | None:
        """``read`` of an active search's state under that search's lock (an ingest waits
        meanwhile: keep it short); None if not active."""
        return self._read(search_id, read)

    def _read(self, search_id: str, read: Callable[[SearchState], T]) -> T | None:
        """``read`` of an active search's state under that search's lock; None if not active."""
        state = self.state(search_id)
        if state is None:
            return None
        with self._lock:
            lock = self._state_locks.get(search_id) or threading.Lock()
        with lock:
            return read(state)

    def load_active(self) -> int:
        """Rebuild every active search's state (at start-up); returns how many."""
        try:
            with Session(self.engine) as session:
                ids = active_search_ids(session)
            for search_id in ids:
                with contextlib.suppress(UnavailableError):  # a request is rebuilding it
                    self.state(search_id, wait_s=0.0)
            return len(ids)
        finally:
            self.started.set()

    def rebuild_in_background(self) -> threading.Thread:
        """Start :meth:`load_active` in a daemon thread (the server answers meanwhile)."""

        def run() -> None:
            try:
                count = self.load_active()
                log.info("rebuilt %d active searches from the stored reports", count)
            except Exception:  # a rebuild that fails leaves each search to rebuild on first use
                log.exception("the start-up rebuild of the live searches failed")

        thread = threading.Thread(target=run, name="live-rebuild", daemon=True)
        thread.start()
        return thread

    def forget(self, search_id: str) -> None:
        """The search is no longer active (found, suspended, closed) or its teams changed."""
        with self._lock:
            self._states.pop(search_id, None)
            self._state_locks.pop(search_id, None)
        self.publish(search_id, {"type": "changed"})

    def _rebuild(self, search_id: str) -> tuple[SearchState | None, set[tuple[str, int]]]:
        """The search's state replayed from its stored reports, and the keys it replayed."""
        with Session(self.engine) as session:
            setup = live_setup(session, search_id)
            if setup is None:
                return None, set()
            since = setup.last_known_at - timedelta(seconds=COUNTS_BEFORE_LAST_SEEN_S)
            bodies = report_bodies_since(
                session, since, list(setup.teams), setup.bracelet_id, setup.channel
            )
        state = SearchState.start(setup, self.features)
        window = report_window(datetime.now(UTC), [setup.last_known_at])
        keys: set[tuple[str, int]] = set()
        passed_over = 0

        def reports() -> Any:
            nonlocal passed_over
            for body in bodies[-MAX_REPLAYED:]:
                report = parse_report(body)
                if isinstance(report, Fix) or window.problem(report.t) is not None:
                    passed_over += 1
                    continue
                keys.add((report.receiver_id, report.seq))
                yield report

        replayed = state.replay(reports())
        log.info(
            "search %s: rebuilt from %d stored reports (%d outside the time window passed over, "
            "%d beyond the newest %d), %d fixes",
            search_id,
            replayed,
            passed_over,
            max(0, len(bodies) - MAX_REPLAYED),
            MAX_REPLAYED,
            len(state.fixes),
        )
        return state, keys

    def forward(self, session: Session, reports: list[FieldReport]) -> None:
        """Called in the ingest's transaction with the reports it stores: one process holds
        every search here, so nothing goes anywhere (see :class:`ui.shared_hub.SharedHub`)."""

    def ingest(
        self, reports: list[FieldReport], event_id: int | None = None
    ) -> dict[str, list[Fix]]:
        """Feed newly stored reports to every active search they belong to; push the changes.
        Returns the fixes they caused, per search. ``event_id``: the live event that brought
        them from another process, if one did."""
        out: dict[str, list[Fix]] = {}
        with self._lock:
            for building in self._building.values():
                building.arrived.extend(reports)  # applied when its replay is done
            live = [(sid, state, self._state_locks[sid]) for sid, state in self._states.items()]
        for search_id, state, lock in live:
            fresh = self._fresh(search_id, reports, event_id)
            if not any(state.matches(report) for report in fresh):
                continue  # not this search's: never wait for its lock
            with lock:
                messages, fixes = state.take(fresh)
                message = one_message(messages)
                if message is not None:  # in the state's order
                    self.publish(search_id, message)
            if fixes:
                out[search_id] = fixes
        return out

    def _fresh(
        self, search_id: str, reports: list[FieldReport], event_id: int | None
    ) -> list[FieldReport]:
        """The reports the search's state has not taken yet (here: all of them)."""
        return reports

    def is_live(self, search_id: str) -> bool:
        """Whether the search is active (its state rebuilt here if need be; raises
        :class:`UnavailableError` while another thread rebuilds it)."""
        return self.state(search_id) is not None

    def since(self, search_id: str, after: int) -> list[Message] | None:
        """The search's messages after event ``after``: None, messages here carry no ids (a
        page that reconnects takes a fresh snapshot)."""
        return None

    def health(self) -> dict[str, Any]:
        """Which searches this process holds, for ``GET /api/v1/health``."""
        ids = sorted(self.live_search_ids())
        return {
            "broker": {"kind": "in-process", "ok": True},
            "owns": ids,
            "pages": {sid: n for sid in ids if (n := self.subscriber_count(sid))},
        }

    def stop(self) -> None:
        """The server is stopping (nothing to stop here)."""

    # --- the push -------------------------------------------------------------------------------
    def publish(self, search_id: str, message: Message) -> None:
        self.broadcaster.publish(search_id, message)
        for listener in self.listeners:
            try:
                listener(search_id, message)
            except Exception:  # a listener's bug never stops the pages' push
                log.exception("a listener of search %s failed", search_id)

    def subscribe(self, search_id: str) -> Subscription:
        return self.broadcaster.subscribe(search_id)

    def unsubscribe(self, search_id: str, subscription: Subscription) -> None:
        self.broadcaster.unsubscribe(search_id, subscription)

    def subscriber_count(self, search_id: str) -> int:
        return self.broadcaster.subscriber_count(search_id)
