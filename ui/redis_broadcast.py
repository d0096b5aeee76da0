"""The live push between server processes through a Redis stream, when ``SAFETYNET_BROKER_URL``
names a Redis (``redis://…``): the same face as :class:`ui.outbox.OutboxBroadcaster`, for
deployments whose PostgreSQL should not carry the pages' traffic.

One stream per database (``safetynet:live:<database>``) holds every channel's messages; Redis
gives each entry an id ``<ms>-<n>`` that grows in the order it took them, read here as the one
integer ``ms × 4096 + n`` (exact in a page's JavaScript) so that a page resumes the same way as
over PostgreSQL (:meth:`RedisBroadcaster.since`). Entries older than
:data:`~ui.outbox.RETAIN_S` are trimmed as new ones are added. The searches' leases stay
PostgreSQL advisory locks (:mod:`ui.shared_hub`).

What Redis cannot do is share the ingest's transaction: a report's forwarding to its search's
owner is sent just after the commit (:meth:`RedisBroadcaster.send_in`), so a process that dies
between the two leaves those reports to the owner's next rebuild instead of its live state —
the outbox on PostgreSQL has no such gap, which is why it is the default.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from ui.broadcast import QUEUE_LIMIT, Message
from ui.outbox import READ_ROWS, RESUME_ROWS, RETAIN_S, OutboxBroadcaster

log = logging.getLogger(__name__)

PER_MS = 4096  # entries Redis numbers within one millisecond that an integer id can tell apart


def event_id(stream_id: bytes | str) -> int:
    """A stream entry's id (``ms-n``) as one integer."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    ms, n = text.split("-")
    return int(ms) * PER_MS + min(int(n), PER_MS - 1)


def stream_id(event: int) -> str:
    return f"{event // PER_MS}-{event % PER_MS}"


class RedisBroadcaster(OutboxBroadcaster):
    """Messages through a Redis stream; pages and handlers as for the outbox."""

    kind = "redis"

    def __init__(
        self, engine: Engine, process: str, url: str, queue_limit: int = QUEUE_LIMIT
    ) -> None:
        super().__init__(engine, process, queue_limit)
        self.url = url
        self.key = f"safetynet:live:{engine.url.database}"
        # redis-py's types mix its blocking and asyncio answers: this is the blocking client.
        self.client: Any = redis.Redis.from_url(url, socket_timeout=5.0)

    def _add(self, channel: str, message: Message) -> int:
        fields = {"c": channel, "b": json.dumps(message, separators=(",", ":"))}
        oldest_ms = int((time.time() - RETAIN_S) * 1000)
        added = self.client.xadd(self.key, fields, minid=str(oldest_ms), approximate=True)
        return event_id(added)

    def send(self, channel: str, message: Message) -> int | None:
        try:
            return self._add(channel, message)
        except redis.RedisError:
            log.exception("the live event on %s could not be sent to Redis", channel)
            return None

    def send_in(self, conn: Connection | Session, channel: str, message: Message) -> int:
        """Sent once the caller's transaction commits (never if it rolls back); 0, the id being
        Redis's to give then."""

        def after_commit(_session: Any) -> None:
            self.send(channel, message)

        event.listen(conn, "after_commit" if isinstance(conn, Session) else "commit",
                     after_commit, once=True)  # fmt: skip
        return 0

    def newest_id(self) -> int:
        last = self.client.xrevrange(self.key, count=1)
        return event_id(last[0][0]) if last else 0

    def since(self, channel: str, after: int) -> list[Message] | None:
        first = self.client.xrange(self.key, count=1)
        newest = self.newest_id()
        if not first or after + 1 < event_id(first[0][0]) or after > newest:
            return None
        out: list[Message] = []
        start = "(" + stream_id(after)
        read = 0
        while True:
            entries = self.client.xrange(self.key, min=start, count=READ_ROWS)
            for entry_id, fields in entries:
                read += 1
                if fields[b"c"].decode() == channel:
                    out.append({**json.loads(fields[b"b"]), "id": event_id(entry_id)})
            if len(entries) < READ_ROWS:
                return out
            if read >= RESUME_ROWS * 10 or len(out) >= RESUME_ROWS:
                return None
            start = "(" + entries[-1][0].decode()

    def purge(self) -> int:
        oldest_ms = int((time.time() - RETAIN_S) * 1000)
        return int(self.client.xtrim(self.key, minid=str(oldest_ms), approximate=True))

    def _run(self) -> None:
        client: Any = redis.Redis.from_url(self.url, socket_timeout=10.0)
        cursor: str | None = None
        while not self._stop.is_set():
            try:
                if cursor is None:  # from now on: pages take a snapshot first
                    last = client.xrevrange(self.key, count=1)
                    cursor = last[0][0].decode() if last else "0-0"
                self.listening.set()
                self.error = None
                answer = client.xread({self.key: cursor}, count=READ_ROWS, block=1000)
                for _stream, entries in answer or []:
                    for entry_id, fields in entries:
                        cursor = entry_id.decode()
                        self._deliver(event_id(entry_id), fields[b"c"].decode(), fields[b"b"])
            except redis.RedisError as err:
                self.listening.clear()
                self.error = str(err).strip() or type(err).__name__
                log.warning("live listener (Redis): %s; connecting again", self.error)
                self._stop.wait(1.0)
        self.listening.clear()
