"""The push of a search's changes to the pages watching it, behind one small interface.

A :class:`Broadcaster` carries messages (JSON-ready dicts) on named channels (a search's id):
``publish`` may be called from any thread (ingest runs in worker threads); ``subscribe`` is
called on the event loop of the page's socket and gives a :class:`Subscription` the socket
awaits. :class:`InProcessBroadcaster` serves one server process; a deployment of several
processes plugs in one that fans out through PostgreSQL LISTEN/NOTIFY or Redis, and the code
above cannot tell which.

A subscriber that falls behind (its queue of ``queue_limit`` messages overflows) loses the
backlog and is sent one ``{"type": "resync"}`` instead: the page then takes a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Protocol

Message = dict[str, Any]
QUEUE_LIMIT = 2000  # messages a page may fall behind before it is told to resync


class Subscription(Protocol):
    async def get(self) -> Message:
        """The next message on the channel (waits for one)."""
        ...


class Broadcaster(Protocol):
    def publish(self, channel: str, message: Message) -> None:
        """Send ``message`` to every subscriber of ``channel`` (from any thread, never blocks)."""
        ...

    def subscribe(self, channel: str) -> Subscription:
        """A new subscription to ``channel`` (on the event loop that will await it)."""
        ...

    def unsubscribe(self, channel: str, subscription: Subscription) -> None: ...

    def subscriber_count(self, channel: str) -> int: ...


class _Queue:
    """One subscriber of the in-process broadcaster: a bounded queue on its own loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Message] = asyncio.Queue(limit)

    async def get(self) -> Message:
        return await self.queue.get()

    def put(self, message: Message) -> None:
        """Runs on the subscriber's loop."""
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "resync"})


class InProcessBroadcaster:
    """Subscribers in this process only: each an asyncio queue fed with
    ``call_soon_threadsafe`` from whichever thread publishes."""

    def __init__(self, queue_limit: int = QUEUE_LIMIT) -> None:
        self.queue_limit = queue_limit
        self._subscribers: dict[str, list[_Queue]] = {}
        self._lock = threading.Lock()

    def publish(self, channel: str, message: Message) -> None:
        with self._lock:
            subs = list(self._subscribers.get(channel, []))
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.put, message)
            except RuntimeError:  # the page's loop has closed
                self.unsubscribe(channel, sub)

    def subscribe(self, channel: str) -> Subscription:
        sub = _Queue(asyncio.get_running_loop(), self.queue_limit)
        with self._lock:
            self._subscribers.setdefault(channel, []).append(sub)
        return sub

    def unsubscribe(self, channel: str, subscription: Subscription) -> None:
        with self._lock:
            subs = self._subscribers.get(channel, [])
            self._subscribers[channel] = [s for s in subs if s is not subscription]

    def subscriber_count(self, channel: str) -> int:
        with self._lock:
            return len(self._subscribers.get(channel, []))
