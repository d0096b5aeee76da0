"""Login lockouts and the ingest's rate limit held where every server process sees them.

One process (the embedded default, SQLite) keeps them in memory (:class:`ui.login_throttle.
LoginThrottle`, :class:`ui.security.RateLimiter`). Several processes behind a load balancer must
share them, or a password guesser gets one allowance per process and a flooding receiver one
limit per process. :func:`make_limits` chooses by the deployment's settings:

- ``SAFETYNET_BROKER_URL=redis://…``: Redis. The ingest limit is the ``limits`` library's moving
  window on its Redis storage (one round trip per request, atomic in Redis); the login
  throttle's per *(username, address)* state (failures, time of the last) is one Redis hash
  per pair, updated by one atomic script and expiring :data:`~ui.login_throttle.FORGET_AFTER_S`
  after its last failure.
- PostgreSQL without Redis: two small tables in the same database, so the deployment needs no
  other service (``limits`` has no PostgreSQL storage). Both are ``UNLOGGED`` (no write-ahead
  log: a counter per request must not cost a WAL flush) and made by the limiter at start-up,
  not by a migration: they hold no records, and a database crash that empties them only
  forgives some failed logins. The ingest limit there is a moving window, as in memory and in
  Redis: a key's row holds the times of its last ``limit`` admitted requests, and one
  ``INSERT … ON CONFLICT … RETURNING`` per request admits it if fewer than ``limit`` of them lie
  in the last second. (It was a fixed window per whole second of the clock, which let twice the
  limit through in any second astride a whole one: three before the edge, three after.)
- SQLite: in memory, as before.

The login throttle's rule — who waits how long after how many failures — stays in one place,
:meth:`LoginThrottle.delay_s`; only where the counts live changes. Times in the shared stores are
wall-clock seconds (``time.time()``): the processes' monotonic clocks are not comparable.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import Engine, text

from ui.login_throttle import FORGET_AFTER_S, LoginThrottle
from ui.security import RateLimiter

log = logging.getLogger(__name__)
PREFIX = "safetynet"
PRUNE_EVERY_S = 600.0  # how often the PostgreSQL tables drop what they no longer need


class Throttle(Protocol):
    """What the login routes ask of the failed-login counts (as :class:`LoginThrottle`)."""

    def retry_after(self, username: str, address: str, now_s: float | None = None) -> float: ...
    def failed(self, username: str, address: str, now_s: float | None = None) -> None: ...
    def succeeded(self, username: str, address: str) -> None: ...
    def reset(self, key: str) -> None: ...


class Limiter(Protocol):
    """What the ingest asks of its rate limit (as :class:`RateLimiter`)."""

    def acquire(self, key: str) -> float:
        """Count one request of ``key`` if it may go now and return 0, or return the seconds
        until it may."""
        ...


def _reset_key(key: str) -> tuple[str, str]:
    kind, _, value = key.partition(":")
    if kind not in ("user", "ip") or not value:
        raise ValueError(f"key must be 'user:<username>' or 'ip:<address>', got {key!r}")
    return kind, value.lower() if kind == "user" else value


# --- Redis ------------------------------------------------------------------------------------
_FAILED = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_s', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return failures
"""


class RedisThrottle:
    """Failed logins per (username, address) in Redis, one hash ``safetynet:login:<u>:<a>``
    (both parts percent-encoded, so neither can hold the separator)."""

    def __init__(self, client: Any) -> None:
        self.redis = client
        self._failed = client.register_script(_FAILED)

    @staticmethod
    def _key(username: str, address: str) -> str:
        return f"{PREFIX}:login:{quote(username.lower(), safe='')}:{quote(address, safe='')}"

    def retry_after(self, username: str, address: str, now_s: float | None = None) -> float:
        now_s = time.time() if now_s is None else now_s
        failures, last_s = self.redis.hmget(self._key(username, address), "failures", "last_s")
        if failures is None or last_s is None:
            return 0.0  # never failed, or forgotten (the hash expired)
        delay_s = LoginThrottle.delay_s(int(failures))
        return max(0.0, float(last_s) + delay_s - now_s)

    def failed(self, username: str, address: str, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        self._failed(keys=[self._key(username, address)], args=[repr(now_s), int(FORGET_AFTER_S)])

    def succeeded(self, username: str, address: str) -> None:
        self.redis.delete(self._key(username, address))

    def reset(self, key: str) -> None:
        kind, value = _reset_key(key)
        part = quote(value, safe="")
        pattern = f"{PREFIX}:login:{part}:*" if kind == "user" else f"{PREFIX}:login:*:{part}"
        for found in self.redis.scan_iter(match=pattern, count=1000):
            self.redis.delete(found)


class RedisLimiter:
    """At most ``limit`` requests per ``window_s`` per key: ``limits``'s moving window on its
    Redis storage."""

    def __init__(self, url: str, limit: int, window_s: float) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.item = RateLimitItemPerSecond(limit, max(1, round(window_s)), namespace=PREFIX)
        self.limiter = MovingWindowRateLimiter(storage_from_string(url))

    def acquire(self, key: str) -> float:
        if self.limiter.hit(self.item, "ingest", key):
            return 0.0
        stats = self.limiter.get_window_stats(self.item, "ingest", key)
        return max(stats.reset_time - time.time(), 0.01)


# --- PostgreSQL -------------------------------------------------------------------------------
_TABLES = (
    "CREATE UNLOGGED TABLE IF NOT EXISTS limits_login_failure ("
    " username TEXT NOT NULL, address TEXT NOT NULL, failures INTEGER NOT NULL,"
    " last_s DOUBLE PRECISION NOT NULL, PRIMARY KEY (username, address))",
    # times_s: the key's last admitted requests, newest first; admitted: the last request's fate
    "CREATE UNLOGGED TABLE IF NOT EXISTS limits_ingest_moving ("
    " key TEXT PRIMARY KEY, times_s DOUBLE PRECISION[] NOT NULL, admitted BOOLEAN NOT NULL)",
)


def create_tables(engine: Engine) -> None:
    """The two tables, if they are not there (several processes may start at once)."""
    with engine.begin() as conn:
        # One starter at a time: CREATE ... IF NOT EXISTS races on the catalogue otherwise.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('safetynet limits tables'))"))
        for statement in _TABLES:
            conn.execute(text(statement))


class _Pruned:
    """Drops rows no one needs any more, at most every :data:`PRUNE_EVERY_S`."""

    def __init__(self) -> None:
        self._next_s = 0.0
        self._lock = threading.Lock()

    def due(self, now_s: float) -> bool:
        with self._lock:
            if now_s < self._next_s:
                return False
            self._next_s = now_s + PRUNE_EVERY_S
            return True


class PostgresThrottle:
    """Failed logins per (username, address) in ``limits_login_failure``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._prune = _Pruned()

    def retry_after(self, username: str, address: str, now_s: float | None = None) -> float:
        now_s = time.time() if now_s is None else now_s
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT failures, last_s FROM limits_login_failure"
                    " WHERE username = :u AND address = :a"
                ),
                {"u": username.lower(), "a": address},
            ).first()
        if row is None or now_s - float(row.last_s) > FORGET_AFTER_S:
            return 0.0
        return max(0.0, float(row.last_s) + LoginThrottle.delay_s(int(row.failures)) - now_s)

    def failed(self, username: str, address: str, now_s: float | None = None) -> None:
        now_s = time.time() if now_s is None else now_s
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO limits_login_failure (username, address, failures, last_s)"
                    " VALUES (:u, :a, 1, :now) ON CONFLICT (username, address) DO UPDATE SET"
                    " failures = CASE WHEN :now - limits_login_failure.last_s > :forget THEN 1"
                    " ELSE limits_login_failure.failures + 1 END, last_s = :now"
                ),
                {"u": username.lower(), "a": address, "now": now_s, "forget": FORGET_AFTER_S},
            )
            if self._prune.due(now_s):
                conn.execute(
                    text("DELETE FROM limits_login_failure WHERE last_s < :old"),
                    {"old": now_s - FORGET_AFTER_S},
                )

    def succeeded(self, username: str, address: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text("DELETE FROM limits_login_failure WHERE username = :u AND address = :a"),
                {"u": username.lower(), "a": address},
            )

    def reset(self, key: str) -> None:
        kind, value = _reset_key(key)
        column = "username" if kind == "user" else "address"
        with self.engine.begin() as conn:
            conn.execute(
                text(f"DELETE FROM limits_login_failure WHERE {column} = :v"), {"v": value}
            )


_IN_WINDOW = "(SELECT count(*) FROM unnest(w.times_s) t WHERE t > :now - :window) < :limit"
_ACQUIRE = (
    "INSERT INTO limits_ingest_moving AS w (key, times_s, admitted)"
    " VALUES (:k, ARRAY[CAST(:now AS DOUBLE PRECISION)], TRUE)"
    f" ON CONFLICT (key) DO UPDATE SET admitted = {_IN_WINDOW},"
    f" times_s = CASE WHEN {_IN_WINDOW} THEN ARRAY(SELECT t FROM"
    " unnest(w.times_s || CAST(:now AS DOUBLE PRECISION)) t ORDER BY t DESC LIMIT :limit)"
    " ELSE w.times_s END"
    " RETURNING admitted, times_s"
)


class PostgresLimiter:
    """At most ``limit`` requests in any ``window_s`` per key (a moving window), the times of
    each key's last ``limit`` admitted requests held in ``limits_ingest_moving``. A refused
    request does not count. The row lock of the upsert orders one key's requests across
    processes; the times are kept sorted, so a process whose clock is a little behind counts
    the same requests as the others."""

    def __init__(self, engine: Engine, limit: int, window_s: float) -> None:
        self.engine, self.limit, self.window_s = engine, limit, window_s
        self._prune = _Pruned()

    def acquire(self, key: str, now_s: float | None = None) -> float:
        """As :meth:`Limiter.acquire`, at ``now_s`` (wall-clock seconds; default: now)."""
        now_s = time.time() if now_s is None else now_s
        with self.engine.begin() as conn:
            admitted, times_s = conn.execute(
                text(_ACQUIRE),
                {"k": key, "now": now_s, "window": self.window_s, "limit": self.limit},
            ).one()
            if self._prune.due(now_s):
                conn.execute(
                    text("DELETE FROM limits_ingest_moving WHERE times_s[1] < :old"),
                    {"old": now_s - PRUNE_EVERY_S},
                )
        if admitted:
            return 0.0
        # Refused: the newest `limit` admitted times all lie in the window; the oldest of them
        # leaves it first.
        return max(float(times_s[self.limit - 1]) + self.window_s - now_s, 0.01)


def make_limits(
    engine: Engine, broker_url: str | None, ingest_per_s: int
) -> tuple[Throttle, Limiter]:
    """The login throttle and the ingest limit for this deployment (see the module's text)."""
    if broker_url is not None and broker_url.startswith(("redis://", "rediss://", "unix://")):
        import redis

        # A Redis that hangs fails a login's check in seconds; it never holds a worker for good.
        client = redis.Redis.from_url(broker_url, socket_timeout=5.0, socket_connect_timeout=5.0)
        return RedisThrottle(client), RedisLimiter(broker_url, ingest_per_s, 1.0)
    if engine.dialect.name == "postgresql":
        create_tables(engine)
        return PostgresThrottle(engine), PostgresLimiter(engine, ingest_per_s, 1.0)
    return LoginThrottle(), RateLimiter(limit=ingest_per_s, window_s=1.0)
