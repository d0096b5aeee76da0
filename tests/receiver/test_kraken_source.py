"""The KrakenSDR source through a real socket against the simulator's DAQ server."""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_sim.array import ArrayStream, ArrayTuners
from firmware_sim.daq_server import DaqServer
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from receiver.array_bearings import (
    ArrayBearings,
    ArrayDirectionFinder,
    ArrayReceiver,
    HeadingFix,
)
from receiver.kraken import KrakenSource
from receiver.sdr import ReceiverConfig, SdrReceiver
from receiver.sources import open_source
from safetynet.angles import angle_diff_deg
from safetynet.arrays import ArrayGeometry
from safetynet.errors import DeviceError, InputError
from safetynet.geodesy import inverse
from safetynet.heimdall import IqHeader
from safetynet.report_lines import read_reports
from safetynet.reports import Bearing, Pulse

SITE = (42.355, -71.06)
BRACELET = (42.358, -71.056)
HEADING_DEG = 30.0


def _world(duration_s: float) -> World:
    return World(parse_scenario({
        "name": "site", "seed": 3, "start": "2026-11-28T15:30:00Z", "duration_s": duration_s,
        "origin": {"lat_deg": SITE[0], "lon_deg": SITE[1]}, "propagation": {"exponent": 3.0},
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -10,
                       "walker": {"stationary": True, "start": list(BRACELET)}}],
        "receivers": [{"id": "KR-1", "kind": "fixed", "position": list(SITE),
                       "heading_deg": HEADING_DEG}],
    }))  # fmt: skip


@pytest.fixture
def server() -> Iterator[DaqServer]:
    world = _world(12.0)
    stream = ArrayStream(
        world, world.receivers[0], ArrayGeometry.circular(),
        ArrayTuners.draw(5, np.random.default_rng(1)),
    )  # fmt: skip
    srv = DaqServer(stream, port=0, cal_every_s=5.0, bad_sync_frames={25}, drop_after_frames=60)
    srv.bind()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(2.0)


def test_bearings_through_calibration_a_bad_sync_word_and_a_drop(server: DaqServer) -> None:
    source = open_source(f"kraken://127.0.0.1:{server.port}")
    assert isinstance(source, KrakenSource)
    source.give_up_after_s = 1.5  # the scenario's end closes the server for good
    sdr = SdrReceiver(source, ReceiverConfig(receiver_id="KR-1", position=(*SITE, 0.0)))
    array = ArrayReceiver(
        sdr, source, ArrayDirectionFinder(ArrayGeometry.circular(), source.sample_rate_hz,
                                          source.center_hz),
        lambda _t: HeadingFix(HEADING_DEG, 0.5, "fixed"),
        ArrayBearings("KR-1", itertools.count().__next__, thin_s=0.0),
    )  # fmt: skip
    reports: list[Any] = []
    started = time.monotonic()
    run = array.run()
    with pytest.raises(DeviceError, match="no stream"):
        reports.extend(run)
    assert time.monotonic() - started < 60
    assert source.calibrations >= 3  # the first frame, then every 5 s
    assert source.bad_headers == 1
    assert source.reconnects >= 2
    truth_deg = inverse(*SITE, *BRACELET).azimuth1_deg  # the geodesic's initial bearing
    bearings = [r for r in reports if isinstance(r, Bearing)]
    pulses = [r for r in reports if isinstance(r, Pulse) and r.bracelet_id == "B00C"]
    assert len(pulses) >= 8
    assert len(bearings) >= 0.7 * len(pulses)
    for b in bearings:
        assert b.method == "array"
        assert b.bracelet_id == "B00C"
        assert abs(angle_diff_deg(b.bearing_deg, truth_deg)) < 4 * b.sigma_deg
    # Each pulse is a frame the server sent, timed by the stream's sample count within 50 µs.
    sent = [link.frame.t_start_s for link in server.links]
    heard = [(p.t - source.start_time).total_seconds() for p in pulses]
    assert all(min(abs(h - s) for s in sent) < 50e-6 for h in heard)


def test_an_impossible_header_is_refused_and_never_hangs() -> None:
    """A server that sends a frame claiming 2³¹ samples: the client gives up cleanly."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(64)
            raw = bytearray(IqHeader(rf_center_freq_hz=216_500_000, sampling_freq_hz=300_000,
                                     cpi_length=1024).pack())  # fmt: skip
            raw[64:68] = (1 << 31).to_bytes(4, "little")
            conn.sendall(bytes(raw))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(DeviceError, match="cpi_length"):
            KrakenSource("127.0.0.1", port)
    finally:
        stop.set()
        thread.join(2.0)
        listener.close()
    assert time.monotonic() - started < 5


def test_nobody_listening_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeviceError, match="cannot start the stream"):
        KrakenSource("127.0.0.1", port)


@pytest.mark.parametrize("url", ["kraken://localhost", "kraken://h:5000?channels=1.5"])
def test_bad_kraken_urls(url: str) -> None:
    with pytest.raises(InputError, match=r"kraken|channels"):
        open_source(url)


def test_stop_ends_a_reconnecting_source_within_a_second(server: DaqServer) -> None:
    stopping = threading.Event()
    source = KrakenSource("127.0.0.1", server.port, stop=stopping.is_set)
    server.stop()  # the server goes away for good; the source backs off and retries
    stopped_at: list[float] = []

    def stop_soon() -> None:
        time.sleep(1.0)
        stopped_at.append(time.monotonic())
        stopping.set()

    threading.Thread(target=stop_soon, daemon=True).start()
    while source.read(1) is not None:
        pass
    assert stopped_at
    assert time.monotonic() - stopped_at[0] < 0.5


def test_safetynet_receive_sends_array_bearings_from_a_kraken_stream(
    server: DaqServer, tmp_path: Path
) -> None:
    """The command line: pulses and array bearings as JSON Lines, stopped by SIGTERM."""
    out = tmp_path / "reports.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "safetynet", "receive", "--source",
         f"kraken://127.0.0.1:{server.port}", "--receiver-id", "KR-1",
         "--lat-deg", str(SITE[0]), "--lon-deg", str(SITE[1]),
         "--array-heading-deg", str(HEADING_DEG), "--array-every", "0", "--out", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not server.finished and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    assert server.finished
    reports, _ = read_reports(out)
    bearings = [r for r in reports if isinstance(r, Bearing)]
    truth_deg = inverse(*SITE, *BRACELET).azimuth1_deg
    assert len(bearings) >= 6
    assert all(abs(angle_diff_deg(b.bearing_deg, truth_deg)) < 4 * b.sigma_deg for b in bearings)
    assert {b.method for b in bearings} == {"array"}
