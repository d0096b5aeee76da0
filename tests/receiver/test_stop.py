"""SIGTERM stops a receiver within seconds in every state, and its queue is drained or kept.

A real ``safetynet receive`` process reads the simulator's rtl_tcp server over a real socket and
posts to a real HTTP ingest stub; the rtl_tcp server then goes away, and the signal comes while
the receiver waits to reconnect (its backoff reaches 10 s between tries).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from receiver.uplink import Outbox
from tests.firmware_sim.test_iq import scenario, stationary
from tests.receiver.test_io import serve
from tests.receiver.test_sweep_uplink import IngestStub

EXIT_WITHIN_S = 5.0


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("uplink_up", [True, False], ids=["uplink-up", "uplink-down"])
def test_sigterm_while_reconnecting_exits_fast_and_keeps_the_queue(
    tmp_path: Path, uplink_up: bool
) -> None:
    world = scenario([stationary("3A7F", 19, 800)], duration_s=120.0)
    radio = serve(world, speed=1.0)
    IngestStub.stored, IngestStub.max_items = {}, 1000
    ingest = ThreadingHTTPServer(("127.0.0.1", 0), IngestStub) if uplink_up else None
    if ingest is not None:
        threading.Thread(target=ingest.serve_forever, daemon=True).start()
    port = ingest.server_address[1] if ingest is not None else closed_port()
    out, err, queue = tmp_path / "out.jsonl", tmp_path / "err.log", tmp_path / "q.sqlite"
    with err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "safetynet", "receive", "--source",
             f"rtltcp://127.0.0.1:{radio.port}", "--receiver-id", "CAR-3", "--out", str(out),
             "--uplink", f"http://127.0.0.1:{port}/api/v1/reports", "--token", "T",
             "--queue", str(queue)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        wait_for(lambda: sum('"pulse"' in line for line in lines_of(out)) >= 2, 60, "two pulses")
        radio.stop()  # the dongle's server goes away: the receiver retries, backing off
        wait_for(lambda: err.read_text().count("unreachable") >= 3, 30, "reconnect attempts")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        took_s = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        if ingest is not None:
            ingest.shutdown()
            ingest.server_close()
    assert code == 0, err.read_text()
    assert took_s < EXIT_WITHIN_S, (took_s, err.read_text())
    written = {(r["receiver_id"], r["seq"]) for r in map(json.loads, lines_of(out))}
    assert len(written) >= 2
    outbox = Outbox(queue)
    kept = {(r["receiver_id"], r["seq"]) for r in (json.loads(b) for _, b in outbox.batch(10**6))}
    outbox.close()
    if uplink_up:  # drained: everything it wrote reached the server, nothing is left queued
        assert set(IngestStub.stored) == written
        assert not kept
    else:  # kept on disk for the next run
        assert kept == written
