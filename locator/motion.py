"""How a person who wanders moves: walking legs and stops, as a switching stochastic model.

A person who wanders (DOMAIN.md) walks at 0.2–1.5 m/s on a fairly steady heading, then stops —
briefly to look around, or for minutes, sitting down. Three modes (``WALKING``, ``LOOKING``,
``RESTING``), switched by a Markov chain:

- **walking**: a speed and a heading, each its own process. The **speed** is an
  Ornstein–Uhlenbeck process around the typical pace ``WALK_SPEED_MPS`` (spread
  ``SPEED_SIGMA_MPS``, memory ``SPEED_MEMORY_S`` — a pace is kept for a leg), within
  ``MIN_SPEED_MPS``..``MAX_SPEED_MPS``. The **heading** drifts slowly
  (``HEADING_DRIFT_DEG_PER_SQRT_S``) and turns now and then (at a junction, on average every
  ``TURN_EVERY_M`` walked, by ``TURN_SD_DEG``). A person with dementia keeps a heading and
  rarely backtracks (Koester: median 15 m off the travel route), so between turns the heading
  is nearly steady; the turns, rare and large, are what a smooth diffusion of the same
  long-run memory (``HEADING_MEMORY_S``, about nine minutes) misses: it turns every walker by
  20° every half minute. (Measured on 45 generated searches against that diffusion: the
  same median error, 61–62 m, and no fix beyond three times its ellipse after two minutes
  instead of 47 in two searches.)
  Why not a zero-mean velocity process per axis (the Singer model): its prior is a blob
  around standing still, and the speed of a walker whose heading is not yet known is pulled
  towards zero with it. A walker's pace is known to within a factor of two before any
  evidence — only his heading is not — and the model says so.
- **stopped**, looking around (``LOOKING``, half a minute or so) or sitting down (``RESTING``,
  a quarter of an hour): the position only jitters (a person shuffling on a bench), so a
  track settles quickly on someone who has sat down. The velocity is not forgotten: it is the
  heading the person had, and a walker who stops to look around walks on the way he was
  going. It keeps evolving by the same process while he stands (the longer the stop, the less
  it says), and he moves by it only once he walks again.

Leaving a mode is a Poisson event: a walking leg lasts ``LEG_MEAN_S`` on average; it ends in
a rest with probability ``REST_SHARE`` and in a look around otherwise, which last
``LOOK_MEAN_S`` and ``REST_MEAN_S`` on average (10–60 s and 5–20 minutes: the walker model of
firmware_sim/walker.py, so about a third of the time standing). The two kinds of stop are two
states, not one of their mean length: one exponential stop of three minutes says that every
pause may last minutes, so a walker seen walking a minute ago is believed to have stood still
much of the time since, and the estimate falls behind him (measured on 45 generated searches,
this and the speed-and-heading walk together: along-track lag −51 → −46 m, the ellipse of the
worst search covering 49 % of its samples instead of 16 %).

**Which way a walker heads** is not known at first, but it is not uniform either: a person
found ``d`` from where he was last seen after a walk of length ``L`` walked a path whose unit
headings average ``d / L`` along the way out (:func:`outbound_velocity`), so a track that knows
the last known point starts (and reseeds) its walkers leaning away from it — strongly for one
far out for the time he had, not at all for one near it. Without that, a cloud whose heading
the evidence has not yet taught lags the walker by its uncertainty (measured on 105 generated
searches with the rest of its commit: along-track −55 → −50 m, median error 65 → 65 m, fixes
beyond three times their ellipse after two minutes 402 in 4 searches → 290 in 2).

A prediction over a long gap (a receiver's clock far ahead) costs at most ``MAX_STEPS`` steps:
past ``MAX_STEPS × MAX_STEP_S`` the velocity has long forgotten its start and the rest of the
gap is one step of the walk's long-run diffusion (variance ``v²·τ·t`` per axis for speed ``v``
and heading memory ``τ``, for the share of the time spent walking), so that no time, however
far, stalls a track.

The functions are pure and vectorised over particles: arrays in, arrays out.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

WALK_SPEED_MPS = 0.9  # a typical walking pace of a person who wanders (0.2–1.5 m/s)
SPEED_SIGMA_MPS = 0.35  # spread of the pace between people and legs
MIN_SPEED_MPS = 0.1
MAX_SPEED_MPS = 2.0  # faster than any wandering walk
SPEED_MEMORY_S = 240.0  # a pace is kept for about a leg
HEADING_DRIFT_DEG_PER_SQRT_S = 2.0  # a slow drift of the heading
TURN_EVERY_M = 300.0  # a turn at a junction every few hundred metres ...
TURN_SD_DEG = 60.0  # ... by about ±60°
# The long-run memory of the walking direction: E[cos Δθ] falls by e in this time (drift and
# turns at the usual pace).
HEADING_MEMORY_S = 1.0 / (
    0.5 * math.radians(HEADING_DRIFT_DEG_PER_SQRT_S) ** 2
    + WALK_SPEED_MPS / TURN_EVERY_M * (1.0 - math.exp(-0.5 * math.radians(TURN_SD_DEG) ** 2))
)
LEG_MEAN_S = 240.0  # mean duration of a walking leg
LOOK_MEAN_S = 35.0  # a stop to look around: 10–60 s
REST_MEAN_S = 750.0  # sitting down: 5–20 minutes
REST_SHARE = 0.15  # of the stops
WALKING, LOOKING, RESTING = 0, 1, 2  # the modes
STOPPED_JITTER_M2_PER_S = 0.05  # a stopped person's position diffuses only this much
MAX_STRAIGHT = 0.95  # no walk is known to have been perfectly straight
MAX_STEP_S = 5.0  # long predictions are taken in steps no longer than this
MAX_STEPS = 360  # ... and at most this many of them (half an hour); the rest as one diffusion


def start_walking_velocity(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Velocities (n×2, east/north m/s) of walkers at their usual pace on unknown headings."""
    speed = np.clip(rng.normal(WALK_SPEED_MPS, SPEED_SIGMA_MPS, n), MIN_SPEED_MPS, MAX_SPEED_MPS)
    heading = rng.uniform(0.0, 2.0 * math.pi, n)
    v: NDArray[np.float64] = np.column_stack((speed * np.sin(heading), speed * np.cos(heading)))
    return v


def outbound_velocity(
    rng: np.random.Generator, offset_en: NDArray[np.float64], since_s: float
) -> NDArray[np.float64]:
    """Velocities (n×2, m/s) of walkers at ``offset_en`` (n×2, m) from where they were last
    seen ``since_s`` ago: the usual pace, on headings that lean away from that place.

    A person who got from the last known point to ``offset`` walked a path whose unit headings
    average ``offset / L`` (L the path's length): their heading at a moment of the walk has a
    mean resultant length ``s = |offset| / L`` in the outbound direction. L is taken as the
    usual pace over the walking share of the time since, and the heading drawn from the von
    Mises distribution whose mean resultant length is ``s`` (near the last known point, or long
    after, ``s`` is small and the heading nearly uniform; a walker far out for the time he had
    went nearly straight, and ``s`` nears one)."""
    n = offset_en.shape[0]
    speed = np.clip(rng.normal(WALK_SPEED_MPS, SPEED_SIGMA_MPS, n), MIN_SPEED_MPS, MAX_SPEED_MPS)
    length_m = WALK_SPEED_MPS * walking_share() * since_s
    if length_m < 1.0:  # last seen now, or "later" than the evidence (a clock or a typo): no lean
        return start_walking_velocity(rng, n)
    straight = np.clip(np.hypot(offset_en[:, 0], offset_en[:, 1]) / length_m, 0.0, MAX_STRAIGHT)
    heading = rng.vonmises(
        np.arctan2(offset_en[:, 0], offset_en[:, 1]), _kappa_of_resultant(straight)
    )
    v: NDArray[np.float64] = np.column_stack((speed * np.sin(heading), speed * np.cos(heading)))
    return v


def _kappa_of_resultant(r: NDArray[np.float64]) -> NDArray[np.float64]:
    """The von Mises concentration whose mean resultant length is ``r`` (0 ≤ r < 1; Best and
    Fisher's approximation, Fisher 1993, eq. 4.40)."""
    r = np.asarray(r, dtype=float)
    low = 2.0 * r + r**3 + 5.0 * r**5 / 6.0
    mid = -0.4 + 1.39 * r + 0.43 / (1.0 - np.minimum(r, 0.99))
    high = 1.0 / np.maximum(r**3 - 4.0 * r**2 + 3.0 * r, 1e-9)
    out: NDArray[np.float64] = np.where(r < 0.53, low, np.where(r < 0.85, mid, high))
    return out


def mode_shares() -> tuple[float, float, float]:
    """The long-run shares of time walking, looking around and resting (the chain's stationary
    distribution: each mode's share is its entry rate times its mean dwell)."""
    look = (1.0 - REST_SHARE) * LOOK_MEAN_S
    rest = REST_SHARE * REST_MEAN_S
    total = LEG_MEAN_S + look + rest
    return LEG_MEAN_S / total, look / total, rest / total


def walking_share() -> float:
    """The long-run share of time spent walking."""
    return mode_shares()[0]


def draw_modes(rng: np.random.Generator, n: int) -> NDArray[np.int8]:
    """Modes (n,) drawn from the long-run shares: a person of whom nothing is known yet."""
    walk, look, _ = mode_shares()
    u = rng.random(n)
    out: NDArray[np.int8] = np.where(
        u < walk, WALKING, np.where(u < walk + look, LOOKING, RESTING)
    ).astype(np.int8)
    return out


def evolve_velocity(
    velocity_en: NDArray[np.float64], dt_s: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """The walking velocities (n×2, m/s) ``dt_s`` later: the speed reverts towards the usual
    pace, the heading diffuses."""
    n = velocity_en.shape[0]
    speed = np.hypot(velocity_en[:, 0], velocity_en[:, 1])
    heading = np.arctan2(velocity_en[:, 0], velocity_en[:, 1])
    a = math.exp(-dt_s / SPEED_MEMORY_S)
    speed = WALK_SPEED_MPS + a * (speed - WALK_SPEED_MPS)
    speed += math.sqrt(1.0 - a * a) * SPEED_SIGMA_MPS * rng.normal(0.0, 1.0, n)
    speed = np.clip(speed, MIN_SPEED_MPS, MAX_SPEED_MPS)
    heading += (
        math.radians(HEADING_DRIFT_DEG_PER_SQRT_S) * math.sqrt(dt_s) * rng.normal(0.0, 1.0, n)
    )
    turns = rng.random(n) < -np.expm1(-speed * dt_s / TURN_EVERY_M)
    if turns.any():
        heading[turns] += math.radians(TURN_SD_DEG) * rng.normal(0.0, 1.0, int(turns.sum()))
    out: NDArray[np.float64] = np.column_stack((speed * np.sin(heading), speed * np.cos(heading)))
    return out


def propagate(
    position_en: NDArray[np.float64],
    velocity_en: NDArray[np.float64],
    mode: NDArray[np.int8],
    dt_s: float,
    rng: np.random.Generator,
) -> None:
    """Move particles forward by ``dt_s`` seconds, in place.

    ``position_en`` (n×2, m), ``velocity_en`` (n×2, m/s: the walking velocity, kept as the
    heading memory while stopped), ``mode`` (n,) the mode of each (``WALKING``, ``LOOKING``,
    ``RESTING``).
    """
    if not math.isfinite(dt_s):
        raise ValueError(f"a prediction needs a finite time step, got {dt_s}")
    n = mode.size
    remaining = dt_s
    beyond = max(dt_s - MAX_STEPS * MAX_STEP_S, 0.0)
    if beyond > 0.0:
        remaining -= beyond
        # The long-run diffusion of a walk whose direction is kept for HEADING_MEMORY_S.
        spread_m2 = (WALK_SPEED_MPS**2 + SPEED_SIGMA_MPS**2) * HEADING_MEMORY_S * beyond
        position_en += rng.normal(0.0, math.sqrt(spread_m2 * walking_share()), size=(n, 2))
        mode[:] = draw_modes(rng, n)
        velocity_en[:] = start_walking_velocity(rng, n)
    while remaining > 1e-9:
        dt = min(remaining, MAX_STEP_S)
        remaining -= dt
        # Mode switches (at most one per step: steps are far shorter than the mean dwell).
        u = rng.random(n)
        walking = mode == WALKING
        stops = walking & (u < -math.expm1(-dt / LEG_MEAN_S))
        ends_look = (mode == LOOKING) & (u < -math.expm1(-dt / LOOK_MEAN_S))
        ends_rest = (mode == RESTING) & (u < -math.expm1(-dt / REST_MEAN_S))
        moving = walking & ~stops  # walks through this step
        if stops.any():
            rests = rng.random(int(stops.sum())) < REST_SHARE
            mode[stops] = np.where(rests, RESTING, LOOKING)
        mode[ends_look | ends_rest] = WALKING
        new_v = evolve_velocity(velocity_en, dt, rng)
        # Trapezoidal position step for those walking; a stopped particle only jitters.
        position_en[moving] += 0.5 * (velocity_en[moving] + new_v[moving]) * dt
        velocity_en[:] = new_v
        still = ~moving
        if still.any():
            jitter = math.sqrt(STOPPED_JITTER_M2_PER_S * dt)
            position_en[still] += rng.normal(0.0, jitter, size=(int(still.sum()), 2))
