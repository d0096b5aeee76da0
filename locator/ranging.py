"""Signal-strength ranging with what is not known left unknown: level, exponent and shadowing.

``rssi = L − 10·n·log10(r) + G + s + f`` — ``L`` the bracelet's EIRP less body loss and the
loss at 1 m, ``n`` the path-loss exponent, ``G`` the receiving antenna's gain toward the
bracelet, ``s`` log-normal shadowing, ``f`` fading. None of ``L``, ``n`` is known: the EIRP lies
anywhere in −20..0 dBm, a wrist and a sleeve take 0–6 dB, indoors another 10; the exponent is
2.7–3.5 in a suburb (DOMAIN.md). Both are carried as a Gaussian (``LEVEL_PRIOR``,
``EXPONENT_PRIOR``) and learned with the position, together with ``b``, the part of ``s`` at the
person's end of every link (:func:`walk_level`): the model is linear in ``(L, n, b)`` for a
given position, so each particle of the tracker keeps its own three-dimensional Kalman filter
over them (a Rao–Blackwellised particle filter) and a signal strength weighs a particle by its
predictive density *with the level, exponent and that shadowing integrated out*. Far out that
density is broad — range to a factor of two or so — so signal strength cannot drag a position
the bearings hold; close in it is sharp, as it should be.

**Shadowing is shared by pulses from one place** (it decorrelates over tens of metres), so the
pulses a receiver hears while it stays within ``PLACE_RADIUS_M`` (and for at most
``PLACE_MAX_S``) are gathered into one *place measurement* (:class:`PlaceCollector`): fifty
pulses from one corner are one measurement of range, their mean averaging out only the fading.
Later measurements from the same place (within ``SHADOW_MEMORY_S``) share the shadowing
too and are weighed as :func:`~locator.bearing_model.place_sigma` says. Where the antenna's
heading is known, the gain toward each particle comes from its pattern; for a directional
antenna only the loudest pulses
of the place are used (those it heard when pointing at the bracelet, well above the detection
floor, so the floor does not bias them). A share ``OBSTRUCTED_SHARE`` of place measurements is
taken as passing through a building (``OBSTRUCTION_DB`` more spread), so one blocked street does
not drag the estimate either.

**Silences** ("listened here, heard nothing") rule out where the receiver would have heard the
bracelet (:func:`silence_update`), with the same level and exponent each particle holds, the
detection floor of the probability map (:class:`locator.link.LinkBudget`), and the shadowing
averaged out; a place's repeated silences share its shadowing and are used once per
``SILENCE_REPEAT_S``. A silence is also a censored measurement of the link, and each
particle's level filter learns from it: in a dense city a bracelet half a kilometre away is
often not heard at all, and twenty silences at that range say "the link is weak", not twenty
times "he is not within a kilometre" (measured: a city search whose only evidence was four
decoded pulses and two hundred silences had its fix pushed 2 km away, ellipse 0 % coverage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from safetynet.angles import bearing_of_enu
from safetynet.antennas import PATTERNS

FREE_SPACE_1M_DB = 19.1  # at 216.5 MHz
LEVEL_PRIOR = (-10.0 - 3.0 - FREE_SPACE_1M_DB, 8.0)  # mean and sigma, dBm at 1 m
EXPONENT_PRIOR = (3.0, 0.45)
SHADOWING_DB = 6.5  # DOMAIN.md: 4–8 dB
# A link's shadowing has two ends (DOMAIN.md: it decorrelates over tens of metres as either
# end moves): the receiver's, the same for every pulse heard from one place, and the person's
# (a house, a hedge, a bank beside him), the same on every receiver's link and moving with him.
# The place keeps the whole of the link's spread (``RECEIVER_SHADOWING_DB``: the person may sit
# for a quarter of an hour, and the place's measurements would otherwise be overconfident,
# measured: pooled coverage 0.81 against 0.88); the person's end is also a state of each
# particle's level filter, ``b``, which a particle keeps while it stands and which moves on as
# it walks (:func:`walk_level`). Without it, a walker whose every link faded together was
# pushed away from all the receivers at once (a kilometre, 7.7 times its ellipse, in one
# generated suburb). Its spread is small, a person's surroundings change over a block, not a
# step: a larger or quicker one reads the steady fade of a walker going away from the teams
# as his level rather than his range (measured on 105 generated searches, 4.6 dB over 50 m
# against 3 dB over 100 m: parks' coverage 0.93 against 0.95, fixes beyond three times their
# ellipse 249 in 6 searches against 30 in 2).
RECEIVER_SHADOWING_DB = SHADOWING_DB
BRACELET_END_DB = 3.0
LEVEL_DECORRELATION_M = 100.0
FADING_DB = 5.6  # spread of one pulse's power in dB under Rayleigh fading
OBSTRUCTED_SHARE = 0.1
OBSTRUCTION_DB = 20.0
PLACE_RADIUS_M = 50.0
# Half a link's shadowing is the receiver's end, the same for as long as it stays at a place;
# the bracelet's half changes only as far as the person walks, and a person may sit for a
# quarter of an hour. A place's earlier measurements count as sharing its shadowing for that
# long (measured: two minutes made the fixes of signal-strength-led searches overconfident).
SHADOW_MEMORY_S = 900.0
PLACE_MAX_S = 30.0
AIR_PLACE_MAX_S = 120.0
SILENCE_REPEAT_S = 300.0
PLACE_GAP_S = 15.0
LOUDEST_DB = 4.0  # a directional antenna's pulses within this of its loudest at the place
MAX_LOUDEST = 6
AIRBORNE_M = 30.0  # above this the receiver's height enters the range (a helicopter)
# From the air the bracelet is in line of sight: free space (exponent 2) over the slant range,
# no shadowing by the ground's clutter — only what the body, a roof or trees near the person
# take, which is the same for the whole pass (AIR_SHARED_DB), and a little multipath off the
# ground (AIR_SCATTER_DB per place). The ground's exponent does not apply: with it, a pass at
# 300 m heard 20–30 dB louder than the ground model expects dragged fixes 700 m towards the
# aircraft's track, with an ellipse of 190 m (measured on a generated park search).
AIR_EXPONENT = 2.0
AIR_SHARED_DB = 4.0
AIR_SCATTER_DB = 2.0


@dataclass(frozen=True)
class PulseObs:
    """One decoded pulse with the receiver's position, in the local frame."""

    t_s: float
    east_m: float
    north_m: float
    height_m: float  # receiver above the bracelet (0 on the ground)
    rssi_dbm: float
    heading_deg: float | None
    antenna: str


@dataclass
class PlaceCollector:
    """Gathers one receiver's pulses into place measurements."""

    pulses: list[PulseObs] = field(default_factory=list)

    def add(self, p: PulseObs) -> list[PulseObs] | None:
        """Add a pulse; returns the finished place's pulses when this one starts a new place."""
        done = None
        if self.pulses and not self._same_place(p):
            done = self.pulses
            self.pulses = []
        self.pulses.append(p)
        return done

    def stale(self, now_s: float) -> list[PulseObs] | None:
        """The open place's pulses, if nothing has been heard there for ``PLACE_GAP_S``."""
        if self.pulses and now_s - self.pulses[-1].t_s > PLACE_GAP_S:
            done, self.pulses = self.pulses, []
            return done
        return None

    def _same_place(self, p: PulseObs) -> bool:
        first = self.pulses[0]
        if p.t_s - self.pulses[-1].t_s > PLACE_GAP_S:
            return False
        if p.height_m > AIRBORNE_M and first.height_m > AIRBORNE_M:
            # From the air what is shared is near the person, wherever the aircraft is: its
            # pulses of up to two minutes (a leg of its pattern) are one measurement, over the
            # ranges it flew through.
            return p.t_s - first.t_s <= AIR_PLACE_MAX_S
        return (
            p.t_s - first.t_s <= PLACE_MAX_S
            and math.hypot(p.east_m - first.east_m, p.north_m - first.north_m) <= PLACE_RADIUS_M
        )


@dataclass(frozen=True)
class PlaceMeasurement:
    """A place's pulses reduced to what the filter needs (arrays over the pulses kept)."""

    t_s: float
    east_m: NDArray[np.float64]
    north_m: NDArray[np.float64]
    height_m: NDArray[np.float64]
    rssi_dbm: NDArray[np.float64]
    heading_deg: NDArray[np.float64] | None  # None: no pattern toward the bracelet to apply
    antenna: str
    n_pulses: int
    heard_s: float | None = None  # the mean time of the pulses kept (None: at ``t_s``)

    @property
    def centre_en(self) -> tuple[float, float]:
        return float(np.mean(self.east_m)), float(np.mean(self.north_m))

    @property
    def airborne(self) -> bool:
        """Heard from the air (a helicopter): a line-of-sight link, not the ground's."""
        return bool(np.mean(self.height_m) > AIRBORNE_M)

    @property
    def independent_db(self) -> float:
        """The spread of the place's mean that does not repeat at the place: the fading (the
        shadowing at the person's end is in the level state, :func:`walk_level`)."""
        return FADING_DB / math.sqrt(self.rssi_dbm.size)


def place_measurement(pulses: list[PulseObs]) -> PlaceMeasurement:
    """Reduce a place's pulses: all of them for an omnidirectional antenna (their mean averages
    the fading), the loudest ones for a directional antenna with a known heading."""
    if not pulses:
        raise ValueError("a place measurement needs at least one pulse")
    antenna = pulses[0].antenna
    directional = PATTERNS[antenna].beamwidth_deg < 360.0
    with_heading = [p for p in pulses if p.heading_deg is not None]
    use = pulses
    if directional and with_heading:
        top = max(p.rssi_dbm for p in with_heading)
        loud = sorted(
            (p for p in with_heading if p.rssi_dbm >= top - LOUDEST_DB),
            key=lambda p: -p.rssi_dbm,
        )
        use = loud[:MAX_LOUDEST]
    headings = None
    if directional and all(p.heading_deg is not None for p in use):
        headings = np.array([p.heading_deg for p in use], dtype=float)
    return PlaceMeasurement(
        t_s=pulses[-1].t_s,
        east_m=np.array([p.east_m for p in use]),
        north_m=np.array([p.north_m for p in use]),
        height_m=np.array([p.height_m for p in use]),
        rssi_dbm=np.array([p.rssi_dbm for p in use]),
        heading_deg=headings,
        antenna=antenna,
        n_pulses=len(pulses),
        heard_s=float(np.mean([p.t_s for p in use])),
    )


def rss_update(
    position_en: NDArray[np.float64],
    level_mean: NDArray[np.float64],
    level_cov: NDArray[np.float64],
    m: PlaceMeasurement,
    sigma_db: float,
) -> NDArray[np.float64]:
    """Weigh particles by a place measurement and update their level/exponent filters.

    ``position_en`` (n×2, m); ``level_mean`` (n×3: level dBm at 1 m, exponent, the shadowing
    at the person's end in dB) and ``level_cov`` (n×3×3) are updated in place (see
    :func:`prior_level`). ``sigma_db`` is the measurement's spread beyond that state (the
    place's shadowing, fading). Returns the log predictive density of the measurement for
    each particle.
    """
    de = position_en[:, 0:1] - m.east_m[None, :]
    dn = position_en[:, 1:2] - m.north_m[None, :]
    r2 = np.maximum(de * de + dn * dn + (m.height_m * m.height_m)[None, :], 1.0)
    log_r = 0.5 * np.log10(r2)  # n × pulses
    if m.heading_deg is None:
        gain = np.full(r2.shape, PATTERNS[m.antenna].peak_gain_dbi)
    else:
        toward = bearing_of_enu(de, dn)
        gain = PATTERNS[m.antenna].gain_dbi(toward - m.heading_deg[None, :])
    within = np.zeros(position_en.shape[0])
    if m.airborne:
        # Line of sight from the air: free space over the slant range, z = L − 20·log r + e per
        # pulse. The pulses share the level (and what is near the person), so their mean is one
        # measurement of it; how they differ from one another is pure geometry — the ranges the
        # aircraft flew through — with only each pulse's own fading and scatter: the density
        # of those differences weighs each particle too (the pulses' joint density given the
        # level factors into that of their mean and that of their spread about it).
        z = m.rssi_dbm[None, :] - gain + AIR_EXPONENT * 10.0 * log_r
        y = np.mean(z, axis=1)
        spread = z - y[:, None]
        within = -0.5 * np.sum(spread * spread, axis=1) / (FADING_DB**2 + AIR_SCATTER_DB**2)
        h1 = np.zeros(y.shape)
    else:
        # Mean over the place's pulses: y = L − 10·n·mean(log r) + b + noise, linear in
        # (L, n, b).
        y = np.mean(m.rssi_dbm[None, :] - gain, axis=1)
        h1 = -10.0 * np.mean(log_r, axis=1)  # ∂y/∂n ; ∂y/∂L = 1
    h = _link_row(h1)
    predicted = np.einsum("ni,ni->n", h, level_mean)
    ph = np.einsum("nij,nj->ni", level_cov, h)
    hph = np.einsum("ni,ni->n", h, ph)
    core = hph + sigma_db * sigma_db
    wide = core + OBSTRUCTION_DB * OBSTRUCTION_DB
    resid = y - predicted
    dens_core = np.exp(-0.5 * resid * resid / core) / np.sqrt(2.0 * math.pi * core)
    dens_wide = np.exp(-0.5 * resid * resid / wide) / np.sqrt(2.0 * math.pi * wide)
    mix_core = (1.0 - OBSTRUCTED_SHARE) * dens_core
    total = mix_core + OBSTRUCTED_SHARE * dens_wide
    # The level filter learns from the measurement as the component that most likely made it.
    s = np.where(mix_core >= 0.5 * total, core, wide)
    gain_k = ph / s[:, None]
    level_mean += gain_k * resid[:, None]
    level_cov -= np.einsum("ni,nj->nij", gain_k, ph)
    out: NDArray[np.float64] = np.log(np.maximum(total, 1e-300)) + within
    return out


DEAF_SHARE = 0.05  # a silence heard through a wall, a receiver looking away: no evidence


def silence_fading_db(pulses: int) -> tuple[float, float]:
    """The fading of a listen of ``pulses`` Rayleigh-faded pulses as a probit in dB:
    ``P(no pulse above the floor | mean power m dB over it) ≈ Φ((offset − m) / sigma)``.

    Exactly, that chance is ``(1 − exp(−1/x))^N`` with ``x`` the mean power over the floor;
    ``offset`` is where it is one half and ``sigma`` matches its slope there (within 0.5 % of
    the exact curve for ten pulses, 5 % for one)."""
    if pulses < 1:
        raise ValueError(f"a listen lasts at least one pulse, got {pulses}")
    half = 0.5 ** (1.0 / pulses)  # 1 − exp(−1/x) at the median
    inv_x = -math.log1p(-half)  # 1/x there
    offset_db = -10.0 * math.log10(inv_x)
    slope = pulses * 0.5 / half * (1.0 - half) * inv_x * math.log(10.0) / 10.0  # per dB
    return offset_db, 1.0 / (math.sqrt(2.0 * math.pi) * slope)


def silence_update(
    position_en: NDArray[np.float64],
    level_mean: NDArray[np.float64],
    level_cov: NDArray[np.float64],
    receiver_en: tuple[float, float],
    threshold_dbm: float,
    gain_dbi: float,
    pulses: int,
) -> NDArray[np.float64]:
    """log p(heard nothing | position) for each particle, and what the silence says of the
    particle's level state (``level_mean`` n×3 and ``level_cov`` n×3×3 updated in place).

    The mean power over the floor is ``u = L − 10·n·log10(r) + G − floor + b + s``: Gaussian
    for a particle (its level filter, and the place's shadowing ``RECEIVER_SHADOWING_DB``), and
    a silence is the probit :func:`silence_fading_db` of it, so
    ``p = Φ((offset − E u) / √(var u + sigma²))`` in closed form, mixed with a share
    ``DEAF_SHARE`` of silences that say nothing. Silences are
    censored measurements of the link: the level filter takes the moments of its posterior
    given ``u`` under the probit (a Tobit update), so that many silences at a few hundred
    metres teach a particle that the link is weak — a high exponent, a low level — instead of
    each of them ruling the same ground out again as if the link were the prior's."""
    offset, sigma_f = silence_fading_db(pulses)
    de = position_en[:, 0] - receiver_en[0]
    dn = position_en[:, 1] - receiver_en[1]
    h = -5.0 * np.log10(np.maximum(de * de + dn * dn, 1.0))  # −10·log10(r)
    row = _link_row(h)
    mean_u = np.einsum("ni,ni->n", row, level_mean) + gain_dbi - threshold_dbm
    ph = np.einsum("nij,nj->ni", level_cov, row)
    var_u = np.maximum(np.einsum("ni,ni->n", row, ph), 0.0) + RECEIVER_SHADOWING_DB**2
    total = np.sqrt(var_u + sigma_f * sigma_f)
    alpha = (offset - mean_u) / total
    log_phi = _log_ndtr(alpha)
    informative = (1.0 - DEAF_SHARE) * np.exp(log_phi)
    p = DEAF_SHARE + informative
    resp = informative / p  # the silence's share that is evidence, not a deaf receiver
    lam = np.exp(_log_npdf(alpha) - log_phi)  # inverse Mills ratio φ/Φ
    shift_u = -var_u * lam / total  # E[u | silence] − E[u]
    shrink_u = var_u * var_u * lam * (lam + alpha) / (total * total)  # var u − var[u | silence]
    # x | silence: mean += P·h/var_u · shift, cov −= P·h·hᵀ·P/var_u² · shrink; mixed with
    # the deaf share (moments of the two-part mixture).
    g = ph / var_u[:, None]
    spread = resp * (1.0 - resp) * shift_u * shift_u
    level_mean += g * (resp * shift_u)[:, None]
    k = resp * shrink_u - spread
    level_cov -= np.einsum("ni,nj->nij", g, g) * k[:, None, None]
    out: NDArray[np.float64] = np.log(p)
    return out


def _log_npdf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = -0.5 * x * x - 0.5 * math.log(2.0 * math.pi)
    return out


def _log_ndtr(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """log Φ(x), accurate far into the lower tail."""
    out: NDArray[np.float64] = np.asarray(log_ndtr(x), dtype=float)
    return out


def height_above_m(alt_m: float | None, ground_alt_m: float) -> float:
    """The receiver's height above the bracelet for the slant range: only an aircraft's counts
    (a person's own height and a GPS's vertical error are noise at these ranges)."""
    height = max((alt_m or 0.0) - ground_alt_m, 0.0)
    return height if height > AIRBORNE_M else 0.0


def _link_row(h_exponent: NDArray[np.float64]) -> NDArray[np.float64]:
    """∂(mean power)/∂(level state) per particle: 1 for ``L``, the range term for ``n``, 1 for
    the bracelet's end of the shadowing ``b`` (n×3)."""
    ones = np.ones_like(h_exponent)
    out: NDArray[np.float64] = np.stack((ones, h_exponent, ones), axis=1)
    return out


def walk_level(
    level_mean: NDArray[np.float64], level_cov: NDArray[np.float64], walked_m: NDArray[np.float64]
) -> None:
    """Move each particle's bracelet-end shadowing ``b`` (``level_mean[:, 2]``, in place) on
    by the distance it walked (``walked_m``, n, metres): ``b`` is the same on every receiver's
    link and follows the person, a field of spread ``BRACELET_END_DB`` decorrelating over
    ``LEVEL_DECORRELATION_M`` (an Ornstein–Uhlenbeck process in the distance walked:
    ``b ← ρ·b + √(1−ρ²)·σ·w``, ρ = exp(−Δ/D)). A particle that stood keeps it."""
    rho = np.exp(-walked_m / LEVEL_DECORRELATION_M)
    level_mean[:, 2] *= rho
    level_cov[:, 2, :] *= rho[:, None]
    level_cov[:, :, 2] *= rho[:, None]
    level_cov[:, 2, 2] += (1.0 - rho * rho) * BRACELET_END_DB**2


def prior_level() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The prior mean and covariance (3×3) of the level state: the level ``L`` (dBm at 1 m),
    the exponent ``n`` and the bracelet's end of the shadowing ``b`` (dB), independent."""
    (l0, sl), (n0, sn) = LEVEL_PRIOR, EXPONENT_PRIOR
    return np.array([l0, n0, 0.0]), np.diag([sl * sl, sn * sn, BRACELET_END_DB**2])
