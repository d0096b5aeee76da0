"""Tracking a simulated walker with moving searchers: error against time, stopped and walking.

Runs the report-level simulation of each example scenario (a dementia walker or a child in a
city; handheld teams sweeping, cruisers, a helicopter), feeds the reports in arrival order to
the locator, and compares every fix with the simulator's truth at its time: the error over time
(plot), the median and 90th-percentile error while the person stands and while they walk, how
often the truth is inside the 95 % ellipse, and the filter's speed in updates per second.
Run: python bench/locator_track.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from common import OUT, REPO

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from locator.fixes import inside_ellipse95
from locator.kalman import Measurement, Track
from locator.tracker import Locator


def speed() -> float:
    """Bearing updates per second on one core (three receivers around a still target)."""
    rng = np.random.default_rng(0)
    rxs = [(500.0, 0.0), (-400.0, 300.0), (0.0, -600.0)]
    ms = []
    for k in range(20_000):
        e, n = rxs[k % 3]
        b = math.atan2(50 - e, 80 - n) + rng.normal(0, math.radians(5))
        ms.append(Measurement(k * 0.5, "bearing", f"R{k % 3}", e, n, b, math.radians(5)))
    track = Track(np.zeros(2), np.eye(2) * 100**2, 0.0)
    start = time.perf_counter()
    for m in ms:
        track.add(m)
    return len(ms) / (time.perf_counter() - start)


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for path in sorted((REPO / "scenarios").glob("*.toml")):
        world = World(load_scenario(path))
        locator = Locator(frame=world.frame)
        rows = []
        for report in simulate_reports(world):
            for fix in locator.add(report):
                t = (fix.t - world.start).total_seconds()
                ids = {f"{b.bracelet.bracelet_id:04X}": b for b in world.bracelets}
                if fix.bracelet_id not in ids:
                    continue  # a track of undecoded bearings, known by channel only
                bracelet = ids[fix.bracelet_id]
                truth = np.array(bracelet.position(t))
                est = np.array(world.frame.to_en(fix.lat_deg, fix.lon_deg))
                err = est - truth
                rows.append((t, float(np.linalg.norm(err)), bracelet.track.is_moving(t),
                             inside_ellipse95(err, np.array(fix.cov_enu_m2))))  # fmt: skip
        if not rows:
            print(f"{world.scenario.name}: no fix")
            continue
        t, e, moving, inside = (np.array(c) for c in zip(*rows, strict=True))
        ax.plot(t / 60, e, lw=0.8, label=world.scenario.name)
        first = t[0] / 60
        print(f"{world.scenario.name}: first fix after {first:.1f} min; {len(rows)} fixes")
        for label, mask in (("walking", moving), ("stopped", ~moving)):
            if mask.any():
                print(
                    f"   {label:8s} error median {np.median(e[mask]):6.1f} m, "
                    f"90th percentile {np.percentile(e[mask], 90):6.1f} m, "
                    f"inside 95 % ellipse {np.mean(inside[mask]):.0%}"
                )
        late = t > t[0] + 120
        if late.any():
            print(
                f"   after the first two minutes: median {np.median(e[late]):.1f} m, "
                f"inside 95 % ellipse {np.mean(inside[late]):.0%}"
            )
    ax.set_xlabel("minutes since the person went missing")
    ax.set_ylabel("fix error (m)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title("Tracking error against time (report-level simulation)")
    fig.tight_layout()
    fig.savefig(OUT / "tracking_error.png", dpi=120)
    print(f"plot: {OUT / 'tracking_error.png'}")
    print(f"speed: {speed():.0f} bearing updates per second on one core (goal >= 10,000)")


if __name__ == "__main__":
    main()
