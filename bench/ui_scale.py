"""Scale-out: a state-wide fleet against one server process and against three, side by side.

20 searches run at once, each with its own bracelet and a team of the fleet's receivers; 500
receivers (two thirds posting over HTTP, one third publishing over MQTT through a Mosquitto of
the benchmark's own, each with its own login and topic) send a batch once a second — a pulse,
and every fifth second a bearing at their search's bracelet — and 40 dispatchers' WebSockets (two
per search) time each bearing's fix from its POST (or MQTT publish) to its arrival on the socket.
Each fleet size in ``--levels`` runs for ``--seconds`` against 1 process and then 3 processes
on one PostgreSQL (a fresh database each; the 3 processes share live state through PostgreSQL,
ui/shared_hub.py); the benchmark spreads the HTTP receivers and the sockets over the processes
itself, as a load balancer would. Prints reports/s, the delay's median, 95th percentile and
worst, CPU per report (the servers', PostgreSQL's and Mosquitto's, from /proc), and the
3-process figures' ratio to the 1-process ones; draws bench/out/ui_scale.png.

    nice -n 10 python bench/ui_scale.py [--seconds 15] [--levels 100,300,500] [--processes 1,3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa
from common import OUT, REPO
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import make_engine, upgrade
from registry.models import ReceiverToken, Role, SearchTeam
from registry.searches import assign_team
from registry.service import Actor, assign_bracelet, create_user, enrol, open_search
from safetynet.geodesy import LocalFrame
from tests.mqtt_broker import TOPIC_PREFIX, Mosquitto
from ui.security import hash_password, token_digest

ADMIN_URL = os.environ.get(
    "SAFETYNET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ORIGIN = (42.30206, -71.05761)
TARGET_EN = (250.0, -300.0)
PASSWORD = "bench-password-1"
METRICS_TOKEN = "bench-metrics-" + "m" * 24
BEARING_EVERY = 5  # a receiver's batch holds a bearing every this many seconds


@dataclass
class Fleet:
    search_ids: list[str]
    tokens: dict[str, str]  # receiver id -> token (also its MQTT password)
    search_of: dict[str, int]  # receiver id -> index of its search
    mqtt: set[str]  # the receivers that publish over MQTT


def fresh_database() -> str:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"safetynet_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def seed(url: str, receivers: int, searches: int, mqtt_share: float) -> Fleet:
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    rng = random.Random(17)
    ids = [f"RX-{i:03d}" for i in range(receivers)]
    tokens = {r: f"bench-token-{r}-{'q' * 20}" for r in ids}
    mqtt = set(rng.sample(ids, round(receivers * mqtt_share)))
    search_of = {r: i % searches for i, r in enumerate(ids)}
    search_ids: list[str] = []
    with Session(engine) as session, session.begin():
        dispatcher = create_user(
            session, "dispatcher", "Dispatcher", Role.DISPATCHER, hash_password(PASSWORD)
        )
        admin = create_user(session, "admin", "Admin", Role.ADMIN, hash_password(PASSWORD))
        for k in range(searches):
            client = enrol(
                session,
                Actor(admin.id, Role.ADMIN),
                {"first_name": f"Bench{k}", "last_name": "Client", "date_of_birth": "1940-01-01"},
                confirmed_not_duplicate=True,
            )
            assign_bracelet(
                session, Actor(admin.id, Role.ADMIN), 0x3A00 + k, 1 + k, client.id, now.date()
            )
            actor = Actor(dispatcher.id, Role.DISPATCHER)
            search = open_search(session, actor, client.id, *ORIGIN, now - timedelta(minutes=1))
            team = sorted(r for r in ids if search_of[r] == k)
            assign_team(session, actor, search.id, "Fleet", team)
            assert session.scalar(select(SearchTeam).where(SearchTeam.search_id == search.id))
            search_ids.append(search.id)
        for receiver_id, token in tokens.items():
            session.add(
                ReceiverToken(
                    receiver_id=receiver_id, token_sha256=token_digest(token), created_at=now
                )
            )
    engine.dispose()
    return Fleet(search_ids, tokens, search_of, mqtt)


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Field:
    """Each receiver's spot around its search's target, and the reports it sends."""

    def __init__(self, fleet: Fleet) -> None:
        self.frame = LocalFrame(*ORIGIN)
        self.rng = random.Random(3)
        self.fleet = fleet
        self.seq: dict[str, int] = {}
        self.spot = {
            r: (TARGET_EN[0] + 600 * math.cos(a), TARGET_EN[1] + 600 * math.sin(a))
            for r, a in ((r, self.rng.uniform(0, 2 * math.pi)) for r in fleet.tokens)
        }

    def batch(self, receiver_id: str, tick: int) -> tuple[list[dict[str, Any]], str | None]:
        """One second's batch; the bearing's time (its fix's key), if it holds one."""
        k = self.fleet.search_of[receiver_id]
        east, north = self.spot[receiver_id]
        lat, lon = self.frame.to_lat_lon(east, north)
        self.seq[receiver_id] = self.seq.get(receiver_id, 0) + 1
        base = {"receiver_id": receiver_id, "t": now_text(), "channel": 1 + k,
                "bracelet_id": f"{0x3A00 + k:04X}", "lat_deg": lat, "lon_deg": lon}  # fmt: skip
        pulse = {**base, "kind": "pulse", "seq": self.seq[receiver_id], "freq_hz": 216_462_612,
                 "rssi_dbm": round(-100 + self.rng.gauss(0, 6), 1), "snr_db": 15.0}  # fmt: skip
        if (tick + int(receiver_id[3:])) % BEARING_EVERY:
            return [pulse], None
        self.seq[receiver_id] += 1
        true = math.degrees(math.atan2(TARGET_EN[0] - east, TARGET_EN[1] - north)) % 360
        bearing = {**base, "kind": "bearing", "seq": self.seq[receiver_id], "method": "sweep",
                   "bearing_deg": round((true + self.rng.gauss(0, 3)) % 360, 2),
                   "sigma_deg": 4.0, "n_pulses": 12}  # fmt: skip
        return [pulse, bearing], str(base["t"])


@dataclass
class Level:
    processes: int
    receivers: int
    elapsed_s: float = 0.0
    reports: int = 0
    delays_s: dict[str, list[float]] = field(default_factory=lambda: {"http": [], "mqtt": []})
    bearings: int = 0
    unanswered: int = 0
    errors: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)


def cpu_of(pids: dict[str, list[int]]) -> dict[int, float]:
    """CPU seconds so far of every process named, by pid."""
    out: dict[int, float] = {}
    for group in pids.values():
        for pid in group:
            try:
                t = psutil.Process(pid).cpu_times()
                out[pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return out


def cpu_used(pids: dict[str, list[int]], before: dict[int, float], after: dict[int, float]
             ) -> dict[str, float]:  # fmt: skip
    """CPU seconds per group between two readings (a process seen in both)."""
    return {what: sum(after[p] - before[p] for p in group if p in before and p in after)
            for what, group in pids.items()}  # fmt: skip


def postgres_pids() -> list[int]:
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"]


async def scrape_ingested(bases: list[str]) -> int:
    import httpx

    total = 0.0
    async with httpx.AsyncClient(timeout=10) as client:
        for base in bases:
            text = (
                await client.get(
                    f"{base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
                )
            ).text
            for m in re.finditer(r'^safetynet_reports_ingested_total\{via="\w+"\} (\S+)$', text,
                                 re.M):  # fmt: skip
                total += float(m.group(1))
    return int(total)


async def run_level(
    level: Level, bases: list[str], fleet: Fleet, world: Field, cookie: str, broker: Mosquitto,
    seconds: float, sockets: int, pids: dict[str, list[int]],
) -> None:  # fmt: skip
    import httpx
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from websockets.asyncio.client import connect

    active = sorted(fleet.tokens)[: level.receivers]
    sent_at: dict[str, tuple[float, str]] = {}  # bearing t -> (send time, via)
    answered: set[str] = set()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def watch(index: int) -> None:
        search_id = fleet.search_ids[index % len(fleet.search_ids)]
        base = bases[index % len(bases)]
        url = base.replace("http://", "ws://") + f"/api/v1/searches/{search_id}/live"
        async with connect(url, additional_headers={"Cookie": f"safetynet_session={cookie}"},
                           max_size=None) as ws:  # fmt: skip
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                arrived = time.perf_counter()
                message = json.loads(raw)
                for m in message["messages"] if message["type"] == "batch" else [message]:
                    if m["type"] == "fix" and m["fix"]["t"] in sent_at:
                        sent, via = sent_at[m["fix"]["t"]]
                        level.delays_s[via].append(arrived - sent)
                        answered.add(m["fix"]["t"])

    # MQTT receivers: one paho client each (its own login and topic), publishing from here.
    clients: dict[str, Any] = {}
    for receiver_id in (r for r in active if r in fleet.mqtt):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{receiver_id}",
                        protocol=mqtt.MQTTv5)  # fmt: skip
        c.username_pw_set(receiver_id, fleet.tokens[receiver_id])
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        clients[receiver_id] = c

    pools = [httpx.AsyncClient(base_url=b, timeout=30,
                               limits=httpx.Limits(max_connections=60)) for b in bases]  # fmt: skip

    async def receiver(receiver_id: str, n: int) -> None:
        pool = pools[n % len(pools)]
        headers = {"Authorization": f"Bearer {fleet.tokens[receiver_id]}"}
        await asyncio.sleep(random.Random(n).uniform(0, 1))  # each its own phase
        tick = 0
        next_s = time.perf_counter()
        while not stop.is_set():
            body, key = world.batch(receiver_id, tick)
            if receiver_id in clients:
                if key:
                    sent_at[key] = (time.perf_counter(), "mqtt")
                payload = json.dumps(body).encode()
                await loop.run_in_executor(None, clients[receiver_id].publish,
                                           f"{TOPIC_PREFIX}/{receiver_id}", payload, 1)  # fmt: skip
            else:
                if key:
                    sent_at[key] = (time.perf_counter(), "http")
                try:
                    answer = await pool.post("/api/v1/reports", json=body, headers=headers)
                    answer.raise_for_status()
                except httpx.HTTPError:
                    level.errors += 1
            level.bearings += key is not None
            tick += 1
            next_s += 1.0
            await asyncio.sleep(max(0.0, next_s - time.perf_counter()))

    watchers = [asyncio.create_task(watch(i)) for i in range(sockets)]
    await asyncio.sleep(1.0)
    ingested0 = await scrape_ingested(bases)
    pids["postgres"] = postgres_pids()  # its backends of this moment (the servers' pools)
    cpu0 = cpu_of(pids)
    t0 = time.perf_counter()
    tasks = [asyncio.create_task(receiver(r, n)) for n, r in enumerate(active)]
    while (done := time.perf_counter() - t0) < seconds:
        await asyncio.sleep(min(5.0, seconds - done))
        d = sorted(level.delays_s["http"] + level.delays_s["mqtt"])
        p95 = f"{d[int(0.95 * (len(d) - 1))] * 1e3:.0f} ms" if d else "-"
        print(f"  {level.processes} process(es), {level.receivers} receivers: "
              f"{time.perf_counter() - t0:.0f}/{seconds:.0f} s, {len(d)} fixes timed, "
              f"p95 {p95}", file=sys.stderr, flush=True)  # fmt: skip
    stop.set()
    await asyncio.gather(*tasks)
    level.elapsed_s = time.perf_counter() - t0
    await asyncio.sleep(2.0)  # the last fixes on their way
    cpu1 = cpu_of(pids)
    level.reports = await scrape_ingested(bases) - ingested0
    level.cpu_s = cpu_used(pids, cpu0, cpu1)
    await asyncio.gather(*watchers)
    level.unanswered = sum(1 for t in sent_at if t not in answered)
    for pool in pools:
        await pool.aclose()
    for c in clients.values():
        c.loop_stop()
        c.disconnect()


async def login(base: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert token is not None
        await client.post("/login", data={"username": "dispatcher", "password": PASSWORD,
                                          "login_csrf": token.group(1)})  # fmt: skip
        cookie = client.cookies.get("safetynet_session")
        assert cookie, "login failed"
        return str(cookie)


def start_servers(n: int, url: str, broker: Mosquitto, tmp: Path, port0: int) -> list[Any]:
    import httpx

    servers = []
    for k in range(n):
        env = {**os.environ, "SAFETYNET_DATABASE_URL": url, "SAFETYNET_SECRET_KEY": "b" * 40,
               "SAFETYNET_TILE_URL": "", "SAFETYNET_INGEST_REQUESTS_PER_S": "100000",
               "SAFETYNET_DATA_DIR": str(tmp), "SAFETYNET_METRICS_TOKEN": METRICS_TOKEN,
               "PYTHONPATH": str(REPO)}  # fmt: skip
        mqtt = broker.ingest_url().replace(f"/{TOPIC_PREFIX}/", f"/$share/bench/{TOPIC_PREFIX}/")
        servers.append(subprocess.Popen(
            [sys.executable, "-m", "safetynet", "-q", "serve", "--port", str(port0 + k),
             "--mqtt", mqtt], env=env, stderr=(tmp / f"server-{port0 + k}.log").open("w"),
        ))  # fmt: skip
    for k in range(n):
        for _ in range(150):
            try:
                if httpx.get(f"http://127.0.0.1:{port0 + k}/api/v1/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"server {port0 + k} did not start")
    return servers


def stop_servers(servers: list[Any]) -> None:
    for s in servers:
        s.terminate()
    for s in servers:
        try:
            s.wait(20)
        except subprocess.TimeoutExpired:
            s.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))] if ordered else math.nan


def summary(level: Level) -> dict[str, float]:
    d = level.delays_s["http"] + level.delays_s["mqtt"]
    per = max(level.reports, 1)
    return {
        "reports_s": level.reports / level.elapsed_s,
        "p50_ms": statistics.median(d) * 1e3 if d else math.nan,
        "p95_ms": percentile(d, 0.95) * 1e3,
        "max_ms": max(d) * 1e3 if d else math.nan,
        "p95_http_ms": percentile(level.delays_s["http"], 0.95) * 1e3,
        "p95_mqtt_ms": percentile(level.delays_s["mqtt"], 0.95) * 1e3,
        "server_ms": level.cpu_s.get("server", 0) / per * 1e3,
        "postgres_ms": level.cpu_s.get("postgres", 0) / per * 1e3,
        "mosquitto_ms": level.cpu_s.get("mosquitto", 0) / per * 1e3,
        "bench_ms": level.cpu_s.get("bench", 0) / per * 1e3,
        "server_cores": level.cpu_s.get("server", 0) / level.elapsed_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="per fleet size and mode")
    parser.add_argument("--levels", default="100,300,500", help="fleet sizes, comma-separated")
    parser.add_argument("--processes", default="1,3", help="server processes, comma-separated")
    parser.add_argument("--searches", type=int, default=20)
    parser.add_argument("--sockets", type=int, default=40)
    parser.add_argument("--mqtt-share", type=float, default=1 / 3)
    parser.add_argument("--port", type=int, default=18960)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    modes = [int(x) for x in args.processes.split(",")]
    results: list[Level] = []
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        for m, processes in enumerate(modes):
            url = fresh_database()
            fleet = seed(url, max(levels), args.searches, args.mqtt_share)
            logins = {r: fleet.tokens[r] for r in fleet.mqtt}
            broker = Mosquitto(tmp / f"broker-{processes}", logins).start()  # a fresh one per mode
            port0 = args.port + 10 * m
            servers: list[Any] = []
            try:
                servers = start_servers(processes, url, broker, tmp, port0)
                bases = [f"http://127.0.0.1:{port0 + k}" for k in range(processes)]
                cookie = asyncio.run(login(bases[0]))
                assert broker.process is not None
                pids = {"server": [s.pid for s in servers], "postgres": postgres_pids(),
                        "mosquitto": [broker.process.pid], "bench": [os.getpid()]}  # fmt: skip
                world = Field(fleet)
                for receivers in levels:
                    level = Level(processes, receivers)
                    asyncio.run(run_level(level, bases, fleet, world, cookie, broker,
                                          args.seconds, args.sockets, pids))  # fmt: skip
                    results.append(level)
            finally:
                stop_servers(servers)
                broker.stop()
                drop_database(url)
    report(results, levels, modes)


def report(results: list[Level], levels: list[int], modes: list[int]) -> None:
    print(f"{'proc':>4} {'rx':>4} {'reports/s':>9} {'p50':>6} {'p95':>6} {'max':>6} "
          f"{'p95 http':>8} {'p95 mqtt':>8} {'server':>7} {'pg':>6} {'mqtt':>6} {'bench':>6} "
          f"{'cores':>5} {'no fix':>6}")  # fmt: skip
    print(f"{'':>4} {'':>4} {'':>9} {'ms':>6} {'ms':>6} {'ms':>6} {'ms':>8} {'ms':>8} "
          f"{'CPU ms per report':>28} {'srv':>5}")  # fmt: skip
    table: dict[tuple[int, int], dict[str, float]] = {}
    for level in results:
        s = summary(level)
        table[(level.processes, level.receivers)] = s
        print(f"{level.processes:>4} {level.receivers:>4} {s['reports_s']:>9.0f} "
              f"{s['p50_ms']:>6.0f} {s['p95_ms']:>6.0f} {s['max_ms']:>6.0f} "
              f"{s['p95_http_ms']:>8.0f} {s['p95_mqtt_ms']:>8.0f} {s['server_ms']:>7.2f} "
              f"{s['postgres_ms']:>6.2f} {s['mosquitto_ms']:>6.2f} {s['bench_ms']:>6.2f} "
              f"{s['server_cores']:>5.2f} {level.unanswered:>3}/{level.bearings:<4}"
              + (f" {level.errors} errors" if level.errors else ""))  # fmt: skip
    if len(modes) > 1:
        a, b = modes[0], modes[-1]
        for receivers in levels:
            x, y = table.get((a, receivers)), table.get((b, receivers))
            if x and y:
                print(f"{receivers} receivers, {b} processes / {a}: reports/s "
                      f"{y['reports_s'] / x['reports_s']:.2f}, p95 {y['p95_ms'] / x['p95_ms']:.2f},"
                      f" server CPU per report {y['server_ms'] / x['server_ms']:.2f}")  # fmt: skip
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    print(f"this machine: {cores} cores, load average {load:.1f} at the end (other work on it "
          "takes its share of the cores)")  # fmt: skip
    per_receiver_s = 1 + 1 / BEARING_EVERY  # reports a receiver sends a second
    for processes in modes:
        top = max((r for r in levels if (processes, r) in table), default=None)
        if top is None:
            continue
        s = table[(processes, top)]
        ms = s["server_ms"] + s["postgres_ms"] + s["mosquitto_ms"]
        ceiling = cores / (ms / 1e3)
        print(f"{processes} process(es): {ms:.1f} ms of CPU per report "
              f"({s['server_ms']:.1f} in the servers, {s['postgres_ms']:.1f} in PostgreSQL, "
              f"{s['mosquitto_ms']:.2f} in Mosquitto), so {cores} cores to themselves take at "
              f"most {ceiling:.0f} reports/s, about {ceiling / per_receiver_s:.0f} receivers "
              f"posting once a second; measured {s['reports_s']:.0f} reports/s with the servers "
              f"on {s['server_cores']:.2f} cores")  # fmt: skip
    if len(modes) > 1:
        top = max(levels)
        x, y = table.get((modes[0], top)), table.get((modes[-1], top))
        if x and y:
            gain = y["reports_s"] / x["reports_s"]
            verdict = "more" if gain > 1.2 else "no more"
            print(f"{modes[-1]} processes on these cores took {verdict} than {modes[0]} "
                  f"({gain:.2f} times the reports/s at {top} receivers): the next bottleneck is "
                  "the server's CPU per report, which more processes share out but do not "
                  "shrink (the live tracker's step for each report, then the ingest's database "
                  "round trips); more cores, on more machines, move it")  # fmt: skip
    plot(table, levels, modes)


def plot(
    table: dict[tuple[int, int], dict[str, float]], levels: list[int], modes: list[int]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for processes in modes:
        xs = [r for r in levels if (processes, r) in table]
        label = f"{processes} process{'es' if processes > 1 else ''}"
        left.plot(xs, [table[(processes, r)]["p95_ms"] for r in xs], "o-", label=f"{label} p95")
        left.plot(xs, [table[(processes, r)]["p50_ms"] for r in xs], "x--", label=f"{label} p50")
        right.plot(xs, [table[(processes, r)]["reports_s"] for r in xs], "o-", label=label)
    left.axhline(200, color="grey", lw=0.8)
    left.set(xlabel="receivers (one batch a second each)", ylabel="POST to fix on socket (ms)")
    right.set(xlabel="receivers", ylabel="reports stored per second")
    left.legend()
    right.legend()
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "ui_scale.png", dpi=110)
    print(f"plot: {OUT / 'ui_scale.png'}")


if __name__ == "__main__":
    main()
