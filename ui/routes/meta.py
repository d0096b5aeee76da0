"""``/api/v1/health``: the server answers."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["meta"])


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
