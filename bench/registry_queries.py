"""The dispatcher's screen's queries on a full registry: 10,000 clients, 1,000,000 search events.

Fills a fresh database (SQLite file by default; ``--url`` for PostgreSQL), then times, many times
over, what the dispatcher's screen asks when it opens and refreshes a search: the search with its
client (clinical detail read and audited), the last 500 events of the busiest search, batteries
due within 14 days and the missed daily tests. Prints the median and 95th percentile of each.

    python bench/registry_queries.py [--url postgresql+psycopg://.../scratch] [--clients 10000]

With --url, use a scratch database: the tables and their million rows stay there.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from common import Progress
from sqlalchemy import insert
from sqlalchemy.orm import Session

from registry.db import make_engine, upgrade
from registry.models import (
    Bracelet,
    BraceletStatus,
    Client,
    Role,
    Search,
    SearchEvent,
    SearchStatus,
    User,
    new_id,
)
from registry.searches import open_search_view, recent_events
from registry.service import Actor, batteries_due, missed_tests


def fill(session: Session, clients: int, events: int, rng: random.Random) -> str:
    """Clients with bracelets, one search for every fifth client, ``events`` events; returns the
    busiest active search's id (a fifth of all events)."""
    now = datetime.now(UTC)
    session.add(
        User(
            id="dispatcher",
            username="dispatcher",
            display_name="d",
            password_hash="x",
            role=Role.DISPATCHER,
        )
    )
    client_rows, bracelet_rows = [], []
    for i in range(clients):
        cid = new_id()
        client_rows.append(
            {
                "id": cid,
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "date_of_birth": date(1930 + i % 60, 1 + i % 12, 1 + i % 28),
                "diagnoses": "dementia",
                "triggers": "sirens",
                "glasses": False,
                "verbal": True,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
        bracelet_rows.append(
            {
                "id": new_id(),
                "bracelet_id": i + 1,
                "channel": 1 + i % 40,
                "status": BraceletStatus.ASSIGNED,
                "client_id": cid,
                "battery_installed_on": date.today() - timedelta(days=rng.randint(0, 200)),
                "battery_interval_days": 180,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.execute(insert(Client), client_rows)
    session.execute(insert(Bracelet), bracelet_rows)
    search_rows = []
    for j, c in enumerate(client_rows[::5]):
        search_rows.append(
            {
                "id": new_id(),
                "client_id": c["id"],
                "opened_at": now,
                "last_known_lat_deg": 42.3,
                "last_known_lon_deg": -71.05,
                "last_known_at": now,
                "version": 1,
                "created_at": now,
                "updated_at": now,
                "status": SearchStatus.ACTIVE if j < 50 else SearchStatus.CLOSED,
            }
        )
    session.execute(insert(Search), search_rows)
    session.commit()
    busiest = search_rows[0]["id"]
    progress = Progress("search events written", events)
    batch = 50_000
    start = now - timedelta(days=365)
    for done in range(0, events, batch):
        rows = []
        for k in range(done, min(done + batch, events)):
            search_id = busiest if k % 5 == 0 else search_rows[k % len(search_rows)]["id"]
            rows.append(
                {
                    "search_id": search_id,
                    "at": start + timedelta(seconds=k * 30),
                    "kind": "report",
                    "body": {
                        "type": "pulse",
                        "rssi_dbm": -97.5,
                        "receiver_id": f"hh-{k % 7}",
                        "seq": k,
                    },
                }
            )
        session.execute(insert(SearchEvent), rows)
        session.commit()
        progress.update(min(done + batch, events))
    return str(busiest)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a new SQLite file)")
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            t0 = time.perf_counter()
            busiest = fill(session, args.clients, args.events, random.Random(1))
            print(
                f"filled {args.clients} clients, {args.events} events in "
                f"{time.perf_counter() - t0:.0f} s ({engine.dialect.name})"
            )
            who = Actor("dispatcher", Role.DISPATCHER)
            queries: list[tuple[str, Callable[[], Any]]] = [
                ("open search with its client", lambda: open_search_view(session, who, busiest)),
                ("last 500 events of the search", lambda: recent_events(session, who, busiest)),
                ("batteries due within 14 days", lambda: batteries_due(session, who, 14)),
                ("daily tests missed", lambda: missed_tests(session, who)),
            ]
            print(f"{'query':34s} {'median ms':>10s} {'p95 ms':>8s}  rows")
            for name, fn in queries:
                session.expire_all()
                median, p95, result = timed(fn, args.repeats)
                rows = len(result) if isinstance(result, list) else 1
                print(f"{name:34s} {median * 1e3:10.1f} {p95 * 1e3:8.1f}  {rows}")
                session.commit()
        engine.dispose()


if __name__ == "__main__":
    main()
