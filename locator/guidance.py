"""Where each search team should go next, planned on the probability map; and the team model.

The **team model**: a team on foot (a handheld Yagi) walks at ``WALK_SPEED_MPS``, a car (a roof
omni) drives at ``CAR_SPEED_MPS``; guidance looks ``LOOK_AHEAD_S`` ahead, so a team is offered
points within that reach; its antenna's gain is the pattern's peak (:mod:`safetynet.antennas`:
a swept Yagi points at the bracelet at some moment of its sweep). The live map and the search
simulation build their teams from it (:func:`guided_team`).

**Planning** (:func:`plan`): for each team, the reachable listening point with the best chance of
hearing the bracelet; or, for a team that hears it now or could get where hearing it is near
certain (``CLOSE_IN_AT``), the spot it most probably is at (the fine grid's local centre of
probability within ``CLOSE_IN_M``). Teams are placed one after another, the one that can get
farthest first, each as if the ones before had listened and heard nothing, so they spread out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from locator.prior import WALK_SPEED_MPS
from locator.probmap import ProbMap
from safetynet.antennas import PATTERNS
from safetynet.reports import Antenna

CAR_SPEED_MPS = 8.0  # a cruiser searching streets, not driving to the scene
LOOK_AHEAD_S = 180.0  # guidance looks this far ahead: three minutes on foot or by car
CLOSE_IN_AT = 0.9  # listening turns into closing in once a reachable spot hears this surely
CLOSE_IN_M = 100.0  # ... towards the point with the most probability within this distance
PLAN_CELL_M = 60.0  # guidance plans on cells of about this size
DIRECTIONS = 12  # listening points are tried in this many directions ...
REACH_FRACTIONS = (1 / 3, 2 / 3, 1.0)  # ... at these fractions of the team's reach
CENTRE_STEPS = 20  # mean shift: at most this many steps ...
CENTRE_TOLERANCE_M = 1.0  # ... until a step moves less than this


@dataclass(frozen=True)
class TeamKind:
    """How a kind of team moves and listens."""

    name: str
    speed_mps: float
    antenna: Antenna

    @property
    def reach_m(self) -> float:
        """How far the team gets before the next guidance."""
        return self.speed_mps * LOOK_AHEAD_S

    @property
    def gain_dbi(self) -> float:
        """Its antenna's gain towards the bracelet: the pattern's peak."""
        return PATTERNS[self.antenna].peak_gain_dbi


ON_FOOT = TeamKind("on foot", WALK_SPEED_MPS, "yagi3")
BY_CAR = TeamKind("by car", CAR_SPEED_MPS, "omni")


class GuidedTeam(NamedTuple):
    """A team to guide: where it is, how far it can get before the next guidance (m), its
    antenna's gain (dBi; a noisier receiver counts as less gain) and whether it hears the
    bracelet now."""

    receiver_id: str
    east_m: float
    north_m: float
    reach_m: float
    gain_dbi: float
    hears: bool = False


def guided_team(
    receiver_id: str,
    east_m: float,
    north_m: float,
    kind: TeamKind,
    hears: bool = False,
    extra_noise_db: float = 0.0,
) -> GuidedTeam:
    """A team of ``kind`` at (``east_m``, ``north_m``) to guide; ``extra_noise_db`` is how much
    noisier its receiver is than the map's link budget assumes (counted as less gain)."""
    return GuidedTeam(
        receiver_id, east_m, north_m, kind.reach_m, kind.gain_dbi - extra_noise_db, hears
    )


@dataclass
class Guidance:
    """Where a team should go next: ``mode`` "listen" (the best chance to hear the bracelet
    there, ``p_detect``) or "close in" (the team hears it, or can get where hearing it is near
    certain: the centre of the most probability within ``CLOSE_IN_M``, ``p_near``)."""

    receiver_id: str
    east_m: float
    north_m: float
    p_detect: float
    mode: str = "listen"
    p_near: float = 0.0


def plan(
    grid: ProbMap,
    teams: Sequence[GuidedTeam | tuple[str, float, float, float, float]],
    directions: int = DIRECTIONS,
) -> list[Guidance]:
    """Guidance for each team (:class:`GuidedTeam`, or its first five fields) on ``grid``, in
    the given order (see the module's docstring)."""
    coarse = max(1, round(PLAN_CELL_M / grid.cell_m))
    n = grid.p.shape[0] // coarse * coarse
    pool = grid.p[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).sum(axis=(1, 3))
    ce = grid.east[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).mean(axis=(1, 3))
    cn = grid.north[:n, :n].reshape(n // coarse, coarse, n // coarse, coarse).mean(axis=(1, 3))
    p = pool.ravel() / max(pool.sum(), 1e-300)
    e, nn = ce.ravel(), cn.ravel()
    guided = [GuidedTeam(*team) for team in teams]
    placed: dict[int, Guidance] = {}
    for index in sorted(range(len(guided)), key=lambda i: -guided[i].reach_m):
        receiver_id, east, north, reach, gain, hears = guided[index]
        cand = [(east, north)]
        for frac in REACH_FRACTIONS:
            for k in range(directions):
                a = 2 * math.pi * k / directions
                cand.append((east + frac * reach * math.sin(a), north + frac * reach * math.cos(a)))
        # ... and the most probable spot itself, or as far towards it as the team can get.
        top = int(np.argmax(p))
        to_e, to_n = e[top] - east, nn[top] - north
        far = math.hypot(to_e, to_n)
        shrink = min(1.0, reach / far) if far > 0 else 0.0
        cand.append((east + to_e * shrink, north + to_n * shrink))
        ca = np.asarray(cand)
        d = np.hypot(e[None, :] - ca[:, 0:1], nn[None, :] - ca[:, 1:2])
        pd = grid.link.p_detect(d, gain)
        score = pd @ p
        best = int(np.argmax(score))
        if not hears and float(score.max()) < CLOSE_IN_AT:
            placed[index] = Guidance(
                receiver_id, float(ca[best, 0]), float(ca[best, 1]), float(score[best])
            )
            p = p * (1.0 - pd[best])
        else:
            # Heard now, or near certain to be heard from some reachable spot: listening is
            # done; go where the person most probably is, the next team to the next.
            near_w = np.exp(-0.5 * (d / CLOSE_IN_M) ** 2)
            near = near_w @ p
            best = int(np.argmax(near))
            # The planning cells (60 m) are coarser than a searcher's eyes: go to the fine
            # grid's centre of probability around the chosen point, if within reach.
            to_e, to_n = centre_near(grid, float(ca[best, 0]), float(ca[best, 1]))
            off_e, off_n = to_e - east, to_n - north
            far = math.hypot(off_e, off_n)
            shrink = min(1.0, reach / far) if far > 0 else 0.0
            placed[index] = Guidance(
                receiver_id,
                east + off_e * shrink,
                north + off_n * shrink,
                float(score[best]),
                "close in",
                float(near[best]),
            )
            p = p * (1.0 - near_w[best])
        p /= max(p.sum(), 1e-300)
    return [placed[i] for i in range(len(guided))]


def centre_near(grid: ProbMap, east_m: float, north_m: float) -> tuple[float, float]:
    """The fine grid's local centre of probability near a point: mean shift with a Gaussian
    kernel of width ``CLOSE_IN_M`` (each step moves to the probability-weighted centre around
    the last), to within ``CENTRE_TOLERANCE_M``; the point itself if nothing is there."""
    span = math.ceil(3 * CLOSE_IN_M / grid.cell_m)
    n = grid.p.shape[0]
    for _ in range(CENTRE_STEPS):
        col = int((east_m + grid.half_width_m) // grid.cell_m)
        row = int((north_m + grid.half_width_m) // grid.cell_m)
        rows = slice(min(max(row - span, 0), n), min(max(row + span + 1, 0), n))
        cols = slice(min(max(col - span, 0), n), min(max(col + span + 1, 0), n))
        e, nn = grid.east[rows, cols], grid.north[rows, cols]
        w = grid.p[rows, cols] * np.exp(
            -0.5 * ((e - east_m) ** 2 + (nn - north_m) ** 2) / CLOSE_IN_M**2
        )
        total = float(w.sum())
        if not total > 0:
            break
        to_e, to_n = float((w * e).sum() / total), float((w * nn).sum() / total)
        moved = math.hypot(to_e - east_m, to_n - north_m)
        east_m, north_m = to_e, to_n
        if moved < CENTRE_TOLERANCE_M:
            break
    return east_m, north_m
