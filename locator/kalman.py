"""Tracking a person who walks and stops: an interacting multiple model of two Kalman filters.

**Why an IMM of extended Kalman filters.** A person who wanders walks (0.2–1.5 m/s, steady
heading) and stops (minutes at a time). One constant-velocity filter either lags behind a walker
or drifts away from someone standing still; two models — *stopped* (position held, velocity
driven to zero) and *walking* (constant velocity with white acceleration) — with a Markov
switch between them track both, and the mode probability says which it is. Bearings and signal
strength are mildly nonlinear in position at the ranges of a search (hundreds of metres, errors
of tens), so a first-order (extended) linearisation at the current estimate is accurate and an
order of magnitude cheaper than an unscented filter — it is what lets the locator take over
ten thousand bearings a second. filterpy gives the walking model's process noise
(``Q_discrete_white_noise``); the IMM mixing, prediction and update are written out here for
scalar measurements — filterpy's ``IMMEstimator`` and ``update`` compute a multivariate
log-density with scipy on every call (300 µs), which alone capped this tracker near a thousand
updates a second. They are written in plain floats for the fixed two models and four states
(each covariance kept as its upper triangle): vectorised with numpy over 2 × 4 and 2 × 4 × 4
arrays, the fixed cost of each small numpy call was most of an update
(``bench/locator_speed.py``, one core: about 27,000 bearing updates a second then, about 90,000
in floats; about 29,000 since the receivers' bias refits were made robust and run to
convergence, which are now most of the time). Each measurement is
linearised at the combined estimate ``x̂``; each model's innovation is
``wrap(z − h(x̂)) + H·(x̂ − x_j)``, so the angle residual is wrapped in the one place it must be.

**Gating**: a measurement whose innovation is beyond 3.5 sigmas (Mahalanobis) is not used.
**Receiver bias**: every ``BIAS_EVERY`` bearings, the receivers' biases are fitted jointly with
the person's path over the last ``BIAS_WINDOW_S`` (:mod:`locator.bias`), from the bearings the
gate let in (up to the one just applied: in a replay, later ones are yet to be applied again);
a receiver found consistently off has its later bearings corrected.
**Late reports**: the uplink stores and forwards, so reports arrive late and out of order; the
track keeps the last ``REPLAY_S`` seconds of measurements and checkpoints of its state, and a
late one is slotted into place and the filter re-run from the checkpoint before it. ``gated``
counts reports, not applications: a report refused again in a replay is not counted twice, and
one let in by a replay is no longer counted.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

import numpy as np
from filterpy.common import Q_discrete_white_noise
from numpy.typing import NDArray

from locator.bias import estimate_biases
from safetynet.angles import wrap_pi

WALK_ACCEL_MPS2 = 0.05  # white acceleration of a walker (m/s² per √Hz)
STOPPED_DRIFT_M2_PER_S = 0.01
STOPPED_VELOCITY_VAR_M2PS2 = 1e-4  # the stopped model's velocity, held near zero
SWITCH_PER_S = 0.02  # chance per second of starting or stopping
GATE_SIGMAS = 3.5
REPLAY_S = 300.0
CHECKPOINT_EVERY_S = 10.0
BIAS_EVERY = 50  # bearings between refits of the receivers' biases
BIAS_WINDOW_S = 120.0

# A model's state is [east_m, north_m, ve_mps, vn_mps] as four floats; its covariance is kept as
# the upper triangle of the symmetric 4 × 4 matrix, row by row: the ten entries
# (ee, en, e·ve, e·vn, nn, n·ve, n·vn, ve·ve, ve·vn, vn·vn).
Vec4 = tuple[float, float, float, float]
Cov4 = tuple[float, float, float, float, float, float, float, float, float, float]
_UPPER = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3))


def _upper(p: NDArray[np.float64]) -> Cov4:
    """The upper triangle of a symmetric 4 × 4 matrix, row by row."""
    return cast(Cov4, tuple(float(p[i, j]) for i, j in _UPPER))


def _full(p: Cov4) -> NDArray[np.float64]:
    """The symmetric 4 × 4 matrix of an upper triangle."""
    full = np.empty((4, 4))
    for (i, j), v in zip(_UPPER, p, strict=True):
        full[i, j] = full[j, i] = v
    return full


@dataclass(frozen=True)
class Measurement:
    """A bearing (``kind`` "bearing": value a compass bearing in radians, sigma in radians) or a
    signal strength (``kind`` "rss": value in dBm, sigma in dB, with the level at 1 m and the
    path-loss exponent of its model)."""

    t_s: float
    kind: str
    receiver_id: str
    east_m: float
    north_m: float
    value: float
    sigma: float
    level_1m_dbm: float = 0.0  # for signal strength: EIRP − loss at 1 m + antenna gain (dBm)
    exponent: float = 3.0
    height_m: float = 0.0  # the receiver above the bracelet (a helicopter): slant range


@dataclass(frozen=True)
class _Step:
    """Everything the prediction needs over one (millisecond-rounded) interval."""

    dt_s: float
    q_stopped: Cov4  # process noise of the stopped model
    q_walking: Cov4  # of the walking model (filterpy's white acceleration)
    stay: float  # chance of keeping one's mode


@lru_cache(maxsize=8192)
def _step(dt_ms: int) -> _Step:
    dt = dt_ms / 1000.0
    # filterpy's white-acceleration noise for a 2-D constant-velocity model, [e, n, ve, vn].
    q_walking = Q_discrete_white_noise(
        2, dt=dt, var=WALK_ACCEL_MPS2**2, block_size=2, order_by_dim=False
    )
    drift = STOPPED_DRIFT_M2_PER_S * dt
    still = STOPPED_VELOCITY_VAR_M2PS2
    q_stopped = (drift, 0.0, 0.0, 0.0, drift, 0.0, 0.0, still, 0.0, still)
    return _Step(dt, q_stopped, _upper(q_walking), (1.0 - SWITCH_PER_S) ** dt)


def _transitions(dt: float) -> _Step:
    """The interval's process noise and switching, ``dt`` taken to the millisecond (which the
    reports' times carry)."""
    return _step(max(round(dt * 1000.0), 1))


_LN10 = math.log(10.0)


def predict_measurement(x: Sequence[float], m: Measurement) -> tuple[float, tuple[float, float]]:
    """h(x) and its gradient with respect to [east, north] (a measurement does not depend on the
    velocity) for a state ``x`` = [east_m, north_m, ...]."""
    de, dn = x[0] - m.east_m, x[1] - m.north_m
    r2 = max(de * de + dn * dn + m.height_m * m.height_m, 1.0)
    if m.kind == "bearing":
        return math.atan2(de, dn), (dn / r2, -de / r2)
    k = -10.0 * m.exponent / _LN10
    value = m.level_1m_dbm - 5.0 * m.exponent * math.log10(r2)
    return value, (k * de / r2, k * dn / r2)


@dataclass
class _State:
    """The IMM: per model (stopped, walking) a state and covariance, and the model weights."""

    xs: tuple[Vec4, Vec4]
    ps: tuple[Cov4, Cov4]
    mu: tuple[float, float]
    t_s: float
    n_bearings: int = 0
    n_pulses: int = 0
    bias_rad: dict[str, float] = field(default_factory=dict)
    bearings_since_bias: int = 0

    def combined_x(self) -> Vec4:
        """x̂ = Σ μ_j x_j."""
        m0, m1 = self.mu
        (a0, a1, a2, a3), (b0, b1, b2, b3) = self.xs
        return (m0 * a0 + m1 * b0, m0 * a1 + m1 * b1, m0 * a2 + m1 * b2, m0 * a3 + m1 * b3)

    @property
    def x(self) -> NDArray[np.float64]:
        """The combined state (4,)."""
        return np.array(self.combined_x())

    @property
    def p(self) -> NDArray[np.float64]:
        """The combined covariance (4 × 4): Σ μ_j (P_j + (x_j − x̂)(x_j − x̂)ᵀ)."""
        x = self.x
        combined = np.zeros((4, 4))
        for mu, xj, pj in zip(self.mu, self.xs, self.ps, strict=True):
            d = np.array(xj) - x
            combined += mu * (_full(pj) + np.outer(d, d))
        return combined

    def copy(self) -> _State:
        # The models' states are tuples, shared safely; only the biases are mutable.
        return _State(
            self.xs, self.ps, self.mu, self.t_s, self.n_bearings, self.n_pulses,
            dict(self.bias_rad), self.bearings_since_bias,
        )  # fmt: skip


def imm_predict(state: _State, dt: float) -> None:
    """Mix the models (a Markov switch over ``dt``), then propagate each.

    Written out in floats for the two models and four states (numpy's per-call cost on arrays
    this small is most of the work otherwise). With w_ij the share of model j's prior that
    comes from model i, the mixed prior of model j is x0_j = Σ_i w_ij x_i and
    P0_j = Σ_i w_ij (P_i + (x_i − x0_j)(x_i − x0_j)ᵀ) = w_0j P_0 + w_1j P_1 + w_0j w_1j δδᵀ,
    δ = x_0 − x_1 (since w_0j + w_1j = 1). Then x_j = F_j x0_j, P_j = F_j P0_j F_jᵀ + Q_j with
    F_stopped = diag(1, 1, 0, 0) and F_walking = [[I, dt·I], [0, I]].
    """
    step = _transitions(dt)
    stay, move, dt = step.stay, 1.0 - step.stay, step.dt_s
    mu0, mu1 = state.mu
    c0 = stay * mu0 + move * mu1  # predicted model probabilities
    c1 = move * mu0 + stay * mu1
    w00, w10 = stay * mu0 / c0, move * mu1 / c0  # into the stopped model
    w01, w11 = move * mu0 / c1, stay * mu1 / c1  # into the walking model
    (a0, a1, a2, a3), (b0, b1, b2, b3) = state.xs
    pa, pb = state.ps
    d0, d1, d2, d3 = a0 - b0, a1 - b1, a2 - b2, a3 - b3
    dd = (d0 * d0, d0 * d1, d0 * d2, d0 * d3, d1 * d1, d1 * d2, d1 * d3, d2 * d2, d2 * d3,
          d3 * d3)  # fmt: skip

    # Stopped: the position is held and the velocity set to zero, so only the mixed position
    # and its covariance are needed.
    spread = w00 * w10
    qs = step.q_stopped
    stopped_x = (w00 * a0 + w10 * b0, w00 * a1 + w10 * b1, 0.0, 0.0)
    stopped_p = (
        w00 * pa[0] + w10 * pb[0] + spread * dd[0] + qs[0],
        w00 * pa[1] + w10 * pb[1] + spread * dd[1] + qs[1],
        qs[2], qs[3],
        w00 * pa[4] + w10 * pb[4] + spread * dd[4] + qs[4],
        qs[5], qs[6], qs[7], qs[8], qs[9],
    )  # fmt: skip

    # Walking: constant velocity.
    spread = w01 * w11
    e, n, ve, vn = (
        w01 * a0 + w11 * b0,
        w01 * a1 + w11 * b1,
        w01 * a2 + w11 * b2,
        w01 * a3 + w11 * b3,
    )
    p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = (
        w01 * u + w11 * v + spread * s for u, v, s in zip(pa, pb, dd, strict=True)
    )
    qw = step.q_walking
    walking_x = (e + dt * ve, n + dt * vn, ve, vn)
    walking_p = (
        p00 + dt * (2.0 * p02 + dt * p22) + qw[0],
        p01 + dt * (p03 + p12 + dt * p23) + qw[1],
        p02 + dt * p22 + qw[2],
        p03 + dt * p23 + qw[3],
        p11 + dt * (2.0 * p13 + dt * p33) + qw[4],
        p12 + dt * p23 + qw[5],
        p13 + dt * p33 + qw[6],
        p22 + qw[7],
        p23 + qw[8],
        p33 + qw[9],
    )
    state.xs = (stopped_x, walking_x)
    state.ps = (stopped_p, walking_p)
    state.mu = (c0, c1)


def _gain(p: Cov4, he: float, hn: float) -> tuple[Vec4, float]:
    """P Hᵀ (4,) and H P Hᵀ for a gradient H = [he, hn, 0, 0]."""
    p00, p01, p02, p03, p11, p12, p13, _, _, _ = p
    ph = (p00 * he + p01 * hn, p01 * he + p11 * hn, p02 * he + p12 * hn, p03 * he + p13 * hn)
    return ph, ph[0] * he + ph[1] * hn


def _corrected(x: Vec4, p: Cov4, ph: Vec4, s: float, y: float) -> tuple[Vec4, Cov4]:
    """x + K y and P − K PHᵀ, with K = PH / s."""
    h0, h1, h2, h3 = ph
    k0, k1, k2, k3 = h0 / s, h1 / s, h2 / s, h3 / s
    p00, p01, p02, p03, p11, p12, p13, p22, p23, p33 = p
    x_new = (x[0] + k0 * y, x[1] + k1 * y, x[2] + k2 * y, x[3] + k3 * y)
    p_new = (
        p00 - k0 * h0, p01 - k0 * h1, p02 - k0 * h2, p03 - k0 * h3,
        p11 - k1 * h1, p12 - k1 * h2, p13 - k1 * h3,
        p22 - k2 * h2, p23 - k2 * h3,
        p33 - k3 * h3,
    )  # fmt: skip
    return x_new, p_new


def imm_update(
    state: _State,
    x: Sequence[float],
    innovation: float,
    h: tuple[float, float],
    r: float,
    gate: float,
) -> bool:
    """Scalar update of every model (``innovation`` and gradient ``h`` with respect to
    [east, north] taken at the combined estimate ``x``).

    Each model's own innovation is, to first order, y_j = innovation − H·(x_j − x̂), with
    variance s_j = H P_j Hᵀ + r; the combined prediction's variance is
    Σ_j μ_j (s_j + (H·(x_j − x̂))²).

    Returns False, changing nothing, when the innovation lies beyond ``gate`` sigmas of the
    combined prediction.
    """
    he, hn = h
    xe, xn = x[0], x[1]
    xa, xb = state.xs
    pa, pb = state.ps
    mu0, mu1 = state.mu
    offset_a = (xa[0] - xe) * he + (xa[1] - xn) * hn
    offset_b = (xb[0] - xe) * he + (xb[1] - xn) * hn
    pha, sa = _gain(pa, he, hn)
    phb, sb = _gain(pb, he, hn)
    sa += r
    sb += r
    s_combined = mu0 * (sa + offset_a * offset_a) + mu1 * (sb + offset_b * offset_b)
    if innovation * innovation > gate * gate * s_combined:
        return False
    ya, yb = innovation - offset_a, innovation - offset_b
    xa, pa = _corrected(xa, pa, pha, sa, ya)
    xb, pb = _corrected(xb, pb, phb, sb, yb)
    state.xs, state.ps = (xa, xb), (pa, pb)
    mu0 *= math.exp(-0.5 * ya * ya / sa) / math.sqrt(2.0 * math.pi * sa)
    mu1 *= math.exp(-0.5 * yb * yb / sb) / math.sqrt(2.0 * math.pi * sb)
    total = mu0 + mu1
    state.mu = (mu0 / total, mu1 / total) if total > 0 else (0.5, 0.5)
    return True


@dataclass
class Track:
    """One bracelet's track, started from a batch fix."""

    x0: NDArray[np.float64]  # [east, north] of the starting fix
    p0: NDArray[np.float64]  # its 2×2 covariance
    t0_s: float
    gated: int = 0  # reports refused: by the gate when last applied, or too late to use
    _history: list[Measurement] = field(default_factory=list)
    # Per history entry: whether the gate let it in when last applied (None: not yet applied).
    _used: list[bool | None] = field(default_factory=list)
    _checkpoints: list[_State] = field(default_factory=list)
    _state: _State = field(init=False)

    def __post_init__(self) -> None:
        x: Vec4 = (float(self.x0[0]), float(self.x0[1]), 0.0, 0.0)
        p = np.zeros((4, 4))
        p[:2, :2] = self.p0
        p[2:, 2:] = np.eye(2) * 0.7**2
        self._state = _State((x, x), (_upper(p), _upper(p)), (0.5, 0.5), self.t0_s)
        self._checkpoints.append(self._state.copy())

    # --- public -------------------------------------------------------------------------------
    @property
    def t_s(self) -> float:
        return self._state.t_s

    @property
    def estimate(self) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """(state [e, n, ve, vn], covariance 4×4, probability of walking)."""
        state = self._state
        return state.x, state.p, float(state.mu[1])

    @property
    def counts(self) -> tuple[int, int]:
        return self._state.n_bearings, self._state.n_pulses

    def add(self, m: Measurement) -> bool:
        """Take a measurement (in or out of order); returns whether it was used."""
        if m.t_s < self._state.t_s:
            return self._insert_late(m)
        self._history.append(m)
        self._used.append(None)
        self._checkpoint_before(m.t_s)
        used = self._apply(len(self._history) - 1)
        self._forget(m.t_s)
        return used

    # --- filtering ----------------------------------------------------------------------------
    def _predict(self, state: _State, t_s: float) -> None:
        dt = t_s - state.t_s
        if dt <= 0:
            return
        imm_predict(state, dt)
        state.t_s = t_s

    def _apply(self, i: int) -> bool:
        """Apply history entry ``i``, recording whether the gate let it in (a replay applies an
        entry again: ``gated`` counts each report once, as its latest application left it)."""
        m = self._history[i]
        state = self._state
        self._predict(state, m.t_s)
        x = state.combined_x()
        predicted, h = predict_measurement(x, m)
        residual = m.value - predicted - state.bias_rad.get(m.receiver_id, 0.0)
        innovation = wrap_pi(residual) if m.kind == "bearing" else residual
        used = imm_update(state, x, innovation, h, m.sigma**2, GATE_SIGMAS)
        before = self._used[i]
        self._used[i] = used
        if not used:
            if before is not False:
                self.gated += 1
            return False
        if before is False:
            self.gated -= 1
        if m.kind == "bearing":
            state.n_bearings += 1
            self._update_biases(i)
        else:
            state.n_pulses += 1
        return True

    def _update_biases(self, last: int) -> None:
        """Every ``BIAS_EVERY`` bearings, refit the receivers' biases over the recent window:
        the bearings the gate let in, up to history entry ``last`` (in a replay, the entries
        after it are not yet applied again)."""
        state = self._state
        state.bearings_since_bias += 1
        if state.bearings_since_bias < BIAS_EVERY:
            return
        state.bearings_since_bias = 0
        since = state.t_s - BIAS_WINDOW_S
        recent = [
            m
            for m, used in zip(self._history[: last + 1], self._used, strict=False)
            if used and m.kind == "bearing" and m.t_s >= since
        ]
        if len(recent) < BIAS_EVERY:
            return
        state.bias_rad = estimate_biases(
            [m.receiver_id for m in recent],
            np.array([m.east_m for m in recent]),
            np.array([m.north_m for m in recent]),
            np.array([m.value for m in recent]),
            np.array([m.sigma for m in recent]),
            np.array([m.t_s for m in recent]),
            state.combined_x(),
            state.t_s,
        )

    @property
    def bias_rad(self) -> dict[str, float]:
        """The bearing bias found per receiver (radians; taken off its bearings)."""
        return dict(self._state.bias_rad)

    # --- late reports ---------------------------------------------------------------------------
    def _checkpoint_before(self, t_s: float) -> None:
        """Every ``CHECKPOINT_EVERY_S``, keep the state at ``t_s`` before any measurement at it
        is applied: a replay from there applies exactly the measurements at or after it."""
        if t_s - self._checkpoints[-1].t_s >= CHECKPOINT_EVERY_S:
            self._predict(self._state, t_s)
            self._checkpoints.append(self._state.copy())

    def _forget(self, now_s: float) -> None:
        horizon = now_s - REPLAY_S
        while len(self._checkpoints) > 1 and self._checkpoints[1].t_s < horizon:
            self._checkpoints.pop(0)
        first = self._checkpoints[0].t_s
        drop = 0
        while drop < len(self._history) and self._history[drop].t_s < first:
            drop += 1
        del self._history[:drop]
        del self._used[:drop]

    def _insert_late(self, m: Measurement) -> bool:
        if m.t_s < self._checkpoints[0].t_s:
            self.gated += 1  # older than anything kept: too late to use
            return False
        times = [h.t_s for h in self._history]
        slot = bisect.bisect_right(times, m.t_s)
        self._history.insert(slot, m)
        self._used.insert(slot, None)
        index = max(i for i, c in enumerate(self._checkpoints) if c.t_s <= m.t_s)
        self._checkpoints = self._checkpoints[: index + 1]
        self._state = self._checkpoints[-1].copy()
        start = self._state.t_s
        for i, h in enumerate(self._history):
            if h.t_s < start:
                continue
            self._checkpoint_before(h.t_s)
            self._apply(i)
        return bool(self._used[slot])
