"""Helpers shared by the benchmarks: building simulated worlds, matching reports to truth."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

OUT = REPO / "bench" / "out"
ORIGIN = (42.30206, -71.05761)
NOISE_DBM_PER_HZ = -170.0  # thermal −174 dBm/Hz plus the simulated dongle's 4 dB noise figure


class Progress:
    """A line on stderr every few seconds: what is done, of how much, and the time left."""

    def __init__(self, what: str, total: float) -> None:
        self.what, self.total = what, total
        self.start = self.last = time.perf_counter()

    def update(self, done: float) -> None:
        now = time.perf_counter()
        if now - self.last < 3.0 and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("nan")
        print(
            f"  {self.what}: {done:.0f}/{self.total:.0f}, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )


def fixed_receiver_scenario(
    bracelets: list[dict[str, Any]],
    duration_s: float,
    sample_rate_hz: int = 2_400_000,
    ppm_error: float = 0.0,
    gain_db: float = 40.2,
    seed: int = 1,
    rician_k_db: float | None = None,
) -> dict[str, Any]:
    """A scenario dict: one fixed omni receiver at the origin and stationary bracelets."""
    propagation: dict[str, Any] = {"exponent": 2.0}
    if rician_k_db is not None:
        propagation["rician_k_db"] = rician_k_db
    return {
        "name": "bench", "seed": seed, "start": "2026-11-28T14:00:00Z", "duration_s": duration_s,
        "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]}, "propagation": propagation,
        "bracelets": bracelets,
        "receivers": [{"id": "FIX", "kind": "fixed", "position": list(ORIGIN), "gps_sigma_m": 0.0,
                       "frontend": {"sample_rate_hz": sample_rate_hz, "ppm_error": ppm_error,
                                    "gain_db": gain_db}}],
    }  # fmt: skip


def distance_for_cn0_m(cn0_dbhz: float, eirp_dbm: float = -10.0) -> float:
    """Free-space distance at which a bracelet arrives at ``cn0_dbhz`` at the simulated dongle."""
    from firmware_sim.propagation import free_space_loss_1m_db

    loss_db = eirp_dbm - (cn0_dbhz + NOISE_DBM_PER_HZ)
    return 10 ** ((loss_db - free_space_loss_1m_db(216.5e6)) / 20)


def north_of(metres: float) -> list[float]:
    from safetynet.geodesy import forward

    lat, lon = forward(ORIGIN[0], ORIGIN[1], 0.0, metres)
    return [lat, lon]
