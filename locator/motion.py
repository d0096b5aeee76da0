"""How a person who wanders moves: walking legs and stops, as a switching stochastic model.

A person who wanders (DOMAIN.md) walks at 0.2–1.5 m/s on a fairly steady heading, then stops —
briefly to look around, or for minutes, sitting down. Two modes, switched by a Markov chain:

- **walking**: the velocity is an Ornstein–Uhlenbeck process per axis (integrated, it is the
  Singer model): ``v(t+dt) = a·v(t) + √(1 − a²)·σ_v·ξ`` with ``a = exp(−dt/τ)``. Its stationary
  spread ``WALK_SIGMA_MPS`` per axis puts the speed around 0.9 m/s and rarely above 2; its
  correlation time ``HEADING_MEMORY_S`` is how long a heading is kept (a street, a path) before a
  turn. Between two bearings a minute apart the model lets the person go anywhere within about
  90 m, as a real walker can; on a leg it holds the walker's velocity, so the estimate does not
  lag behind him.
- **stopped**: the velocity is zero and the position only jitters (a person shuffling on a
  bench), so a track settles quickly on someone who has sat down.

Leaving a mode is a Poisson event: a walking leg lasts ``LEG_MEAN_S`` on average, a stop
``STOP_MEAN_S`` (a mix of short looks around and long rests). A walker who starts off draws a
fresh velocity from the walking model's stationary distribution — the heading is unknown.

The functions are pure and vectorised over particles: arrays in, arrays out.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

WALK_SPEED_MPS = 0.9  # a typical walking pace of a person who wanders (0.2–1.5 m/s)
WALK_SIGMA_MPS = 0.7  # per axis: √(E[speed²]/2) for speeds 0.9 ± 0.3 m/s on any heading
MAX_SPEED_MPS = 2.0  # faster than any wandering walk; velocities are clipped here
HEADING_MEMORY_S = 180.0  # correlation time of the walking velocity: a street, a path
LEG_MEAN_S = 240.0  # mean duration of a walking leg
STOP_MEAN_S = 180.0  # mean duration of a stop (short pauses and long rests together)
STOPPED_JITTER_M2_PER_S = 0.05  # a stopped person's position diffuses only this much
MAX_STEP_S = 5.0  # long predictions are taken in steps no longer than this


def start_walking_velocity(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Velocities (n×2, m/s) of walkers setting off on unknown headings."""
    v: NDArray[np.float64] = rng.normal(0.0, WALK_SIGMA_MPS, size=(n, 2))
    return v


def propagate(
    position_en: NDArray[np.float64],
    velocity_en: NDArray[np.float64],
    walking: NDArray[np.bool_],
    dt_s: float,
    rng: np.random.Generator,
) -> None:
    """Move particles forward by ``dt_s`` seconds, in place.

    ``position_en`` (n×2, m), ``velocity_en`` (n×2, m/s), ``walking`` (n,) the mode of each.
    """
    remaining = dt_s
    n = walking.size
    while remaining > 1e-9:
        dt = min(remaining, MAX_STEP_S)
        remaining -= dt
        # Mode switches (at most one per step: steps are far shorter than the mean dwell).
        u = rng.random(n)
        stops = walking & (u < -math.expm1(-dt / LEG_MEAN_S))
        starts = ~walking & (u < -math.expm1(-dt / STOP_MEAN_S))
        if stops.any():
            walking[stops] = False
            velocity_en[stops] = 0.0
        if starts.any():
            walking[starts] = True
            velocity_en[starts] = start_walking_velocity(rng, int(starts.sum()))
        a = math.exp(-dt / HEADING_MEMORY_S)
        noise = rng.normal(0.0, 1.0, size=(n, 2))
        new_v = a * velocity_en + math.sqrt(1.0 - a * a) * WALK_SIGMA_MPS * noise
        speed = np.hypot(new_v[:, 0], new_v[:, 1])
        fast = speed > MAX_SPEED_MPS
        if fast.any():
            new_v[fast] *= (MAX_SPEED_MPS / speed[fast])[:, None]
        new_v[~walking] = 0.0
        # Trapezoidal position step; a stopped particle only jitters.
        position_en += 0.5 * (velocity_en + new_v) * dt
        velocity_en[:] = new_v
        jitter = math.sqrt(STOPPED_JITTER_M2_PER_S * dt)
        still = ~walking
        if still.any():
            position_en[still] += rng.normal(0.0, jitter, size=(int(still.sum()), 2))
