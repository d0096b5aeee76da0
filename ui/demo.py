"""``safetynet demo``: the whole system on one machine, with nothing but Python.

1. A data folder with an SQLite registry: demo logins for every role, a client with dementia
   ("Walter Brown") wearing bracelet 3A7F on channel 19, and an open search whose last known
   point is the scenario's origin, with two handheld teams and a rooftop station assigned.
2. The simulated field of ``demo_scenario.toml``, starting now: the roof station's dongle as an
   rtl_tcp server, the two teams' handheld units as SNHH-1 serial lines on pseudo-terminals.
3. The real receiver code, one ``safetynet receive`` process per receiver, reading rtl_tcp and
   the serial lines and posting its reports to the server through its store-and-forward uplink
   with its own receiver token.
4. The server, on ``--host``/``--port``, which feeds the reports to the locator and pushes the
   fixes to the dispatcher's live map.

Ctrl-C or SIGTERM stops the server, then every process the demo started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session

from registry.db import make_engine, upgrade
from registry.logins import user_id_of
from registry.models import Role
from registry.searches import assign_team, list_searches, set_status, set_team_members
from registry.service import (
    Actor,
    assign_bracelet,
    bracelet_inventory,
    create_user,
    enrol,
    list_clients,
    open_search,
)
from safetynet.settings import Settings
from ui.security import create_receiver_token, hash_password

log = logging.getLogger(__name__)
SCENARIO = Path(__file__).resolve().parent / "demo_scenario.toml"
ORIGIN = (42.30206, -71.05761)
ROOF = (42.2995, -71.0545)
BRACELET = (0x3A7F, 19)
HANDHELDS = ("HH-07", "HH-12")
USERS = [  # username, display name, role
    ("admin", "Program administrator", Role.ADMIN),
    ("staff", "Program staff", Role.PROGRAM_STAFF),
    ("dispatcher", "Dispatcher Rivera", Role.DISPATCHER),
    ("team1", "Officer Chen (Team 1)", Role.SEARCHER),
    ("team2", "Officer Diaz (Team 2)", Role.SEARCHER),
    ("clinician", "Dr. Osei (co-response)", Role.CLINICIAN),
    ("family", "Ann Brown (daughter)", Role.FAMILY),
]
TEAMS = [
    ("Team 1", ["HH-07"], ["team1"]),
    ("Team 2", ["HH-12"], ["team2"]),
    ("Roof station", ["ROOF-1"], []),
]
CLIENT = {
    "first_name": "Walter",
    "last_name": "Brown",
    "nickname": "Walt",
    "date_of_birth": "1944-05-01",
    "height_cm": 178,
    "build": "slim",
    "hair": "white",
    "eyes": "blue",
    "glasses": True,
    "language": "English",
    "verbal": True,
    "useful_phrases": "Ask about the Red Sox; call him Walt.",
    "diagnoses": "Alzheimer's disease, moderate",
    "medications": "donepezil 10 mg",
    "triggers": "sirens, being touched from behind",
    "approach_and_calm": "Approach from the front, slowly; speak softly; offer a coffee.",
    "mobility_aids": "none",
    "caregivers": [
        {
            "name": "Ann Brown",
            "relation": "daughter",
            "phone": "+1 617 555 0101",
            "available_24_7": True,
        }
    ],
}


def demo_password(username: str) -> str:
    return f"{username}-demo"


@dataclass
class DemoSetup:
    search_id: str
    tokens: dict[str, str]  # receiver id -> token


def seed(url: str, now: datetime) -> DemoSetup:
    """Users, the client and a fresh search (an earlier demo search is closed first)."""
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        users: dict[str, str] = {}
        for username, display, role in USERS:
            user_id = user_id_of(session, username)
            if user_id is None:
                user_id = create_user(
                    session, username, display, role, hash_password(demo_password(username))
                ).id
            users[username] = user_id
        admin = Actor(users["admin"], Role.ADMIN)
        family = Actor(users["family"], Role.FAMILY)
        client_id = _demo_client(session, family, admin, now)
        for old in list_searches(session, admin, active_only=True):
            if old["client_id"] == client_id:  # a new demo started: the last one is closed
                set_status(session, admin, old["id"], "closed", old["version"])
        session.flush()
        dispatcher = Actor(users["dispatcher"], Role.DISPATCHER)
        search = open_search(
            session,
            dispatcher,
            client_id,
            ORIGIN[0],
            ORIGIN[1],
            now - timedelta(seconds=5),
            "navy windbreaker, grey trousers",
        )
        tokens = {}
        for name, receivers, members in TEAMS:
            assign_team(session, dispatcher, search.id, name, receivers)
            set_team_members(session, dispatcher, search.id, name, list(members))
            for receiver_id in receivers:
                tokens[receiver_id] = create_receiver_token(session, receiver_id, "demo")
        search_id = search.id
    engine.dispose()
    return DemoSetup(search_id, tokens)


def _demo_client(session: Session, family: Actor, admin: Actor, now: datetime) -> str:
    """The demo family's client (enrolled, with the demo bracelet, on the first run)."""
    own = list_clients(session, family)
    if own:
        return str(own[0]["id"])
    client = enrol(session, family, CLIENT)  # a family's enrollment links the family to it
    worn = {b["bracelet_id"]: b for b in bracelet_inventory(session, admin)}
    bracelet = worn.get(f"{BRACELET[0]:04X}")
    if bracelet is None or bracelet["client_id"] is None:
        assign_bracelet(
            session, admin, BRACELET[0], BRACELET[1], client.id, (now - timedelta(days=150)).date()
        )
    return client.id


def write_scenario(folder: Path, start: datetime) -> Path:
    """The demo scenario with its start set to ``start``."""
    text = SCENARIO.read_text(encoding="utf-8")
    stamp = start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = re.sub(r"(?m)^start = .*$", f"start = {stamp}", text)
    path = folder / "demo-scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Processes:
    """The demo's child processes; all stopped together."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._lock = threading.Lock()

    def start(self, name: str, *args: str) -> None:
        out = (self.log_dir / f"{name}.log").open("ab")
        command = [sys.executable, "-m", "safetynet", *args]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.children.append((name, child))

    def check(self) -> list[str]:
        """Names of children that ended (they should run until stopped)."""
        return [name for name, child in self.children if child.poll() is not None]

    def stop(self) -> None:
        """Receivers first (so they can hand over what they queued), then the simulators."""
        with self._lock:
            receivers = [c for c in self.children if c[0].startswith("receive-")]
            self._stop(receivers)
            self._stop([c for c in self.children if c not in receivers])

    @staticmethod
    def _stop(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for _, child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for _, child in children:
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def start_field(
    processes: Processes,
    data_dir: Path,
    scenario: Path,
    server_url: str,
    tokens: dict[str, str],
    array: bool = False,
) -> None:
    """The simulated field and the real receivers reading it, each in its own process.

    Receivers are stopped before the server, so ``--uplink-drain`` only has to cover the last
    batch in flight. With ``array`` the roof station is a KrakenSDR facing north."""
    ingest = f"{server_url}/api/v1/reports"
    queues = data_dir / "uplink"
    rtl_port = free_port("127.0.0.1")
    if array:
        sim = ["sim", "kraken", "--scenario", str(scenario), "--receiver", "ROOF-1", "--array"]
    else:
        sim = ["sim", "rtl-tcp", "--scenario", str(scenario), "--receiver", "ROOF-1"]
    processes.start("sim-ROOF-1", *sim, "--host", "127.0.0.1", "--port", str(rtl_port))
    for receiver_id in HANDHELDS:
        sim = ["sim", "handheld", "--scenario", str(scenario), "--receiver", receiver_id]
        processes.start(
            f"sim-{receiver_id}", *sim, "--link", str(data_dir / f"serial-{receiver_id}")
        )
    time.sleep(2.0)  # let the simulators open their port and pseudo-terminals
    sources = {
        "ROOF-1": [
            f"kraken://127.0.0.1:{rtl_port}" if array else f"rtltcp://127.0.0.1:{rtl_port}",
            "--lat-deg",
            str(ROOF[0]),
            "--lon-deg",
            str(ROOF[1]),
            *(["--array-heading-deg", "0"] if array else []),
        ]
    }
    for receiver_id in HANDHELDS:
        sources[receiver_id] = [f"serial:{data_dir / f'serial-{receiver_id}'}"]
    for receiver_id, source in sources.items():
        uplink = [
            "--uplink",
            ingest,
            "--token",
            tokens[receiver_id],
            "--uplink-drain",
            "5",
            "--queue",
            str(queues / f"{receiver_id}.sqlite"),
        ]
        processes.start(
            f"receive-{receiver_id}",
            "receive",
            "--source",
            *source,
            "--receiver-id",
            receiver_id,
            "--out",
            os.devnull,
            *uplink,
        )


class _Server(uvicorn.Server):
    """uvicorn's server, leaving signals to the demo: it re-raises a captured SIGTERM once it
    has stopped, which would end the process before the demo stops its children."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def demo_settings(data_dir: Path, host: str, port: int, offline: bool = False) -> Settings:
    """The demo's settings: its own data folder and address, demo mode; the rest from the
    environment as for ``serve`` (``SAFETYNET_COT_URL`` sends the demo search to TAK)."""
    return Settings(
        data_dir=data_dir, demo=True, host=host, port=port, tile_url="" if offline else None
    )


def run_demo(
    data_dir: Path, host: str, port: int, offline: bool = False, array: bool = False
) -> int:
    """Seed, start the field and the receivers, serve until Ctrl-C or SIGTERM. With ``array``
    the rooftop station is a KrakenSDR (its DAQ stream, array bearings)."""
    from ui.app import create_app
    from ui.listen import listen_socket

    listening = listen_socket(host, port)  # a port in use fails here, before anything is done
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    settings = demo_settings(data_dir, host, port, offline)
    now = datetime.now(UTC)
    setup = seed(settings.resolved_database_url, now)
    scenario = write_scenario(data_dir, now)
    app = create_app(settings)
    shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    url = f"http://{shown_host}:{port}"
    server = _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=5,
            proxy_headers=False,  # X-Forwarded-For only from SAFETYNET_TRUSTED_PROXIES
        )
    )
    processes = Processes(data_dir / "logs")
    print(f"SafetyNet demo: the live map is at {url}/searches/{setup.search_id}", flush=True)
    print("  logins (username / password):", flush=True)
    for username, display, role in USERS:
        print(
            f"    {username:11s} / {demo_password(username):16s} {role.value:14s} {display}",
            flush=True,
        )
    print(f"  data folder: {data_dir} (logs in {data_dir / 'logs'}); Ctrl-C stops", flush=True)
    if settings.cot_url:
        print(f"  TAK: the search goes to {settings.cot_url} as Cursor-on-Target", flush=True)
    print(
        "  the search starts now: bearings arrive within about a minute, the first fix soon after",
        flush=True,
    )

    stopping = threading.Event()

    def field_when_up() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.1)
        if server.should_exit:
            return
        start_field(processes, data_dir, scenario, f"http://127.0.0.1:{port}", setup.tokens, array)
        while not server.should_exit:
            ended = processes.check()
            if ended and not stopping.is_set():
                log.error("demo processes ended: %s (see %s)", ", ".join(ended), data_dir / "logs")
                print(
                    f"safetynet demo: {', '.join(ended)} stopped; see {data_dir / 'logs'}",
                    file=sys.stderr,
                    flush=True,
                )
                break
            time.sleep(1.0)

    field = threading.Thread(target=field_when_up, name="demo-field", daemon=True)
    field.start()

    def stop_all() -> None:
        processes.stop()
        server.should_exit = True

    def stop(_signum: int, _frame: object) -> None:
        # The receivers go first, while the server can still take what they have queued; a
        # second Ctrl-C stops the server at once.
        if stopping.is_set():
            server.should_exit = True
        stopping.set()
        threading.Thread(target=stop_all, name="demo-stop", daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        server.run(sockets=[listening])
    finally:
        server.should_exit = True
        processes.stop()
        listening.close()
        print("SafetyNet demo stopped.", flush=True)
    return 0
