"""A server command on a port in use fails at once, before it seeds, migrates or prints."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from safetynet.errors import ConfigError
from ui.demo import run_demo
from ui.listen import listen_socket


def test_demo_on_a_port_in_use_fails_before_it_seeds_or_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        data_dir = tmp_path / "demo"
        with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}.*--port"):
            run_demo(data_dir, "127.0.0.1", port)
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == ""
    assert not data_dir.exists()  # no database, no seeded search, no scenario written


def test_listen_socket_binds_and_names_bad_hosts() -> None:
    sock = listen_socket("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()[:2]
        assert host == "127.0.0.1"
        with socket.create_connection((host, port), timeout=2):
            pass  # it listens
    finally:
        sock.close()
    with pytest.raises(ConfigError, match="not an address"):
        listen_socket("no-such-host.invalid", 8080)
