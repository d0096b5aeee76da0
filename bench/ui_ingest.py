"""Ingest throughput with 50 receivers posting at once, and the delay from a report's POST to
the fix it causes reaching a dispatcher's socket.

The server runs as its own process (``safetynet serve``, SQLite in a temporary folder unless
``--url`` names a PostgreSQL database); this process plays 50 field receivers, each with its own
token, posting batches of pulses as fast as the server answers, while one more receiver posts a
bearing every half second at a bracelet whose track is running, and a dispatcher's WebSocket
times each bearing's fix. Prints reports/s and the delay's median, 95th percentile and maximum.

    python bench/ui_ingest.py [--seconds 20] [--receivers 50] [--batch 20] [--url URL]
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import REPO
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.db import make_engine, upgrade
from registry.models import ReceiverToken, Role, SearchTeam
from registry.searches import assign_team
from registry.service import Actor, assign_bracelet, create_user, enrol, open_search
from safetynet.geodesy import LocalFrame
from ui.security import hash_password, token_digest

ORIGIN = (42.30206, -71.05761)
TARGET_EN = (250.0, -300.0)  # where the bracelet "is", metres east and north of the origin
PASSWORD = "bench-password-1"


def seed(url: str, receivers: int) -> tuple[str, dict[str, str]]:
    upgrade(url)
    engine = make_engine(url)
    now = datetime.now(UTC)
    tokens = {f"RX-{i:02d}": f"bench-token-{i:02d}-{'q' * 24}" for i in range(receivers)}
    tokens["DF-A"], tokens["DF-B"] = "bench-token-dfa-" + "a" * 24, "bench-token-dfb-" + "b" * 24
    with Session(engine) as session, session.begin():
        dispatcher = create_user(
            session, "dispatcher", "Dispatcher", Role.DISPATCHER, hash_password(PASSWORD)
        )
        admin = create_user(session, "admin", "Admin", Role.ADMIN, hash_password(PASSWORD))
        client = enrol(
            session,
            Actor(admin.id, Role.ADMIN),
            {"first_name": "Bench", "last_name": "Client", "date_of_birth": "1940-01-01"},
        )
        assign_bracelet(session, Actor(admin.id, Role.ADMIN), 0x3A7F, 19, client.id, now.date())
        actor = Actor(dispatcher.id, Role.DISPATCHER)
        search = open_search(session, actor, client.id, *ORIGIN, now - timedelta(minutes=1))
        assign_team(session, actor, search.id, "All", sorted(tokens))
        team = session.scalar(select(SearchTeam).where(SearchTeam.search_id == search.id))
        assert team is not None
        for receiver_id, token in tokens.items():
            session.add(
                ReceiverToken(
                    receiver_id=receiver_id, token_sha256=token_digest(token), created_at=now
                )
            )
        search_id = search.id
    engine.dispose()
    return search_id, tokens


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Field:
    """Positions around the target and the reports the receivers send."""

    def __init__(self) -> None:
        self.frame = LocalFrame(*ORIGIN)
        self.rng = random.Random(3)
        self.seq: dict[str, int] = {}

    def next_seq(self, receiver_id: str) -> int:
        self.seq[receiver_id] = self.seq.get(receiver_id, 0) + 1
        return self.seq[receiver_id]

    def pulse(self, receiver_id: str, index: int) -> dict[str, Any]:
        angle = 2 * math.pi * index / 50
        e, n = TARGET_EN[0] + 600 * math.cos(angle), TARGET_EN[1] + 600 * math.sin(angle)
        lat, lon = self.frame.to_lat_lon(e, n)
        return {
            "kind": "pulse",
            "receiver_id": receiver_id,
            "seq": self.next_seq(receiver_id),
            "t": now_text(),
            "channel": 19,
            "freq_hz": 216462612,
            "bracelet_id": "3A7F",
            "rssi_dbm": round(-100 + self.rng.gauss(0, 6), 1),
            "snr_db": 15.0,
            "lat_deg": lat,
            "lon_deg": lon,
            "antenna": "omni",
        }

    def bearing(self, receiver_id: str, east_m: float, north_m: float) -> dict[str, Any]:
        lat, lon = self.frame.to_lat_lon(east_m, north_m)
        true = math.degrees(math.atan2(TARGET_EN[0] - east_m, TARGET_EN[1] - north_m)) % 360
        return {
            "kind": "bearing",
            "receiver_id": receiver_id,
            "seq": self.next_seq(receiver_id),
            "t": now_text(),
            "bracelet_id": "3A7F",
            "channel": 19,
            "lat_deg": lat,
            "lon_deg": lon,
            "bearing_deg": round((true + self.rng.gauss(0, 3)) % 360, 2),
            "sigma_deg": 4.0,
            "method": "sweep",
            "n_pulses": 12,
        }


async def login(base: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=base) as client:
        page = await client.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert token is not None
        await client.post(
            "/login",
            data={"username": "dispatcher", "password": PASSWORD, "login_csrf": token.group(1)},
        )
        cookie = client.cookies.get("safetynet_session")
        assert cookie, "login failed"
        return str(cookie)


async def run(
    base: str, search_id: str, tokens: dict[str, str], seconds: float, batch: int, receivers: int
) -> dict[str, Any]:
    import httpx
    from websockets.asyncio.client import connect

    field = Field()
    cookie = await login(base)
    posted = {"reports": 0, "requests": 0, "errors": 0}
    delays: list[float] = []
    pending: dict[str, float] = {}
    stop = asyncio.Event()
    ws_url = base.replace("http://", "ws://") + f"/api/v1/searches/{search_id}/live"

    async def watch() -> None:
        async with connect(
            ws_url, additional_headers={"Cookie": f"safetynet_session={cookie}"}, max_size=None
        ) as ws:
            async for raw in ws:
                message = json.loads(raw)
                for m in message["messages"] if message["type"] == "batch" else [message]:
                    if m["type"] == "fix":
                        sent = pending.pop(m["fix"]["t"], None)
                        if sent is not None:
                            delays.append(time.perf_counter() - sent)
                if stop.is_set() and not pending:
                    return

    async def receiver(index: int) -> None:
        receiver_id = f"RX-{index:02d}"
        headers = {"Authorization": f"Bearer {tokens[receiver_id]}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            while not stop.is_set():
                body = [field.pulse(receiver_id, index) for _ in range(batch)]
                try:
                    answer = await client.post("/api/v1/reports", json=body, headers=headers)
                    answer.raise_for_status()
                    posted["reports"] += answer.json()["accepted"]
                    posted["requests"] += 1
                except httpx.HTTPError:
                    posted["errors"] += 1

    async def direction_finder() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            k = 0
            while not stop.is_set():
                receiver_id = ("DF-A", "DF-B")[k % 2]
                spot = ((-400.0, 200.0), (700.0, 300.0))[k % 2]
                report = field.bearing(receiver_id, *spot)
                pending[report["t"]] = time.perf_counter()
                await client.post(
                    "/api/v1/reports",
                    json=[report],
                    headers={"Authorization": f"Bearer {tokens[receiver_id]}"},
                )
                k += 1
                await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.5)
    tasks = [asyncio.create_task(receiver(i)) for i in range(receivers)]
    tasks.append(asyncio.create_task(direction_finder()))
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        await asyncio.sleep(min(5.0, seconds - (time.perf_counter() - t0)))
        print(
            f"  {time.perf_counter() - t0:.0f} s: {posted['reports']} reports accepted",
            file=sys.stderr,
            flush=True,
        )
    stop.set()
    elapsed = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    try:
        await asyncio.wait_for(watcher, 10)
    except TimeoutError:
        watcher.cancel()
    return {"elapsed_s": elapsed, **posted, "delays": delays, "unanswered": len(pending)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--batch", type=int, default=20, help="reports per POST")
    parser.add_argument("--url", help="database URL (default: SQLite in a temporary folder)")
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        search_id, tokens = seed(url, args.receivers)
        env = {
            **os.environ,
            "SAFETYNET_DATABASE_URL": url,
            "SAFETYNET_SECRET_KEY": "b" * 40,
            "SAFETYNET_TILE_URL": "",
            "SAFETYNET_INGEST_REQUESTS_PER_S": "100000",
            "SAFETYNET_DATA_DIR": tmp,
            "PYTHONPATH": str(REPO),
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "safetynet", "-q", "serve", "--port", str(args.port)], env=env
        )
        base = f"http://127.0.0.1:{args.port}"
        try:
            import httpx

            for _ in range(100):
                try:
                    if httpx.get(f"{base}/api/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            result = asyncio.run(
                run(base, search_id, tokens, args.seconds, args.batch, args.receivers)
            )
        finally:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    delays = sorted(result["delays"])
    print(
        f"database: {url.split(':')[0]}; {args.receivers} receivers posting {args.batch} "
        f"reports per request for {result['elapsed_s']:.0f} s"
    )
    print(
        f"ingest: {result['reports'] / result['elapsed_s']:.0f} reports/s "
        f"({result['requests'] / result['elapsed_s']:.0f} requests/s, {result['errors']} errors)"
    )
    if delays:
        p95 = delays[min(len(delays) - 1, int(0.95 * len(delays)))]
        print(
            f"POST to fix on the dispatcher's socket: median {statistics.median(delays) * 1e3:.0f}"
            f" ms, 95th percentile {p95 * 1e3:.0f} ms, max {delays[-1] * 1e3:.0f} ms "
            f"({len(delays)} bearings, {result['unanswered']} without a fix)"
        )
    else:
        print("no bearing produced a fix on the socket")


if __name__ == "__main__":
    main()
