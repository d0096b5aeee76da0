"""Reference trackers built on Stone Soup, for the tracking benchmark (bench/locator_track.py).

Two single-target trackers over the same bearing reports the locator gets, set up as a careful
user of Stone Soup would, with nothing taken from the simulator's truth:

- **UKF**: ``UnscentedKalmanPredictor``/``UnscentedKalmanUpdater`` with a nearly-constant-velocity
  model (``ConstantVelocity`` per axis, state ``[east, v_east, north, v_north]``) and one
  ``Cartesian2DToBearing`` measurement model per bearing, translated to the receiver's reported
  position, with that bearing's reported sigma plus a model floor of ``MODEL_FLOOR_DEG`` in
  quadrature (DOMAIN.md: multipath bias of 9–12° that the reported sigma does not contain). A
  bearing whose normalised innovation is beyond ``GATE_SIGMAS`` is not used. It starts at the
  first crossing of two bearings from places ``MIN_BASELINE_M`` apart that cross at 20–160°, with
  the crossing's Cramér–Rao covariance plus ``INIT_POSITION_SD_M`` and a walker's velocity spread.
- **PF**: ``ParticlePredictor``/``ParticleUpdater`` with ``PARTICLES`` particles, the same motion
  model, a bearing likelihood with a heavy tail (``WILD_FRACTION`` of bearings uniform over the
  circle: the reflections DOMAIN.md counts), an ESS resampler and Stone Soup's MCMC regulariser.
  It starts from the first bearing as a wedge (ranges uniform out to ``MAX_RANGE_M``), which is how
  a bearings-only particle filter represents "somewhere along that line", and reports fixes
  once a second bearing from another place has been taken.

Both advance to every ``STEP_S`` between bearings (what a live map would ask of them), and each
step yields a fix: ``(t_s, east_m, north_m, cov_en_m2)``. They use bearings only: Stone Soup has
no model for signal strength with an unknown transmitter level and exponent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from stonesoup.models.measurement.nonlinear import Cartesian2DToBearing
from stonesoup.models.transition.linear import (
    CombinedLinearGaussianTransitionModel,
    ConstantVelocity,
    OrnsteinUhlenbeck,
)
from stonesoup.predictor.kalman import UnscentedKalmanPredictor
from stonesoup.predictor.particle import ParticlePredictor
from stonesoup.regulariser.particle import MCMCRegulariser
from stonesoup.resampler.particle import ESSResampler
from stonesoup.types.array import StateVector, StateVectors
from stonesoup.types.detection import Detection
from stonesoup.types.hypothesis import SingleHypothesis
from stonesoup.types.state import GaussianState, ParticleState
from stonesoup.updater.kalman import UnscentedKalmanUpdater
from stonesoup.updater.particle import ParticleUpdater

from safetynet.angles import angle_diff_deg, bearing_to_math_rad, wrap_pi

WALK_NOISE_M2_PER_S3 = 0.01  # velocity random walk: ~0.8 m/s of change per minute
# Ornstein–Uhlenbeck velocity: a walker's velocity forgets itself over VELOCITY_TAU_S and keeps
# a steady spread of WALK_SPEED_SD_MPS per axis (q = 2·K·sd²), so speeds stay those of a person.
VELOCITY_TAU_S = 120.0
WALK_SPEED_SD_MPS = 0.6
MOTION = "ou"
MODEL_FLOOR_DEG = 5.0
GATE_SIGMAS = 3.5
MIN_BASELINE_M = 30.0
INIT_POSITION_SD_M = 30.0
INIT_SPEED_SD_MPS = 0.7
MAX_RANGE_M = 3000.0
PARTICLES = 2000
WILD_FRACTION = 0.1
STEP_S = 10.0
CROSS_WINDOW_S = 600.0

EPOCH = datetime(2000, 1, 1)


@dataclass(frozen=True)
class BearingIn:
    """One bearing for the references: time (s), the receiver's reported position (local m),
    the compass bearing and its reported sigma (degrees)."""

    t_s: float
    east_m: float
    north_m: float
    bearing_deg: float
    sigma_deg: float


FixOut = tuple[float, float, float, NDArray[np.float64]]


def _stamp(t_s: float) -> datetime:
    return EPOCH + timedelta(seconds=t_s)


def _transition() -> CombinedLinearGaussianTransitionModel:
    if MOTION == "cv":
        return CombinedLinearGaussianTransitionModel(
            [ConstantVelocity(WALK_NOISE_M2_PER_S3), ConstantVelocity(WALK_NOISE_M2_PER_S3)]
        )
    k = 1.0 / VELOCITY_TAU_S
    q = 2.0 * k * WALK_SPEED_SD_MPS**2
    return CombinedLinearGaussianTransitionModel([OrnsteinUhlenbeck(q, k), OrnsteinUhlenbeck(q, k)])


def _sigma_rad(b: BearingIn) -> float:
    return math.radians(math.hypot(b.sigma_deg, MODEL_FLOOR_DEG))


def _model(b: BearingIn) -> Cartesian2DToBearing:
    """Stone Soup's bearing is ``atan2(y, x)`` with x east and y north: a maths angle."""
    s = _sigma_rad(b)
    return Cartesian2DToBearing(
        ndim_state=4, mapping=(0, 2), noise_covar=np.array([[s * s]]),
        translation_offset=StateVector([b.east_m, b.north_m]),
    )  # fmt: skip


def _detection(b: BearingIn) -> Detection:
    return Detection(
        StateVector([bearing_to_math_rad(b.bearing_deg)]),
        timestamp=_stamp(b.t_s),
        measurement_model=_model(b),
    )


def crossing(a: BearingIn, b: BearingIn) -> NDArray[np.float64] | None:
    """Where two bearing rays cross (east, north m), or None when they do not in front of both,
    are from places under ``MIN_BASELINE_M`` apart, or cross at under 20° or over 160°."""
    if math.hypot(a.east_m - b.east_m, a.north_m - b.north_m) < MIN_BASELINE_M:
        return None
    if not 20.0 <= abs(angle_diff_deg(a.bearing_deg, b.bearing_deg)) <= 160.0:
        return None
    da = np.array([math.sin(math.radians(a.bearing_deg)), math.cos(math.radians(a.bearing_deg))])
    db = np.array([math.sin(math.radians(b.bearing_deg)), math.cos(math.radians(b.bearing_deg))])
    # a + s·da = b + u·db  →  [da, −db]·[s, u] = b − a
    m = np.column_stack([da, -db])
    s, u = np.linalg.solve(m, np.array([b.east_m - a.east_m, b.north_m - a.north_m]))
    if s <= 0 or u <= 0 or s > MAX_RANGE_M or u > MAX_RANGE_M:
        return None
    return np.array([a.east_m, a.north_m]) + s * da


def _crossing_cov(p: NDArray[np.float64], obs: list[BearingIn]) -> NDArray[np.float64]:
    """Cramér–Rao covariance of bearings-only position (DOMAIN.md) plus the start's margin."""
    j = np.zeros((2, 2))
    for b in obs:
        d = p - np.array([b.east_m, b.north_m])
        r2 = max(float(d @ d), 1.0)
        u = np.array([-d[1], d[0]]) / math.sqrt(r2)
        j += np.outer(u, u) / (_sigma_rad(b) ** 2 * r2)
    return np.linalg.inv(j) + np.eye(2) * INIT_POSITION_SD_M**2


class UkfReference:
    """Stone Soup's unscented Kalman filter over bearings (see the module docstring)."""

    name = "stonesoup-ukf"

    def __init__(self) -> None:
        self.transition = _transition()
        # alpha = 1, kappa = 0: no negative sigma-point weights, so the predicted and updated
        # covariances stay positive definite (Stone Soup's default kappa = 3 − n is −1 here).
        self.predictor = UnscentedKalmanPredictor(self.transition, alpha=1.0, beta=2.0, kappa=0.0)
        self.updater = UnscentedKalmanUpdater(
            measurement_model=None, alpha=1.0, beta=2.0, kappa=0.0,
            force_symmetric_covariance=True,
        )  # fmt: skip
        self.state: GaussianState | None = None
        self.seen: list[BearingIn] = []

    def _start(self, b: BearingIn) -> bool:
        for a in reversed(self.seen):
            if b.t_s - a.t_s > CROSS_WINDOW_S:
                break
            p = crossing(a, b)
            if p is None:
                continue
            cov_pos = _crossing_cov(p, [a, b])
            cov = np.zeros((4, 4))
            cov[np.ix_([0, 2], [0, 2])] = cov_pos
            cov[1, 1] = cov[3, 3] = INIT_SPEED_SD_MPS**2
            self.state = GaussianState(
                StateVector([p[0], 0.0, p[1], 0.0]), cov, timestamp=_stamp(b.t_s)
            )
            return True
        return False

    def advance(self, t_s: float) -> None:
        if self.state is None or _stamp(t_s) <= self.state.timestamp:
            return
        self.state = self.predictor.predict(self.state, timestamp=_stamp(t_s))

    def add(self, b: BearingIn) -> bool:
        if self.state is None:
            started = self._start(b)
            self.seen.append(b)
            return started
        self.advance(b.t_s)
        assert self.state is not None
        det = _detection(b)
        pred_meas = self.updater.predict_measurement(self.state, det.measurement_model)
        innov = wrap_pi(bearing_to_math_rad(b.bearing_deg) - float(pred_meas.state_vector[0, 0]))
        if innov**2 / float(pred_meas.covar[0, 0]) > GATE_SIGMAS**2:
            return False
        update = self.updater.update(SingleHypothesis(self.state, det))
        cov = np.asarray(update.covar, dtype=float)
        values, vectors = np.linalg.eigh((cov + cov.T) / 2.0)
        update.covar = (vectors * np.maximum(values, 1e-6)) @ vectors.T
        self.state = update
        return True

    def fix(self) -> FixOut | None:
        if self.state is None:
            return None
        x = np.asarray(self.state.state_vector, dtype=float).ravel()
        cov = np.asarray(self.state.covar, dtype=float)[np.ix_([0, 2], [0, 2])]
        t_s = (self.state.timestamp - EPOCH).total_seconds()
        return t_s, float(x[0]), float(x[2]), cov


class HeavyTailBearing(Cartesian2DToBearing):  # type: ignore[misc]
    """Stone Soup's bearing model with a uniform outlier component in its likelihood."""

    def logpdf(self, state1, state2, **kwargs):  # type: ignore[no-untyped-def]
        gauss = np.atleast_1d(super().logpdf(state1, state2, **kwargs))
        wild = math.log(WILD_FRACTION / (2 * math.pi))
        return np.logaddexp(math.log(1.0 - WILD_FRACTION) + gauss, wild)


class ParticleReference:
    """Stone Soup's particle filter over bearings (see the module docstring)."""

    name = "stonesoup-pf"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.transition = _transition()
        self.predictor = ParticlePredictor(self.transition)
        self.updater = ParticleUpdater(
            measurement_model=None,
            resampler=ESSResampler(),
            regulariser=MCMCRegulariser(transition_model=self.transition),
        )
        self.state: ParticleState | None = None
        self.first: BearingIn | None = None
        self.ready = False

    def _start(self, b: BearingIn) -> None:
        np.random.seed(int(self.rng.integers(0, 2**31)))  # Stone Soup draws from numpy's global
        n = PARTICLES
        rng = self.rng
        bearing = b.bearing_deg + np.degrees(rng.normal(0, _sigma_rad(b), n))
        r = rng.uniform(20.0, MAX_RANGE_M, n)
        east = b.east_m + r * np.sin(np.radians(bearing))
        north = b.north_m + r * np.cos(np.radians(bearing))
        v = rng.normal(0, INIT_SPEED_SD_MPS, (2, n))
        self.state = ParticleState(
            StateVectors(np.vstack([east, v[0], north, v[1]])),
            log_weight=np.full(n, -math.log(n)),
            timestamp=_stamp(b.t_s),
        )
        self.first = b

    def advance(self, t_s: float) -> None:
        if self.state is None or _stamp(t_s) <= self.state.timestamp:
            return
        self.state = self.predictor.predict(self.state, timestamp=_stamp(t_s))

    def add(self, b: BearingIn) -> bool:
        if self.state is None:
            self._start(b)
            return False
        assert self.state is not None
        assert self.first is not None
        # Always update a prediction (dt may be 0): the MCMC regulariser reads its model.
        when = max(_stamp(b.t_s), self.state.timestamp)
        self.state = self.predictor.predict(self.state, timestamp=when)
        det = Detection(
            StateVector([bearing_to_math_rad(b.bearing_deg)]),
            timestamp=_stamp(b.t_s),
            measurement_model=HeavyTailBearing(
                ndim_state=4, mapping=(0, 2), noise_covar=np.array([[_sigma_rad(b) ** 2]]),
                translation_offset=StateVector([b.east_m, b.north_m]),
            ),
        )  # fmt: skip
        self.state = self.updater.update(SingleHypothesis(self.state, det))
        if math.hypot(b.east_m - self.first.east_m, b.north_m - self.first.north_m) >= (
            MIN_BASELINE_M
        ):
            self.ready = True
        return self.ready

    def fix(self) -> FixOut | None:
        if self.state is None or not self.ready:
            return None
        sv = np.asarray(self.state.state_vector, dtype=float)
        w = np.exp(np.asarray(self.state.log_weight, dtype=float))
        w = w / w.sum()
        pos = sv[[0, 2], :]
        mean = pos @ w
        d = pos - mean[:, None]
        cov = (d * w) @ d.T
        t_s = (self.state.timestamp - EPOCH).total_seconds()
        return t_s, float(mean[0]), float(mean[1]), cov


def run_reference(
    tracker: UkfReference | ParticleReference, bearings: list[BearingIn], t_end_s: float
) -> list[FixOut]:
    """Feed ``bearings`` (time order) and step to every ``STEP_S``; a fix after each step."""
    fixes: list[FixOut] = []
    t_next = None
    for b in bearings:
        while t_next is not None and t_next < b.t_s:
            tracker.advance(t_next)
            fix = tracker.fix()
            if fix is not None:
                fixes.append(fix)
            t_next += STEP_S
        if tracker.add(b):
            fix = tracker.fix()
            if fix is not None:
                fixes.append(fix)
        if tracker.fix() is not None and t_next is None:
            t_next = b.t_s + STEP_S
    while t_next is not None and t_next <= t_end_s:
        tracker.advance(t_next)
        fix = tracker.fix()
        if fix is not None:
            fixes.append(fix)
        t_next += STEP_S
    return fixes
