"""The server's commands: ``serve``, ``demo``, ``user add`` and ``token create``."""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from safetynet.errors import InputError

SERVE_HELP = """\
Run the server: the ingest API, the registry and search APIs, the live push and the pages.
Settings come from the environment (SAFETYNET_DATABASE_URL, SAFETYNET_SECRET_KEY,
SAFETYNET_TILE_URL, SAFETYNET_TILES_FILE, ...); it refuses to start with the default secret.

examples:
  SAFETYNET_SECRET_KEY=... safetynet serve --host 0.0.0.0 --port 8080
  safetynet user add rivera --role dispatcher
  safetynet token create HH-07 --label "Team 1 handheld"
"""

DEMO_HELP = """\
The whole system on this machine, with nothing but Python: an SQLite registry with demo logins
and an enrolled client, a simulated search whose receivers (an rtl_tcp dongle on a roof, two
handheld units on serial pseudo-terminals) feed the real receiver code, and the server with the
dispatcher's live map. Open the printed URL and log in as dispatcher / dispatcher-demo.
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the server and its pages",
        description=SERVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", help="address to listen on (default SAFETYNET_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default SAFETYNET_PORT or 8080)")
    p.add_argument(
        "--mqtt",
        metavar="URL",
        help="also take receiver fleets' reports from an MQTT broker: "
        "mqtt://USER:PASSWORD@HOST:PORT/safetynet/reports/+ (default SAFETYNET_MQTT_URL)",
    )
    p.set_defaults(handler=run_serve)

    d = subparsers.add_parser(
        "demo", help="a simulated search, end to end, on this machine", description=DEMO_HELP
    )
    d.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    d.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    d.add_argument(
        "--data-dir",
        type=Path,
        help="folder for the demo's database and logs "
        "(default: demo/ in the SafetyNet data folder)",
    )
    d.add_argument(
        "--offline",
        action="store_true",
        help="no base map tiles (the map draws on a plain background)",
    )
    d.add_argument(
        "--array",
        action="store_true",
        help="the rooftop station is a KrakenSDR (a 5-element circle) served as its DAQ "
        "stream, and sends an array bearing for the pulses it hears",
    )
    d.set_defaults(handler=run_demo)

    u = subparsers.add_parser("user", help="manage logins")
    usub = u.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    a = usub.add_parser(
        "add", help="add a login (the password is asked for, or read from SAFETYNET_NEW_PASSWORD)"
    )
    a.add_argument("username")
    a.add_argument(
        "--role",
        required=True,
        choices=["admin", "program_staff", "dispatcher", "searcher", "clinician", "family"],
    )
    a.add_argument("--name", help="display name (default: the username)")
    a.set_defaults(handler=run_user_add)

    t = subparsers.add_parser("token", help="manage receiver tokens")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="a new token for a receiver (printed once)")
    c.add_argument("receiver_id")
    c.add_argument("--label")
    c.set_defaults(handler=run_token_create)


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise InputError(f"--port must be within 1..65535, got {value}")
    return value


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from safetynet.settings import get_settings
    from ui.app import create_app
    from ui.listen import listen_socket

    settings = get_settings()
    settings.check_secrets()
    host = args.host or settings.host
    port = _port(args.port or settings.port)
    if args.mqtt:
        settings = settings.model_copy(update={"mqtt_url": args.mqtt})
    settings = settings.model_copy(update={"port": port})
    listening = listen_socket(host, port)  # a port in use fails before the database is touched
    app = create_app(settings)
    print(f"SafetyNet server on http://{host}:{port} (Ctrl-C stops)", flush=True)
    level = "warning" if getattr(args, "quiet", False) else "info"
    uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=level,
            proxy_headers=False,  # X-Forwarded-For only from SAFETYNET_TRUSTED_PROXIES
            timeout_graceful_shutdown=5,
        )
    ).run(sockets=[listening])
    listening.close()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from safetynet.settings import get_settings
    from ui.demo import run_demo as demo

    data_dir = args.data_dir or get_settings().data_dir / "demo"
    return demo(
        data_dir.resolve(), args.host, _port(args.port), offline=args.offline, array=args.array
    )


def _session() -> Any:
    from sqlalchemy.orm import Session

    from registry.db import make_engine, upgrade
    from safetynet.settings import get_settings

    url = get_settings().resolved_database_url
    upgrade(url)
    return Session(make_engine(url))


def run_user_add(args: argparse.Namespace) -> int:
    from registry.models import Role
    from registry.service import create_user
    from ui.security import hash_password

    password = os.environ.get("SAFETYNET_NEW_PASSWORD") or getpass.getpass(
        f"password for {args.username}: "
    )
    if len(password) < 12:
        raise InputError("the password must be at least 12 characters")
    with _session() as session, session.begin():
        user = create_user(
            session,
            args.username,
            args.name or args.username,
            Role(args.role),
            hash_password(password),
        )
        print(f"added {user.username} ({user.role.value})")
    return 0


def run_token_create(args: argparse.Namespace) -> int:
    import re

    from ui.security import create_receiver_token

    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", args.receiver_id):
        raise InputError(f"receiver id must be 1-64 of A-Z a-z 0-9 . _ -, got {args.receiver_id!r}")
    with _session() as session, session.begin():
        token = create_receiver_token(session, args.receiver_id, args.label)
    print(token)
    return 0
