"""Slowing password guessing without letting a stranger lock the real user out.

Failures are counted per *(username, address)* pair, never per username alone: five wrong
passwords from a stranger's address slow that stranger on that username, while the user logging
in from their own address is not slowed at all, and other users behind the stranger's address
(one office's NAT) are not either. After :data:`FREE_FAILURES` failures a pair waits
``BASE_DELAY_S · 2^(n − FREE_FAILURES)`` seconds from its last failure, at most
:data:`MAX_DELAY_S`; a success clears the pair, and a pair forgets its failures after
:data:`FORGET_AFTER_S` without one. So one address guesses at most 16 passwords in
the first hour and 4 an hour after that on one username (Argon2 makes each guess cost too).

Memory is bounded: past :data:`MAX_PAIRS` pairs the ones idle longest are forgotten. The state
lives in one process; a deployment of several keeps the same counts in Redis or PostgreSQL
(:mod:`ui.shared_limits`), by the same rule (:meth:`LoginThrottle.delay_s`).

:func:`client_address` reads the caller's address: the socket's peer, or — only when the peer
is one of the configured proxies (``SAFETYNET_TRUSTED_PROXIES``, none by default) — the nearest
address in ``X-Forwarded-For`` that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from safetynet.errors import ConfigError

FREE_FAILURES = 5  # a user who mistypes a few times is not slowed
BASE_DELAY_S = 2.0
MAX_DELAY_S = 15 * 60.0
FORGET_AFTER_S = 3600.0
MAX_PAIRS = 100_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Pair:
    failures: int
    last_s: float


@dataclass
class LoginThrottle:
    """Per (username, address) exponential backoff of failed logins."""

    _pairs: OrderedDict[tuple[str, str], _Pair] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def delay_s(failures: int) -> float:
        """How long a pair waits after its ``failures``-th failure."""
        if failures < FREE_FAILURES:
            return 0.0
        return min(BASE_DELAY_S * 2.0 ** min(failures - FREE_FAILURES, 30), MAX_DELAY_S)

    def retry_after(self, username: str, address: str, now_s: float | None = None) -> float:
        """Seconds before this pair may try again (0: now)."""
        now_s = time.monotonic() if now_s is None else now_s
        with self._lock:
            pair = self._pairs.get((username.lower(), address))
            if pair is None:
                return 0.0
            if now_s - pair.last_s > FORGET_AFTER_S:
                del self._pairs[(username.lower(), address)]
                return 0.0
            return max(0.0, pair.last_s + self.delay_s(pair.failures) - now_s)

    def failed(self, username: str, address: str, now_s: float | None = None) -> None:
        now_s = time.monotonic() if now_s is None else now_s
        key = (username.lower(), address)
        with self._lock:
            pair = self._pairs.pop(key, None)
            if pair is None or now_s - pair.last_s > FORGET_AFTER_S:
                pair = _Pair(0, now_s)
            pair.failures += 1
            pair.last_s = now_s
            self._pairs[key] = pair  # most recent last
            while len(self._pairs) > MAX_PAIRS:
                self._pairs.popitem(last=False)

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._pairs.pop((username.lower(), address), None)

    def reset(self, key: str) -> None:
        """An administrator's unlock: forget every failure of ``user:<username>`` (from any
        address) or of ``ip:<address>`` (on any username)."""
        kind, _, value = key.partition(":")
        if kind not in ("user", "ip") or not value:
            raise ValueError(f"key must be 'user:<username>' or 'ip:<address>', got {key!r}")
        index, value = (0, value.lower()) if kind == "user" else (1, value)
        with self._lock:
            for pair in [p for p in self._pairs if p[index] == value]:
                del self._pairs[pair]


def trusted_networks(text: str | Sequence[str]) -> list[Network]:
    """Proxy addresses or networks from a comma-separated setting ("10.0.0.5, 10.1.0.0/16")."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[Network] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"SAFETYNET_TRUSTED_PROXIES: {item!r} is not an IP address or network; give "
                "addresses or CIDR networks separated by commas, e.g. '10.0.0.5,10.1.0.0/16'"
            ) from None
    return out


def _in(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def from_trusted_proxy(peer: str | None, trusted: Sequence[Network]) -> bool:
    """Whether the socket's peer is one of the configured proxies."""
    return peer is not None and _in(peer, trusted)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The address a request came from. ``X-Forwarded-For`` counts only when the peer is a
    trusted proxy; then its entries are read from the right (the nearest hop), skipping trusted
    proxies, and the first other address is the client."""
    address = peer or "unknown"
    if not trusted or not forwarded_for or not _in(address, trusted):
        return address
    hops = [hop.strip() for hop in forwarded_for.split(",")][-20:]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a garbled header: trust nothing in it
        if not _in(hop, trusted):
            return hop
    return hops[0] if hops else address
