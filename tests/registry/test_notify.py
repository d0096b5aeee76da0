"""Notifications through Apprise, on SQLite and PostgreSQL, received by a real SMTP server
(aiosmtpd on this machine): the day's notices (batteries due with the days remaining, daily tests
missed) reach the program and the family once a day and never twice; a search opened and the
person found reach the people the program names; a dead or silent mail server neither holds nor
loses a search; targets Apprise cannot read are refused by name; secrets never show."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.bracelets import add_bracelet, assign_from_inventory
from registry.daily_notices import battery_text, send_daily
from registry.fields import RegistryInputError
from registry.models import (
    Bracelet,
    FamilyLink,
    NoticeSent,
    NoticeStatus,
    NotifyScope,
    Role,
    Search,
    User,
)
from registry.notify import (
    NOTIFIER,
    Notifier,
    Outbox,
    add_target,
    check_target,
    list_targets,
    masked,
    recent_notices,
    remove_target,
)
from registry.searches import set_status
from registry.service import ForbiddenError, enrol, open_search, record_daily_test
from tests.conftest import fuzz
from tests.mail_support import (
    PASSWORD,
    Mailbox,
    free_port,
    mail_url,
    silent_server,
    smtp_server,
    text_of,
)
from tests.registry.test_service import PUBLIC_FORM, actor

ADMIN, STAFF, DISPATCHER = actor(Role.ADMIN), actor(Role.PROGRAM_STAFF), actor(Role.DISPATCHER)
LAST_KNOWN = (42.30206, -71.05761)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_server() as port:
        yield port


def with_bracelet(session: Session, first: str, bracelet_id: int, installed_on: date,
                  interval_days: int = 180) -> tuple[str, str]:  # fmt: skip
    """A client wearing a bracelet whose battery went in on ``installed_on``; (client, pk)."""
    client = enrol(session, STAFF, {**PUBLIC_FORM, "first_name": first}).id
    add_bracelet(session, STAFF, bracelet_id, 19, interval_days)
    bracelet = assign_from_inventory(session, STAFF, bracelet_id, client, installed_on)
    return client, bracelet.id


def family_login(session: Session, username: str, client_id: str) -> str:
    user = User(username=username, display_name=username, password_hash="x", role=Role.FAMILY)
    session.add(user)
    session.flush()
    session.add(FamilyLink(user_id=user.id, client_id=client_id))
    return user.id


# --- the day's notices ---------------------------------------------------------------------------
def test_the_days_notices_reach_the_program_and_the_family_once_a_day(
    session: Session, mailbox: Mailbox
) -> None:
    # The first run is a day ago (yesterday's "now"), the second now: every test is in the past.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    today = now.date()
    # Walter's battery went in 171 days ago and lasts 180: due in 9 days. His test passed today.
    walter, walter_pk = with_bracelet(session, "Walter", 0x3A7F, today - timedelta(days=171))
    record_daily_test(session, STAFF, walter_pk, now - timedelta(hours=2), True, "Ann")
    # Rose's battery is new; her bracelet last passed a test 30 hours ago: missed.
    rose, rose_pk = with_bracelet(session, "Rose", 0x4B10, today - timedelta(days=10))
    record_daily_test(session, STAFF, rose_pk, now - timedelta(hours=30), True, "Ann")
    ann = family_login(session, "ann.brown@example.org", walter)
    family_login(session, "roses-son", rose)  # no e-mail address on file: not mailed
    add_target(session, ADMIN, "program", "Program office",
               mail_url(mailbox.port, "office@example.org"))  # fmt: skip
    add_target(session, ADMIN, "family_mail", "Program mail", mail_url(mailbox.port))
    session.commit()

    sent = send_daily(session, ADMIN, today, now, UTC).outcomes
    assert sorted(o.status for o in sent) == ["sent", "sent"], sent
    mailbox.wait_for(2)
    assert mailbox.count() == 2
    (office,) = mailbox.to("office@example.org")
    assert office["Subject"] == f"SafetyNet: 2 bracelets need attention ({today})"
    body = text_of(office)
    due = today + timedelta(days=9)  # the truth: 171 days in, 180 days of battery
    assert (
        f"Bracelet 3A7F (Walter Brown): the battery is due for a change in 9 days, on {due}."
        in body
    )
    last = (now - timedelta(hours=30)).strftime("%H:%M on %Y-%m-%d")
    assert f"Bracelet 4B10 (Rose Brown) has not passed a daily test since {last} (UTC)." in body
    assert body.index("Batteries due") < body.index("Daily tests missed")
    (family,) = mailbox.to("ann.brown@example.org")
    assert family["Subject"] == "SafetyNet: Walter Brown's bracelet needs attention"
    family_body = text_of(family)
    assert "due for a change in 9 days" in family_body
    assert "call the program" in family_body
    assert "Rose" not in family_body  # a family hears of its own client only

    # The same day again: nothing new is sent.
    again = send_daily(session, ADMIN, today, now + timedelta(hours=3), UTC).outcomes
    assert [o.status for o in again] == ["already sent", "already sent"]
    time.sleep(0.3)
    assert mailbox.count() == 2

    # The next day: the notices again, a day closer (Walter's bracelet tested again that day).
    record_daily_test(session, STAFF, walter_pk, now + timedelta(hours=22), True, "Ann")
    session.commit()
    next_day = send_daily(
        session, ADMIN, today + timedelta(days=1), now + timedelta(days=1), UTC
    ).outcomes
    assert [o.status for o in next_day] == ["sent", "sent"]
    mailbox.wait_for(4)
    office_2 = mailbox.to("office@example.org")[-1]
    assert "due for a change in 8 days" in text_of(office_2)
    assert "4B10 (Rose Brown) has not passed a daily test" in text_of(office_2)
    assert "in 8 days" in text_of(mailbox.to("ann.brown@example.org")[-1])
    assert mailbox.count() == 4

    (office_target,) = [t["id"] for t in list_targets(session, STAFF) if t["scope"] == "program"]
    rows = session.scalars(select(NoticeSent).order_by(NoticeSent.day, NoticeSent.id)).all()
    assert sorted((r.day, r.notice_key, r.recipient_key, r.status) for r in rows) == sorted(
        (day, key, who, NoticeStatus.SENT)
        for day in (today, today + timedelta(days=1))
        for key, who in (("battery:3A7F", f"target:{office_target}"),
                         ("daily-test:4B10", f"target:{office_target}"),
                         ("battery:3A7F", f"family:{ann}"))
    )  # fmt: skip


def test_a_battery_is_announced_in_words_from_two_weeks_before_until_changed(
    session: Session, mailbox: Mailbox
) -> None:
    today = date(2026, 12, 3)
    assert battery_text("3A7F", "W B", date(2026, 12, 4), 1).endswith("tomorrow, 2026-12-04.")
    assert battery_text("3A7F", "W B", today, 0).endswith("today, 2026-12-03.")
    assert "was due for a change yesterday 2026-12-02" in battery_text(
        "3A7F", "W B", date(2026, 12, 2), -1
    )
    assert "3 days ago, on 2026-11-30: change it now" in battery_text(
        "3A7F", "W B", date(2026, 11, 30), -3
    )
    now = datetime.now(UTC)
    day = now.date()
    # 15 days left: not yet; 14 left: announced; overdue: announced.
    for first, bracelet_id, age_days in (("Ada", 0x0001, 165), ("Bea", 0x0002, 166),
                                          ("Cy", 0x0003, 185)):  # fmt: skip
        _, pk = with_bracelet(session, first, bracelet_id, day - timedelta(days=age_days))
        record_daily_test(session, STAFF, pk, now - timedelta(minutes=5), True, "staff")
    add_target(session, ADMIN, "program", "Office", mail_url(mailbox.port, "office@example.org"))
    session.commit()
    (sent,) = send_daily(session, ADMIN, day, now, UTC).outcomes
    assert sent.notice_keys == ("battery:0003", "battery:0002")  # overdue first
    mailbox.wait_for(1)
    body = text_of(mailbox.messages[0])
    assert "0001" not in body
    assert "Bracelet 0002 (Bea Brown): the battery is due for a change in 14 days" in body
    assert "Bracelet 0003 (Cy Brown): the battery was due for a change 5 days ago" in body
    assert "Daily tests missed" not in body


def test_a_dry_run_sends_and_records_nothing(session: Session, mailbox: Mailbox) -> None:
    now = datetime.now(UTC)
    with_bracelet(session, "Walter", 0x3A7F, now.date() - timedelta(days=1))  # never tested
    alone = send_daily(session, ADMIN, now.date(), now, UTC)  # with no target: told, sent to none
    assert [n.key for n in alone.notices] == ["daily-test:3A7F"]
    assert alone.outcomes == ()
    add_target(session, ADMIN, "program", "Office", mail_url(mailbox.port, "office@example.org"))
    session.commit()
    (would,) = send_daily(session, ADMIN, now.date(), now, UTC, dry_run=True).outcomes
    assert would.status == "would send"
    assert would.notice_keys == ("daily-test:3A7F",)
    time.sleep(0.2)
    assert mailbox.count() == 0
    assert session.scalars(select(NoticeSent)).all() == []


def test_a_failed_notice_is_recorded_masked_and_kept_for_a_retry(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    now = datetime.now(UTC)
    with_bracelet(session, "Walter", 0x3A7F, now.date() - timedelta(days=1))  # never tested
    dead = free_port()  # nothing listens there
    add_target(session, ADMIN, "program", "Office",
               mail_url(dead, "office@example.org", user="office"))  # fmt: skip
    session.commit()
    with caplog.at_level(logging.DEBUG):
        (first,) = send_daily(session, ADMIN, now.date(), now, UTC, timeout_s=2.0).outcomes
        (second,) = send_daily(session, ADMIN, now.date(), now, UTC, timeout_s=2.0).outcomes
    assert first.status == "failed"
    assert second.status == "waiting to be retried"  # the retry sends it, not the day's run
    rows = session.scalars(select(NoticeSent)).all()
    assert [r.status for r in rows] == [NoticeStatus.PENDING]
    assert rows[0].attempts == 1
    assert rows[0].next_try_at is not None
    assert rows[0].finished_at is not None
    assert 59 <= (rows[0].next_try_at - rows[0].finished_at).total_seconds() <= 61
    assert all(r.error and "Connection error" in r.error for r in rows), rows[0].error
    assert "office:****@127.0.0.1" in rows[0].recipient
    shown = " ".join(f"{r.recipient} {r.error}" for r in rows) + caplog.text
    shown += str(recent_notices(session, STAFF)) + str(list_targets(session, STAFF))
    assert PASSWORD not in shown


def test_the_database_holds_a_notice_to_once_a_day(session: Session) -> None:
    day, at = date(2026, 12, 3), datetime(2026, 12, 3, 7, tzinfo=UTC)

    def row(status: NoticeStatus, on: date = day) -> NoticeSent:
        return NoticeSent(day=on, notice_key="battery:3A7F", recipient_key="target:x",
                          recipient="Office", subject="s", status=status, at=at)  # fmt: skip

    session.add_all([row(NoticeStatus.FAILED), row(NoticeStatus.FAILED), row(NoticeStatus.SENT)])
    session.commit()  # failures may repeat; one that went out stands
    session.add(row(NoticeStatus.SENDING))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(row(NoticeStatus.SENDING, day + timedelta(days=1)))
    session.commit()  # the next day it may go again


# --- the targets -------------------------------------------------------------------------------
def test_targets_apprise_cannot_read_are_refused_by_name(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    for scope, label, url, field_name, message in [
        ("program", "Office", f"bogus://dana:{PASSWORD}@example.org",
         "url", "Apprise cannot read the target “bogus://dana:****@example.org”: “bogus://” "
         "is no service Apprise knows"),
        ("program", "Office", f"twilio://AC{'x' * 32}:tok@15551234567/15557654321",
         "url", f"Apprise says: An invalid Twilio Account SID (AC{'x' * 32}) was specified."),
        ("program", "Office", "dana@example.org", "url", "it is not a URL"),
        ("program", "Office", "mailto://", "url", "Apprise cannot read the target"),
        ("program", "Office", "mailtos://a b@example.org", "url", "one line without spaces"),
        ("program", "Office", "", "url", "Give the target's Apprise URL"),
        ("program", " ", mail_url(25, "x@example.org"), "label", "Say who the target reaches"),
        ("everyone", "Office", mail_url(25, "x@example.org"), "scope", "Choose whom"),
        ("family_mail", "Mail", "json://hooks.example.org/x", "url", "must be e-mail"),
        ("family_mail", "Mail", mail_url(25, "x@example.org"), "url", "must name no recipient"),
    ]:  # fmt: skip
        with pytest.raises(RegistryInputError) as err:
            add_target(session, ADMIN, scope, label, url)
        assert message in err.value.errors[field_name], (url, err.value.errors)
        assert PASSWORD not in str(err.value)
    assert "Unparseable URL bogus://dana:****@example.org" in caplog.text  # Apprise's own line
    assert PASSWORD not in caplog.text
    assert list_targets(session, STAFF) == []
    with pytest.raises(ForbiddenError):  # program staff see the targets; admins keep them
        add_target(session, STAFF, "program", "Office", mail_url(25, "x@example.org"))
    dana = f"mailtos://dana:{PASSWORD}@smtp.example.org?to=dana@example.org"
    kept = add_target(session, ADMIN, "search", " Sgt. Dana Ruiz ", dana)
    assert kept.label == "Sgt. Dana Ruiz"
    add_target(session, ADMIN, "family_mail", "Program mail", mail_url(25))
    with pytest.raises(RegistryInputError, match="remove it first"):
        add_target(session, ADMIN, "family_mail", "Other", mail_url(26))
    (search, family) = sorted(list_targets(session, STAFF), key=lambda t: t["scope"] != "search")
    assert search["shown"] == "mailtos://dana:****@smtp.example.org/dana@example.org"
    assert family["scope"] == "family_mail"
    with pytest.raises(ForbiddenError):
        remove_target(session, STAFF, kept.id)
    remove_target(session, ADMIN, kept.id)
    assert [t["scope"] for t in list_targets(session, STAFF)] == ["family_mail"]
    assert check_target("program", "X", "json://hooks.example.org/a")[0] is NotifyScope.PROGRAM


@pytest.mark.parametrize(("url", "secret"), [
    ("mailtos://bob:s3cretPass@smtp.example.org?to=x@example.org", "s3cretPass"),
    ("json://hooks.example.org/alert?-X-Token=tok123secret", "tok123secret"),
    ("jsons://user:hookpass99@hooks.example.org/alert", "hookpass99"),
    ("tgram://123456789:AAbbCCddEEffGGhhIIjjKKll/12345", "AAbbCCddEEffGGhhIIjjKKll"),
    ("discord://1234567890/WebhookTokenSecretValue", "WebhookTokenSecretValue"),
    ("twilio://AC0123456789abcdef0123456789abcdef:AuthTokenSecret99@15551234567/15557654321",
     "AuthTokenSecret99"),
    ("ntfy://user:ntfypass1@ntfy.example.org/topic", "ntfypass1"),
    ("gotify://gotify.example.org/AppTokenSecretXYZ", "AppTokenSecretXYZ"),
    ("bogus://dana:hunter2@example.org/abcdefghijklmnop?apikey=zzzsecret", "zzzsecret"),
])  # fmt: skip
def test_secrets_never_show_in_a_target(url: str, secret: str) -> None:
    assert secret not in masked(url)


@fuzz(60)
@given(st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=6,
               max_size=40))  # fmt: skip
def test_a_mail_password_never_shows(password: str) -> None:
    url = f"mailtos://office:{password}@smtp.example.org?to=office@example.org"
    shown = masked(url)
    assert password not in shown
    assert shown.startswith("mailtos://office:****@smtp.example.org")


# --- the search's notices ----------------------------------------------------------------------
def notifier(session: Session, timeout_s: float = 5.0) -> Outbox:
    outbox = Outbox()
    session.info[NOTIFIER] = Notifier(outbox=outbox, zone=UTC, timeout_s=timeout_s)
    return outbox


def test_search_opened_and_found_reach_the_people_the_program_names(
    session: Session, mailbox: Mailbox
) -> None:
    outbox = notifier(session)
    walter, _ = with_bracelet(session, "Walter", 0x3A7F, date.today() - timedelta(days=10))
    family_login(session, "ann.brown@example.org", walter)
    add_target(session, ADMIN, "family_mail", "Program mail", mail_url(mailbox.port))
    add_target(session, ADMIN, "program", "Office", mail_url(mailbox.port, "office@example.org"))
    for name, address in (("Sgt. Dana Ruiz", "dana@example.org"), ("SAR lead", "lee@example.org")):
        add_target(session, ADMIN, "search", name, mail_url(mailbox.port, address))
    session.commit()
    seen = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    search = open_search(session, DISPATCHER, walter, *LAST_KNOWN, seen, clothing="blue coat")
    time.sleep(0.3)
    assert mailbox.count() == 0  # nothing before the search is committed
    session.commit()
    assert outbox.wait(10)
    mailbox.wait_for(2)
    for address in ("dana@example.org", "lee@example.org"):
        (opened,) = mailbox.to(address)
        assert opened["Subject"] == "Search opened: Walter Brown"
        body = text_of(opened)
        assert f"Last seen at {seen:%H:%M on %Y-%m-%d} (UTC), at 42.30206, -71.05761." in body
        assert "Bracelet 3A7F, channel 19." in body
        assert "Wearing: blue coat" in body
        assert "has never passed a daily test" in body  # the dispatcher's warning, too
        assert search.id in body
    where = {"lat_deg": 42.305, "lon_deg": -71.06, "condition": "cold, unhurt"}
    found = set_status(session, DISPATCHER, search.id, "found", search.version, where)
    session.commit()
    assert outbox.wait(10)
    mailbox.wait_for(4)
    (news,) = [
        m for m in mailbox.to("dana@example.org") if m["Subject"] != "Search opened: Walter Brown"
    ]
    assert news["Subject"] == "Found: Walter Brown"
    assert found.found_at is not None
    assert (
        f"was found at {found.found_at:%H:%M on %Y-%m-%d} (UTC), at 42.30500, -71.06000"
        in text_of(news)
    )
    assert "cold" not in text_of(news)  # their condition stays in SafetyNet
    assert len(mailbox.to("lee@example.org")) == 2
    assert mailbox.to("office@example.org") == []  # the program's daily target: not for searches
    assert mailbox.to("ann.brown@example.org") == []
    rows = session.scalars(select(NoticeSent)).all()
    assert (
        sorted(r.notice_key.split(":")[0] for r in rows)
        == ["search-found"] * 2 + ["search-opened"] * 2
    )
    assert {r.status for r in rows} == {NoticeStatus.SENT}


def test_a_search_rolled_back_tells_no_one(session: Session, mailbox: Mailbox) -> None:
    outbox = notifier(session)
    walter, _ = with_bracelet(session, "Walter", 0x3A7F, date.today())
    add_target(session, ADMIN, "search", "Dana", mail_url(mailbox.port, "dana@example.org"))
    session.commit()
    open_search(session, DISPATCHER, walter, *LAST_KNOWN, datetime.now(UTC))
    session.rollback()
    session.add(User(username="late", display_name="l", password_hash="x", role=Role.SEARCHER))
    session.commit()  # a later commit of the same session sends nothing of the search undone
    assert outbox.wait(5)
    time.sleep(0.3)
    assert mailbox.count() == 0
    assert session.scalars(select(Search)).all() == []


def test_a_dead_or_silent_mail_server_neither_holds_nor_loses_a_search(
    session: Session, silent: int, caplog: pytest.LogCaptureFixture
) -> None:
    timeout_s = 2.0
    outbox = notifier(session, timeout_s)
    walter, _ = with_bracelet(session, "Walter", 0x3A7F, date.today())
    add_target(session, ADMIN, "search", "Dana, dead server",
               mail_url(free_port(), "dana@example.org"))  # fmt: skip
    add_target(session, ADMIN, "search", "Lee, silent server",
               mail_url(silent, "lee@example.org", user="lee"))  # fmt: skip
    session.commit()
    with caplog.at_level(logging.INFO):
        started = time.perf_counter()
        search = open_search(session, DISPATCHER, walter, *LAST_KNOWN, datetime.now(UTC))
        session.commit()
        opened_s = time.perf_counter() - started
        search_id = search.id
        assert outbox.wait(4 * timeout_s + 10)
        sent_s = time.perf_counter() - started
    print(f"\nopening a search with a dead and a silent mail server: {opened_s * 1000:.1f} ms; "
          f"its notices gave up {sent_s:.2f} s later (timeout {timeout_s} s)")  # fmt: skip
    assert opened_s < timeout_s  # the search did not wait for the mail
    assert session.get(Search, search_id) is not None  # and was not lost
    rows = {r.recipient.split(" (")[0]: r for r in session.scalars(select(NoticeSent))}
    assert {r.status for r in rows.values()} == {NoticeStatus.PENDING}  # kept for a retry
    hung = rows["Lee, silent server"]
    assert hung.finished_at is not None
    waited_s = (hung.finished_at - hung.at).total_seconds()
    assert timeout_s * 0.9 <= waited_s < timeout_s * 3, waited_s  # it gave up at the timeout
    assert "gave up after" in (hung.error or "")
    assert "notice search-opened:" in caplog.text
    assert "failed" in caplog.text
    assert PASSWORD not in caplog.text + str(recent_notices(session, STAFF))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("registry")]
    assert ours
    assert not any("Walter" in m for m in ours)


# --- the command line --------------------------------------------------------------------------
def test_the_command_sends_the_days_notices_once(
    db_url: str, session: Session, mailbox: Mailbox
) -> None:
    now = datetime.now(UTC)
    _walter, pk = with_bracelet(session, "Walter", 0x3A7F, now.date() - timedelta(days=175))
    record_daily_test(session, STAFF, pk, now - timedelta(minutes=1), True, "staff")
    add_target(session, ADMIN, "program", "Office",
               mail_url(mailbox.port, "office@example.org", user="office"))  # fmt: skip
    session.commit()
    env = {**os.environ, "SAFETYNET_DATABASE_URL": db_url, "SAFETYNET_TIME_ZONE": "UTC"}

    def notify(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "safetynet", "registry", "notify", *words],
                              capture_output=True, text=True, env=env, timeout=120,
                              check=False)  # fmt: skip

    dry = notify("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: nothing is sent" in dry.stdout
    assert "1 notice(s): battery:3A7F" in dry.stdout
    due = (now.date() + timedelta(days=5)).isoformat()  # 175 days into 180
    assert (
        f"Bracelet 3A7F (Walter Brown): the battery is due for a change in 5 days, on {due}."
        in dry.stdout
    )
    assert "would send" in dry.stdout
    assert "no mail account for families is set" in dry.stdout
    assert mailbox.count() == 0
    real = notify()
    assert real.returncode == 0, real.stdout + real.stderr
    assert "sent         Office (mailto://office:****@127.0.0.1" in real.stdout
    mailbox.wait_for(1)
    assert "in 5 days" in text_of(mailbox.messages[0])
    again = notify()
    assert "already sent" in again.stdout
    assert PASSWORD not in dry.stdout + real.stdout + again.stdout + real.stderr
    assert mailbox.count() == 1
    bad = notify("--battery-days", "x")
    assert bad.returncode == 2
    assert "a whole number of days, 0..365" in bad.stderr
    session.expire_all()
    assert session.get(Bracelet, pk) is not None
