"""The receivers' bias fit and the Kalman path, before and after a change, side by side.

On seeded simulated searches (tests/locator/bias_world.py: someone who walks and stops, three
roaming searchers whose receivers are 0°, +8° and −10° off, 5 % reflections wild by 30–150°,
one report in fifteen late), in one run:

- the bias fit alone (``estimate_biases``) over the last two minutes' bearings, every minute of
  each search, started from the truth 30 m and 0.3 m/s off: each receiver's error (the bias
  reported, or none, against the truth) in degrees, median and worst, and how many answers
  carry a bias beyond 30°;
- the whole Kalman tracker (``Track``), started 50 m off: its biases every minute (the same
  errors) and its position error against the truth at every report after the first two
  minutes, pooled median and 95th percentile, and the worst track's median and worst.

A fit or a track that raises (the old fit could take the square root of a negative variance) is
counted; a track that raised is measured up to the report that raised.

"Before" is the code of a given revision (``--before``, read with ``git show``), "after" the
working tree.

    .venv/bin/python bench/kalman_bias.py --seeds 200 --before f30d00f
"""

from __future__ import annotations

import argparse
import inspect
import math
import subprocess
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from common import REPO

import locator.bias
import locator.kalman
from tests.locator.bias_world import Scene, walking_search

WARMUP_S = 120.0
WINDOW_S = 120.0


def old_modules(rev: str) -> tuple[types.ModuleType, types.ModuleType]:
    """locator/bias.py and locator/kalman.py as they were at ``rev``, the kalman module using
    that revision's bias fit."""

    def load(name: str, path: str, extra: dict[str, Any]) -> types.ModuleType:
        source = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        module = types.ModuleType(name)
        sys.modules[name] = module  # dataclasses look their module up
        module.__dict__.update(extra)
        exec(compile(source, f"{rev}:{path}", "exec"), module.__dict__)
        return module

    bias = load("before_bias", "locator/bias.py", {})
    sys.modules["locator.bias"], real = bias, sys.modules["locator.bias"]
    try:
        kalman = load("before_kalman", "locator/kalman.py", {})
    finally:
        sys.modules["locator.bias"] = real
    return bias, kalman


def fit(estimate: Callable[..., dict[str, float]], scene: Scene, t_end: float,
        start: np.ndarray) -> dict[str, float]:  # fmt: skip
    """One bias fit over the window ending at ``t_end`` (every bearing in it, wild ones too)."""
    window = [m for m in scene.reports if t_end - WINDOW_S <= m.t_s <= t_end]
    args = (
        [m.receiver_id for m in window],
        np.array([m.east_m for m in window]),
        np.array([m.north_m for m in window]),
        np.array([m.value for m in window]),
        np.array([m.sigma for m in window]),
    )
    if "t_end_s" in inspect.signature(estimate).parameters:
        return estimate(*args, np.array([m.t_s for m in window]), start, t_end)
    return estimate(*args, start[:2])


def errors_deg(found: dict[str, float], truth: dict[str, float]) -> list[float]:
    """Per receiver: the correction found (none is zero) less the true bias, in degrees."""
    return [math.degrees(found.get(name, 0.0) - b) for name, b in truth.items()]


def run(kalman: types.ModuleType, bias: types.ModuleType, seeds: range) -> dict[str, Any]:
    fit_err: list[float] = []
    track_err: list[float] = []
    pos_err: list[float] = []
    per_track: list[tuple[float, float]] = []
    absurd = raised_fits = raised_tracks = 0
    fits = 0
    for seed in seeds:
        scene = walking_search(np.random.default_rng(seed))
        rng = np.random.default_rng(10_000 + seed)
        end = scene.truth.shape[0] - 1
        for t_end in np.arange(WARMUP_S, end, 60.0):
            start = scene.state_at(t_end) + np.concatenate(
                (rng.normal(0, 30.0, 2), rng.normal(0, 0.3, 2))
            )
            fits += 1
            try:
                found = fit(bias.estimate_biases, scene, float(t_end), start)
            except ValueError:  # the fit's own arithmetic failed (a negative variance)
                raised_fits += 1
                found = {}
            absurd += any(abs(b) > math.radians(30.0) for b in found.values())
            fit_err += errors_deg(found, scene.bias_rad)
        x0 = scene.truth[0, :2] + rng.normal(0, 50.0, 2)
        track = kalman.Track(x0, np.eye(2) * 150.0**2, 0.0)
        errs = []
        next_bias_check = WARMUP_S
        for m in scene.reports:
            try:
                track.add(m)
            except ValueError:  # the rest of this search is lost: counted, and left out
                raised_tracks += 1
                break
            t = track.t_s
            if t >= next_bias_check:
                track_err += errors_deg(track.bias_rad, scene.bias_rad)
                next_bias_check += 60.0
            if t >= WARMUP_S:
                x, _, _ = track.estimate
                errs.append(float(np.linalg.norm(x[:2] - scene.state_at(t)[:2])))
        if errs:
            pos_err += errs
            per_track.append((float(np.median(errs)), float(np.max(errs))))
    fe, te, pe = np.abs(fit_err), np.abs(track_err), np.array(pos_err)
    return {
        "fit bias |err| median °": float(np.median(fe)),
        "fit bias |err| p95 °": float(np.percentile(fe, 95)),
        "fit bias |err| worst °": float(fe.max()),
        "fits with a bias > 30°": f"{absurd} of {fits}",
        "fits that raised": f"{raised_fits} of {fits}",
        "track bias |err| median °": float(np.median(te)),
        "track bias |err| p95 °": float(np.percentile(te, 95)),
        "track bias |err| worst °": float(te.max()),
        "tracks that raised": f"{raised_tracks} of {len(seeds)}",
        "position err median m": float(np.median(pe)),
        "position err p95 m": float(np.percentile(pe, 95)),
        "worst track's median m": max(m for m, _ in per_track),
        "position err worst m": max(w for _, w in per_track),
    }


def cell(value: float | str) -> str:
    return f"{value:14.2f}" if isinstance(value, float) else f"{value:>14}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--before", default="f30d00f", help="the revision to compare with")
    args = parser.parse_args()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    old_bias, old_kalman = old_modules(args.before)
    before = run(old_kalman, old_bias, seeds)
    after = run(locator.kalman, locator.bias, seeds)
    print(f"{len(seeds)} searches from seed {args.first_seed}; before = {args.before}")
    print(f"{'':28} {'before':>14} {'after':>14}")
    for key in before:
        print(f"{key:28} {cell(before[key])} {cell(after[key])}")


if __name__ == "__main__":
    main()
