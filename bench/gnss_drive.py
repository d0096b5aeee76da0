"""Bearings on the move through the live path: ``safetynet receive kraken://… --gps tcp://…``.

A cruiser with a KrakenSDR drives a rectangle (2×300 m by 2×150 m, 10 m/s, so it turns every
30–60 s) around a stationary bracelet in the open park's propagation, for ``DRIVE_S`` seconds.
The simulator serves its DAQ stream and its GNSS (RMC and GGA at 1 Hz, GPS error 3 m with
τ = 60 s; a compass at 10 Hz) over TCP, in step; the receiver runs as the command line does,
one bearing per pulse (``--array-every 0``). Three compasses: a GNSS compass (``$HCHDT``, 0.2°
bias and noise, the default sigma 0.5°), a magnetic one (``$HCHDG`` with its variation, the
scenario's 2° bias and 1.5° noise, the default sigma 3°), and none (the GPS course).

Prints per case: the bracelet's pulses and the bearings sent (and per minute), the bearings'
error against the simulator's truth (from the car's true position at the pulse to the bracelet,
the geodesic's azimuth): RMS, median and 95th percentile of its magnitude, and the standard
deviation of error / sigma; the pulses' positions against the car's true track (median, 95th
percentile) and against what the simulated GNSS itself said at that moment (max: the
interpolation's own error); the pulses with no position.

Each compass is driven ``SEEDS`` times (the seed draws the GPS error's drift and the compass's
bias); the figures are over all of its drives.

Run: nice -n 10 python bench/gnss_drive.py [DRIVE_S] [SEEDS]
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import REPO

from firmware_sim.array import array_stream
from firmware_sim.daq_server import DaqServer
from firmware_sim.gnss_server import GnssServer
from firmware_sim.scenario import ArraySpec, parse_scenario
from firmware_sim.world import World
from safetynet.angles import angle_diff_deg
from safetynet.geodesy import LocalFrame, inverse
from safetynet.report_lines import read_reports
from safetynet.reports import Bearing, Pulse

ORIGIN = (42.355, -71.06)
DRIVE_S = 120.0
SEEDS = 3  # drives per compass (each draws its GPS error and compass bias)
CASES = [("GNSS compass ($HDT)", "hdt", 0.2), ("magnetic ($HDG)", "hdg", None),
         ("none: GPS course", "", None)]  # fmt: skip


def world(duration_s: float, compass_sd_deg: float | None, seed: int) -> World:
    frame = LocalFrame(*ORIGIN)
    corners = [(-300.0, -150.0), (300.0, -150.0), (300.0, 150.0), (-300.0, 150.0)]
    route = [list(frame.to_lat_lon(x, y)) for x, y in corners]
    compass = (
        {}
        if compass_sd_deg is None
        else {"compass_bias_sd_deg": compass_sd_deg, "compass_noise_deg": compass_sd_deg}
    )
    return World(parse_scenario({
        "name": "gnss-drive", "seed": seed, "start": "2026-11-28T15:30:00Z",
        "duration_s": duration_s, "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]},
        "propagation": {"exponent": 2.7, "shadowing_sigma_db": 5.0, "decorrelation_m": 80.0,
                        "rician_k_db": 6.0},
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -10.0,
                       "walker": {"stationary": True, "start": list(frame.to_lat_lon(40, 20))}}],
        "receivers": [{"id": "CAR-1", "kind": "vehicle", "route": route, "loop": True,
                       "speed_mps": 10.0, "gps_sigma_m": 3.0, **compass, "array": {}}],
    }))  # fmt: skip


def run_case(w: World, compass: str, out: Path) -> None:
    rx = w.receivers[0]
    daq = DaqServer(array_stream(w, rx, ArraySpec()), port=0)
    daq.bind()
    gnss = GnssServer(w, rx, compass=compass, clock=lambda: daq.stream.t_next_s)
    gnss.bind()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (daq, gnss)]
    for thread in threads:
        thread.start()
    process = subprocess.Popen(
        [sys.executable, "-m", "safetynet", "receive", "--source",
         f"kraken://127.0.0.1:{daq.port}", "--gps", f"tcp://127.0.0.1:{gnss.port}",
         "--receiver-id", "CAR-1", "--array-every", "0", "--out", str(out)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not daq.finished:
            time.sleep(0.5)
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
        daq.stop()
        gnss.stop()


def measure(runs: list[tuple[World, Path]], name: str) -> None:
    errors: list[float] = []
    z: list[float] = []
    off_true: list[float] = []
    off_gnss: list[float] = []
    counts = [0, 0, 0]  # pulses, bearings, pulses without a position
    for w, out in runs:
        _measure_one(w, out, errors, z, off_true, off_gnss, counts)
    minutes = sum(w.duration_s for w, _ in runs) / 60.0
    err = np.abs(np.array(errors))
    print(f"{name:22s} {counts[0]:6d} {counts[1]:8d} {counts[1] / minutes:7.1f}  "
          f"{math.sqrt(np.mean(err**2)):6.2f} {np.median(err):6.2f} {np.percentile(err, 95):6.2f}"
          f"  {np.std(z):5.2f}   {np.median(off_true):5.1f} {np.percentile(off_true, 95):5.1f}"
          f"  {max(off_gnss):5.2f}  {counts[2]:4d}", flush=True)  # fmt: skip


def _measure_one(
    w: World,
    out: Path,
    errors: list[float],
    z: list[float],
    off_true: list[float],
    off_gnss: list[float],
    counts: list[int],
) -> None:
    reports, _ = read_reports(out)
    rx = w.receivers[0]
    t0 = w.start
    pulses = [r for r in reports if isinstance(r, Pulse) and r.bracelet_id == "B00C"]
    bearings = [r for r in reports if isinstance(r, Bearing)]
    counts[0] += len(pulses)
    counts[1] += len(bearings)
    for b in bearings:
        t = (b.t - t0).total_seconds() + 0.014
        car = w.frame.to_lat_lon(*rx.pose.position(t))
        bracelet = w.frame.to_lat_lon(*w.bracelets[0].position(t))
        e = angle_diff_deg(b.bearing_deg, inverse(*car, *bracelet).azimuth1_deg)
        errors.append(e)
        z.append(e / b.sigma_deg)
    for p in pulses:
        if p.lat_deg is None or p.lon_deg is None:
            counts[2] += 1
            continue
        t = (p.t - t0).total_seconds()
        e, n = w.frame.to_en(p.lat_deg, p.lon_deg)
        te, tn = rx.pose.position(t)
        off_true.append(math.hypot(e - te, n - tn))
        k = math.floor(t)
        (ae, an), (be, bn) = rx.reported_position(k), rx.reported_position(k + 1)
        off_gnss.append(math.hypot(e - (ae + (t - k) * (be - ae)), n - (an + (t - k) * (bn - an))))


def main() -> None:
    drive_s = float(sys.argv[1]) if len(sys.argv) > 1 else DRIVE_S
    seeds = range(31, 31 + (int(sys.argv[2]) if len(sys.argv) > 2 else SEEDS))
    print(
        f"{len(seeds)} drives of {drive_s:.0f} s per compass at 10 m/s around a stationary "
        "bracelet, open park"
    )
    print(f"{'compass':22s} {'pulses':>6s} {'bearings':>8s} {'per min':>7s}  "
          f"{'RMS°':>6s} {'med°':>6s} {'p95°':>6s}  {'SD z':>5s}   {'pos m':>5s} {'p95':>5s}"
          f"  {'vs GNSS':>5s}  {'none':>4s}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for name, compass, sd in CASES:
            runs = []
            for seed in seeds:
                w = world(drive_s, sd, seed)
                out = Path(tmp) / f"{compass or 'course'}-{seed}.jsonl"
                run_case(w, compass, out)
                runs.append((w, out))
            measure(runs, name)


if __name__ == "__main__":
    main()
