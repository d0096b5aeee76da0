"""The Kalman path against the textbook IMM, written out plainly with numpy here.

The reference below is the interacting multiple model of Blom and Bar-Shalom as textbooks give
it — full 4 × 4 matrices, the white-acceleration noise in closed form, the mixing sums over
every pair of models, K = P Hᵀ / S and P ← (I − K H) P — with none of the module's shortcuts
(upper triangles, the mixing spread folded into w₀ⱼ w₁ⱼ δδᵀ, F P Fᵀ expanded by hand, a
gradient of two entries). The module's own conventions are the specification it is checked
against: an interval taken to the millisecond, the models' parameters, the gate on the combined
prediction, each model's innovation linearised at the combined estimate.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray

from locator import kalman
from locator.kalman import (
    GATE_SIGMAS,
    STOPPED_DRIFT_M2_PER_S,
    STOPPED_VELOCITY_VAR_M2PS2,
    SWITCH_PER_S,
    WALK_ACCEL_MPS2,
    Measurement,
    Track,
    imm_predict,
    imm_update,
)

Array = NDArray[np.float64]
TRIU = np.triu_indices(4)  # row by row: the order the module keeps a covariance's entries in


# --- the reference ------------------------------------------------------------------------------
def ref_models(dt_s: float) -> tuple[list[Array], list[Array], float]:
    """F and Q of (stopped, walking) over ``dt_s`` taken to the millisecond, and the chance of
    keeping one's mode."""
    dt = max(round(dt_s * 1000.0), 1) / 1000.0
    f_stopped = np.diag([1.0, 1.0, 0.0, 0.0])
    q_stopped = np.diag([STOPPED_DRIFT_M2_PER_S * dt] * 2 + [STOPPED_VELOCITY_VAR_M2PS2] * 2)
    f_walking = np.eye(4)
    f_walking[0, 2] = f_walking[1, 3] = dt
    # Piecewise-constant white acceleration, per axis over (position, velocity).
    axis = WALK_ACCEL_MPS2**2 * np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])
    q_walking = np.zeros((4, 4))
    for pos, vel in ((0, 2), (1, 3)):
        q_walking[np.ix_([pos, vel], [pos, vel])] = axis
    return [f_stopped, f_walking], [q_stopped, q_walking], (1.0 - SWITCH_PER_S) ** dt


@dataclass
class RefState:
    """What the track keeps, as numpy arrays: xs (2 × 4), ps (2 × 4 × 4), mu (2)."""

    xs: Array
    ps: Array
    mu: Array
    t_s: float
    n_bearings: int = 0
    n_pulses: int = 0
    bias_rad: dict[str, float] = field(default_factory=dict)
    bearings_since_bias: int = 0

    def combined_x(self) -> Array:
        return np.asarray(sum(m * x for m, x in zip(self.mu, self.xs, strict=True)))

    @property
    def x(self) -> Array:
        return self.combined_x()

    @property
    def p(self) -> Array:
        x = self.combined_x()
        return np.asarray(
            sum(
                m * (p + np.outer(xj - x, xj - x))
                for m, xj, p in zip(self.mu, self.xs, self.ps, strict=True)
            )
        )

    def copy(self) -> RefState:
        return RefState(
            self.xs.copy(), self.ps.copy(), self.mu.copy(), self.t_s, self.n_bearings,
            self.n_pulses, dict(self.bias_rad), self.bearings_since_bias,
        )  # fmt: skip


def ref_predict(state: RefState, dt_s: float) -> None:
    fs, qs, stay = ref_models(dt_s)
    switch = np.array([[stay, 1 - stay], [1 - stay, stay]])  # [i, j]: from model i to j
    c = switch.T @ state.mu
    xs, ps = np.zeros((2, 4)), np.zeros((2, 4, 4))
    for j in range(2):
        w = [switch[i, j] * state.mu[i] / c[j] for i in range(2)]
        x0 = sum(w[i] * state.xs[i] for i in range(2))
        p0 = sum(
            w[i] * (state.ps[i] + np.outer(state.xs[i] - x0, state.xs[i] - x0)) for i in range(2)
        )
        xs[j] = fs[j] @ x0
        ps[j] = fs[j] @ p0 @ fs[j].T + qs[j]
    state.xs, state.ps, state.mu = xs, ps, c


def ref_update(
    state: RefState, x: Array, innovation: float, h: tuple[float, float], r: float, gate: float
) -> bool:
    hv = np.array([h[0], h[1], 0.0, 0.0])
    offsets = [float(hv @ (state.xs[j] - x)) for j in range(2)]
    ss = [float(hv @ state.ps[j] @ hv) + r for j in range(2)]
    combined = sum(state.mu[j] * (ss[j] + offsets[j] ** 2) for j in range(2))
    if innovation**2 > gate**2 * combined:
        return False
    likelihood = np.zeros(2)
    for j in range(2):
        y = innovation - offsets[j]
        k = state.ps[j] @ hv / ss[j]
        state.xs[j] = state.xs[j] + k * y
        state.ps[j] = (np.eye(4) - np.outer(k, hv)) @ state.ps[j]
        likelihood[j] = math.exp(-0.5 * y * y / ss[j]) / math.sqrt(2 * math.pi * ss[j])
    mu = state.mu * likelihood
    state.mu = mu / mu.sum() if mu.sum() > 0 else np.array([0.5, 0.5])
    return True


def ref_measurement(x: Array, m: Measurement) -> tuple[float, tuple[float, float]]:
    """h(x) and ∂h/∂(east, north): the bearing atan2(Δe, Δn), or the level falling by
    10·n·log10 of the slant range."""
    de, dn = float(x[0]) - m.east_m, float(x[1]) - m.north_m
    r2 = max(de * de + dn * dn + m.height_m**2, 1.0)
    if m.kind == "bearing":
        return math.atan2(de, dn), (dn / r2, -de / r2)
    slope = -10.0 * m.exponent / math.log(10.0)
    return m.level_1m_dbm - 10.0 * m.exponent * math.log10(math.sqrt(r2)), (
        slope * de / r2,
        slope * dn / r2,
    )


def ref_track(x0: Array, p0: Array, t0_s: float) -> Track:
    """A Track (its history, checkpoints, replays and bias refits) over the reference state."""
    track = Track(x0, p0, t0_s)
    x = np.array([x0[0], x0[1], 0.0, 0.0])
    p = np.zeros((4, 4))
    p[:2, :2] = p0
    p[2:, 2:] = np.eye(2) * 0.7**2
    state = RefState(np.stack((x, x)), np.stack((p, p)), np.array([0.5, 0.5]), t0_s)
    track._state = state  # type: ignore[assignment]
    track._checkpoints = [state.copy()]  # type: ignore[list-item]
    return track


# --- random material ------------------------------------------------------------------------------
def random_state(rng: np.random.Generator) -> tuple[kalman._State, RefState]:
    """One IMM state, in the module's form and the reference's."""
    xs = np.column_stack((rng.uniform(-800, 800, (2, 2)), rng.normal(0, 1.0, (2, 2))))
    ps = []
    for _ in range(2):
        a = rng.normal(0, 1, (4, 4)) * np.array([80.0, 80.0, 1.0, 1.0])[:, None]
        ps.append(a @ a.T + np.diag([1.0, 1.0, 1e-3, 1e-3]))
    mu0 = float(rng.choice([rng.uniform(0, 1), 1e-12, 1 - 1e-12]))
    mine = kalman._State(
        (tuple(map(float, xs[0])), tuple(map(float, xs[1]))),  # type: ignore[arg-type]
        (tuple(map(float, ps[0][TRIU])), tuple(map(float, ps[1][TRIU]))),  # type: ignore[arg-type]
        (mu0, 1.0 - mu0),
        0.0,
    )
    return mine, RefState(xs.copy(), np.stack(ps), np.array([mu0, 1.0 - mu0]), 0.0)


def assert_same(mine: kalman._State, ref: RefState) -> None:
    scale = float(np.abs(ref.ps).max())
    for j in range(2):
        assert np.allclose(mine.xs[j], ref.xs[j], rtol=1e-9, atol=1e-9)
        assert np.allclose(mine.ps[j], ref.ps[j][TRIU], rtol=1e-9, atol=1e-12 * scale)
    assert np.allclose(mine.mu, ref.mu, rtol=1e-9, atol=1e-12)
    assert np.allclose(mine.x, ref.x, rtol=1e-9, atol=1e-9)
    assert np.allclose(mine.p, ref.p, rtol=1e-9, atol=1e-12 * scale)


def walk(rng: np.random.Generator, n: int) -> list[Measurement]:
    """Bearings and signal strengths from four teams searching around someone who stops and
    walks; the times irregular (bursts, repeats, long gaps), one receiver 11° off, a few wild
    values that the gate should refuse, and about one report in fifteen arriving late."""
    bases = {"A": (600.0, 0.0), "B": (-500.0, 300.0), "C": (0.0, -700.0), "D": (400.0, 650.0)}
    home = np.array([80.0, -50.0])
    target, velocity = home.copy(), np.zeros(2)
    t_s, out = 0.0, []
    for _ in range(n):
        dt = float(
            rng.choice(
                [rng.exponential(0.8), rng.uniform(0, 0.004), 0.0, rng.uniform(8, 30)],
                p=[0.82, 0.07, 0.08, 0.03],
            )
        )
        t_s += dt
        if rng.random() < 0.01:
            velocity = rng.normal(0, 0.4, 2) if rng.random() < 0.5 else np.zeros(2)
        if np.linalg.norm(target - home) > 100.0:
            velocity = 0.5 * (home - target) / np.linalg.norm(home - target)  # wandering back
        target = target + velocity * dt
        name = str(rng.choice(list(bases)))
        east = bases[name][0] + float(rng.uniform(-150, 150))
        north = bases[name][1] + float(rng.uniform(-150, 150))
        de, dn = float(target[0]) - east, float(target[1]) - north
        wild = rng.random() < 0.04
        if rng.random() < 0.3:
            height = float(rng.choice([0.0, 120.0]))
            level = -30.0 - 15.0 * math.log10(de * de + dn * dn + height**2)
            value = level + float(rng.normal(0, 4.0)) + (40.0 if wild else 0.0)
            out.append(Measurement(t_s, "rss", name, east, north, value, 4.0, -30.0, 3.0, height))
        else:
            bearing = math.atan2(de, dn) + float(rng.normal(0, 0.07))
            bearing += math.radians(11.0) * (name == "B") + float(rng.uniform(0.5, 1)) * wild
            bearing += 2 * math.pi * int(rng.integers(-1, 2))  # any turn: the wrap's business
            out.append(Measurement(t_s, "bearing", name, east, north, bearing, 0.07))
    for _ in range(n // 15):
        i = int(rng.integers(n))
        out.insert(min(n - 1, i + int(rng.integers(1, 40))), out.pop(i))
    return out


# --- the tests ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
def test_kalman_predict_is_the_textbook_imm_prediction(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        mine, ref = random_state(rng)
        dt_s = float(rng.choice([rng.uniform(0, 0.002), rng.uniform(0, 2), rng.uniform(2, 120)]))
        imm_predict(mine, dt_s)
        ref_predict(ref, dt_s)
        assert_same(mine, ref)


@pytest.mark.parametrize("seed", range(4))
def test_kalman_update_is_the_textbook_imm_update_and_gate(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    gated = 0
    for _ in range(300):
        mine, ref = random_state(rng)
        east, north = (float(v) for v in rng.uniform(-1500, 1500, 2))
        if rng.random() < 0.5:
            sigma_rad = math.radians(rng.uniform(1, 10))
            m = Measurement(0.0, "bearing", "R", east, north, 0.0, sigma_rad)
        else:
            exponent = float(rng.uniform(2, 4))
            m = Measurement(0.0, "rss", "R", east, north, 0.0, 4.0, -30.0, exponent, 50.0)
        x = ref.combined_x()
        predicted, h = ref_measurement(x, m)
        predicted_mine, h_mine = kalman.predict_measurement(mine.combined_x(), m)
        assert predicted_mine == pytest.approx(predicted, rel=1e-12, abs=1e-12)
        assert np.allclose(h_mine, h, rtol=1e-12, atol=1e-18)
        hv = np.array(h)
        spread = math.sqrt(float(hv @ ref.p[:2, :2] @ hv) + m.sigma**2)
        innovation = float(rng.normal(0, spread * rng.choice([1.0, 4.0])))
        used = imm_update(mine, mine.combined_x(), innovation, h_mine, m.sigma**2, GATE_SIGMAS)
        assert used == ref_update(ref, x, innovation, h, m.sigma**2, GATE_SIGMAS)
        gated += not used
        assert_same(mine, ref)
    assert 30 < gated < 270  # both sides of the gate were exercised


def test_kalman_update_when_neither_model_explains_the_measurement() -> None:
    # Two sure models 2 km apart, a bearing between them: the gate (on the mixture) passes it,
    # and both models' likelihoods underflow to zero, which leaves the weights even.
    rng = np.random.default_rng(7)
    mine, ref = random_state(rng)
    xs = np.array([[-1000.0, 0.0, 0.0, 0.0], [1000.0, 0.0, 0.0, 0.0]])
    ps = np.stack([np.eye(4)] * 2)
    mine.xs = (tuple(xs[0]), tuple(xs[1]))
    mine.ps = (tuple(ps[0][TRIU]),) * 2
    mine.mu = (0.3, 0.7)
    ref.xs, ref.ps, ref.mu = xs.copy(), ps.copy(), np.array([0.3, 0.7])
    m = Measurement(0.0, "bearing", "R", 0.0, -500.0, 0.0, math.radians(1.0))
    x = ref.combined_x()
    _, h = ref_measurement(x, m)
    assert ref_update(ref, x, 0.0, h, m.sigma**2, GATE_SIGMAS)
    assert imm_update(mine, mine.combined_x(), 0.0, h, m.sigma**2, GATE_SIGMAS)
    assert mine.mu == (0.5, 0.5)
    assert_same(mine, ref)


@pytest.mark.parametrize("seed", range(3))
def test_kalman_track_agrees_with_the_textbook_imm_on_late_and_gated_reports(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    ms = walk(rng, 700)
    x0, p0 = np.array([0.0, 0.0]), np.diag([250.0**2, 200.0**2])

    def run(track: Track) -> list[tuple[bool, Array, Array, float]]:
        seen = []
        for m in ms:
            used = track.add(m)
            x, p, walking = track.estimate
            seen.append((used, x, p, walking))
        return seen

    with monkeypatch.context() as patched:
        patched.setattr(kalman, "imm_predict", ref_predict)
        patched.setattr(kalman, "imm_update", ref_update)
        patched.setattr(kalman, "predict_measurement", ref_measurement)
        reference = ref_track(x0, p0, 0.0)
        expected = run(reference)
    track = Track(x0, p0, 0.0)
    got = run(track)

    for (used, x, p, walking), (ref_used, ref_x, ref_p, ref_walking) in zip(
        got, expected, strict=True
    ):
        assert used == ref_used
        assert np.allclose(x, ref_x, rtol=1e-9, atol=1e-9)
        assert np.allclose(p, ref_p, rtol=1e-9, atol=1e-9 * float(np.abs(ref_p).max()))
        assert walking == pytest.approx(ref_walking, rel=1e-9, abs=1e-12)
    assert track.gated == reference.gated > 0
    assert track.counts == reference.counts
    n_bearings, n_pulses = track.counts
    assert n_bearings > 0
    assert n_pulses > 0
    assert track.bias_rad.keys() == reference.bias_rad.keys()
    for name, bias in reference.bias_rad.items():
        assert track.bias_rad[name] == pytest.approx(bias, rel=1e-9)
    late = sum(b.t_s < a.t_s for a, b in itertools.pairwise(ms))
    assert late > 20  # the replay path was exercised
