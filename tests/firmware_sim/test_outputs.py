"""The simulator's outputs through real transports: rtl_tcp to rtl_433, SNHH-1 on a pty."""

from __future__ import annotations

import io
import json
import math
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from firmware_sim.handheld import Faults, HandheldEmulator
from firmware_sim.rtl_tcp_server import RtlTcpServer
from safetynet.nmea import split_sentence
from safetynet.rtl import R820T_GAINS_DB, Command, pack_command, unpack_header
from safetynet.sntx import ON_AIR_S
from tests.conftest import require_tool
from tests.firmware_sim.test_iq import scenario, stationary
from tests.plain_demod import demodulate, read_cu8


def start_server(server: RtlTcpServer) -> threading.Thread:
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


# rtl_433 records this many samples, 8 s of the stream: a count, not a wall-clock time (its
# `-T 2` recorded 5.2 to 7.8 s of stream at 4x speed as the machine's load varied).
RTL_433_SAMPLES = 8 * 2_400_000


def test_rtl_433_records_what_the_truth_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rtl_433 = require_tool("rtl_433")
    world = scenario([stationary("3A7F", 19, 800)], gain_db=44.5, ppm=20.0, duration_s=30)
    rx = world.receivers[0]
    rx.frontend.set_sample_rate(2_400_000)
    truth = io.StringIO()
    server = RtlTcpServer(world, rx, port=0, speed=4.0, truth=truth)
    # Like a dongle, the server streams from the connection on, at the scenario's settings
    # until rtl_433's commands arrive: when they take effect, in stream time.
    settled_s: list[float] = []
    apply = server.apply

    def apply_and_note(code: int, argument: int) -> None:
        apply(code, argument)
        settled_s.append(server.stream.t_next_s)

    monkeypatch.setattr(server, "apply", apply_and_note)
    start_server(server)
    out = tmp_path / "rtl433.cu8"
    result = subprocess.run(
        [rtl_433, "-d", f"rtl_tcp:127.0.0.1:{server.port}", "-s", "2400000", "-f", "216500000",
         "-g", "28.0", "-p", "20", "-w", str(out), "-n", str(RTL_433_SAMPLES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    server.stop()
    assert "rtl_tcp connected" in result.stderr, result.stderr
    # Its commands were honoured: sample rate, manual gain 28.0 dB, frequency, correction.
    codes = dict(server.commands_seen)
    assert codes[Command.SET_SAMPLE_RATE] == 2_400_000
    assert codes[Command.SET_FREQUENCY] == 216_500_000
    assert codes[Command.SET_GAIN] == 280
    assert rx.frontend.gain_db == 28.0
    assert rx.frontend.ppm_correction == 20
    # What it recorded once its settings held decodes to the frames the truth has streamed
    # since, in order. (A frame begun before, at 44.5 dB and uncorrected, is 16 dB louder than
    # the rest: on a loaded machine the commands came during the first frame, and the plain
    # demodulator's threshold, a share of the loudest, then hid every other frame.)
    iq = read_cu8(out)
    assert iq.size == RTL_433_SAMPLES
    duration_s = iq.size / 2_400_000
    heard = [json.loads(line) for line in truth.getvalue().splitlines()]
    last_command_s = max(settled_s)
    before = [h for h in heard if h["t_start_rx_s"] < last_command_s]
    after_s = max([last_command_s] + [h["t_start_rx_s"] + ON_AIR_S for h in before])
    since = [
        h
        for h in heard
        if after_s <= h["t_start_rx_s"] and h["t_start_rx_s"] + ON_AIR_S < duration_s
    ]
    assert all(h["gain_db"] == 28.0 for h in since)
    expected = [(int(h["bracelet_id"], 16), h["status_byte"]) for h in since]
    offset = np.median([h["freq_hz"] for h in since]) - 216_500_000
    recorded = iq[math.ceil(after_s * 2_400_000) :]
    got = [(f.bracelet_id, f.status) for f in demodulate(recorded, 2_400_000, offset) if f.crc_ok]
    assert len(expected) >= 5
    assert got == expected


def test_rtl_tcp_header_and_gain_by_index() -> None:
    world = scenario([stationary("3A7F", 19, 500)], duration_s=5)
    server = RtlTcpServer(world, world.receivers[0], port=0, speed=0)
    start_server(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        header = sock.recv(12, socket.MSG_WAITALL)
        assert unpack_header(header) == (5, len(R820T_GAINS_DB))  # R820T, 29 gains
        sock.sendall(
            pack_command(Command.SET_GAIN_MODE, 1) + pack_command(Command.SET_GAIN_BY_INDEX, 3)
        )
        sock.sendall(pack_command(Command.SET_FREQ_CORRECTION, -12 & 0xFFFFFFFF))
        received = 0
        while received < 1_000_000:
            received += len(sock.recv(65536))
    server.stop()
    assert world.receivers[0].frontend.gain_db == R820T_GAINS_DB[3]
    assert world.receivers[0].frontend.ppm_correction == -12


def read_lines(port: serial.Serial, until: float) -> list[bytes]:
    """Lines until the deadline or until the unit goes away."""
    lines = []
    while time.monotonic() < until:
        try:
            line = port.readline()
        except serial.SerialException:
            break
        if line:
            lines.append(line)
    return lines


def test_handheld_emulator_through_pyserial(tmp_path: Path) -> None:
    world = scenario([stationary("3A7F", 19, 400)], duration_s=12.0)
    rx = world.receivers[0]
    link = tmp_path / "ttyHH"
    unit = HandheldEmulator(world, rx)
    stop = threading.Event()
    thread = threading.Thread(target=unit.run_on_pty, args=(link, 4.0, stop), daemon=True)
    thread.start()
    for _ in range(50):
        if link.exists():
            break
        time.sleep(0.02)
    with serial.Serial(str(link), 115200, timeout=0.2) as port:
        lines = read_lines(port, time.monotonic() + 3.2)
    stop.set()
    thread.join(5)
    texts = [line.decode("ascii") for line in lines]
    fields = [split_sentence(t) for t in texts]
    assert all(f is not None for f in fields), texts[:5]
    kinds = [f[0] for f in fields if f]
    assert "PSNID" in kinds  # every 10 s (the first, at power-up, may come before the open)
    assert kinds.count("HCHDT") >= 10 * kinds.count("GNRMC") - 10
    pulses = [f for f in fields if f and f[0] == "PSNPD"]
    assert len(pulses) >= 8
    assert {p[4] for p in pulses} == {"3A7F"}
    assert all(len(t) <= 82 + 2 for t in texts)


def test_handheld_faults_are_injected(tmp_path: Path) -> None:
    world = scenario([stationary("3A7F", 19, 400)], duration_s=20.0)
    unit = HandheldEmulator(
        world, world.receivers[0], Faults(line_noise_per_s=2.0, bad_checksum_fraction=0.1)
    )
    lines = [line for _, line in unit.events()]
    bad = [line for line in lines if split_sentence(line) is None]
    assert 0.05 * len(lines) < len(bad) < 0.5 * len(lines)


def test_handheld_unplug_and_replug(tmp_path: Path) -> None:
    world = scenario([stationary("3A7F", 19, 400)], duration_s=30.0)
    link = tmp_path / "ttyHH"
    unit = HandheldEmulator(world, world.receivers[0], Faults(unplug_at_s=4.0, replug_after_s=2.0))
    stop = threading.Event()
    thread = threading.Thread(target=unit.run_on_pty, args=(link, 4.0, stop), daemon=True)
    thread.start()
    while not link.exists():
        time.sleep(0.01)
    first = serial.Serial(str(link), 115200, timeout=0.1)
    before = read_lines(first, time.monotonic() + 0.8)

    def read_until_gone() -> None:
        for _ in range(60):
            first.readline()

    with pytest.raises(serial.SerialException):  # the port goes away
        read_until_gone()
    first.close()
    deadline = time.monotonic() + 5
    while not link.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with serial.Serial(str(link), 115200, timeout=0.1) as second:
        after = read_lines(second, time.monotonic() + 1.0)
    stop.set()
    thread.join(5)
    assert before
    assert after


def test_handheld_status_reports_clipping_when_close() -> None:
    near = scenario([stationary("3A7F", 19, 2)], duration_s=11.0)
    far = scenario([stationary("3A7F", 19, 2000)], duration_s=11.0)
    for world, expected in ((near, "1"), (far, "0")):
        unit = HandheldEmulator(world, world.receivers[0])
        status = [split_sentence(line) for _, line in unit.events() if "PSNST" in line]
        assert status
        assert {s[4] for s in status if s} == {expected}


def test_sigmf_recording_is_valid_and_calibrated(tmp_path: Path) -> None:
    import sigmf

    from firmware_sim.recording import record

    world = scenario([stationary("3A7F", 19, 500)], gain_db=33.8, duration_s=1.5)
    record(world, "FIX-1", tmp_path / "rec", fmt="sigmf")
    handle = sigmf.sigmffile.fromfile(str(tmp_path / "rec.sigmf-meta"))
    handle.validate()
    meta = handle.get_global_info()
    assert meta["core:datatype"] == "cu8"
    assert meta["sntx:cal_dbm_at_fullscale"] == pytest.approx(-39.8 - 33.8)
    assert meta["sntx:gain_db"] == 33.8
    lon, lat, _ = meta["core:geolocation"]["coordinates"]
    assert (lat, lon) == pytest.approx((42.30206, -71.05761))
    capture = handle.get_captures()[0]
    assert capture["core:frequency"] == 216_500_000
    assert handle.read_samples().size == int(1.5 * 1_024_000)
