"""Notifications out of the server, through Apprise: where they go, how a target is checked and
shown, and how a notice is sent once a day per recipient, in the background when a request
asked for it.

A *target* (:class:`~registry.models.NotifyTarget`) is an Apprise URL — ``mailtos://`` e-mail,
an SMS gateway, a chat webhook — with words for who it reaches, in one of three scopes: the
program itself (batteries due and daily tests missed, for every client), someone the program
names for searches (search opened, person found), and the mail account families' e-mail goes
out through: a family login named by its e-mail address receives its own client's notices.
Program admins keep the targets; program staff see them.

A URL may carry a password or a token. :func:`masked` is the only form of it shown anywhere —
on the pages, in the log of notices sent, in the server's log.

:func:`deliver` sends one message, each connection and read bounded by :data:`SEND_TIMEOUT_S`,
and never raises: it answers why it failed. :func:`send_notices` claims every notice in
``notice_sent`` before it goes out, so that a notice reaches a recipient once a day and never
twice, and records how it went. A message that could not be delivered (the mail server down,
the chat service refusing) is kept *pending* with its text, its number of tries and the time of
the next one; :func:`retry_pending`, which ``safetynet registry home-check`` runs every minute
from cron, sends it again then, waiting longer after each failure (:data:`RETRY_AFTER_S`), and
gives up — *failed* — after the last. A retry claims its rows first, as a first send does, so
that two runs never send one twice, and a notice delivered is never sent again.

A search's notices (:func:`search_opened`, :func:`search_found`) wait for the search's
transaction to commit — nothing goes out for a search rolled back — and are sent by the
:class:`Outbox`'s threads: a slow or dead mail server never holds the request that opened the
search, and its failure is logged and recorded (pending, for a retry), never raised. No
clinical detail goes into a notice; the server's log names IDs, never a client.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from sqlalchemy import Engine, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.access import may
from registry.fields import RegistryInputError
from registry.models import (
    AuditEntry,
    FamilyLink,
    NoticeSent,
    NoticeStatus,
    NotifyScope,
    NotifyTarget,
    Role,
    User,
)
from safetynet.errors import ForbiddenError, NotFoundError

if TYPE_CHECKING:
    from registry.service import Actor

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 10.0  # each connection and each read of one send: a dead server gives up then
MAX_URL_CHARS = 2000
MAX_LABEL_CHARS = 200
MAX_ERROR_CHARS = 500
RECENT_NOTICES = 20  # the program page lists this many of the last notices sent
MASK = "****"
# How long a notice that could not be delivered waits before each retry (seconds): after the
# first failure a minute, then longer; after the last it is given up (about 4 hours in all).
RETRY_AFTER_S = (60.0, 120.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)
MAX_ATTEMPTS = len(RETRY_AFTER_S) + 1
RETRY_BATCH = 200  # pending rows looked at by one run
SCOPE_LABELS = {
    NotifyScope.PROGRAM: "The program: batteries due and daily tests missed",
    NotifyScope.SEARCH: "Named for searches: search opened, person found",
    NotifyScope.FAMILY_MAIL: "The mail account families' e-mail goes out through",
}
MAIL_SCHEMES = ("mailto", "mailtos")
# A family login named by an e-mail address (the only address the registry keeps for one).
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# Of the parameters Apprise writes back, those that say who a target reaches (the rest are its
# defaults: noise on a page).
_SHOWN_PARAMS = frozenset({"to", "from", "cc", "bcc", "smtp"})
# Query parameters whose values are secrets (an API key, a token, a signature, a header).
_SECRET_WORDS = ("pass", "pwd", "token", "secret", "key", "auth", "sig", "cred", "session")
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
_APPRISE_LOG = logging.getLogger("apprise")


# --- a target's URL: read by Apprise, shown masked -------------------------------------------
def _mask_raw(text: str) -> str:
    """``text`` (a URL Apprise could not read) with what may be secret hidden: the password,
    long path segments and host names without a dot (tokens), secret-looking parameters."""
    return _mask_url(text, raw=True)


def _mask_url(text: str, raw: bool) -> str:
    """``text`` with its password and secret-looking parameters hidden; as Apprise wrote it back
    (``raw`` False), only the parameters that say who it reaches are kept."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return "(not a URL)"
    if not parts.scheme:
        return "(not a URL)"
    userinfo, at, host = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK
    host = unquote(host)
    if raw and len(host) >= 16 and "." not in host:
        host = host[:2] + "…"
    segments = unquote(parts.path).rstrip("/").split("/")
    if raw:
        segments = [s[:2] + "…" if len(s) >= 12 and "@" not in s else s for s in segments]
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        name = key.lower()
        if not raw and name not in _SHOWN_PARAMS:
            continue
        secret = key[:1] in "-+:" or any(word in name for word in _SECRET_WORDS)
        query.append(f"{key}={MASK if secret else value}")
    out = f"{parts.scheme}://{userinfo}{at}{host}{'/'.join(segments)}"
    return out + ("?" + "&".join(query) if query else "")


def _mask_text(text: str) -> str:
    """A message (Apprise's) with every URL in it masked."""
    return _URL_IN_TEXT.sub(lambda m: _mask_raw(m.group(0)), text)


class _MaskUrls(logging.Filter):
    """Apprise's own log lines with every URL in them masked (it leaves a secret's first and
    last characters): the server's log never holds a target's secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "://" in text:
            record.msg, record.args = _mask_text(text), ()
        return True


_APPRISE_LOG.addFilter(_MaskUrls())


@contextmanager
def _apprise_said() -> Iterator[list[str]]:
    """What Apprise warns of on this thread meanwhile (masked), kept out of other sends'."""
    said: list[str] = []
    me = threading.get_ident()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == me and record.levelno >= logging.WARNING:
                said.append(_mask_text(record.getMessage()))

    handler = Keep(logging.WARNING)
    _APPRISE_LOG.addHandler(handler)
    try:
        yield said
    finally:
        _APPRISE_LOG.removeHandler(handler)


def _plugin(url: str) -> Any:
    """Apprise's sender for ``url`` (None: Apprise cannot read it)."""
    import apprise

    return apprise.Apprise.instantiate(url)


def masked(url: str) -> str:
    """``url`` as a page or a log may show it: passwords, tokens and keys hidden (Apprise's own
    privacy form where it reads the URL, with its default parameters left out)."""
    with _apprise_said():
        plugin = _plugin(url)
    if plugin is None:
        return _mask_raw(url)
    return _mask_url(plugin.url(privacy=True), raw=False)


def check_target(scope: str, label: str, url: str) -> tuple[NotifyScope, str, str]:
    """A target as typed, checked whole (every problem at once, by field): the scope, who it
    reaches in words, and an Apprise URL that Apprise reads; the mail account for families must
    be e-mail naming no recipient of its own. Returns them cleaned."""
    errors: dict[str, str] = {}
    try:
        kind = NotifyScope(scope)
    except ValueError:
        kind = NotifyScope.PROGRAM
        errors["scope"] = "Choose whom the target is for: " + "; ".join(SCOPE_LABELS.values())
    who = label.strip() if isinstance(label, str) else ""
    if not who:
        errors["label"] = "Say who the target reaches (Program office, Sgt. Dana Ruiz)."
    elif len(who) > MAX_LABEL_CHARS:
        errors["label"] = f"Who it reaches takes at most {MAX_LABEL_CHARS} characters."
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        errors["url"] = (
            "Give the target's Apprise URL, such as "
            "mailtos://user:password@smtp.example.org?to=office@example.org."
        )
    elif len(text) > MAX_URL_CHARS or any(ch.isspace() for ch in text):
        errors["url"] = (
            f"An Apprise URL is one line without spaces, at most {MAX_URL_CHARS} characters."
        )
    else:
        with _apprise_said() as said:
            plugin = _plugin(text)
        if plugin is None:
            errors["url"] = _unread(text, said)
        elif kind is NotifyScope.FAMILY_MAIL:
            problem = _family_mail_problem(text)
            if problem:
                errors["url"] = problem
    if errors:
        raise RegistryInputError.of(errors)
    return kind, who, text


def _unread(url: str, said: list[str]) -> str:
    """Why Apprise cannot read ``url``, naming it (masked) and what to check."""
    from apprise.manager_plugins import NotificationManager  # the schemes Apprise knows

    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    if not scheme:
        return (
            "Apprise cannot read the target: it is not a URL. An Apprise URL starts with its "
            "service, such as mailtos:// for e-mail."
        )
    head = f"Apprise cannot read the target “{_mask_raw(url)}”"
    if scheme not in NotificationManager():  # type: ignore[no-untyped-call]
        return (
            f"{head}: “{scheme}://” is no service Apprise knows. E-mail is mailto:// or "
            "mailtos://; see Apprise's list of services."
        )
    # Apprise's reason, before its "could not load" that only names the URL again.
    why = [line for line in said if not line.startswith(("Unparseable", "Could not load"))]
    detail = f" (Apprise says: {why[0]})" if why else ""
    return f"{head}{detail}. Check its parts against Apprise's page for {scheme}://."


def _family_mail_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in MAIL_SCHEMES:
        return (
            f"The mail account for families must be e-mail (mailto:// or mailtos://), not "
            f"“{parts.scheme}://”."
        )
    named = [k for k, _ in parse_qsl(parts.query) if k.lower() in ("to", "cc", "bcc")]
    if parts.path.strip("/") or named:
        return (
            "The mail account for families must name no recipient (no “to=”, “cc=”, “bcc=” "
            "or address after the server): each family's own address is put in."
        )
    return None


def with_recipient(mail_url: str, address: str) -> str:
    """The families' mail account ``mail_url`` sending to ``address`` alone."""
    parts = urlsplit(mail_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in ("to", "cc", "bcc")]  # fmt: skip
    query.append(("to", address))
    return urlunsplit(parts._replace(path="", query=urlencode(query)))


# --- keeping the targets ----------------------------------------------------------------------
def _keeper(actor: Actor) -> None:
    if not may(actor.role, "notify_targets"):
        raise ForbiddenError(
            f"a {actor.role.value} may not change where notices go (program admins do)"
        )


def _reader(actor: Actor) -> None:
    if not may(actor.role, "program_lists"):
        raise ForbiddenError("where notices go is for program staff and admins")


def _audit(session: Session, actor: Actor, action: str, target_id: str, reason: str) -> None:
    session.add(AuditEntry(at=datetime.now(UTC), user_id=actor.user_id, action=action,
                           entity="notify_target", entity_id=target_id, fields=[],
                           reason=reason))  # fmt: skip


def add_target(session: Session, actor: Actor, scope: str, label: str, url: str) -> NotifyTarget:
    """Add a target (program admins); checked by :func:`check_target`. One mail account for
    families at most."""
    _keeper(actor)
    kind, who, text = check_target(scope, label, url)
    if kind is NotifyScope.FAMILY_MAIL:
        current = session.scalar(
            select(NotifyTarget).where(NotifyTarget.scope == NotifyScope.FAMILY_MAIL)
        )
        if current is not None:
            raise RegistryInputError.of({"scope": (
                f"Families' e-mail already goes out through “{masked(current.url)}” "
                f"({current.label}); remove it first to use another.")})  # fmt: skip
    target = NotifyTarget(scope=kind, label=who, url=text, created_at=datetime.now(UTC),
                          created_by=actor.user_id)  # fmt: skip
    session.add(target)
    session.flush()
    _audit(session, actor, "create", target.id, f"notification target added: {kind.value}")
    log.info("notification target %s added (%s) by user %s", target.id, kind.value, actor.user_id)
    return target


def remove_target(session: Session, actor: Actor, target_id: str) -> NotifyTarget:
    """Remove a target (program admins); the notices already sent to it stay in the log."""
    _keeper(actor)
    target = session.get(NotifyTarget, target_id)
    if target is None:
        raise NotFoundError(f"target: no notification target {target_id!r} (removed already?)")
    session.delete(target)
    session.flush()
    _audit(session, actor, "delete", target_id, f"notification target removed: {target.scope}")
    log.info("notification target %s removed by user %s", target_id, actor.user_id)
    return target


def list_targets(session: Session, actor: Actor) -> list[dict[str, Any]]:
    """Every target, by scope then name, its URL masked."""
    _reader(actor)
    order = list(NotifyScope)
    rows = [{"id": t.id, "scope": t.scope.value, "label": t.label, "shown": masked(t.url),
             "added_at": t.created_at}
            for t in session.scalars(select(NotifyTarget))]  # fmt: skip
    return sorted(rows, key=lambda r: (order.index(NotifyScope(r["scope"])), r["label"].lower()))


def family_addresses(
    session: Session, client_ids: Sequence[str] | None = None
) -> dict[str, list[tuple[str, str]]]:
    """The e-mail addresses on file for each client's family: the active family logins linked
    to the client whose username is an e-mail address, as ``(user id, address)``."""
    query = (
        select(FamilyLink.client_id, User.id, User.username)
        .join(User, User.id == FamilyLink.user_id)
        .where(User.role == Role.FAMILY, User.active.is_(True))
    )
    if client_ids is not None:
        query = query.where(FamilyLink.client_id.in_(list(client_ids)))
    out: dict[str, list[tuple[str, str]]] = {}
    for client_id, user_id, username in session.execute(query.order_by(User.username)):
        if EMAIL.fullmatch(username.strip()):
            out.setdefault(client_id, []).append((user_id, username.strip()))
    return out


def recent_notices(
    session: Session, actor: Actor, limit: int = RECENT_NOTICES
) -> list[dict[str, Any]]:
    """The last notices sent or tried, newest first."""
    _reader(actor)
    rows = session.scalars(select(NoticeSent).order_by(NoticeSent.at.desc(), NoticeSent.id.desc())
                           .limit(limit))  # fmt: skip
    out = []
    for r in rows:
        # "label (masked URL)": the URL has no spaces, so its parenthesis is the last " (".
        label, paren, address = r.recipient.rpartition(" (")
        out.append({"at": r.at, "day": r.day.isoformat(), "subject": r.subject,
                    "to": r.recipient, "to_label": label if paren else r.recipient,
                    "to_address": address.removesuffix(")") if paren else "",
                    "status": r.status.value, "error": r.error, "attempts": r.attempts,
                    "next_try_at": r.next_try_at})  # fmt: skip
    return out


# --- sending -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    """Someone a notice goes to: ``key`` names them in the log of notices sent
    (``target:<id>``, ``family:<user id>``), ``label`` in words, ``url`` their Apprise URL."""

    key: str
    label: str
    url: str

    @property
    def shown(self) -> str:
        return f"{self.label} ({masked(self.url)})"


@dataclass(frozen=True)
class Notice:
    """One thing to tell: ``key`` is what it is about, once a day per recipient
    (``battery:3A7F``, ``search-opened:<search id>``); ``subject`` its title when sent alone;
    ``text`` its paragraph."""

    key: str
    subject: str
    text: str


Compose = Callable[[Sequence[Notice]], tuple[str, str]]


def alone(notices: Sequence[Notice]) -> tuple[str, str]:
    """One notice as its own message (the first, when given more)."""
    return notices[0].subject, "\n\n".join(n.text for n in notices)


@dataclass(frozen=True)
class Outcome:
    """How a message to one recipient went: ``status`` is ``sent``, ``failed``,
    ``already sent`` (every notice in it reached them today) or ``would send`` (a dry run)."""

    recipient: str  # as shown, masked
    subject: str
    notice_keys: tuple[str, ...]
    status: str
    error: str | None = None
    elapsed_s: float = 0.0


def deliver(url: str, title: str, body: str, timeout_s: float = SEND_TIMEOUT_S) -> str | None:
    """Send one message to one Apprise URL, each connection and read bounded by ``timeout_s``.
    None when it was sent, else why not (masked); never raises."""
    from apprise import NotifyFormat

    started = time.monotonic()
    with _apprise_said() as said:
        plugin = _plugin(url)
        if plugin is None:
            return "Apprise cannot read this target any more" + (f": {said[-1]}" if said else "")
        plugin.socket_connect_timeout = timeout_s
        plugin.socket_read_timeout = timeout_s
        try:
            sent = bool(plugin.notify(body=body, title=title, body_format=NotifyFormat.TEXT))
        except Exception as err:  # a plugin's bug must not lose the notice's record
            return f"the sender broke: {type(err).__name__}"
    if sent:
        return None
    why = said[-1] if said else "the service refused the message or did not answer"
    return f"{why} (gave up after {time.monotonic() - started:.1f} s)"[:MAX_ERROR_CHARS]


def _sent_already(
    engine: Engine, day: date, recipient: Recipient, keys: list[str]
) -> dict[str, NoticeStatus]:
    """The notices among ``keys`` that reached the recipient on ``day``, are being sent, or
    wait for a retry (failed ones, given up, may be tried again)."""
    with Session(engine) as session:
        found = session.execute(select(NoticeSent.notice_key, NoticeSent.status).where(
            NoticeSent.day == day, NoticeSent.recipient_key == recipient.key,
            NoticeSent.notice_key.in_(keys),
            NoticeSent.status != NoticeStatus.FAILED))  # fmt: skip
        return {row.notice_key: row.status for row in found}


def _claim(engine: Engine, day: date, recipient: Recipient, shown: str, notice: Notice,
           subject: str) -> int | None:  # fmt: skip
    """Write the notice's row before it goes out; None: it reached them today already (or
    another run is sending it now)."""
    try:
        with Session(engine) as session, session.begin():
            row = NoticeSent(day=day, notice_key=notice.key, recipient_key=recipient.key,
                             recipient=shown[:400], subject=subject[:300],
                             status=NoticeStatus.SENDING, at=datetime.now(UTC))  # fmt: skip
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def _finish(engine: Engine, ids: list[int], error: str | None, subject: str, body: str) -> str:
    """Record how the message went for its rows: sent; or pending, with the message and when
    it is tried next; or, after :data:`MAX_ATTEMPTS` tries, failed. Returns the status."""
    now = datetime.now(UTC)
    status = NoticeStatus.SENT
    with Session(engine) as session, session.begin():
        for row in session.scalars(select(NoticeSent).where(NoticeSent.id.in_(ids))):
            row.attempts = (row.attempts or 0) + 1
            row.error, row.finished_at = error, now
            if error is None:
                status = NoticeStatus.SENT
                row.next_try_at = row.body = None
            elif row.attempts < MAX_ATTEMPTS:
                status = NoticeStatus.PENDING
                row.next_try_at = now + timedelta(seconds=RETRY_AFTER_S[row.attempts - 1])
                row.subject, row.body = subject[:300], body
            else:
                status = NoticeStatus.FAILED
                row.next_try_at = row.body = None
            row.status = status
    return status.value


def send_notices(
    engine: Engine, day: date, recipient: Recipient, notices: Sequence[Notice],
    compose: Compose = alone, *, dry_run: bool = False, timeout_s: float = SEND_TIMEOUT_S,
) -> Outcome:  # fmt: skip
    """Send ``recipient`` the ``notices`` that have not reached them on ``day``, in one message
    (``compose`` makes its title and body from those), and record how it went. A dry run
    writes and sends nothing."""
    shown = recipient.shown
    done = _sent_already(engine, day, recipient, [n.key for n in notices])
    fresh = [n for n in notices if n.key not in done]
    if not fresh:
        waiting = NoticeStatus.PENDING in done.values()
        return Outcome(shown, "", tuple(n.key for n in notices),
                       "waiting to be retried" if waiting else "already sent")  # fmt: skip
    if dry_run:
        subject, _ = compose(fresh)
        return Outcome(shown, subject, tuple(n.key for n in fresh), "would send")
    claimed: list[tuple[Notice, int]] = []
    subject, _ = compose(fresh)
    for notice in fresh:
        row = _claim(engine, day, recipient, shown, notice, subject)
        if row is not None:
            claimed.append((notice, row))
    if not claimed:
        return Outcome(shown, "", tuple(n.key for n in notices), "already sent")
    subject, body = compose([n for n, _ in claimed])
    started = time.monotonic()
    error = deliver(recipient.url, subject, body, timeout_s)
    elapsed = time.monotonic() - started
    keys = tuple(n.key for n, _ in claimed)
    status = _finish(engine, [row for _, row in claimed], error, subject, body)
    if error is None:
        log.info("notice %s sent to %s in %.2f s", ",".join(keys), recipient.key, elapsed)
        return Outcome(shown, subject, keys, "sent", None, elapsed)
    log.warning("notice %s to %s failed (%s): %s", ",".join(keys), recipient.key, status, error)
    return Outcome(shown, subject, keys, "failed", error, elapsed)


def _recipient_of(session: Session, key: str) -> Recipient | None:
    """The recipient a row names, as it stands now (None: removed, or no longer reachable):
    ``target:<id>`` its target's URL, ``family:<user id>`` the families' mail account to the
    login's address. Only keys are stored with a notice, never a URL (it may hold a secret)."""
    kind, _, ident = key.partition(":")
    if kind == "target":
        target = session.get(NotifyTarget, ident)
        return None if target is None else Recipient(key, target.label, target.url)
    if kind == "family":
        account = session.scalar(
            select(NotifyTarget).where(NotifyTarget.scope == NotifyScope.FAMILY_MAIL)
        )
        user = session.get(User, ident)
        if account is None or user is None or not user.active:
            return None
        if not EMAIL.fullmatch(user.username.strip()):
            return None
        address = user.username.strip()
        return Recipient(key, f"family login {address}", with_recipient(account.url, address))
    return None


def retry_pending(
    engine: Engine, now: datetime | None = None, timeout_s: float = SEND_TIMEOUT_S
) -> list[Outcome]:
    """Send again the pending messages whose time has come (one message per recipient and
    text, as first sent), each claimed before it goes out; how each went. A recipient removed
    meanwhile ends its notices as failed."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        due = session.execute(
            select(NoticeSent.id, NoticeSent.recipient_key, NoticeSent.subject, NoticeSent.body)
            .where(NoticeSent.status == NoticeStatus.PENDING, NoticeSent.next_try_at <= now)
            .order_by(NoticeSent.next_try_at, NoticeSent.id)
            .limit(RETRY_BATCH)
        ).all()  # fmt: skip
    messages: dict[tuple[str, str, str], list[int]] = {}
    for row_id, recipient_key, subject, body in due:
        messages.setdefault((recipient_key, subject, body or ""), []).append(row_id)
    outcomes = []
    for (recipient_key, subject, body), ids in messages.items():
        claimed = _claim_pending(engine, ids, now)
        if not claimed:
            continue  # another run took them
        with Session(engine) as session:
            recipient = _recipient_of(session, recipient_key)
            shown = recipient_key if recipient is None else recipient.shown
            keys = tuple(session.scalars(
                select(NoticeSent.notice_key).where(NoticeSent.id.in_(claimed))))  # fmt: skip
        if recipient is None:
            _give_up(engine, claimed, "the recipient was removed before the notice got through")
            outcomes.append(Outcome(shown, subject, keys, "failed", "recipient removed"))
            continue
        started = time.monotonic()
        error = deliver(recipient.url, subject, body, timeout_s)
        elapsed = time.monotonic() - started
        status = _finish(engine, claimed, error, subject, body)
        if error is None:
            log.info("notice %s sent to %s on a retry", ",".join(keys), recipient_key)
        else:
            log.warning("notice %s to %s failed again (%s): %s", ",".join(keys), recipient_key,
                        status, error)  # fmt: skip
        outcomes.append(Outcome(shown, subject, keys, "sent" if error is None else "failed",
                                error, elapsed))  # fmt: skip
    return outcomes


def _claim_pending(engine: Engine, ids: list[int], now: datetime) -> list[int]:
    """Mark the pending rows ``ids`` as being sent, each only if it is still pending and due
    (another run may have taken it); the ids claimed."""
    claimed = []
    with Session(engine) as session, session.begin():
        for row_id in ids:
            done = session.execute(
                update(NoticeSent)
                .where(NoticeSent.id == row_id, NoticeSent.status == NoticeStatus.PENDING,
                       NoticeSent.next_try_at <= now)
                .values(status=NoticeStatus.SENDING)
            )  # fmt: skip
            if done.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row_id)
    return claimed


def _give_up(engine: Engine, ids: list[int], why: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(NoticeSent).where(NoticeSent.id.in_(ids)).values(
            status=NoticeStatus.FAILED, error=why, next_try_at=None, body=None,
            finished_at=datetime.now(UTC)))  # fmt: skip


class Outbox:
    """Notices sent in the background by a few threads: who hands a job here returns at once.
    A job's failure is logged, never raised to whoever handed it in."""

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], object], what: str) -> None:
        def run() -> None:
            try:
                job()
            except Exception:  # logged and dropped: a notice never breaks a search
                log.exception("sending %s failed", what)

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="notify")
            future = self._pool.submit(run)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout_s: float) -> bool:
        """Wait until every job handed in so far is done; False if some are still running."""
        with self._lock:
            pending = set(self._pending)
        _, running = wait_for(pending, timeout=timeout_s)
        return not running


OUTBOX = Outbox()


@dataclass(frozen=True)
class Notifier:
    """How a session's notices go out: through ``outbox``, with times told in ``zone`` (None:
    the server machine's own) and each send bounded by ``timeout_s``. The server hands its own
    in the session's ``info`` under :data:`NOTIFIER`; without one, :data:`OUTBOX` is used."""

    outbox: Outbox = field(default_factory=lambda: OUTBOX)
    zone: tzinfo | None = None
    timeout_s: float = SEND_TIMEOUT_S


NOTIFIER = "safetynet.notifier"
_PENDING = "safetynet.notices_pending"


def notifier_of(session: Session) -> Notifier:
    found = session.info.get(NOTIFIER)
    return found if isinstance(found, Notifier) else Notifier()


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _release(session: Session) -> None:
    pending = session.info.pop(_PENDING, [])
    outbox = notifier_of(session).outbox
    for what, job in pending:
        outbox.submit(job, what)


def _drop(session: Session) -> None:
    session.info.pop(_PENDING, None)


def after_commit(session: Session, what: str, job: Callable[[], object]) -> None:
    """Hand ``job`` to the session's outbox once its transaction commits (dropped if it rolls
    back)."""
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        if not event.contains(session, "after_commit", _release):
            event.listen(session, "after_commit", _release)
            event.listen(session, "after_rollback", _drop)
    session.info[_PENDING].append((what, job))


def when(t: datetime, zone: tzinfo | None) -> str:
    """A time as a notice says it, on the agency's clock: ``14:02 on 2026-12-03 (EST)``."""
    local = t.astimezone(zone) if zone is not None else t.astimezone()
    return f"{local:%H:%M} on {local:%Y-%m-%d} ({local:%Z})"


def targets(session: Session, scope: NotifyScope) -> list[Recipient]:
    query = select(NotifyTarget).where(NotifyTarget.scope == scope).order_by(NotifyTarget.label)
    return [Recipient(f"target:{t.id}", t.label, t.url) for t in session.scalars(query)]


def to_each(session: Session, recipients: list[Recipient], notice: Notice, day: date) -> None:
    """Send ``notice`` to each of ``recipients`` in the background once the session commits,
    each on its own (a silent server keeps no one else waiting)."""
    engine, notifier = engine_of(session), notifier_of(session)
    for recipient in recipients:

        def job(recipient: Recipient = recipient) -> None:
            send_notices(engine, day, recipient, [notice], timeout_s=notifier.timeout_s)

        after_commit(session, f"{notice.key} to {recipient.key}", job)


def send_test(session: Session, actor: Actor, target_id: str) -> NotifyTarget:
    """Send a target a test message in the background (program admins); the result shows in
    the log of notices sent."""
    _keeper(actor)
    target = session.get(NotifyTarget, target_id)
    if target is None:
        raise NotFoundError(f"target: no notification target {target_id!r} (removed already?)")
    now = datetime.now(UTC)
    zone = notifier_of(session).zone
    notice = Notice(
        f"test:{now.timestamp():.0f}",
        "SafetyNet: a test notice",
        f"A test notice for {target.label}, sent at {when(now, zone)} from the program page. "
        "Real notices will come this way.",
    )
    to_each(session, [Recipient(f"target:{target.id}", target.label, target.url)], notice,
             local_day(now, zone))  # fmt: skip
    return target


def local_day(t: datetime, zone: tzinfo | None) -> date:
    """The agency's day ``t`` falls on (``zone`` None: the server machine's)."""
    return (t.astimezone(zone) if zone is not None else t.astimezone()).date()
