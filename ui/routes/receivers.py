"""Receiver tokens under ``/api/v1/receivers``: a field receiver's credential for the ingest."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from registry.access import may
from safetynet.errors import ForbiddenError
from ui.deps import ApiUser, App
from ui.security import create_receiver_token

router = APIRouter(prefix="/api/v1/receivers", tags=["receivers"])


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receiver_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    label: str | None = Field(default=None, max_length=200)


@router.post("/tokens", status_code=201)
async def post_token(app: App, user: ApiUser, body: NewToken) -> dict[str, str]:
    """A new receiver token (admin only); the token is shown once, only its hash is kept."""
    if not may(user.role, "receiver_tokens"):
        raise ForbiddenError("only an admin may create receiver tokens")
    token = await app.run(
        lambda session: create_receiver_token(session, body.receiver_id, body.label)
    )
    return {"receiver_id": body.receiver_id, "token": token}
