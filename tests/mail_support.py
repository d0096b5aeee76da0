"""Mail for the notification tests: a real SMTP server on this machine (aiosmtpd) that keeps what
it takes, a server that takes the connection and never answers, and the Apprise URLs for them."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

SENDER = "safetynet@example.org"
PASSWORD = "Hunter2Secret"  # the mail account's password in the targets that log in


@dataclass
class Mailbox:
    """What the local SMTP server took: one parsed message per delivery."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def wait_for(self, n: int, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.count() < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.count() >= n, f"{self.count()} messages arrived, {n} expected"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[Mailbox]:
    """A real SMTP server on a free local port (or ``port``: a server coming back where it
    was); a login must give :data:`PASSWORD`."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    box = Mailbox(port or free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            message = message_from_bytes(envelope.content, policy=policy.default)
            assert isinstance(message, EmailMessage)
            with box.lock:
                box.messages.append(message)
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:  # fmt: skip
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port,
                            authenticator=authenticate, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@contextmanager
def silent_server() -> Iterator[int]:
    """A port that takes the connection and never says a word (a hung mail server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def mail_url(port: int, to: str | None = None, user: str | None = None) -> str:
    """The Apprise URL of the local server (``user``: logging in with :data:`PASSWORD`)."""
    login = f"{user}:{PASSWORD}@" if user else ""
    url = f"mailto://{login}127.0.0.1:{port}?from={SENDER}"
    return url + (f"&to={to}" if to else "")


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
