"""The receivers' bias fit against simulated searches whose true biases are known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from locator import kalman
from locator.bias import MAX_BIAS_DEG, estimate_biases
from locator.kalman import Measurement, Track
from tests.locator.bias_world import SIGMA_DEG, Scene, walking_search

WINDOW_S = 120.0


def window_fit(scene: Scene, t_end: float, start: np.ndarray) -> dict[str, float]:
    """The fit over the two minutes of bearings before ``t_end`` (reflections included)."""
    ms = [m for m in scene.reports if t_end - WINDOW_S <= m.t_s <= t_end]
    return fit(ms, start, t_end)


def fit(ms: list[Measurement], start: np.ndarray, t_end: float) -> dict[str, float]:
    return estimate_biases(
        [m.receiver_id for m in ms],
        np.array([m.east_m for m in ms]),
        np.array([m.north_m for m in ms]),
        np.array([m.value for m in ms]),
        np.array([m.sigma for m in ms]),
        np.array([m.t_s for m in ms]),
        start,
        t_end,
    )


def test_fitted_biases_are_near_the_true_ones_and_never_absurd() -> None:
    # Someone walking, searchers roaming, receivers 0°, +8° and −10° off, 5 % reflections.
    found_err, uncorrected, corrected = [], [], []
    for seed in range(24):
        scene = walking_search(np.random.default_rng(seed))
        rng = np.random.default_rng(1000 + seed)
        for t_end in np.arange(120.0, 900.0, 60.0):
            off = np.concatenate((rng.normal(0, 30.0, 2), rng.normal(0, 0.3, 2)))
            found = window_fit(scene, float(t_end), scene.state_at(float(t_end)) + off)
            for name, truth in scene.bias_rad.items():
                applied = found.get(name, 0.0)
                assert abs(applied) <= math.radians(MAX_BIAS_DEG)
                uncorrected.append(truth)
                corrected.append(truth - applied)
                if name in found:
                    found_err.append(abs(math.degrees(applied - truth)))
    # A bias is reported often enough to matter, and when reported is mostly close to the truth.
    assert len(found_err) > 30
    assert float(np.median(found_err)) < 4.0
    # Its corrections leave the bearings nearer the truth than no correction would.
    assert np.sqrt(np.mean(np.square(corrected))) < np.sqrt(np.mean(np.square(uncorrected)))


def test_the_fit_does_not_depend_on_where_it_starts() -> None:
    # From the truth, from 1e-13 m beside it, and from 40 m and 0.4 m/s off: one answer.
    found = 0
    for seed in range(10):
        scene = walking_search(np.random.default_rng(seed))
        for t_end in (240.0, 360.0, 480.0, 600.0, 720.0, 840.0):
            truth = scene.state_at(t_end)
            results = [
                window_fit(scene, t_end, truth + np.array([de, dn, dve, 0.0]))
                for de, dn, dve in ((0.0, 0.0, 0.0), (1e-13, 0.0, 0.0), (40.0, -30.0, 0.4))
            ]
            found += bool(results[0])
            for other in results[1:]:
                assert other.keys() == results[0].keys()
                for name, bias in results[0].items():
                    assert other[name] == pytest.approx(bias, abs=1e-9)
    assert found >= 3  # there were biases to compare


def test_a_single_receiver_gets_no_correction() -> None:
    scene = walking_search(np.random.default_rng(4), biases_deg={"B": 8.0})
    assert window_fit(scene, 600.0, scene.state_at(600.0)) == {}


def still_receivers(rng: np.random.Generator, spots: dict[str, tuple[float, float]],
                    target: tuple[float, float]) -> list[Measurement]:  # fmt: skip
    """Bearings from receivers standing at fixed spots, 0°, +8° and −10° off."""
    biases = {"A": 0.0, "B": 8.0, "C": -10.0}
    sigma = math.radians(SIGMA_DEG)
    out = []
    for k in range(240):
        name = "ABC"[k % 3]
        e, n = spots[name]
        true = math.atan2(target[0] - e, target[1] - n)
        bearing = true + math.radians(biases[name]) + float(rng.normal(0, sigma))
        out.append(Measurement(k * 0.5, "bearing", name, e, n, bearing % (2 * math.pi), sigma))
    return out


@pytest.mark.parametrize(
    "target",
    [(150.0, 400.0), (900.0, 0.0)],
    ids=["off-the-road", "on-the-road"],
)
def test_receivers_standing_on_one_road_get_no_correction(target: tuple[float, float]) -> None:
    # Three receivers that do not move, on one straight road: one direction each, for three
    # biases and a position — the biases cannot be told from the position, so nothing may be
    # corrected (and with the target on the road, the range along it is not fixed at all).
    spots = {"A": (-600.0, 0.0), "B": (0.0, 0.0), "C": (500.0, 0.0)}
    ms = still_receivers(np.random.default_rng(5), spots, target)
    start = np.array([target[0] + 40.0, target[1] - 30.0, 0.0, 0.0])
    assert fit(ms, start, ms[-1].t_s) == {}


def test_the_track_feeds_the_fit_only_bearings_the_gate_let_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scene = walking_search(np.random.default_rng(6), late_share=0.0, wild_share=0.1)
    fed: list[set[float]] = []

    def recording(*args: np.ndarray, **kwargs: np.ndarray) -> dict[str, float]:
        fed.append(set(args[3].tolist()))
        return estimate_biases(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(kalman, "estimate_biases", recording)
    track = Track(scene.truth[0, :2], np.eye(2) * 150.0**2, 0.0)
    refused = {m.value for m in scene.reports if not track.add(m)}
    assert len(refused) > 20
    assert len(fed) > 5
    for values in fed:
        assert not values & refused


def test_gated_counts_each_refused_report_once_however_often_it_is_replayed() -> None:
    # Reflections the gate refuses, and late reports that re-run the history over them: the
    # count is of reports, so it equals that of a track that took the same reports in order
    # (whose every report is applied once).
    scene = walking_search(np.random.default_rng(7), wild_share=0.1, late_share=0.1)
    late = Track(scene.truth[0, :2], np.eye(2) * 150.0**2, 0.0)
    for m in scene.reports:
        late.add(m)
    in_order = Track(scene.truth[0, :2], np.eye(2) * 150.0**2, 0.0)
    refused = sum(not in_order.add(m) for m in sorted(scene.reports, key=lambda m: m.t_s))
    replays = sum(b.t_s < a.t_s for a, b in zip(scene.reports, scene.reports[1:], strict=False))
    assert replays > 50
    assert refused > 50
    assert in_order.gated == refused
    assert late.gated == refused
