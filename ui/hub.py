"""The live states of the active searches in this server process, kept from the registry, and
their changes pushed to the pages through a :class:`~ui.broadcast.Broadcaster`.

Reports reach a search's state as they are ingested; when the server starts (or first looks at
a search) the state is rebuilt from the stored reports, so nothing lives only in one process.
The states themselves are pure (:mod:`ui.live`); this module does the reading and the pushing.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from registry.reports import report_bodies_since
from registry.searches import active_search_ids, live_setup
from safetynet.reports import FieldReport, Fix, parse_report
from ui.broadcast import Broadcaster, InProcessBroadcaster, Message, Subscription
from ui.live import SearchState, one_message

log = logging.getLogger(__name__)

REBUILD_BEFORE_S = 600.0  # reports this long before the last known time still count


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
        self._lock = threading.RLock()

    # --- states ---------------------------------------------------------------------------------
    def state(self, search_id: str) -> SearchState | None:
        """The live state of an active search (rebuilt from the stored reports on first use)."""
        with self._lock:
            if search_id in self._states:
                return self._states[search_id]
            state = self._rebuild(search_id)
            if state is not None:
                self._states[search_id] = state
            return state

    def probability(self, search_id: str) -> dict[str, Any] | None:
        """The probability map of an active search (see :meth:`SearchState.probability`)."""
        with self._lock:
            state = self.state(search_id)
            return None if state is None else state.probability()

    def load_active(self) -> int:
        """Rebuild every active search's state (at start-up); returns how many."""
        with Session(self.engine) as session:
            ids = active_search_ids(session)
        for search_id in ids:
            self.state(search_id)
        return len(ids)

    def forget(self, search_id: str) -> None:
        """The search is no longer active (found, suspended, closed) or its teams changed."""
        with self._lock:
            self._states.pop(search_id, None)
        self.publish(search_id, {"type": "changed"})

    def _rebuild(self, search_id: str) -> SearchState | None:
        with Session(self.engine) as session:
            setup = live_setup(session, search_id)
            if setup is None:
                return None
            since = setup.last_known_at - timedelta(seconds=REBUILD_BEFORE_S)
            bodies = report_bodies_since(
                session, since, list(setup.teams), setup.bracelet_id, setup.channel
            )
        state = SearchState.start(setup, self.features)
        replayed = state.replay(parse_report(body) for body in bodies)
        log.info(
            "search %s: rebuilt from %d stored reports, %d fixes",
            search_id,
            replayed,
            len(state.fixes),
        )
        return state

    def ingest(self, reports: list[FieldReport]) -> dict[str, list[Fix]]:
        """Feed newly stored reports to every active search they belong to; push the changes.
        Returns the fixes they caused, per search."""
        out: dict[str, list[Fix]] = {}
        with self._lock:
            for search_id, state in list(self._states.items()):
                messages, fixes = state.take(reports)
                if fixes:
                    out[search_id] = fixes
                message = one_message(messages)
                if message is not None:
                    self.publish(search_id, message)
        return out

    # --- the push -------------------------------------------------------------------------------
    def publish(self, search_id: str, message: Message) -> None:
        self.broadcaster.publish(search_id, message)

    def subscribe(self, search_id: str) -> Subscription:
        return self.broadcaster.subscribe(search_id)

    def unsubscribe(self, search_id: str, subscription: Subscription) -> None:
        self.broadcaster.unsubscribe(search_id, subscription)

    def subscriber_count(self, search_id: str) -> int:
        return self.broadcaster.subscriber_count(search_id)
