"""Shared fixtures.

The specs and conformance vectors are the project's contract; a copy lives in ``spec/`` so a
fresh clone tests on its own, and ``test_spec_copy`` checks that copy against the shared
original when one sits beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
