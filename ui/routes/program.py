"""The program's lists under ``/api/v1/program``: batteries due, missed daily tests, the bracelet
inventory."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from registry import service
from ui.deps import ApiUser, App

router = APIRouter(prefix="/api/v1/program", tags=["program"])


@router.get("/batteries-due")
async def get_batteries_due(
    app: App, user: ApiUser, within_days: Annotated[int, Query(ge=0, le=3650)] = 14
) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.batteries_due(session, user.actor, within_days))


@router.get("/missed-tests")
async def get_missed_tests(app: App, user: ApiUser) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.missed_tests(session, user.actor))


@router.get("/bracelets")
async def get_bracelets(app: App, user: ApiUser) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.bracelet_inventory(session, user.actor))
