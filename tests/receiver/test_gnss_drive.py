"""End to end on the move: ``safetynet receive kraken://… --gps tcp://…`` against the simulator's
DAQ server and its GNSS server, through real sockets, checked against the simulator's truth."""

from __future__ import annotations

import math
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from firmware_sim.array import array_stream
from firmware_sim.daq_server import DaqServer
from firmware_sim.gnss_server import GnssServer
from firmware_sim.scenario import ArraySpec, parse_scenario
from firmware_sim.world import World
from receiver.drive_consistency import MIN_BEARINGS
from safetynet.angles import angle_diff_deg
from safetynet.geodesy import LocalFrame, inverse
from safetynet.report_lines import read_reports
from safetynet.reports import Bearing, Pulse, Status

ORIGIN = (42.355, -71.06)
GPS_SIGMA_M = 2.0
SPEED_MPS = 12.0


def _world(duration_s: float, compass_sd_deg: float) -> World:
    frame = LocalFrame(*ORIGIN)
    route = [list(frame.to_lat_lon(x, -150.0)) for x in (-250.0, 250.0)]
    return World(parse_scenario({
        "name": "drive-by", "seed": 21, "start": "2026-11-28T15:30:00Z",
        "duration_s": duration_s, "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]},
        "propagation": {"exponent": 2.7, "shadowing_sigma_db": 3.0, "rician_k_db": 10.0},
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -10.0,
                       "walker": {"stationary": True, "start": list(ORIGIN)}}],
        "receivers": [{"id": "CAR-1", "kind": "vehicle", "route": route, "speed_mps": SPEED_MPS,
                       "gps_sigma_m": GPS_SIGMA_M, "compass_bias_sd_deg": compass_sd_deg,
                       "compass_noise_deg": compass_sd_deg, "array": {}}],
    }))  # fmt: skip


@dataclass
class Field:
    world: World
    daq: DaqServer
    gnss: GnssServer


def _serve(world: World, compass: str) -> Iterator[Field]:
    rx = world.receivers[0]
    daq = DaqServer(array_stream(world, rx, ArraySpec()), port=0, cal_every_s=10.0)
    daq.bind()
    gnss = GnssServer(world, rx, compass=compass, clock=lambda: daq.stream.t_next_s)
    gnss.bind()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (daq, gnss)]
    for thread in threads:
        thread.start()
    yield Field(world, daq, gnss)
    daq.stop()
    gnss.stop()
    for thread in threads:
        thread.join(2.0)


# ``python -m safetynet`` with every bearing its drive check holds back (judges inconsistent)
# noted in a file, its time in seconds since the epoch a line: what the check itself decided.
NOTING_HELD_BACK = """
import sys
from receiver import drive_consistency
held_path, *argv = sys.argv[1:]
check = drive_consistency.DriveConsistency.check
def check_and_note(self, b):
    judged = check(self, b)
    if not judged.send:
        with open(held_path, "a", encoding="utf-8") as f:
            f.write(repr(b.t_s) + "\\n")
    return judged
drive_consistency.DriveConsistency.check = check_and_note
from safetynet.cli import main
sys.exit(main(argv))
"""


def _receive(
    f: Field, out: Path, *extra: str, held_back: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The receiver against the field's servers till their scenario ends; ``held_back``: the
    file where the bearings its drive check holds back are noted."""
    command = [sys.executable, "-m", "safetynet"]
    if held_back is not None:
        command = [sys.executable, "-c", NOTING_HELD_BACK, str(held_back)]
    process = subprocess.Popen(
        [*command, "-v", "receive", "--source",
         f"kraken://127.0.0.1:{f.daq.port}", "--gps", f"tcp://127.0.0.1:{f.gnss.port}",
         "--receiver-id", "CAR-1", "--array-every", "0", "--out", str(out), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not f.daq.finished and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert f.daq.finished, stderr
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


def _array_counts(stderr: str) -> dict[str, int]:
    """The receiver's closing count of its array's pulses (its log at -v)."""
    line = next(x for x in stderr.splitlines() if "array: " in x)
    m = re.search(r"(\d+) pulses, (\d+) bearings; (\d+) weak, (\d+) flagged, (\d+) without"
                  r" a heading or position, (\d+) held back by the drive check", line)  # fmt: skip
    assert m is not None, line
    return dict(zip(["pulses", "bearings", "weak", "flagged", "no_heading", "held_back"],
                    map(int, m.groups()), strict=True))  # fmt: skip


def _t_s(world: World, report: Pulse | Bearing | Status) -> float:
    return (report.t - world.start).total_seconds()


def _check_positions(world: World, reports: Sequence[object]) -> list[Pulse]:
    """Every pulse's position: the simulated GNSS's own report at that moment (interpolated,
    within 1 m) and the car's true track within the GNSS's error."""
    rx = world.receivers[0]
    pulses = [r for r in reports if isinstance(r, Pulse) and r.bracelet_id == "B00C"]
    assert len(pulses) >= 0.8 * world.duration_s - 3  # one a second, most heard
    off_true, off_reported = [], []
    for p in pulses:
        assert p.lat_deg is not None
        assert p.lon_deg is not None
        t = _t_s(world, p)
        e, n = world.frame.to_en(p.lat_deg, p.lon_deg)
        te, tn = rx.pose.position(t)
        off_true.append(math.hypot(e - te, n - tn))
        k = math.floor(t)
        (ae, an), (be, bn) = rx.reported_position(k), rx.reported_position(k + 1)
        w = t - k
        off_reported.append(math.hypot(e - (ae + w * (be - ae)), n - (an + w * (bn - an))))
    assert max(off_reported) < 1.0, max(off_reported)
    assert max(off_true) < 5 * GPS_SIGMA_M  # the GNSS's own error (a Gauss–Markov drift)
    return pulses


def _true_bearing_deg(world: World, b: Bearing) -> float:
    """From the car's true position at the pulse to the bracelet's (the geodesic's azimuth)."""
    t = _t_s(world, b) + 0.014
    car = world.frame.to_lat_lon(*world.receivers[0].pose.position(t))
    bracelet = world.frame.to_lat_lon(*world.bracelets[0].position(t))
    return inverse(*car, *bracelet).azimuth1_deg


@pytest.fixture
def compass_drive() -> Iterator[Field]:
    yield from _serve(_world(24.0, compass_sd_deg=0.3), compass="hdt")


def test_bearings_on_the_move_with_a_gnss_compass(compass_drive: Field, tmp_path: Path) -> None:
    f = compass_drive
    out = tmp_path / "reports.jsonl"
    noted = tmp_path / "held_back.txt"
    run = _receive(f, out, "--compass-sigma-deg", "0.6", held_back=noted)
    reports, _ = read_reports(out)
    pulses = _check_positions(f.world, reports)
    counts = _array_counts(run.stderr)
    assert counts["pulses"] >= len(pulses)
    assert counts["no_heading"] <= 1  # the compass gives every pulse its heading
    bearings = [r for r in reports if isinstance(r, Bearing)]
    assert len(bearings) >= 8
    assert counts["bearings"] == len(bearings)
    # The closing count of bearings held back is what the drive check held back: here the
    # drive's first bearings, before it has heard enough to judge (7 of 24 when measured).
    # Each is a pulse sent without its bearing.
    held_s = [float(x) for x in noted.read_text().split()] if noted.exists() else []
    assert counts["held_back"] == len(held_s)
    assert 1 <= len(held_s) < MIN_BEARINGS
    for t_s in held_s:
        assert any(abs(p.t.timestamp() - t_s) < 1e-3 for p in pulses), t_s
        assert not any(abs(b.t.timestamp() - t_s) < 1e-3 for b in bearings), t_s
    z = []
    for b in bearings:
        assert b.method == "array"
        truth = _true_bearing_deg(f.world, b)
        z.append(angle_diff_deg(b.bearing_deg, truth) / b.sigma_deg)
        assert abs(z[-1]) < 4.0, (b.t, b.bearing_deg, truth, b.sigma_deg)
    assert float(np.sqrt(np.mean(np.square(z)))) < 1.6
    statuses = [r for r in reports if isinstance(r, Status)]
    assert statuses
    assert all(s.gps_fix for s in statuses)


@pytest.fixture
def course_drive() -> Iterator[Field]:
    yield from _serve(_world(20.0, compass_sd_deg=1.0), compass="")


def test_without_a_compass_the_course_gives_the_heading(
    course_drive: Field, tmp_path: Path
) -> None:
    f = course_drive
    out = tmp_path / "reports.jsonl"
    run = _receive(f, out)
    reports, _ = read_reports(out)
    pulses = _check_positions(f.world, reports)
    counts = _array_counts(run.stderr)
    # The course needs 40 m of road either side of a pulse: at 12 m/s, none in the first and
    # last two seconds or so.
    assert counts["no_heading"] <= 6
    assert counts["pulses"] >= len(pulses)
    bearings = [r for r in reports if isinstance(r, Bearing)]
    assert len(bearings) >= 5
    for b in bearings:
        truth = _true_bearing_deg(f.world, b)
        assert abs(angle_diff_deg(b.bearing_deg, truth)) < 4.0 * b.sigma_deg


@pytest.fixture
def gps_lost() -> Iterator[Field]:
    world = _world(20.0, compass_sd_deg=0.3)
    for f in _serve(world, compass="hdt"):
        # At twice real time, not as fast as the receiver takes it (a dozen times): the GNSS's
        # reconnect takes half a second of the computer's time, the backoff, and as the field
        # runs, not six seconds of the scenario's.
        f.daq.speed = 2.0
        f.gnss.drop_at_s = 4.0  # the connection drops (the reader reconnects) ...
        f.gnss.silent = (9.0, 30.0)  # ... then the GNSS goes silent for good
        yield f


def test_a_dropped_then_silent_gps_leaves_reports_without_position(
    gps_lost: Field, tmp_path: Path
) -> None:
    f = gps_lost
    out = tmp_path / "reports.jsonl"
    _receive(f, out, "--compass-sigma-deg", "0.6")  # runs to the end: nothing hangs
    reports, _ = read_reports(out)
    pulses = [r for r in reports if isinstance(r, Pulse) and r.bracelet_id == "B00C"]
    last_fix_s = 8.0
    placed = [p for p in pulses if _t_s(f.world, p) < last_fix_s]
    stale = [p for p in pulses if _t_s(f.world, p) > last_fix_s + 2.0]
    assert len(placed) >= 5
    assert len(stale) >= 5
    # Across the drop too: every pulse before it is placed, and the reader reconnects (after its
    # half-second backoff) and positions resume before the GNSS goes silent. A pulse reported
    # while the reconnect is under way, over 2 s after the last epoch that arrived before the
    # drop and before the next one after it, rightly has none: at most one such pulse.
    drop_s = 4.0
    assert all(p.lat_deg is not None for p in placed if _t_s(f.world, p) < drop_s)
    after = [p.lat_deg is not None for p in placed if _t_s(f.world, p) >= drop_s]
    assert after
    assert after[-1], "no position after the connection dropped"
    assert after.count(False) <= 1, after
    assert all(p.lat_deg is None and p.lon_deg is None for p in stale)
    bearings = [r for r in reports if isinstance(r, Bearing)]
    assert bearings
    assert all(_t_s(f.world, b) <= last_fix_s + 2.0 for b in bearings)
    late = [r for r in reports if isinstance(r, Status) and _t_s(f.world, r) > last_fix_s + 2.0]
    assert late
    assert not any(s.gps_fix for s in late)
