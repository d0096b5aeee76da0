"""The day's notices: batteries due for a change and daily tests missed, to the program and to
each client's family — what ``safetynet registry notify`` sends, once a day from cron.

A battery is announced from :data:`BATTERY_NOTICE_DAYS` days before it is due — its install day
from the battery log plus the bracelet's battery life, as :func:`registry.service.batteries_due`
counts them — and every day after until it is changed. A daily test is missed when the bracelet
passed none in 24 hours (:func:`registry.service.missed_tests`). The program's targets get one
message with every notice of the day; a family with an e-mail address on file gets one with its
own client's, through the program's mail account for families. Each notice reaches each
recipient once a day (:func:`registry.notify.send_notices`): a second run the same day sends
only what is new since the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import Client, NotifyScope, NotifyTarget
from registry.notify import (
    SEND_TIMEOUT_S,
    Compose,
    Notice,
    Outcome,
    Recipient,
    engine_of,
    family_addresses,
    masked,
    send_notices,
    targets,
    when,
    with_recipient,
)
from registry.service import Actor, batteries_due, missed_tests

BATTERY_NOTICE_DAYS = 14  # a battery change is announced this many days before it is due
BATTERY, DAILY_TEST = "battery", "daily-test"  # the notices' kinds, the first part of their keys


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def battery_text(bracelet_id: str, name: str, due_on: date, days_remaining: int) -> str:
    """A battery due, in words: ``Bracelet 3A7F (Walter Brown): the battery is due for a change
    in 9 days, on 2026-12-12.``"""
    head = f"Bracelet {bracelet_id} ({name}): the battery"
    day = due_on.isoformat()
    if days_remaining > 1:
        return f"{head} is due for a change in {days_remaining} days, on {day}."
    if days_remaining == 1:
        return f"{head} is due for a change tomorrow, {day}."
    if days_remaining == 0:
        return f"{head} is due for a change today, {day}."
    ago = "yesterday" if days_remaining == -1 else f"{-days_remaining} days ago, on"
    return (
        f"{head} was due for a change {ago} {day}: change it now, the bracelet may stop "
        "transmitting."
    )


def test_text(
    bracelet_id: str, name: str, last_passed: datetime | None, zone: tzinfo | None
) -> str:
    """A daily test missed, in words (``last_passed`` None: it never passed one)."""
    head = f"Bracelet {bracelet_id} ({name})"
    if last_passed is None:
        return f"{head} has never passed a daily test."
    return f"{head} has not passed a daily test since {when(last_passed, zone)}."


def todays_notices(
    session: Session, actor: Actor, today: date, now: datetime, zone: tzinfo | None,
    battery_days: int = BATTERY_NOTICE_DAYS,
) -> tuple[dict[str, list[Notice]], dict[str, str]]:  # fmt: skip
    """The day's notices by client, and each client's name: batteries the soonest due first,
    then daily tests the longest missed first."""
    due = batteries_due(session, actor, battery_days, today)
    missed = missed_tests(session, actor, now)
    ids = {r["client_id"] for r in (*due, *missed) if r["client_id"] is not None}
    names = {c.id: f"{c.first_name} {c.last_name}"
             for c in session.scalars(select(Client).where(Client.id.in_(ids)))}  # fmt: skip
    by_client: dict[str, list[Notice]] = {}
    for row in due:
        name = names.get(row["client_id"], "a client")
        text = battery_text(row["bracelet_id"], name, date.fromisoformat(row["due_on"]),
                            row["days_remaining"])  # fmt: skip
        by_client.setdefault(row["client_id"], []).append(
            Notice(f"{BATTERY}:{row['bracelet_id']}", f"Battery due: {name}", text)
        )
    for row in missed:
        name = names.get(row["client_id"], "a client")
        last = None if row["last_passed"] is None else datetime.fromisoformat(row["last_passed"])
        by_client.setdefault(row["client_id"], []).append(
            Notice(
                f"{DAILY_TEST}:{row['bracelet_id']}",
                f"Daily test missed: {name}",
                test_text(row["bracelet_id"], name, last, zone),
            )
        )
    return by_client, names


def _kind(notice: Notice) -> str:
    return notice.key.split(":", 1)[0]


def program_message(day: date) -> Compose:
    """The program's message of ``day``: every notice, batteries first."""

    def compose(notices: Sequence[Notice]) -> tuple[str, str]:
        bracelets = {n.key.split(":", 1)[1] for n in notices}
        need = "needs" if len(bracelets) == 1 else "need"
        title = f"SafetyNet: {_plural(len(bracelets), 'bracelet')} {need} attention ({day})"
        parts = []
        for kind, heading in ((BATTERY, "Batteries due"), (DAILY_TEST, "Daily tests missed")):
            lines = [f"- {n.text}" for n in notices if _kind(n) == kind]
            if lines:
                parts.append(f"{heading}:\n" + "\n".join(lines))
        parts.append("The program's daily notice from SafetyNet.")
        return title, "\n\n".join(parts)

    return compose


ADVICE = {
    BATTERY: "Please call the program to have the battery changed.",
    DAILY_TEST: "Please test the bracelet today with its tester and log the test in SafetyNet.",
}


def family_message(name: str) -> Compose:
    """A family's message: their client's notices, each with what to do."""

    def compose(notices: Sequence[Notice]) -> tuple[str, str]:
        title = f"SafetyNet: {name}'s bracelet needs attention"
        body = "\n\n".join(f"{n.text}\n{ADVICE[_kind(n)]}" for n in notices)
        return title, body + "\n\nA daily notice from the program, sent by SafetyNet."

    return compose


@dataclass(frozen=True)
class DayReport:
    """One run of the day's notices: every notice (batteries first), and how the message to
    each recipient went."""

    day: date
    notices: tuple[Notice, ...]
    outcomes: tuple[Outcome, ...]


def send_daily(
    session: Session, actor: Actor, today: date, now: datetime, zone: tzinfo | None = None, *,
    battery_days: int = BATTERY_NOTICE_DAYS, dry_run: bool = False,
    timeout_s: float = SEND_TIMEOUT_S,
) -> DayReport:  # fmt: skip
    """Send ``today``'s notices (``now`` decides which daily tests are missed) to the program's
    targets and to the families with an e-mail address on file; the notices, and what each
    recipient was sent or why not. A dry run sends and records nothing."""
    by_client, names = todays_notices(session, actor, today, now, zone, battery_days)
    if not by_client:
        return DayReport(today, (), ())
    engine = engine_of(session)
    # Batteries first, the soonest due first; then the tests, the longest missed first.
    every = sorted((n for ns in by_client.values() for n in ns), key=lambda n: _kind(n) != BATTERY)
    outcomes = [
        send_notices(engine, today, r, every, program_message(today), dry_run=dry_run,
                     timeout_s=timeout_s)
        for r in targets(session, NotifyScope.PROGRAM)
    ]  # fmt: skip
    account = session.scalar(
        select(NotifyTarget).where(NotifyTarget.scope == NotifyScope.FAMILY_MAIL)
    )
    for client_id, addresses in family_addresses(session, list(by_client)).items():
        notices = by_client[client_id]
        for user_id, address in addresses:
            if account is None:
                outcomes.append(Outcome(
                    f"family login {address}", "", tuple(n.key for n in notices),
                    "not sent: no mail account for families is set (program page)"))  # fmt: skip
                continue
            recipient = Recipient(f"family:{user_id}", f"family login {address}",
                                  with_recipient(account.url, address))  # fmt: skip
            outcomes.append(send_notices(
                engine, today, recipient, notices, family_message(names[client_id]),
                dry_run=dry_run, timeout_s=timeout_s))  # fmt: skip
    return DayReport(today, tuple(every), tuple(outcomes))


def describe_account(session: Session) -> str | None:
    """The families' mail account as shown (masked), or None when none is set."""
    account = session.scalar(
        select(NotifyTarget).where(NotifyTarget.scope == NotifyScope.FAMILY_MAIL)
    )
    return None if account is None else f"{account.label} ({masked(account.url)})"
