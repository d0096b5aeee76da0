"""The seam between the live state and the pages: the in-process Broadcaster delivers what is
published from any thread, in order, to each subscriber of the channel and no other; a
subscriber that falls behind is told to resync once instead of getting the backlog. The live
state itself stays pure: no database, no asyncio, no threads."""

from __future__ import annotations

import asyncio
import threading

import grimp
import pytest

from ui.broadcast import InProcessBroadcaster


def test_messages_published_from_threads_arrive_in_order_on_their_channel() -> None:
    async def run() -> None:
        hub = InProcessBroadcaster()
        first, second, other = hub.subscribe("s1"), hub.subscribe("s1"), hub.subscribe("s2")
        assert hub.subscriber_count("s1") == 2

        def publish() -> None:
            for i in range(50):
                hub.publish("s1", {"type": "report", "i": i})
            hub.publish("s2", {"type": "fix"})

        worker = threading.Thread(target=publish)
        worker.start()
        worker.join()
        for sub in (first, second):
            got = [await asyncio.wait_for(sub.get(), 1.0) for _ in range(50)]
            assert [m["i"] for m in got] == list(range(50))
        assert await asyncio.wait_for(other.get(), 1.0) == {"type": "fix"}
        hub.unsubscribe("s1", first)
        assert hub.subscriber_count("s1") == 1
        hub.publish("s1", {"type": "changed"})
        assert await asyncio.wait_for(second.get(), 1.0) == {"type": "changed"}
        with pytest.raises(TimeoutError):  # unsubscribed: nothing more reaches it
            await asyncio.wait_for(first.get(), 0.05)

    asyncio.run(run())


def test_a_subscriber_that_falls_behind_gets_one_resync() -> None:
    async def run() -> None:
        hub = InProcessBroadcaster(queue_limit=5)
        slow = hub.subscribe("s1")
        for i in range(5):
            hub.publish("s1", {"i": i})
        await asyncio.sleep(0.01)  # the loop runs the puts: the queue is full now
        hub.publish("s1", {"i": 5})
        await asyncio.sleep(0.01)
        assert await asyncio.wait_for(slow.get(), 1.0) == {"type": "resync"}
        hub.publish("s1", {"i": 6})  # after the resync it is fed again
        assert await asyncio.wait_for(slow.get(), 1.0) == {"i": 6}

    asyncio.run(run())


def test_the_live_state_does_no_io() -> None:
    graph = grimp.build_graph(
        "ui", "registry", "locator", "safetynet", cache_dir=None, exclude_type_checking_imports=True
    )
    imported = graph.find_modules_directly_imported_by("ui.live")
    banned = ("sqlalchemy", "asyncio", "threading", "socket", "registry", "fastapi", "starlette")
    assert not [m for m in imported if m.split(".")[0] in banned], imported
