"""``safetynet registry``: enrol from a JSON file, list batteries due, export a client."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = """\
Work on the registry database (SQLite in the data folder by default; SAFETYNET_DATABASE_URL for
PostgreSQL). The database is brought up to date (migrated) first. Commands act as the program's
administrator account of this machine (``--as-user``).

examples:
  safetynet registry enrol client.json
  safetynet registry batteries-due --within-days 14
  safetynet registry export CLIENT_ID --reason "records request 2026-114" > client.json
"""


def add_parser(subparsers: Any) -> None:
    from safetynet.cli import existing_file

    p = subparsers.add_parser(
        "registry", help="enrol clients, list batteries due, export a record", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--as-user", default="admin", help="the acting user (created as admin if missing)"
    )
    sub = p.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    e = sub.add_parser(
        "enrol", help="enrol a client from a JSON file (the enrollment form's fields)"
    )
    e.add_argument("file", type=existing_file)
    e.set_defaults(handler=run_enrol)
    b = sub.add_parser("batteries-due", help="bracelets whose battery runs out soon")
    b.add_argument("--within-days", type=int, default=14)
    b.set_defaults(handler=run_batteries)
    x = sub.add_parser("export", help="the full record of one client, as JSON (audited)")
    x.add_argument("client_id")
    x.add_argument("--reason", required=True, help="why (written to the audit log)")
    x.set_defaults(handler=run_export)


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from sqlalchemy.orm import Session

    from registry.db import make_engine, upgrade
    from registry.models import Role, User
    from registry.service import Actor
    from safetynet.settings import get_settings

    url = get_settings().resolved_database_url
    upgrade(url)
    session = Session(make_engine(url))
    user = session.query(User).filter_by(username=args.as_user).one_or_none()
    if user is None:
        user = User(
            username=args.as_user, display_name=args.as_user, password_hash="!", role=Role.ADMIN
        )
        session.add(user)
        session.commit()
    return session, Actor(user.id, user.role)


def run_enrol(args: argparse.Namespace) -> int:
    from registry.service import enrol
    from safetynet.errors import InputError

    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except ValueError as err:
        raise InputError(f"{args.file}: not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"{args.file}: must hold one JSON object (a client)")
    session, actor = _open(args)
    with session:
        client = enrol(session, actor, data)
        session.commit()
        print(client.id)
    return 0


def run_batteries(args: argparse.Namespace) -> int:
    from registry.service import batteries_due

    session, actor = _open(args)
    with session:
        for row in batteries_due(session, actor, args.within_days):
            bracelet, due, days, client = (
                row["bracelet_id"],
                row["due_on"],
                row["days_remaining"],
                row["client_id"],
            )
            print(f"{bracelet}  due {due}  ({days} days)  client {client}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from registry.service import export_client

    session, actor = _open(args)
    with session:
        record = export_client(session, actor, args.client_id, args.reason)
        session.commit()
    json.dump(record, sys.stdout, indent=2, default=str)
    print()
    return 0
