"""Who is asking: the logins and the receiver tokens the server checks on every request.

Passwords and tokens never come here in the clear: the server hashes a password (Argon2) and
digests a token (SHA-256) and this module stores and compares only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import ReceiverToken, Role, User


@dataclass(frozen=True)
class Login:
    """An active user as a request acts for them."""

    user_id: str
    username: str
    display_name: str
    role: Role


def active_login(session: Session, user_id: str) -> Login | None:
    """The user ``user_id`` if they exist and are active (None: gone or deactivated)."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return Login(user.id, user.username, user.display_name, user.role)


def password_of(session: Session, username: str) -> tuple[str, str] | None:
    """The id and password hash of the active user ``username`` (None: none such)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        return None
    return user.id, user.password_hash


def receiver_of_token(session: Session, token_sha256: str) -> str | None:
    """The receiver a token (by its SHA-256 digest) belongs to; None if unknown or revoked."""
    row = session.scalar(
        select(ReceiverToken).where(
            ReceiverToken.token_sha256 == token_sha256, ReceiverToken.revoked_at.is_(None)
        )
    )
    return None if row is None else row.receiver_id


def add_receiver_token(
    session: Session, receiver_id: str, token_sha256: str, label: str | None
) -> None:
    """Keep a new receiver token's digest (the caller shows the token itself once)."""
    session.add(
        ReceiverToken(
            receiver_id=receiver_id,
            token_sha256=token_sha256,
            label=label,
            created_at=datetime.now(UTC),
        )
    )


def user_id_of(session: Session, username: str) -> str | None:
    """The id of the user ``username`` (active or not; None: no such user)."""
    return session.scalar(select(User.id).where(User.username == username))
