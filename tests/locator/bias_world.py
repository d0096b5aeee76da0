"""A simulated search with known bearing biases, the truth the bias fit is checked against.

Someone walks and stops (walks of 0.3–1.5 m/s on a steady heading, stops of one to five minutes,
turning back past 300 m from where they started); three searchers roam a few square kilometres
(1.3 m/s, a new heading every minute or so, not tied to one area), each receiver with its own
true bias (``BIASES_DEG``: one fair, two in the 9–12° of multipath, DOMAIN.md); bearings arrive
about every 0.7 s, with Gaussian error of the reported sigma, a share of them reflections (wild
by 30–150°), and a share of the reports late (arriving after up to 40 later ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from locator.kalman import Measurement

BIASES_DEG = {"A": 0.0, "B": 8.0, "C": -10.0}
SIGMA_DEG = 4.0
WALK_SPEED_MPS = 1.3  # a searcher's pace
HOME_RADIUS_M = 300.0


@dataclass(frozen=True)
class Scene:
    """The reports in arrival order, and the truth: the person's [east_m, north_m, ve_mps,
    vn_mps] at every second (``truth[i]`` at ``t_s = i``) and each receiver's bias (radians)."""

    reports: list[Measurement]
    truth: NDArray[np.float64]
    bias_rad: dict[str, float]

    def state_at(self, t_s: float) -> NDArray[np.float64]:
        """The person's state at ``t_s`` (interpolated between the seconds)."""
        i = min(int(t_s), len(self.truth) - 2)
        f = t_s - i
        return np.asarray((1.0 - f) * self.truth[i] + f * self.truth[i + 1])


def _person(rng: np.random.Generator, duration_s: int) -> NDArray[np.float64]:
    """Walks and stops, second by second: (duration_s + 1) × [e, n, ve, vn]."""
    out = np.zeros((duration_s + 1, 4))
    pos, vel = np.zeros(2), np.zeros(2)
    change_at = 0.0
    for t in range(duration_s + 1):
        if t >= change_at:
            if not vel.any():  # stopped: set off
                heading = rng.uniform(0, 2 * math.pi)
                vel = rng.uniform(0.3, 1.5) * np.array([math.sin(heading), math.cos(heading)])
            else:
                vel = np.zeros(2)
            change_at = t + rng.uniform(60, 300)
        if np.linalg.norm(pos) > HOME_RADIUS_M and float(pos @ vel) > 0:
            vel = -vel  # turning back
        out[t, :2], out[t, 2:] = pos, vel
        pos = pos + vel
    return out


def _searcher(rng: np.random.Generator, duration_s: int) -> NDArray[np.float64]:
    """A searcher's path, second by second: (duration_s + 1) × [e, n]."""
    out = np.zeros((duration_s + 1, 2))
    angle = rng.uniform(0, 2 * math.pi)
    pos = rng.uniform(400, 900) * np.array([math.sin(angle), math.cos(angle)])
    heading = rng.uniform(0, 2 * math.pi)
    for t in range(duration_s + 1):
        if rng.random() < 1 / 60:
            heading = rng.uniform(0, 2 * math.pi)
        if np.linalg.norm(pos) > 1500.0:
            heading = math.atan2(-pos[0], -pos[1])  # back towards the search
        out[t] = pos
        pos = pos + WALK_SPEED_MPS * np.array([math.sin(heading), math.cos(heading)])
    return out


def walking_search(
    rng: np.random.Generator,
    duration_s: int = 900,
    wild_share: float = 0.05,
    late_share: float = 1 / 15,
    biases_deg: dict[str, float] | None = None,
) -> Scene:
    """One search (see the module's docstring)."""
    biases = {k: math.radians(v) for k, v in (biases_deg or BIASES_DEG).items()}
    truth = _person(rng, duration_s)
    paths = {name: _searcher(rng, duration_s) for name in biases}
    sigma = math.radians(SIGMA_DEG)
    reports = []
    t_s = float(rng.exponential(0.7))
    while t_s < duration_s:
        name = str(rng.choice(list(biases)))
        i = int(t_s)
        f = t_s - i
        where = (1.0 - f) * paths[name][i] + f * paths[name][i + 1]
        target = (1.0 - f) * truth[i, :2] + f * truth[i + 1, :2]
        de, dn = target - where
        bearing = math.atan2(de, dn) + biases[name] + float(rng.normal(0, sigma))
        if rng.random() < wild_share:
            bearing += float(rng.choice([-1, 1]) * rng.uniform(math.radians(30), math.radians(150)))
        bearing = bearing % (2 * math.pi)
        reports.append(
            Measurement(t_s, "bearing", name, float(where[0]), float(where[1]), bearing, sigma)
        )
        t_s += float(rng.exponential(0.7))
    n = len(reports)
    for _ in range(int(n * late_share)):
        i = int(rng.integers(n))
        reports.insert(min(n - 1, i + int(rng.integers(1, 40))), reports.pop(i))
    return Scene(reports, truth, biases)
