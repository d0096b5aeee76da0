"""Shared fixtures.

The specs and conformance vectors are the project's contract; a copy lives in ``spec/`` so a
fresh clone tests on its own, and ``test_spec_copy`` checks that copy against the shared
original when one sits beside the checkout.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session

from registry.db import make_engine, upgrade
from registry.models import Role, User

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO / "spec"
VECTORS_DIR = SPEC_DIR / "vectors"
NMEA_DIR = Path(__file__).resolve().parent / "data" / "nmea-real"
IN_CI = bool(os.environ.get("CI"))

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if IN_CI else "dev")


def fuzz(examples: int) -> settings:
    """Exactly ``examples`` cases, whatever the profile; no deadline (CI machines are shared)."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    return SPEC_DIR


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    return VECTORS_DIR


def require_tool(command: str) -> str:
    """The path of an external tool a test needs: skip without it, but fail under CI."""
    import shutil

    path = shutil.which(command)
    if path is None:
        message = f"{command} is not installed (python -m tests.system_deps installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


POSTGRES_ADMIN_URL = os.environ.get(
    "SAFETYNET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (PostgreSQL: a fresh database, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"safetynet_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as err:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {err}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def session(db_url: str) -> Iterator[Any]:
    """A migrated database of each kind with one user per role (id = role) and a second family."""
    upgrade(db_url)
    engine = make_engine(db_url)
    with Session(engine) as s:
        for role in Role:
            s.add(
                User(
                    id=role.value,
                    username=role.value,
                    display_name=role.value,
                    password_hash="x",
                    role=role,
                )
            )
        s.add(
            User(
                id="other_family",
                username="other",
                display_name="o",
                password_hash="x",
                role=Role.FAMILY,
            )
        )
        s.commit()
        yield s
    engine.dispose()
