"""How fast the tracker runs on one core: the Kalman path and the particle tracker.

- *Kalman path* (locator/kalman.py, the IMM of extended Kalman filters): bearing updates per
  second on three receivers around a still target.
- *Particle tracker* (locator/tracker.py's Locator, the live tracker): whole simulated searches
  (the example scenarios and the demo's hour, report-level simulation) replayed through it;
  the figure is the search's simulated duration over the CPU time it took, i.e. how many such
  searches one core keeps up with in real time (goal: 20), and the reports and track updates it
  took per second of CPU.

Run: python bench/locator_speed.py
"""

from __future__ import annotations

import math
import time

import numpy as np
from common import REPO

from firmware_sim.report_mode import simulate_reports
from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from locator.kalman import Measurement, Track
from locator.tracker import Locator


def kalman_updates_per_s(n: int = 20_000) -> float:
    """Bearing updates per second of the IMM-EKF on one core."""
    rng = np.random.default_rng(0)
    rxs = [(500.0, 0.0), (-400.0, 300.0), (0.0, -600.0)]
    ms = []
    for k in range(n):
        e, nn = rxs[k % 3]
        b = math.atan2(50 - e, 80 - nn) + rng.normal(0, math.radians(5))
        ms.append(Measurement(k * 0.5, "bearing", f"R{k % 3}", e, nn, b, math.radians(5)))
    track = Track(np.zeros(2), np.eye(2) * 100**2, 0.0)
    start = time.process_time()
    for m in ms:
        track.add(m)
    return len(ms) / (time.process_time() - start)


def particle_realtime(path: str) -> tuple[str, float, float, int, int]:
    """(name, simulated s, CPU s, reports, fixes) for one scenario through the Locator."""
    world = World(load_scenario(REPO / path))
    reports = simulate_reports(world)
    locator = Locator(frame=world.frame)
    fixes = 0
    start = time.process_time()
    for report in reports:
        fixes += len(locator.add(report))
    return world.scenario.name, world.duration_s, time.process_time() - start, len(reports), fixes


def main() -> None:
    print(
        f"Kalman path: {kalman_updates_per_s():,.0f} bearing updates/s on one core (goal ≥ 10,000)"
    )
    total_sim = total_cpu = 0.0
    for path in (
        "scenarios/quiet-suburb.toml",
        "scenarios/dense-city.toml",
        "scenarios/open-park.toml",
        "ui/demo_scenario.toml",
    ):
        name, sim_s, cpu_s, n_reports, n_fixes = particle_realtime(path)
        total_sim += sim_s
        total_cpu += cpu_s
        print(
            f"particle tracker, {name}: {sim_s / 60:.0f} min of search in {cpu_s:.1f} s CPU "
            f"({sim_s / cpu_s:.0f} searches in real time; {n_reports / cpu_s:,.0f} reports/s, "
            f"{n_fixes} fixes)"
        )
    print(
        f"particle tracker, all: {total_sim / total_cpu:.0f} concurrent searches in real time "
        "on one core (goal ≥ 20)"
    )


if __name__ == "__main__":
    main()
