"""``safetynet registry``: enrol from a JSON file, keep the bracelet inventory (add, assign, swap,
retire), list who has no bracelet, batteries due, send the day's notices, delete and restore a
record, export a client."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

HELP = """\
Work on the registry database (SQLite in the data folder by default; SAFETYNET_DATABASE_URL for
PostgreSQL). The database is brought up to date (migrated) first. Commands act as the program's
administrator account of this machine (``--as-user``).

Bracelet IDs are the four letters and digits printed on the bracelet (3A7F).

examples:
  safetynet registry enrol client.json
  safetynet registry add-bracelet 3A7F --channel 19
  safetynet registry assign CLIENT_ID 3A7F
  safetynet registry swap CLIENT_ID 4B10 --retire-old --reason "strap broke"
  safetynet registry retire 3A7F --reason "lost in the river"
  safetynet registry unassigned
  safetynet registry batteries-due --within-days 14
  safetynet registry notify --dry-run       # the day's notices, shown and not sent
  safetynet registry notify                 # sent (from cron: 0 7 * * * safetynet registry notify)
  safetynet registry delete CLIENT_ID --reason "duplicate of 5f3c..."
  safetynet registry restore CLIENT_ID --reason "not a duplicate after all"
  safetynet registry export CLIENT_ID --reason "records request 2026-114" > client.json
"""


def add_parser(subparsers: Any) -> None:
    from safetynet.cli import existing_file

    p = subparsers.add_parser(
        "registry", help="enrol clients, keep the bracelets, send notices, export a record",
        description=HELP,
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
    e.add_argument(
        "--not-a-duplicate", action="store_true",
        help="enrol even though someone with the same name and date of birth is enrolled",
    )  # fmt: skip
    e.set_defaults(handler=run_enrol)
    a = sub.add_parser("add-bracelet", help="put a new bracelet into the inventory (in stock)")
    a.add_argument("bracelet_id", help="the ID printed on the bracelet (four hex digits)")
    a.add_argument("--channel", type=int, required=True, help="its channel, 1..40")
    a.add_argument("--battery-days", type=int, default=180, help="days between battery changes")
    a.set_defaults(handler=run_add_bracelet)
    g = sub.add_parser("assign", help="put a bracelet from the inventory on a client")
    g.add_argument("client_id")
    g.add_argument("bracelet_id", help="the ID printed on the bracelet (four hex digits)")
    g.add_argument("--installed-on", type=_day, help="the battery's date (default today)")
    g.set_defaults(handler=run_assign)
    w = sub.add_parser("swap", help="replace a client's bracelet with one from the inventory")
    w.add_argument("client_id")
    w.add_argument("bracelet_id", help="the new bracelet's ID")
    w.add_argument("--retire-old", action="store_true", help="retire the old one (else: stock)")
    w.add_argument("--installed-on", type=_day, help="the battery's date (default today)")
    w.add_argument("--reason", default="", help="why (written to the audit log)")
    w.set_defaults(handler=run_swap)
    r = sub.add_parser("retire", help="take a bracelet out of service for good")
    r.add_argument("bracelet_id")
    r.add_argument("--reason", required=True, help="why (written to the audit log)")
    r.set_defaults(handler=run_retire)
    u = sub.add_parser("unassigned", help="clients without a bracelet, bracelets without a client")
    u.set_defaults(handler=run_unassigned)
    d = sub.add_parser("delete", help="soft-delete a client (restorable until purged)")
    d.add_argument("client_id")
    d.add_argument("--reason", required=True, help="why (written to the audit log)")
    d.set_defaults(handler=run_delete)
    o = sub.add_parser("restore", help="restore a soft-deleted client")
    o.add_argument("client_id")
    o.add_argument("--reason", required=True, help="why (written to the audit log)")
    o.set_defaults(handler=run_restore)
    b = sub.add_parser("batteries-due", help="bracelets whose battery runs out soon")
    b.add_argument("--within-days", type=int, default=14)
    b.set_defaults(handler=run_batteries)
    n = sub.add_parser(
        "notify", help="send the day's notices: batteries due, daily tests missed (for cron)",
        description="Send today's notices (batteries due, daily tests missed) to the program's "
        "targets and to families with an e-mail address on file, each once a day: a second run "
        "the same day sends only what is new. Prints what it sent; exits 1 if a send failed.",
    )  # fmt: skip
    n.add_argument(
        "--dry-run", action="store_true", help="show the notices and whom they would go to"
    )
    n.add_argument(
        "--battery-days", type=_notice_days, default=None,
        help="announce a battery change this many days before it is due (default 14)",
    )  # fmt: skip
    n.set_defaults(handler=run_notify)
    h = sub.add_parser(
        "home-check", help="check every home station: wander alerts, silent stations (for cron)",
        description="Check every home station once (run it every minute from cron: an alert "
        "then comes within the client's minutes plus one). A bracelet a station that keeps "
        "reporting no longer hears raises a wander alert; a station that stopped reporting "
        "raises a station-silent notice. Fleet sightings past their 72 hours are erased. "
        "Notices not delivered before (a mail server down) whose next try has come are sent "
        "again. Prints each alert raised, by its id and kind, and each notice retried.",
    )  # fmt: skip
    h.set_defaults(handler=run_home_check)
    x = sub.add_parser("export", help="the full record of one client, as JSON (audited)")
    x.add_argument("client_id")
    x.add_argument("--reason", required=True, help="why (written to the audit log)")
    x.set_defaults(handler=run_export)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a date year-month-day (2026-12-02), got {text!r}"
        ) from None


def _notice_days(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) <= 365:
        raise argparse.ArgumentTypeError(f"a whole number of days, 0..365, got {text!r}")
    return int(text)


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
    from safetynet.settings import get_settings

    session, actor = _open(args)
    with session:
        client = enrol(session, actor, data, phone_region=get_settings().phone_region,
                       confirmed_not_duplicate=args.not_a_duplicate)  # fmt: skip
        session.commit()
        print(client.id)
    return 0


def run_add_bracelet(args: argparse.Namespace) -> int:
    from registry.bracelets import add_bracelet, parse_bracelet_id

    session, actor = _open(args)
    with session:
        b = add_bracelet(session, actor, parse_bracelet_id(args.bracelet_id), args.channel,
                         args.battery_days)  # fmt: skip
        session.commit()
        print(f"bracelet {b.bracelet_id:04X} on channel {b.channel}: in stock")
    return 0


def run_assign(args: argparse.Namespace) -> int:
    from registry.bracelets import assign_from_inventory, parse_bracelet_id

    session, actor = _open(args)
    with session:
        b = assign_from_inventory(session, actor, parse_bracelet_id(args.bracelet_id),
                                  args.client_id, args.installed_on)  # fmt: skip
        session.commit()
        print(f"bracelet {b.bracelet_id:04X} (channel {b.channel}) assigned to {args.client_id}")
    return 0


def run_swap(args: argparse.Namespace) -> int:
    from registry.bracelets import parse_bracelet_id, swap_bracelet

    session, actor = _open(args)
    with session:
        new_id = parse_bracelet_id(args.bracelet_id)
        b = swap_bracelet(session, actor, args.client_id, new_id, args.installed_on,
                          retire_old=args.retire_old, reason=args.reason)  # fmt: skip
        session.commit()
        old = "retired" if args.retire_old else "back in stock"
        print(f"bracelet {b.bracelet_id:04X} (channel {b.channel}) now on {args.client_id}; "
              f"the old one {old}")  # fmt: skip
    return 0


def run_retire(args: argparse.Namespace) -> int:
    from registry.bracelets import parse_bracelet_id, retire_bracelet

    session, actor = _open(args)
    with session:
        b = retire_bracelet(session, actor, parse_bracelet_id(args.bracelet_id), args.reason)
        session.commit()
        print(f"bracelet {b.bracelet_id:04X} retired")
    return 0


def run_unassigned(args: argparse.Namespace) -> int:
    from registry.bracelets import program_gaps

    session, actor = _open(args)
    with session:
        gaps = program_gaps(session, actor)
    print(f"clients without a bracelet ({len(gaps['clients_without_bracelet'])}):")
    for c in gaps["clients_without_bracelet"]:
        print(f"  {c['id']}  {c['last_name']}, {c['first_name']}  enrolled {c['enrolled_on']}")
    print(f"bracelets in stock, on no one ({len(gaps['bracelets_without_client'])}):")
    for b in gaps["bracelets_without_client"]:
        print(f"  {b['bracelet_id']}  channel {b['channel']}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from registry.records import soft_delete_client

    session, actor = _open(args)
    with session:
        soft_delete_client(session, actor, args.client_id, args.reason)
        session.commit()
    print(f"client {args.client_id} deleted (restorable until purged)")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from registry.records import restore_client

    session, actor = _open(args)
    with session:
        restore_client(session, actor, args.client_id, args.reason)
        session.commit()
    print(f"client {args.client_id} restored")
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


def run_notify(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from registry.daily_notices import BATTERY_NOTICE_DAYS, describe_account, send_daily
    from registry.models import NotifyScope
    from registry.notify import targets
    from safetynet.settings import get_settings

    zone_name = get_settings().time_zone
    zone = ZoneInfo(zone_name) if zone_name else None
    now = datetime.now(UTC)
    today = (now.astimezone(zone) if zone is not None else now.astimezone()).date()
    days = BATTERY_NOTICE_DAYS if args.battery_days is None else args.battery_days
    session, actor = _open(args)
    with session:
        program = targets(session, NotifyScope.PROGRAM)
        account = describe_account(session)
        report = send_daily(session, actor, today, now, zone, battery_days=days,
                            dry_run=args.dry_run)  # fmt: skip
    mode = " (dry run: nothing is sent)" if args.dry_run else ""
    print(f"notices of {today.isoformat()}{mode}: batteries due within {days} days, daily "
          "tests missed")  # fmt: skip
    if not report.notices:
        print("  nothing to tell: no battery due, no daily test missed")
    else:
        print(f"  {len(report.notices)} notice(s): {', '.join(n.key for n in report.notices)}")
    if args.dry_run:  # the texts themselves (they name clients: never in the server's log)
        for notice in report.notices:
            print(f"    {notice.text}")
    if not program:
        print("  the program has no target for its notices (add one on the program page)")
    if account is None:
        print("  no mail account for families is set: families get no e-mail")
    for o in report.outcomes:
        line = f"  {o.status:<12} {o.recipient}: {', '.join(o.notice_keys)}"
        if o.status == "sent":
            line += f" in {o.elapsed_s:.2f} s"
        if o.error:
            line += f": {o.error}"
        print(line)
    return 1 if any(o.status == "failed" for o in report.outcomes) else 0


def run_home_check(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from registry.home_stations import check_stations
    from registry.notify import NOTIFIER, OUTBOX, SEND_TIMEOUT_S, Notifier, engine_of, retry_pending
    from registry.sightings import purge
    from safetynet.settings import get_settings

    zone_name = get_settings().time_zone
    zone = ZoneInfo(zone_name) if zone_name else None
    session, _ = _open(args)
    with session:
        session.info[NOTIFIER] = Notifier(outbox=OUTBOX, zone=zone)
        now = datetime.now(UTC)
        raised = check_stations(session, now)
        shown = [(a.id, a.kind.value, a.receiver_id) for a in raised]
        erased = purge(session, now)
        session.commit()
    if erased:
        print(f"erased {erased} fleet sighting(s) past their retention")
    for alert_id, kind, receiver_id in shown:  # ids only: cron mails what a command prints
        print(f"raised {kind} alert {alert_id} (home station {receiver_id})")
    if not shown:
        print("no new home alert")
    OUTBOX.wait(SEND_TIMEOUT_S * 3)  # the notices go out before the command ends
    # Then the notices that could not be delivered before, whose time to try again has come
    # (a wander alert's too, if its first send just failed: it waits a minute).
    for outcome in retry_pending(engine_of(session), timeout_s=SEND_TIMEOUT_S):
        if outcome.status == "sent":
            print(f"retried {', '.join(outcome.notice_keys)}: sent")
        else:
            print(f"retried {', '.join(outcome.notice_keys)}: {outcome.status}, {outcome.error}")
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
