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
(``Q_discrete_white_noise``); the IMM mixing, prediction and update are written out here,
vectorised over the two models, for scalar measurements — filterpy's ``IMMEstimator`` and
``update`` compute a multivariate log-density with scipy on every call (300 µs), which alone
capped this tracker near a thousand updates a second. Each measurement is linearised
at the combined estimate ``x̂``; each model's innovation is ``wrap(z − h(x̂)) + H·(x̂ − x_j)``,
so the angle residual is wrapped in the one place it must be.

**Gating**: a measurement whose innovation is beyond 3.5 sigmas (Mahalanobis) is not used.
**Receiver bias**: every ``BIAS_EVERY`` bearings, the receivers' biases are fitted jointly with
the position over the last ``BIAS_WINDOW_S`` (:mod:`locator.bias`); a receiver found
consistently off has its later bearings corrected.
**Late reports**: the uplink stores and forwards, so reports arrive late and out of order; the
track keeps the last ``REPLAY_S`` seconds of measurements and checkpoints of its state, and a
late one is slotted into place and the filter re-run from the checkpoint before it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from filterpy.common import Q_discrete_white_noise
from numpy.typing import NDArray

from locator.bias import estimate_biases
from safetynet.angles import wrap_pi

WALK_ACCEL_MPS2 = 0.05  # white acceleration of a walker (m/s² per √Hz)
STOPPED_DRIFT_M2_PER_S = 0.01
SWITCH_PER_S = 0.02  # chance per second of starting or stopping
GATE_SIGMAS = 3.5
REPLAY_S = 300.0
CHECKPOINT_EVERY_S = 10.0
BIAS_EVERY = 50  # bearings between refits of the receivers' biases
BIAS_WINDOW_S = 120.0


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


@lru_cache(maxsize=256)
def _transition(walking: bool, dt: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """State transition and process noise over ``dt`` for a model (cached: ``dt`` repeats)."""
    if walking:
        f = np.array([[1, 0, dt, 0], [0, 1, 0, dt], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
        # filterpy's white-acceleration noise for a 2-D constant-velocity model, [e, n, ve, vn].
        q = Q_discrete_white_noise(
            2, dt=dt, var=WALK_ACCEL_MPS2**2, block_size=2, order_by_dim=False
        )
        return f, q
    f = np.diag([1.0, 1.0, 0.0, 0.0])
    q = np.diag([STOPPED_DRIFT_M2_PER_S * dt, STOPPED_DRIFT_M2_PER_S * dt, 1e-4, 1e-4])
    return f, q


@lru_cache(maxsize=8192)
def _stacked(
    dt_ms: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    dt = dt_ms / 1000.0
    (fs, qs), (fw, qw) = _transition(False, dt), _transition(True, dt)
    f = np.stack((fs, fw))
    return f, f.transpose(0, 2, 1).copy(), np.stack((qs, qw)), (1.0 - SWITCH_PER_S) ** dt


def _transitions(
    dt: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float]:
    """(F, Fᵀ, Q) of both models, stacked, and the chance of keeping one's mode, over ``dt``
    (to the millisecond, which the reports' times carry)."""
    return _stacked(max(round(dt * 1000.0), 1))


def predict_measurement(
    x: NDArray[np.float64], m: Measurement
) -> tuple[float, NDArray[np.float64]]:
    """h(x) and its gradient (4,) for a measurement."""
    de, dn = float(x[0]) - m.east_m, float(x[1]) - m.north_m
    r2 = max(de * de + dn * dn + m.height_m * m.height_m, 1.0)
    if m.kind == "bearing":
        return math.atan2(de, dn), np.array([dn / r2, -de / r2, 0.0, 0.0])
    k = -10.0 * m.exponent / math.log(10.0)
    value = m.level_1m_dbm - 5.0 * m.exponent * math.log10(r2)
    return value, np.array([k * de / r2, k * dn / r2, 0.0, 0.0])


@dataclass
class _State:
    """The IMM: per model (stopped, walking) a state and covariance, and the model weights."""

    xs: NDArray[np.float64]  # 2 × 4
    ps: NDArray[np.float64]  # 2 × 4 × 4
    mu: NDArray[np.float64]  # 2
    t_s: float
    n_bearings: int = 0
    n_pulses: int = 0
    bias_rad: dict[str, float] = field(default_factory=dict)
    bearings_since_bias: int = 0

    @property
    def x(self) -> NDArray[np.float64]:
        combined: NDArray[np.float64] = self.mu @ self.xs
        return combined

    @property
    def p(self) -> NDArray[np.float64]:
        x = self.x
        d = self.xs - x[None, :]
        spread = self.ps + np.einsum("ij,ik->ijk", d, d)
        combined: NDArray[np.float64] = np.einsum("i,ijk->jk", self.mu, spread)
        return combined

    def copy(self) -> _State:
        return _State(
            self.xs.copy(), self.ps.copy(), self.mu.copy(), self.t_s, self.n_bearings,
            self.n_pulses,
            dict(self.bias_rad),
            self.bearings_since_bias,
        )  # fmt: skip


def imm_predict(state: _State, dt: float) -> None:
    """Mix the models (a Markov switch over ``dt``), then propagate each."""
    f, ft, q, stay = _transitions(dt)
    mu0, mu1 = float(state.mu[0]), float(state.mu[1])
    c0 = stay * mu0 + (1 - stay) * mu1  # predicted model probabilities
    c1 = (1 - stay) * mu0 + stay * mu1
    c = np.array([c0, c1])
    # w[i, j]: the share of model j's prior that comes from model i
    w = np.array(
        [[stay * mu0 / c0, (1 - stay) * mu0 / c1], [(1 - stay) * mu1 / c0, stay * mu1 / c1]]
    )
    x0 = w.T @ state.xs  # j × 4
    d = state.xs[:, None, :] - x0[None, :, :]  # i × j × 4
    spread = state.ps[:, None, :, :] + d[..., :, None] * d[..., None, :]
    p0 = np.einsum("ij,ijkl->jkl", w, spread)
    state.xs = (f @ x0[:, :, None])[:, :, 0]
    state.ps = f @ p0 @ ft + q
    state.mu = c


def imm_update(
    state: _State,
    x: NDArray[np.float64],
    innovation: float,
    hv: NDArray[np.float64],
    r: float,
    gate: float,
) -> bool:
    """Scalar update of every model (``innovation`` and gradient ``hv`` taken at the combined
    estimate ``x``).

    Returns False, changing nothing, when the innovation lies beyond ``gate`` sigmas of the
    combined prediction.
    """
    offset = (state.xs - x[None, :]) @ hv
    ph = state.ps @ hv  # models × 4
    s = ph @ hv + r
    s_combined = float(state.mu @ (s + offset * offset))
    if innovation * innovation > gate * gate * s_combined:
        return False
    y = innovation - offset  # each model's own innovation, to first order
    k = ph / s[:, None]
    state.xs = state.xs + k * y[:, None]
    state.ps = state.ps - k[:, :, None] * ph[:, None, :]
    likelihood = np.exp(-0.5 * y * y / s) / np.sqrt(2 * math.pi * s)
    mu = state.mu * likelihood
    total = float(mu.sum())
    state.mu = mu / total if total > 0 else np.full(2, 0.5)
    return True


@dataclass
class Track:
    """One bracelet's track, started from a batch fix."""

    x0: NDArray[np.float64]  # [east, north] of the starting fix
    p0: NDArray[np.float64]  # its 2×2 covariance
    t0_s: float
    gated: int = 0
    _history: list[Measurement] = field(default_factory=list)
    _checkpoints: list[_State] = field(default_factory=list)
    _state: _State = field(init=False)

    def __post_init__(self) -> None:
        x = np.array([self.x0[0], self.x0[1], 0.0, 0.0])
        p = np.zeros((4, 4))
        p[:2, :2] = self.p0
        p[2:, 2:] = np.eye(2) * 0.7**2
        stopped = x.copy()
        stopped[2:] = 0.0
        self._state = _State(
            np.stack((stopped, x)), np.stack((p, p)), np.array([0.5, 0.5]), self.t0_s
        )
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
        self._checkpoint_before(m.t_s)
        used = self._apply(m)
        self._forget(m.t_s)
        return used

    # --- filtering ----------------------------------------------------------------------------
    def _predict(self, state: _State, t_s: float) -> None:
        dt = t_s - state.t_s
        if dt <= 0:
            return
        imm_predict(state, dt)
        state.t_s = t_s

    def _apply(self, m: Measurement) -> bool:
        state = self._state
        self._predict(state, m.t_s)
        x = state.x
        predicted, h = predict_measurement(x, m)
        residual = m.value - predicted - state.bias_rad.get(m.receiver_id, 0.0)
        innovation = float(wrap_pi(residual)) if m.kind == "bearing" else residual
        if not imm_update(state, x, innovation, h, m.sigma**2, GATE_SIGMAS):
            self.gated += 1
            return False
        if m.kind == "bearing":
            state.n_bearings += 1
            self._update_biases()
        else:
            state.n_pulses += 1
        return True

    def _update_biases(self) -> None:
        """Every ``BIAS_EVERY`` bearings, refit the receivers' biases over the recent window."""
        state = self._state
        state.bearings_since_bias += 1
        if state.bearings_since_bias < BIAS_EVERY:
            return
        state.bearings_since_bias = 0
        recent = [
            m for m in self._history if m.kind == "bearing" and m.t_s >= state.t_s - BIAS_WINDOW_S
        ]
        if len(recent) < BIAS_EVERY:
            return
        state.bias_rad = estimate_biases(
            [m.receiver_id for m in recent],
            np.array([m.east_m for m in recent]),
            np.array([m.north_m for m in recent]),
            np.array([m.value for m in recent]),
            np.array([m.sigma for m in recent]),
            state.x[:2],
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

    def _insert_late(self, m: Measurement) -> bool:
        if m.t_s < self._checkpoints[0].t_s:
            self.gated += 1  # older than anything kept: too late to use
            return False
        times = [h.t_s for h in self._history]
        self._history.insert(bisect.bisect_right(times, m.t_s), m)
        index = max(i for i, c in enumerate(self._checkpoints) if c.t_s <= m.t_s)
        self._checkpoints = self._checkpoints[: index + 1]
        self._state = self._checkpoints[-1].copy()
        used = False
        start = self._state.t_s
        for h in self._history:
            if h.t_s < start:
                continue
            self._checkpoint_before(h.t_s)
            applied = self._apply(h)
            used |= applied and h is m
        return used
