"""The lease of a search and its rebuild in one process of several (ui/shared_hub.py), on
PostgreSQL without the other processes: what a process keeps when its lease goes mid-replay."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from registry.db import make_engine
from ui.hub import LiveHub
from ui.shared_hub import SharedHub

SEARCH = "3f1c6a52-0000-4000-8000-000000000017"


class _Replayed:
    """Stands for a state just replayed from the stored reports."""

    def take(self, reports: list[Any]) -> tuple[list[Any], list[Any]]:
        return [], []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_replay_that_ends_after_its_lease_went_is_not_kept(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    first = SharedHub(engine, process="test-first")
    second = SharedHub(engine, process="test-second")
    replaying, finish = threading.Event(), threading.Event()

    def slow_rebuild(search_id: str) -> tuple[Any, set[tuple[str, int]]]:
        replaying.set()
        finish.wait(10)
        return _Replayed(), set()

    monkeypatch.setattr(first, "_rebuild", slow_rebuild)
    try:
        assert first._acquire(SEARCH)
        rebuild = threading.Thread(target=LiveHub.state, args=(first, SEARCH))
        rebuild.start()
        assert replaying.wait(5)
        first._release(SEARCH)  # handed over (or its listener went deaf) while it replays
        assert second._acquire(SEARCH), "the lease let go is free for another process"
        finish.set()
        rebuild.join(10)
        assert not rebuild.is_alive()
        # Two processes holding a state of one search would both push its fixes, and the first
        # would find its stale state again if it took the lease back later.
        assert SEARCH not in first.live_search_ids()
        assert SEARCH not in first._states
        assert not first.holds(SEARCH)
        assert second.holds(SEARCH)
    finally:
        finish.set()
        for hub in (first, second):
            with hub._lease_lock:
                hub._lost_connection()
        engine.dispose()
