"""The in-repo copy of the specs must match the shared original wherever both exist."""

from __future__ import annotations

import filecmp

import pytest

from tests.conftest import REPO

SHARED = REPO.parent / "shared"


@pytest.mark.skipif(not (SHARED / "spec").is_dir(), reason="no shared/ beside this checkout")
@pytest.mark.parametrize(
    ("shared_sub", "local_sub"),
    [("spec", "spec"), ("data/nmea-real", "tests/data/nmea-real")],
)
def test_copy_matches_shared(shared_sub: str, local_sub: str) -> None:
    shared_root, local_root = SHARED / shared_sub, REPO / local_sub
    shared_files = sorted(p.relative_to(shared_root) for p in shared_root.rglob("*") if p.is_file())
    local_files = sorted(p.relative_to(local_root) for p in local_root.rglob("*") if p.is_file())
    assert shared_files == local_files
    for rel in shared_files:
        assert filecmp.cmp(shared_root / rel, local_root / rel, shallow=False), rel


def test_spec_copy_present() -> None:
    for name in ("air-interface.md", "handheld-serial.md", "reports.md", "vectors/frames.json"):
        assert (REPO / "spec" / name).is_file(), name
