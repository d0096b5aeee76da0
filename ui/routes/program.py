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
    app: App,
    user: ApiUser,
    within_days: Annotated[
        str, Query(pattern=r"^[0-9]{1,3}$", description="a whole number of days, 0..999")
    ] = "14",
) -> list[dict[str, Any]]:
    # Taken as text and read here: a query's "0.0" or "1e1" is not a whole number of days.
    days = int(within_days)
    return await app.run(lambda session: service.batteries_due(session, user.actor, days))


@router.get("/missed-tests")
async def get_missed_tests(app: App, user: ApiUser) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.missed_tests(session, user.actor))


@router.get("/bracelets")
async def get_bracelets(app: App, user: ApiUser) -> list[dict[str, Any]]:
    return await app.run(lambda session: service.bracelet_inventory(session, user.actor))
