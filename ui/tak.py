"""The live feed to TAK, and what TAK users send back: the transport around :mod:`ui.cot`.

A :class:`TakFeed` runs in a thread of its own with its own asyncio loop, so a TAK server that
is slow, away or unreachable never holds up ingest or the pages: the hub only tells it which
search changed (:attr:`ui.hub.LiveHub.listeners`, a call that returns at once), and the feed
reads the search's state when it next sends. The connection is pytak's
(:func:`pytak.protocol_factory`: ``tcp://``, ``tls://`` with a client certificate, ``udp://``
unicast or multicast), CoT XML (TAK protocol version 0, which every TAK server and client takes
on its streaming input; no protobuf is sent).

- On every connect the whole current picture of every live search goes out, then each search
  again on change (at most every :data:`CHANGE_EVERY_S`) and all of it every
  :data:`ui.cot.PICTURE_EVERY_S` so nothing a TAK map shows goes stale while the feed is
  alive. Things that left the picture (a search found or closed, an island of an area gone)
  are deleted by uid.
- Search events go as chat: the search opened (the first time this feed sees it), the bracelet
  first heard, the first fix, a searcher's "heard here", found / suspended / closed. They wait
  in a bounded outbox while the server is away and go out on reconnect.
- A connection that fails, closes or stops taking data (a write waits over
  :data:`WRITE_TIMEOUT_S`) is dropped and made again after a backoff (doubling from
  :data:`RECONNECT_INITIAL_S` to :data:`RECONNECT_MAX_S`, with jitter).
- CoT in (``SAFETYNET_COT_IN``): what the server sends us is read by :mod:`ui.cot_in`; the
  positions of TAK users on a team (receiver ``TAK-<callsign>``) become status reports and
  their range-and-bearing lines manual bearings, stored and fed through the ingest's own
  validation (:func:`ui.ingest.ingest`) as if that receiver had posted them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import ssl
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from configparser import ConfigParser, SectionProxy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from locator.regions import region_rings
from registry import searches
from registry.models import Client, Search, SearchEvent
from safetynet.errors import InputError, UnavailableError
from safetynet.reports import parse_time, report_to_obj
from safetynet.settings import Settings
from ui import cot
from ui.cot_in import CotError, Pli, RangeBearing, bearing_report, parse_event, receiver_id_of
from ui.cot_in import status_report as pli_report
from ui.hub import LiveHub
from ui.ingest import Sender, ingest
from ui.live import SearchState

log = logging.getLogger(__name__)

CHANGE_EVERY_S = 2.0  # a search that keeps changing is sent at most this often
AREAS_EVERY_S = 10.0  # the areas and next listening points are computed at most this often
EVENTS_EVERY_S = 5.0  # the search log is read for new events this often
CONNECT_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 10.0  # a server that takes nothing for this long is dropped
RECONNECT_INITIAL_S = 0.5
RECONNECT_MAX_S = 5.0  # a server back from a long outage has the picture within this, and more
RECONNECT_JITTER = 0.2
OUTBOX_LIMIT = 500  # chat lines and deletes kept while the server is away
MAX_BEARINGS = 100  # the newest bearings of a search that go out
AREA_SHARES = (0.5, 0.9)
MAX_ISLANDS = 8  # the largest islands of an area that go out
EVENTS_CHATTED = ("heard", "status")
NEVER_S = -1e9  # a monotonic time long before any other
ENDED_KEPT = 100  # ended searches remembered for their last chat line
REBUILD_TRIES = 10  # a report from TAK waits this many times ...
REBUILD_WAIT_S = 2.0  # ... this long for a search being rebuilt
SAY_AWAY_EVERY_S = 60.0  # the log says a TAK server is still away at most this often


@dataclass
class _Search:
    """What the feed remembers of one search between sends."""

    label: str = cot.ANONYMOUS
    photo_url: str | None = None
    sent_uids: set[str] = field(default_factory=set)
    sent_at: float = NEVER_S  # monotonic time of the last send
    areas: list[cot.Area] = field(default_factory=list)
    guidance: list[dict[str, Any]] = field(default_factory=list)
    areas_at: float = NEVER_S
    heard_said: bool = False
    fix_said: bool = False
    where: tuple[float, float] = (0.0, 0.0)


def pytak_config(settings: Settings) -> SectionProxy:
    """pytak's configuration for ``SAFETYNET_COT_URL`` and the certificate settings beside it."""
    url = settings.cot_url
    if url is None:
        raise InputError("SAFETYNET_COT_URL is not set")
    parts = urlsplit(url)
    if parts.scheme == "udp" and not _multicast(parts.hostname or ""):
        # A TAK server's UDP input takes, it does not send: write only (binding its port here
        # would take it from whoever listens on this machine).
        url = "udp+wo://" + url.split("://", 1)[1]
    values = {"COT_URL": url, "TAK_PROTO": "0"}
    if parts.scheme in ("tls", "ssl"):
        cert = settings.cot_tls_cert
        if cert is None:
            raise InputError("a tls:// TAK server needs SAFETYNET_COT_TLS_CERT")
        values["PYTAK_TLS_CLIENT_CERT"] = str(cert)
        # A PEM holding both the certificate and the key is its own key file.
        key = settings.cot_tls_key or (None if str(cert).endswith(".p12") else cert)
        if key is not None:
            values["PYTAK_TLS_CLIENT_KEY"] = str(key)
        if settings.cot_tls_password is not None:
            values["PYTAK_TLS_CLIENT_PASSWORD"] = settings.cot_tls_password.get_secret_value()
        if settings.cot_tls_ca is not None:
            values["PYTAK_TLS_CLIENT_CAFILE"] = str(settings.cot_tls_ca)
    parser = ConfigParser(interpolation=None)
    parser["safetynet"] = values
    return parser["safetynet"]


def _parts(state: SearchState, with_grid: bool) -> dict[str, Any]:
    """What the feed needs of a search's state, copied under its lock (kept short: an ingest
    of the search waits meanwhile). The areas and guidance are computed from the copied grid
    outside the lock."""
    receivers = []
    for view in state.receivers.values():
        receivers.append(
            {
                "receiver_id": view.receiver_id,
                "team": view.team,
                "lat_deg": view.lat_deg,
                "lon_deg": view.lon_deg,
                "position_t": view.position_t,
                "gps_fix": view.gps_fix,
                "kind": state.receiver_kind(view),
            }
        )
    out: dict[str, Any] = {
        "last_known": state.last_known,
        "fix": state.fixes[-1] if state.fixes else None,
        "bearings": list(state.bearings)[-MAX_BEARINGS:],
        "receivers": receivers,
        "heard": bool(state.heard) or bool(state.bearings),
        "bracelet_id": state.bracelet_id,
        "channel": state.channel,
    }
    if with_grid:
        grid = state.probmap
        out["grid"] = (grid.p.copy(), grid.frame, grid.half_width_m, grid.cell_m)
        out["guidance"] = state.guidance()
    return out


def areas_of(
    p: np.typing.NDArray[np.float64], to_lat_lon: Callable[[float, float], tuple[float, float]],
    half_width_m: float, cell_m: float,
) -> list[cot.Area]:  # fmt: skip
    """The 50 % and 90 % areas of a probability grid as rings of (lat, lon): each island's
    outer ring (a hole is drawn filled: the area is not smaller than TAK shows), largest
    first, at most :data:`MAX_ISLANDS`."""
    out = []
    flat = np.sort(p.ravel())[::-1]
    cum = np.cumsum(flat)
    for share in AREA_SHARES:
        cells = int(np.searchsorted(cum, share * cum[-1])) + 1
        rings = []
        for ring, hole in region_rings(p, share):
            if hole:
                continue
            rings.append(
                [to_lat_lon(x * cell_m - half_width_m, y * cell_m - half_width_m) for x, y in ring]
            )
            if len(rings) == MAX_ISLANDS:
                break
        out.append(cot.Area(share, rings, cells * cell_m**2 / 1e6))
    return out


class TakFeed:
    """The CoT feed of this server's live searches to one TAK endpoint (see the module)."""

    def __init__(
        self,
        hub: LiveHub,
        settings: Settings,
        session: Callable[[], Session],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.session = session
        self.clock = clock
        self.config = pytak_config(settings)
        self.connected = threading.Event()
        self.connects = 0  # how many times a connection was made
        self.sent_events = 0
        self.taken_in = 0  # reports stored from TAK
        self._searches: dict[str, _Search] = {}
        # Searches that ended, kept a while for their last chat line (found: whom, where).
        self._ended: dict[str, _Search] = {}
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._outbox: deque[bytes] = deque(maxlen=OUTBOX_LIMIT)
        self._events_after: int | None = None  # the newest search event already seen
        self._events_at = -1e9
        self._failing_since: float | None = None
        self._said_away_at = -1e9
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None

    # --- from other threads --------------------------------------------------------------------
    def changed(self, search_id: str, _message: dict[str, Any]) -> None:
        """The hub's listener: mark the search changed and wake the feed (never blocks)."""
        with self._dirty_lock:
            self._dirty.add(search_id)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(wake.set)

    def start(self) -> None:
        """Start the feed's thread and listen to the hub."""
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
            ready.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
            loop.close()

        self._thread = threading.Thread(target=run, name="tak-feed", daemon=True)
        self._thread.start()
        ready.wait()
        self.hub.listeners.append(self.changed)
        log.info("TAK feed to %s started", _safe_url(self.config["COT_URL"]))

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop listening and end the feed's thread."""
        if self.changed in self.hub.listeners:
            self.hub.listeners.remove(self.changed)
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- the connection --------------------------------------------------------------------------
    async def _run(self) -> None:
        with warnings.catch_warnings():  # it warns of extras for what it does and we do not
            warnings.simplefilter("ignore", UserWarning)
            import pytak

        delay = RECONNECT_INITIAL_S
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    pytak.protocol_factory(self.config), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError, ssl.SSLError, SyntaxError, ValueError) as err:
                self._failed(err, delay)
                await self._sleep(delay)
                delay = min(RECONNECT_MAX_S, delay * 2)
                continue
            self.connects += 1
            self._failing_since = None
            self.connected.set()
            delay = RECONNECT_INITIAL_S
            log.info("TAK server %s: connected", _safe_url(self.config["COT_URL"]))
            try:
                await self._connected(pytak.TXWorker(asyncio.Queue(), self.config, writer), reader)
            except (OSError, TimeoutError, ssl.SSLError, ConnectionError, EOFError) as err:
                log.warning("TAK server %s: connection lost (%s)",
                            _safe_url(self.config["COT_URL"]), err)  # fmt: skip
            except Exception:  # a bug here never ends the feed: it connects again
                log.exception("TAK feed: failed while connected; connecting again")
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    writer.close()
            await self._sleep(delay)

    def _failed(self, err: BaseException, delay_s: float) -> None:
        """Say that the server cannot be reached: at once, then once every
        :data:`SAY_AWAY_EVERY_S` (the feed tries every few seconds for as long as it is away)."""
        now_s = time.monotonic()
        url = _safe_url(self.config["COT_URL"])
        if self._failing_since is None or now_s - self._said_away_at >= SAY_AWAY_EVERY_S:
            away_s = 0.0 if self._failing_since is None else now_s - self._failing_since
            log.warning("TAK server %s: cannot connect (%s), away %.0f s; trying every %.0f s",
                        url, err, away_s, RECONNECT_MAX_S)  # fmt: skip
            self._said_away_at = now_s
        else:
            log.debug("TAK server %s: cannot connect (%s); again in %.1f s", url, err, delay_s)
        if self._failing_since is None:
            self._failing_since = now_s

    async def _sleep(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s * random.uniform(1 - RECONNECT_JITTER, 1 + RECONNECT_JITTER))

    async def _connected(self, tx: Any, reader: Any) -> None:
        """One connection: the whole picture, then changes; the server's events read beside."""
        wake = self._wake
        assert wake is not None
        for search in self._searches.values():
            search.sent_at = NEVER_S  # all of it again: the server may have lost everything
        inbound = asyncio.create_task(self._read(reader)) if reader is not None else None
        try:
            while True:
                if inbound is not None and inbound.done():
                    inbound.result()  # raises what ended the reading
                    raise ConnectionResetError("the TAK server closed the connection")
                for data in await asyncio.to_thread(self._due):
                    await asyncio.wait_for(tx.send_data(data), WRITE_TIMEOUT_S)
                    self.sent_events += 1
                while self._outbox:
                    await asyncio.wait_for(tx.send_data(self._outbox[0]), WRITE_TIMEOUT_S)
                    self._outbox.popleft()
                    self.sent_events += 1
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), CHANGE_EVERY_S / 2)
        finally:
            if inbound is not None:
                inbound.cancel()

    async def _read(self, reader: Any) -> None:
        """Read the server's events until it closes; each taken in a worker thread."""
        while True:
            if hasattr(reader, "readuntil"):
                try:
                    data = await reader.readuntil(b"</event>")
                except asyncio.IncompleteReadError:
                    return  # closed
                except asyncio.LimitOverrunError as err:
                    # An event larger than the stream's limit (a big drawing): skip it to its
                    # end and read on, rather than drop the connection.
                    log.info("TAK event over the stream limit skipped")
                    await reader.readexactly(err.consumed)
                    while True:
                        try:
                            await reader.readuntil(b"</event>")
                            break
                        except asyncio.LimitOverrunError as again:
                            await reader.readexactly(again.consumed)
                        except asyncio.IncompleteReadError:
                            return  # closed
                    continue
            else:
                data, _ = await reader.recv()
            if self.settings.cot_in:
                await asyncio.to_thread(self.take_in, data)

    # --- what goes out ---------------------------------------------------------------------------
    def _due(self) -> list[bytes]:
        """The events due now (runs in a worker thread): searches changed, or not sent for
        :data:`ui.cot.PICTURE_EVERY_S`; deletes of what left the picture; search events."""
        now_s = time.monotonic()
        now = self.clock()
        live = set(self.hub.live_search_ids())
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        out: list[bytes] = []
        for search_id in live:
            search = self._searches.get(search_id)
            if search is None:
                search = self._searches[search_id] = self._new_search(search_id, now)
            since = now_s - search.sent_at
            if since >= cot.PICTURE_EVERY_S or (search_id in dirty and since >= CHANGE_EVERY_S):
                try:
                    out.extend(self._picture(search_id, search, now, now_s))
                except UnavailableError:  # being rebuilt: sent when it is back
                    search.sent_at = NEVER_S
            elif search_id in dirty:
                with self._dirty_lock:
                    self._dirty.add(search_id)  # sent when CHANGE_EVERY_S has passed
        away = set(self._searches) - live
        if away:
            # A search's live state is dropped and rebuilt when its teams change: one still
            # active in the registry stays on TAK maps (sent again when it is back); only one
            # that ended is taken off them.
            with self.session() as session:
                active = set(searches.active_search_ids(session))
            for search_id in away - active:
                search = self._searches.pop(search_id)
                out.extend(
                    cot.to_bytes(cot.delete_event(uid, now)) for uid in sorted(search.sent_uids)
                )
                self._ended[search_id] = search
                while len(self._ended) > ENDED_KEPT:
                    self._ended.pop(next(iter(self._ended)))
            for search_id in away & active:
                self._searches[search_id].sent_at = NEVER_S
        if now_s - self._events_at >= EVENTS_EVERY_S:
            self._events_at = now_s
            self._chat_logged_events(now)
        return out

    def _new_search(self, search_id: str, now: datetime) -> _Search:
        """A search this feed has not seen: how its person is named, and a chat line."""
        search = _Search()
        with self.session() as session:
            search.label, search.photo_url = person_on_tak(session, self.settings, search_id)
            row = session.get(Search, search_id)
            if row is not None:
                search.where = (row.last_known_lat_deg, row.last_known_lon_deg)
        text = (
            f"Search under way for {search.label}: the last known point (LKP) is on the map; "
            "SafetyNet sends the estimate, the bearings and the areas."
        )
        self._say(search_id, search, text, now)
        return search

    def _picture(self, search_id: str, search: _Search, now: datetime, now_s: float) -> list[bytes]:
        with_grid = now_s - search.areas_at >= AREAS_EVERY_S
        parts = self.hub.read(search_id, lambda state: _parts(state, with_grid))
        if parts is None:
            return []
        if with_grid:
            p, frame, half_width_m, cell_m = parts["grid"]
            search.areas = areas_of(p, frame.to_lat_lon, half_width_m, cell_m)
            search.guidance = parts["guidance"]
            search.areas_at = now_s
        if parts["heard"] and not search.heard_said:
            search.heard_said = True
            self._say(search_id, search, f"Bracelet heard ({search.label}).", now)
        fix = parts["fix"]
        if fix is not None and not search.fix_said:
            search.fix_said = True
            at = parse_time(fix["t"]).strftime("%H:%M:%SZ")
            where = f"{fix['lat_deg']:.5f}, {fix['lon_deg']:.5f}"
            self._say(search_id, search, f"First fix for {search.label} at {at}: {where}.", now)
        picture = cot.Picture(
            search_id=search_id,
            label=search.label,
            last_known=parts["last_known"],
            fix=fix,
            bearings=parts["bearings"],
            receivers=parts["receivers"],
            areas=search.areas,
            guidance=search.guidance,
            photo_url=search.photo_url,
        )
        events = cot.picture_events(picture, now)
        uids = {ev.get("uid", "") for ev in events}
        out = [cot.to_bytes(ev) for ev in events]
        out.extend(cot.to_bytes(cot.delete_event(u, now)) for u in sorted(search.sent_uids - uids))
        search.sent_uids = uids
        search.sent_at = now_s
        return out

    def _say(self, search_id: str, search: _Search, text: str, now: datetime) -> None:
        self._outbox.append(cot.to_bytes(cot.chat_event(search_id, text, now, search.where)))

    def _chat_logged_events(self, now: datetime) -> None:
        """New events of the search log as chat: a searcher's "heard here", a status change
        (found: where, and never in what condition)."""
        with self.session() as session:
            if self._events_after is None:  # the log before this feed started is not replayed
                self._events_after = session.scalar(select(func.max(SearchEvent.id))) or 0
                return
            rows = session.scalars(
                select(SearchEvent)
                .where(SearchEvent.id > self._events_after, SearchEvent.kind.in_(EVENTS_CHATTED))
                .order_by(SearchEvent.id)
                .limit(100)
            ).all()
        for row in rows:
            self._events_after = row.id
            search = (self._searches.get(row.search_id) or self._ended.get(row.search_id)
                      or _Search())  # fmt: skip
            body = row.body or {}
            if row.kind == "heard":
                text = f"Heard by ear near {body.get('lat_deg'):.5f}, {body.get('lon_deg'):.5f}"
            elif body.get("to") == "found":
                found = body.get("found") or {}
                text = f"FOUND: {search.label}"
                if isinstance(found.get("lat_deg"), int | float):
                    text += f" at {found['lat_deg']:.5f}, {found['lon_deg']:.5f}"
                text += ". The search is over."
            else:
                text = f"Search for {search.label} is now {body.get('to', 'changed')}."
            self._say(row.search_id, search, text, now)

    # --- what comes in ---------------------------------------------------------------------------
    def take_in(self, data: bytes) -> int:
        """Take one CoT event from the TAK server (see the module); returns how many reports
        were stored (0: not ours to take, a duplicate, or refused, which is logged)."""
        try:
            item = parse_event(data)
        except CotError as err:
            log.info("TAK event not taken: %s", err)
            return 0
        if item is None:
            return 0
        callsign = item.callsign if isinstance(item, Pli) else item.author_callsign
        receiver_id = receiver_id_of(callsign)
        stored = 0
        # The registry's active searches, not only those whose live state is held now: one being
        # rebuilt (its teams just changed) is waited for, so that a line is not lost.
        with self.session() as session:
            active = searches.active_search_ids(session)
        for search_id in active:
            found = self._read_waiting(
                search_id, lambda s: (receiver_id in s.teams, s.bracelet_id, s.channel)
            )
            if found is None or not found[0]:
                continue
            _, bracelet_id, channel = found
            if isinstance(item, RangeBearing):
                if channel is None:
                    log.info("search %s has no bracelet: a bearing from %s not taken",
                             search_id, receiver_id)  # fmt: skip
                    continue
                report = bearing_report(item, bracelet_id, channel)
            else:
                report = pli_report(item)
            stored += self._store(receiver_id, report)
            break  # a report is stored once, and feeds every search it belongs to
        return stored

    def _read_waiting(self, search_id: str, read: Any) -> Any:
        """``hub.read`` of a search, waiting out a rebuild (this runs in a worker thread)."""
        for attempt in range(REBUILD_TRIES):
            try:
                return self.hub.read(search_id, read)
            except UnavailableError:
                if attempt == REBUILD_TRIES - 1:
                    log.warning("search %s still rebuilding: a TAK report waits for no more",
                                search_id)  # fmt: skip
                    return None
                time.sleep(REBUILD_WAIT_S)
        return None

    def _store(self, receiver_id: str, report: dict[str, Any]) -> int:
        """Store one report from TAK as its receiver's, feed the live searches, log the fix."""
        window_of = self.hub.window_of(datetime.now(UTC))
        with self.session() as session, session.begin():
            result = ingest(session, Sender(receiver_id=receiver_id), [report], window_of)
        for problem in result.rejected:
            log.info("TAK report of %s refused: %s: %s", receiver_id, problem["field"],
                     problem["message"])  # fmt: skip
        fixes = self.hub.ingest(result.stored)
        if fixes:
            with self.session() as session, session.begin():
                for search_id, found in fixes.items():
                    last = found[-1]
                    searches.add_event(
                        session, None, search_id, "fix", report_to_obj(last), at=last.t
                    )
        self.taken_in += len(result.stored)
        return len(result.stored)


def person_on_tak(session: Session, settings: Settings, search_id: str) -> tuple[str, str | None]:
    """How the TAK side names a search's person, and the photo's link where it may see it
    (``SAFETYNET_COT_PERSON``): "Missing person" and no link unless the deployment allows."""
    if settings.cot_person == "none":
        return cot.ANONYMOUS, None
    row = session.get(Search, search_id)
    client = None if row is None else session.get(Client, row.client_id)
    if client is None:
        return cot.ANONYMOUS, None
    photo = None
    if settings.cot_person == "name_and_photo" and client.photo is not None:
        photo = f"{settings.cot_link_url}/clients/{client.id}/photo"
    return f"{client.first_name} {client.last_name}", photo


def _multicast(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_multicast
    except ValueError:
        return False


def _safe_url(url: str) -> str:
    """The URL as it may be logged (no user or password in it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


def export_events(
    hub: LiveHub, search_id: str, label: str, now: datetime, photo_url: str | None = None
) -> list[ET.Element] | None:
    """The current picture of an active search as CoT events (the export and the data
    package); None if the search is not active."""
    parts = hub.read(search_id, lambda state: _parts(state, True))
    if parts is None:
        return None
    p, frame, half_width_m, cell_m = parts["grid"]
    picture = cot.Picture(
        search_id=search_id,
        label=label,
        last_known=parts["last_known"],
        fix=parts["fix"],
        bearings=parts["bearings"],
        receivers=parts["receivers"],
        areas=areas_of(p, frame.to_lat_lon, half_width_m, cell_m),
        guidance=parts["guidance"],
        photo_url=photo_url,
    )
    return cot.picture_events(picture, now)
