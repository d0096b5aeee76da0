"""Notices that could not be delivered are retried, on SQLite and PostgreSQL, against a real
SMTP server that goes away and comes back: a wander alert and the search opened from it, raised
while the mail server is down, are kept pending with their tries and the time of the next one;
the retry (what cron's home-check runs every minute) waits for that time, tries again with a
longer wait while the server is still down, and delivers each message exactly once when it is
back — two retries running at once included — and never again after; a notice that never gets
through is given up after the last try, its message forgotten."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import home_stations as hs
from registry.models import NoticeSent, NoticeStatus, StoredReport
from registry.notify import MAX_ATTEMPTS, RETRY_AFTER_S, engine_of, retry_pending
from tests.mail_support import Mailbox, free_port, smtp_server, text_of
from tests.registry.test_home_stations import DISPATCHER, minutes, setup, simulate

ADDRESSES = ("office@example.org", "dispatch@example.org", "ann.brown@example.org")


def rows(session: Session) -> list[NoticeSent]:
    session.expire_all()
    return list(session.scalars(select(NoticeSent).order_by(NoticeSent.id)))


def due_at(session: Session) -> datetime:
    """A moment just past every pending row's next try."""
    pending = [r.next_try_at for r in rows(session) if r.status is NoticeStatus.PENDING]
    assert pending
    return max(t for t in pending if t is not None) + timedelta(seconds=1)


def wander_alert_while_the_mail_is_down(session: Session, port: int) -> str:
    """A station stops hearing the bracelet and the alert is raised; the search is opened from
    it; every notice fails, the mail server at ``port`` being down. The alert's id."""
    client, outbox = setup(session, Mailbox(port), wander_after_min=5)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    simulate(session, start, start + timedelta(minutes=20), start + timedelta(minutes=5))
    session.commit()
    raised = None
    for tick in minutes(start + timedelta(minutes=5), 15):
        raised = raised or next(iter(hs.check_stations(session, tick)), None)
        session.commit()
    assert raised is not None
    hs.search_from_alert(session, DISPATCHER, raised.id)
    session.commit()
    assert outbox.wait(30)
    assert client
    return raised.id


def test_a_notice_is_retried_until_the_mail_server_is_back_and_sent_once(
    session: Session,
) -> None:
    port = free_port()  # the mail server is down: nothing listens there
    alert_id = wander_alert_while_the_mail_is_down(session, port)
    engine = engine_of(session)
    first = rows(session)
    keys = {(r.notice_key.split(":")[0], r.recipient_key.split(":")[0]) for r in first}
    # The wander alert to the program, dispatch and the family; the search opened, to dispatch.
    assert keys == {("wander", "target"), ("wander", "family"), ("search-opened", "target")}
    assert len(first) == 4
    for r in first:
        assert r.status is NoticeStatus.PENDING
        assert r.attempts == 1
        assert r.body
        assert r.next_try_at is not None
        assert r.finished_at is not None
        wait_s = (r.next_try_at - r.finished_at).total_seconds()
        assert abs(wait_s - RETRY_AFTER_S[0]) < 1.0
    assert f"Alert {alert_id}" in next(r.body or "" for r in first if r.notice_key.startswith("w"))
    # Not yet due: nothing is tried.
    assert retry_pending(engine, datetime.now(UTC), timeout_s=2.0) == []
    assert {r.attempts for r in rows(session)} == {1}
    # Due, the server still down: tried again, and the next wait is longer.
    again = retry_pending(engine, due_at(session), timeout_s=2.0)
    assert [o.status for o in again] == ["failed"] * 4
    for r in rows(session):
        assert r.status is NoticeStatus.PENDING
        assert r.attempts == 2
        assert r.next_try_at is not None
        assert r.finished_at is not None
        assert abs((r.next_try_at - r.finished_at).total_seconds() - RETRY_AFTER_S[1]) < 1.0
    # The server comes back where it was; two retries run at once: each message goes once.
    with smtp_server(port) as box:
        when = due_at(session)
        threads = [threading.Thread(target=retry_pending, args=(engine, when, 5.0))
                   for _ in range(2)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        box.wait_for(4)
        for r in rows(session):
            assert r.status is NoticeStatus.SENT
            assert r.attempts == 3
            assert r.body is None
            assert r.next_try_at is None
        for address in ADDRESSES:
            got = box.to(address)
            assert got, address
            assert any("Wander alert" in str(m["Subject"]) for m in got)
        dispatch = [str(m["Subject"]) for m in box.to("dispatch@example.org")]
        assert sorted(s.split(":")[0] for s in dispatch) == ["Search opened", "Wander alert"]
        assert "has not heard" in text_of(box.to("office@example.org")[0])
        # Later runs find nothing to send: a notice delivered never goes twice.
        assert retry_pending(engine, when + timedelta(days=1), timeout_s=2.0) == []
        assert box.count() == 4


def test_a_notice_that_never_gets_through_is_given_up_after_the_last_try(
    session: Session,
) -> None:
    wander_alert_while_the_mail_is_down(session, free_port())
    engine = engine_of(session)
    for _ in range(MAX_ATTEMPTS - 1):
        retry_pending(engine, due_at(session), timeout_s=2.0)
    for r in rows(session):
        assert r.status is NoticeStatus.FAILED
        assert r.attempts == MAX_ATTEMPTS
        assert r.body is None
        assert r.next_try_at is None
        assert r.error
    assert retry_pending(engine, datetime.now(UTC) + timedelta(days=1), timeout_s=2.0) == []
    assert session.scalar(select(StoredReport.id).limit(1)) is not None  # the reports stay
