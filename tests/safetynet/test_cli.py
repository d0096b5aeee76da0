"""The command line as a user runs it: a real process, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.safetynet.test_reports import spec_examples


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "safetynet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_lists_subcommands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "check" in result.stdout
    assert "examples:" in result.stdout


def test_no_command_is_bad_usage() -> None:
    assert run_cli().returncode == 2
    assert run_cli("no-such-command").returncode == 2


def test_check_valid_and_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(json.loads(b)) for b in spec_examples()) + "\n")
    result = run_cli("check", str(good))
    assert result.returncode == 0, result.stderr
    assert "5 valid reports" in result.stdout

    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + '{"kind": "pulse", "channel": 99}\n')
    result = run_cli("check", str(bad))
    assert result.returncode == 1
    assert "1 bad" in result.stdout
    assert ":6: " in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_is_bad_usage(tmp_path: Path) -> None:
    result = run_cli("check", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 2
    assert "no such file" in result.stderr


@pytest.mark.parametrize("flag", ["-q", "-v"])
def test_log_flags_accepted(flag: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert run_cli(flag, "check", str(empty)).returncode == 0


def test_receive_a_recording(tmp_path: Path) -> None:
    from tests.conftest import VECTORS_DIR

    out = tmp_path / "reports.jsonl"
    result = run_cli(
        "receive", "--source", f"sigmf:{VECTORS_DIR / 'sntx1-a.sigmf-meta'}",
        "--receiver-id", "VEC-A", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [r["bracelet_id"] for r in lines if r["kind"] == "pulse"]
    assert ids == ["3A7F", "B00C", "3A7F", "B00C", "3A7F"]
    assert all(r["receiver_id"] == "VEC-A" for r in lines)
    assert sorted(r["seq"] for r in lines) == list(range(len(lines)))


def test_receive_refuses_half_a_position() -> None:
    result = run_cli("receive", "--source", "cu8:x?fs=1&fc=2", "--lat-deg", "42")
    assert result.returncode == 1
    assert "--lon-deg" in result.stderr


def test_settings_refuse_a_default_secret_outside_demo(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from safetynet.errors import ConfigError
    from safetynet.settings import Settings

    with pytest.raises(ConfigError, match="SAFETYNET_SECRET_KEY"):
        Settings(data_dir=tmp_path).check_secrets()
    with pytest.raises(ConfigError, match="32 characters"):
        Settings(data_dir=tmp_path, secret_key=SecretStr("short")).check_secrets()
    Settings(data_dir=tmp_path, demo=True).check_secrets()  # demo mode may use the default
    Settings(data_dir=tmp_path, secret_key=SecretStr("x" * 40)).check_secrets()
    assert (
        Settings(data_dir=tmp_path).resolved_database_url
        == f"sqlite:///{tmp_path / 'safetynet.db'}"
    )


def test_read_reports_skips_and_counts(tmp_path: Path) -> None:
    from safetynet.report_lines import read_reports

    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(json.dumps(json.loads(b)) for b in spec_examples()) + "\nnonsense\n")
    reports, bad = read_reports(path, on_error="skip")
    assert len(reports) == 5
    assert [b.line_no for b in bad] == [6]
