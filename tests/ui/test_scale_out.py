"""Several server processes on one PostgreSQL behind HAProxy (deploy/haproxy.cfg, as the README
quotes it): a simulated search through them, its owner killed by SIGKILL mid-search, and the
push of a report from one process to a page on another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from registry.models import Role
from registry.service import Actor, assign_bracelet, enrol, open_search
from safetynet.geodesy import inverse
from safetynet.reports import FieldReport, format_time, report_to_obj
from tests.conftest import require_tool
from tests.ui.test_shared_limits import redis_url  # noqa: F401  (a fixture: its own Redis)
from tests.ui_support import (
    ARTIFACTS,
    ORIGIN,
    TOKENS,
    login,
    scenario_reports,
    seed,
    sign_in,
    walker_truth,
)

ON_POSTGRESQL = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

HAPROXY_CFG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
OPERATOR_TOKEN = "operators-token-for-the-tests"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
SPEED = 10.0  # the scenario runs this many times real time
RECONNECT_S = 1.0  # the page's first reconnect delay (ui/static/geo.js)
SHOTS = ARTIFACTS / "screenshots"


@dataclass
class Cluster:
    base: str  # through HAProxy
    servers: dict[int, str]  # pid -> the process's own URL
    procs: list[subprocess.Popen[bytes]]

    def health(self, url: str | None = None) -> dict[str, Any]:
        answer = httpx.get(f"{url or self.base}/api/v1/health", timeout=5, headers=OPERATOR_HEADERS)
        answer.raise_for_status()
        return dict(answer.json())

    def owner_pid(self, search_id: str) -> int:
        """The pid of the process holding the search (waits a few seconds for one)."""
        deadline = time.monotonic() + 10
        while (owner := self.health()["owners"].get(search_id)) is None:
            assert time.monotonic() < deadline, "no process holds the search"
            time.sleep(0.1)
        return int(owner.rsplit(":", 1)[1])


def _wait_healthy(url: str, procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        for proc, log in zip(procs, logs, strict=False):
            if proc.poll() is not None:
                raise RuntimeError(f"a process ended: {log.read_text()[-3000:]}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} never became healthy")


@contextmanager
def cluster(
    db_url: str, tmp: Path, count: int = 3, broker_url: str | None = None
) -> Iterator[Cluster]:
    """``count`` ``safetynet serve`` processes on ``db_url`` (and the broker at ``broker_url``,
    if given) and HAProxy in front of them."""
    haproxy = require_tool("haproxy")
    from tests.ui_support import free_port

    ports = [free_port() for _ in range(count)]
    lb_port = free_port()
    env = {
        **os.environ,
        "SAFETYNET_DATABASE_URL": db_url,
        "SAFETYNET_SECRET_KEY": "s" * 40,
        "SAFETYNET_DATA_DIR": str(tmp),
        "SAFETYNET_INGEST_REQUESTS_PER_S": "1000",
        "SAFETYNET_TILE_URL": "",
        "SAFETYNET_METRICS_TOKEN": OPERATOR_TOKEN,
        **({"SAFETYNET_BROKER_URL": broker_url} if broker_url else {}),
    }
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for i, port in enumerate(ports):
            log = tmp / f"server{i}.log"
            logs.append(log)
            command = [sys.executable, "-m", "safetynet", "serve", "--host", "127.0.0.1"]
            procs.append(
                subprocess.Popen(
                    [*command, "--port", str(port)],
                    env=env,
                    stdout=log.open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        lb_env = {
            **os.environ,
            "SAFETYNET_LB_BIND": f"127.0.0.1:{lb_port}",
            **{f"SAFETYNET_SERVER_{i + 1}": f"127.0.0.1:{p}" for i, p in enumerate(ports)},
        }
        lb_log = tmp / "haproxy.log"
        lb = subprocess.Popen(
            [haproxy, "-db", "-f", str(HAPROXY_CFG)],
            env=lb_env,
            stdout=lb_log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        servers = {}
        for proc, port in zip(procs, ports, strict=True):
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, procs, logs)
            servers[proc.pid] = url
        base = f"http://127.0.0.1:{lb_port}"
        _wait_healthy(base, [lb], [lb_log])
        yield Cluster(base, servers, procs)
    finally:
        for proc in [*procs, *([lb] if "lb" in locals() else [])]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*procs, *([lb] if "lb" in locals() else [])]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class Watcher:
    """A dispatcher's page: its socket through ``url``, reconnected as ui/static/geo.js does
    (after a second, with ``?after=`` the last event id seen)."""

    url: str
    cookie: str
    received: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    connects: list[float] = field(default_factory=list)
    last_id: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            after = "" if self.last_id is None else f"?after={self.last_id}"
            try:
                with connect(
                    self.url + after, additional_headers={"Cookie": self.cookie}, open_timeout=5
                ) as ws:
                    self.connects.append(time.monotonic())
                    while not self._stop.is_set():
                        try:
                            raw = ws.recv(timeout=0.3)
                        except TimeoutError:
                            continue
                        message = json.loads(raw)
                        if isinstance(message.get("id"), int):
                            self.last_id = message["id"]
                        self.received.append((time.monotonic(), message))
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            self._stop.wait(RECONNECT_S)

    def fixes(self) -> list[tuple[float, dict[str, Any]]]:
        """(arrival, fix) of every fix pushed or in a snapshot."""
        out = []
        for at, message in list(self.received):
            inner = message["messages"] if message["type"] == "batch" else [message]
            for m in inner:
                if m["type"] == "fix" or (m["type"] == "snapshot" and m.get("fix")):
                    out.append((at, m["fix"]))
        return out


class Receivers:
    """The scenario's receivers posting through the load balancer as the store-and-forward
    uplink does: a post that fails (its server killed) is sent again until it is answered."""

    def __init__(self, base: str, reports: list[FieldReport]) -> None:
        self.base, self.reports = base, reports
        self.sent: set[tuple[str, int]] = set()
        self.retries = 0
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Receivers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _post(self, client: httpx.Client, receiver_id: str, items: list[dict[str, Any]]) -> None:
        for _ in range(100):
            try:
                answer = client.post(
                    "/api/v1/reports",
                    json=items,
                    headers={"Authorization": f"Bearer {TOKENS[receiver_id]}"},
                )
                if answer.status_code == 200:
                    assert answer.json()["rejected"] == [], answer.text
                    self.sent.update((receiver_id, item["seq"]) for item in items)
                    return
            except httpx.HTTPError:
                pass
            self.retries += 1
            time.sleep(0.2)
        raise AssertionError(f"{receiver_id}: reports never taken")

    def _run(self) -> None:
        t0 = self.reports[0].t
        wall0 = time.monotonic()
        with httpx.Client(base_url=self.base, timeout=5) as client:
            i = 0
            while i < len(self.reports) and not self._stop.is_set():
                now_s = (time.monotonic() - wall0) * SPEED
                batch: dict[str, list[dict[str, Any]]] = {}
                while i < len(self.reports) and (self.reports[i].t - t0).total_seconds() <= now_s:
                    r = self.reports[i]
                    batch.setdefault(r.receiver_id, []).append(report_to_obj(r))
                    i += 1
                for receiver_id, items in batch.items():
                    self._post(client, receiver_id, items)
                self._stop.wait(0.05)
        self.done.set()


def _fix_log(db_url: str, search_id: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT body FROM search_event WHERE search_id = :s AND kind = 'fix' ORDER BY id"
            ),
            {"s": search_id},
        ).all()
    engine.dispose()
    return [json.loads(b) if isinstance(b, str) else b for (b,) in rows]


def _stored(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        count = int(conn.execute(sa.text("SELECT count(*) FROM report")).scalar_one())
    engine.dispose()
    return count


def _t(fix: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(fix["t"].replace("Z", "+00:00"))


def _socket_url(base: str, search_id: str) -> str:
    return base.replace("http://", "ws://") + f"/api/v1/searches/{search_id}/live"


@ON_POSTGRESQL
def test_the_owner_killed_mid_search_another_takes_over(db_url: str, tmp_path: Path) -> None:
    seconds = 160.0
    start = datetime.now(UTC) - timedelta(seconds=10)
    seeded = seed(db_url, now=start + timedelta(seconds=5))
    reports = scenario_reports(start, seconds)
    with cluster(db_url, tmp_path) as c:
        with httpx.Client(base_url=c.base, timeout=10) as client:
            login(client, "dispatcher")
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        # Three dispatchers' pages: HAProxy spreads them over the processes.
        watchers = [Watcher(_socket_url(c.base, seeded.search_id), cookie).start() for _ in "abc"]
        receivers = Receivers(c.base, reports).start()
        try:
            deadline = time.monotonic() + 40
            while len(_fix_log(db_url, seeded.search_id)) < 4:
                assert time.monotonic() < deadline, "no fixes before the kill"
                time.sleep(0.3)
            owner = c.owner_pid(seeded.search_id)
            assert owner in c.servers, "the owner is not one of this test's processes"
            url = _socket_url(c.base, seeded.search_id)
            while not c.health(c.servers[owner])["pages"].get(seeded.search_id):
                assert len(watchers) < 8, "no page's socket on the owner"
                watchers.append(Watcher(url, cookie).start())  # HAProxy: one lands on the owner
                time.sleep(0.5)
            time.sleep(0.5)  # the newest page has its snapshot
            before = {id(w): max((_t(f) for _, f in w.fixes()), default=None) for w in watchers}
            killed_s = time.monotonic()
            os.kill(owner, signal.SIGKILL)
            logged_before = len(_fix_log(db_url, seeded.search_id))
            at_kill = _stored(db_url)
            # Every page sees the next fix (one newer than any it had) within 5 s.
            waits: dict[int, float] = {}
            deadline = killed_s + 15
            while len(waits) < len(watchers) and time.monotonic() < deadline:
                for w in watchers:
                    seen = before[id(w)]
                    newer = [
                        at
                        for at, f in w.fixes()
                        if at > killed_s and (seen is None or _t(f) > seen)
                    ]
                    if newer and id(w) not in waits:
                        waits[id(w)] = newer[0] - killed_s
                time.sleep(0.05)
            new_owner = c.owner_pid(seeded.search_id)
            assert receivers.done.wait(60), "the receivers did not finish"
            time.sleep(2.0)  # the last reports' fixes reach the log
            state = httpx.Client(base_url=c.base, timeout=10)
            login(state, "dispatcher")
            snapshot = state.get(f"/api/v1/searches/{seeded.search_id}/state").json()
            state.close()
        finally:
            receivers.stop()
            for w in watchers:
                w.stop()
        print(
            f"failover ({at_kill} reports stored at the kill): next fix on each page after "
            f"{sorted(round(w, 2) for w in waits.values())} s; "
            f"{sum(len(w.connects) - 1 for w in watchers)} reconnects; "
            f"{receivers.retries} posts sent again"
        )
        assert new_owner != owner
        assert new_owner in c.servers
        assert len(waits) == len(watchers), "a page saw no fix after the failover"
        assert max(waits.values()) <= 5.0
        assert any(len(w.connects) >= 2 for w in watchers), "no page was on the killed process"

    # Every report sent is stored exactly once.
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT receiver_id, seq FROM report")).all()
    engine.dispose()
    assert len(stored) == len(set(stored))
    assert (
        {(r, int(s)) for r, s in stored}
        == receivers.sent
        == {(r.receiver_id, r.seq) for r in reports}
    )
    # The log: no fix from before the failover written again after it (the new owner's replay
    # writes none of the fixes it recomputes, only the newest if the old owner died before it).
    log = _fix_log(db_url, seeded.search_id)
    logged = [(f["t"], f["lat_deg"], f["lon_deg"]) for f in log]
    again = set(logged[:logged_before]) & set(logged[logged_before:])
    assert not again, f"fixes logged before and again after the failover: {again}"
    after = log[logged_before:]
    assert len(after) >= 5
    # The track goes on: the state after the failover holds the fixes from before it (a state
    # restarted from scratch would hold only the new ones), each within the logged one's 95 %
    # radius (the replay takes the reports in their stored order, the old owner took them as
    # they came: the particles differ a little)...
    track = {t: (lat, lon) for lat, lon, t in snapshot["track"]}
    for fix in log[:logged_before]:
        lat, lon = track[fix["t"]]
        radius_m = max(25.0, fix["ellipse95"]["semi_major_m"])
        assert inverse(lat, lon, fix["lat_deg"], fix["lon_deg"]).distance_m < radius_m
    # ...and the fixes after it hold the walker's true position in their 95 % ellipses.
    world = walker_truth(start, seconds)
    inside = []
    for fix in after:
        t_s = (_t(fix) - start).total_seconds()
        lat, lon = world.frame.to_lat_lon(*world.bracelets[0].position(t_s))
        d = inverse(fix["lat_deg"], fix["lon_deg"], lat, lon).distance_m
        inside.append(d <= fix["ellipse95"]["semi_major_m"])
    assert np.mean(inside) >= 0.8


@ON_POSTGRESQL
@pytest.mark.parametrize("broker", ["postgresql", "redis"])
def test_a_report_ingested_by_one_process_reaches_a_page_on_another(
    db_url: str, tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> None:
    """Over the outbox (PostgreSQL alone) and over a Redis stream (SAFETYNET_BROKER_URL)."""
    broker_url = request.getfixturevalue("redis_url") if broker == "redis" else None
    seeded = seed(db_url)
    with cluster(db_url, tmp_path, broker_url=broker_url) as c:
        owner = c.owner_pid(seeded.search_id)
        # Each process says the database and the broker answer, and who holds the search.
        for pid, url in c.servers.items():
            health = c.health(url)
            assert health["database"] == {"ok": True}
            assert health["broker"] == {"kind": broker, "ok": True}
            assert health["owners"][seeded.search_id].endswith(f":{owner}")
            assert (seeded.search_id in health["owns"]) == (pid == owner)
        a_pid, b_pid = [pid for pid in c.servers if pid != owner][:2]
        a, b = c.servers[a_pid], c.servers[b_pid]
        with httpx.Client(base_url=b, timeout=10) as client:
            login(client, "dispatcher")
            cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        page = Watcher(_socket_url(b, seeded.search_id), cookie).start()
        try:
            deadline = time.monotonic() + 10
            while not any(m["type"] == "snapshot" for _, m in page.received):
                assert time.monotonic() < deadline, "no snapshot on the page"
                time.sleep(0.05)
            sent_at: dict[int, float] = {}
            with httpx.Client(base_url=a, timeout=10) as poster:
                for seq in range(1, 101):
                    status = {
                        "kind": "status",
                        "receiver_id": "HH-07",
                        "seq": seq,
                        "t": format_time(datetime.now(UTC)),
                        "gps_fix": True,
                        "clipping": False,
                        "lat_deg": 42.302 + seq * 1e-5,
                        "lon_deg": -71.057,
                    }
                    sent_at[seq] = time.monotonic()
                    answer = poster.post(
                        "/api/v1/reports",
                        json=[status],
                        headers={"Authorization": f"Bearer {TOKENS['HH-07']}"},
                    )
                    assert answer.json()["accepted"] == 1, answer.text
                    time.sleep(0.05)
            deadline = time.monotonic() + 5
            arrived: dict[int, float] = {}
            while len(arrived) < 100 and time.monotonic() < deadline:
                for at, m in list(page.received):
                    inner = m["messages"] if m["type"] == "batch" else [m]
                    for x in inner:
                        if x["type"] == "report" and x["report"]["receiver_id"] == "HH-07":
                            arrived.setdefault(x["report"]["seq"], at)
                time.sleep(0.05)
        finally:
            page.stop()
        # The page goes away, 20 more reports are posted (to the owner this time), and it comes
        # back to another process with the last event id it saw: it is sent exactly what it
        # missed, in order, and no snapshot.
        assert page.last_id is not None
        with httpx.Client(base_url=c.servers[owner], timeout=10) as poster:
            for seq in range(101, 121):
                now = format_time(datetime.now(UTC))
                status = {"kind": "status", "receiver_id": "HH-07", "seq": seq, "t": now,
                          "gps_fix": True, "clipping": False}  # fmt: skip
                answer = poster.post(
                    "/api/v1/reports",
                    json=[status],
                    headers={"Authorization": f"Bearer {TOKENS['HH-07']}"},
                )
                assert answer.json()["accepted"] == 1, answer.text
        time.sleep(0.5)
        url = _socket_url(a, seeded.search_id) + f"?after={page.last_id}"
        resumed = []
        with (
            connect(url, additional_headers={"Cookie": cookie}, open_timeout=5) as ws,
            suppress(TimeoutError),
        ):
            while True:
                resumed.append(json.loads(ws.recv(timeout=1.0)))
    assert resumed, "nothing sent on resuming"
    assert all(m["type"] != "snapshot" for m in resumed)
    seqs = [m["report"]["seq"] for m in resumed if m["type"] == "report"]
    assert seqs == list(range(101, 121))
    assert sorted(arrived) == list(range(1, 101)), "a report never reached the page"
    delays_ms = np.array([(arrived[s] - sent_at[s]) * 1000 for s in sent_at])
    p50, p95 = np.percentile(delays_ms, [50, 95])
    print(
        f"A → B over {broker}: p50 {p50:.0f} ms, p95 {p95:.0f} ms, worst {delays_ms.max():.0f} ms"
    )
    assert p95 <= 200.0


def test_the_readme_quotes_the_haproxy_configuration_the_tests_use() -> None:
    readme = (HAPROXY_CFG.parents[1] / "README.md").read_text()
    section = readme.split("## Running several servers", 1)[1].split("\n## ", 1)[0]
    assert "```\n" + HAPROXY_CFG.read_text() + "```" in section


def _more_searches(db_url: str, users: dict[str, str], count: int) -> list[str]:
    """``count`` more active searches, each for a client with a bracelet of its own."""
    engine = sa.create_engine(db_url)
    ids = []
    with Session(engine) as session, session.begin():
        family = Actor(users["family"], Role.FAMILY)
        admin = Actor(users["admin"], Role.ADMIN)
        dispatcher = Actor(users["dispatcher"], Role.DISPATCHER)
        for i in range(count):
            client = enrol(session, family, {"first_name": f"Ada{i}", "last_name": "Brown",
                                             "date_of_birth": "1940-01-01"})  # fmt: skip
            assign_bracelet(session, admin, 0x4B00 + i, 20 + i, client.id, date.today())
            search = open_search(session, dispatcher, client.id, ORIGIN[0], ORIGIN[1],
                                 datetime.now(UTC) - timedelta(minutes=5))  # fmt: skip
            ids.append(search.id)
    engine.dispose()
    return ids


@ON_POSTGRESQL
def test_the_searches_spread_over_the_processes(db_url: str, tmp_path: Path) -> None:
    """Three searches, three processes: whichever started first takes them all, then hands
    them over until each process holds one."""
    seeded = seed(db_url)
    searches = [seeded.search_id, *_more_searches(db_url, seeded.users, 2)]
    with cluster(db_url, tmp_path) as c:
        deadline = time.monotonic() + 30
        while True:
            owners = c.health()["owners"]
            held = [owners.get(s) for s in searches]
            if None not in held and len(set(held)) == 3:
                break
            assert time.monotonic() < deadline, f"not spread: {owners}"
            time.sleep(0.5)
        assert {int(str(o).rsplit(":", 1)[1]) for o in held} == set(c.servers)


@ON_POSTGRESQL
def test_dispatchers_pages_through_haproxy_see_the_next_fix_after_the_owner_dies(
    db_url: str, tmp_path: Path, browser: Any
) -> None:
    """Dispatchers' pages in a real browser (HAProxy spreads their sockets over the processes,
    one at least on the owner); the owner killed: each page shows the next fix within 5 s, those
    whose process died having reconnected with the last event id they saw (ui/static/geo.js)."""
    start = datetime.now(UTC) - timedelta(seconds=10)
    seeded = seed(db_url, now=start + timedelta(seconds=5))
    reports = scenario_reports(start, 160.0)
    with cluster(db_url, tmp_path) as c:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True)
        sockets: list[tuple[float, str]] = []
        errors: list[str] = []
        pages = []
        for _ in range(3):
            page = context.new_page()
            page.on("websocket", lambda ws: sockets.append((time.monotonic(), ws.url)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            pages.append(page)
        sign_in(pages[0], c.base, "dispatcher")
        owner = c.owner_pid(seeded.search_id)

        def watching_owner() -> int:
            return int(c.health(c.servers[owner])["pages"].get(seeded.search_id, 0))

        for page in pages:
            page.goto(f"{c.base}/searches/{seeded.search_id}")
            page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
        while not watching_owner():  # HAProxy spreads the sockets: one lands on the owner
            assert len(pages) < 8, "no page's socket on the owner"
            page = context.new_page()
            page.on("websocket", lambda ws: sockets.append((time.monotonic(), ws.url)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{c.base}/searches/{seeded.search_id}")
            page.wait_for_function("document.getElementById('live-state').textContent === 'live'")
            pages.append(page)
        receivers = Receivers(c.base, reports).start()
        try:
            for page in pages:
                page.wait_for_function(
                    "Number(document.getElementById('fix-count').textContent) >= 2",
                    timeout=40_000,
                )
            shown = [page.inner_text("#fix-latlon") for page in pages]
            assert c.owner_pid(seeded.search_id) == owner
            killed_s = time.monotonic()
            os.kill(owner, signal.SIGKILL)
            at_kill = _stored(db_url)
            waits = []
            for page, before in zip(pages, shown, strict=True):
                page.wait_for_function(
                    f"document.getElementById('fix-latlon').textContent !== {json.dumps(before)}",
                    timeout=max(1.0, 5.0 - (time.monotonic() - killed_s)) * 1000,
                )
                waits.append(time.monotonic() - killed_s)
            SHOTS.mkdir(parents=True, exist_ok=True)
            pages[0].screenshot(path=str(SHOTS / "several-servers-after-failover.png"))
        finally:
            receivers.stop()
            context.close()
    print(f"browser failover ({at_kill} reports stored at the kill): each page's next fix "
          f"after {[round(w, 2) for w in waits]} s")  # fmt: skip
    assert max(waits) <= 5.0
    resumed = [url for at, url in sockets if at > killed_s]
    assert resumed, "no page reconnected"
    assert all("?after=" in url for url in resumed)
    assert not errors
