"""Radio propagation at 216 MHz from a bracelet to a receiver's antenna port.

For each frame the link is a sum of paths, each with a power and a direction of arrival:

- **direct path**: log-distance path loss ``L(d) = L0 + 10·n·log10(d / 1 m)`` (``L0`` = free
  space at 1 m, 19.1 dB at 216.5 MHz, and ``n`` = 2 by default), plus spatially correlated
  log-normal shadowing, the body loss of a wrist-worn bracelet, the building loss when the
  wearer is indoors, and the loss of every obstacle (a building footprint) the straight line
  crosses;
- **reflected paths**: a reflector (a building face, a water tower) at a point, seen by receivers
  within its radius, re-radiates with its own loss over the path ``tx → reflector → rx``. Where
  the direct path is blocked, the strongest path comes from the reflector's direction, and a
  directional antenna points there — consistently wrong bearings, as in a city.

Shadowing is a Gaussian random field with exponential correlation ``exp(−Δ/D)`` (Gudmundson),
synthesised by random Fourier features whose wave vectors are drawn from the field's spectral
density (a 2-D Cauchy distribution of scale 1/D); a link's shadowing is the mean of the fields at
its two ends, scaled back to ``σ``, so it changes smoothly as either end moves. Fading is drawn
per frame and path: Rician with factor ``K`` on the direct path, Rayleigh on reflections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safetynet.angles import bearing_of_enu
from safetynet.antennas import Pattern

SPEED_OF_LIGHT_MPS = 299_792_458.0
AIRBORNE_M = 30.0


def free_space_loss_1m_db(freq_hz: float) -> float:
    """Free-space path loss at 1 m, ``20·log10(4π / λ)`` (19.1 dB at 216.5 MHz)."""
    return 20.0 * math.log10(4.0 * math.pi * freq_hz / SPEED_OF_LIGHT_MPS)


@dataclass(frozen=True)
class Reflector:
    east_m: float
    north_m: float
    loss_db: float = 6.0
    radius_m: float = 150.0


@dataclass(frozen=True)
class Obstacle:
    """A building footprint: an N×2 polygon (east, north m); crossing it costs ``loss_db``."""

    polygon: NDArray[np.float64]
    loss_db: float = 20.0


@dataclass(frozen=True)
class PropagationParams:
    freq_hz: float = 216.5e6
    ref_loss_db: float | None = None  # at 1 m; None: free space at freq_hz
    exponent: float = 2.0
    shadowing_sigma_db: float = 0.0
    decorrelation_m: float = 50.0
    rician_k_db: float | None = None  # None: no fading; very negative: Rayleigh
    body_loss_db: float = 0.0
    indoor_loss_db: float = 10.0
    reflectors: tuple[Reflector, ...] = ()
    obstacles: tuple[Obstacle, ...] = ()

    @property
    def loss_at_1m_db(self) -> float:
        return (
            self.ref_loss_db
            if self.ref_loss_db is not None
            else free_space_loss_1m_db(self.freq_hz)
        )

    def path_loss_db(self, distance_m: float | NDArray[np.float64]) -> NDArray[np.float64]:
        """Mean log-distance path loss (dB); distances under 1 m count as 1 m."""
        d = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
        loss: NDArray[np.float64] = self.loss_at_1m_db + 10.0 * self.exponent * np.log10(d)
        return loss


@dataclass(frozen=True)
class Path:
    """One propagation path: mean power reaching an isotropic antenna, and where it comes from."""

    power_dbm: float  # before antenna gain and fading
    arrival_bearing_deg: float  # direction the receiver sees it from
    rician_k: float | None  # linear K factor for its fading; None = no fading


class ShadowingField:
    """A zero-mean Gaussian field (dB) over the plane, exponential correlation, std ``sigma``."""

    def __init__(
        self,
        sigma_db: float,
        decorrelation_m: float,
        rng: np.random.Generator,
        n_features: int = 256,
    ) -> None:
        self.sigma_db = sigma_db
        g = rng.normal(size=(n_features, 2)) / decorrelation_m
        chi = np.sqrt(rng.chisquare(1, size=(n_features, 1)))
        self._k = g / chi  # 2-D Cauchy wave vectors: spectral density of exp(-r/D)
        self._phase = rng.uniform(0, 2 * np.pi, n_features)
        self._scale = sigma_db * math.sqrt(2.0 / n_features)

    def __call__(self, east_m: float, north_m: float) -> float:
        if self.sigma_db == 0.0:
            return 0.0
        arg = self._k[:, 0] * east_m + self._k[:, 1] * north_m + self._phase
        return float(self._scale * np.cos(arg).sum())


@dataclass
class Propagation:
    """The propagation model of one scenario (seeded)."""

    params: PropagationParams
    rng: np.random.Generator
    _tx_field: ShadowingField = field(init=False)
    _rx_field: ShadowingField = field(init=False)

    def __post_init__(self) -> None:
        p = self.params
        self._tx_field = ShadowingField(p.shadowing_sigma_db, p.decorrelation_m, self.rng)
        self._rx_field = ShadowingField(p.shadowing_sigma_db, p.decorrelation_m, self.rng)

    def shadowing_db(self, tx: tuple[float, float], rx: tuple[float, float]) -> float:
        return (self._tx_field(*tx) + self._rx_field(*rx)) / math.sqrt(2.0)

    def paths(
        self,
        tx: tuple[float, float],
        rx: tuple[float, float],
        eirp_dbm: float,
        indoor: bool,
        rx_alt_m: float = 0.0,
    ) -> list[Path]:
        """The paths from a bracelet at ``tx`` to a receiver at ``rx`` (local metres).

        A receiver more than ``AIRBORNE_M`` above the ground (a helicopter) has line of sight:
        free-space loss over the slant range, no shadowing, no obstacles, no reflections, and a
        strong specular component (Rician K = 15 dB) when fading is on.
        """
        p = self.params
        common_db = eirp_dbm - p.body_loss_db - (p.indoor_loss_db if indoor else 0.0)
        if rx_alt_m > AIRBORNE_M:
            slant_m = math.hypot(math.dist(tx, rx), rx_alt_m)
            loss_db = p.loss_at_1m_db + 20.0 * math.log10(slant_m)
            k_air = None if p.rician_k_db is None else 10.0 ** (15.0 / 10.0)
            bearing = bearing_of_enu(tx[0] - rx[0], tx[1] - rx[1])
            return [Path(common_db - loss_db, bearing, k_air)]
        common_db -= self.shadowing_db(tx, rx)
        k_direct = None if p.rician_k_db is None else 10.0 ** (p.rician_k_db / 10.0)
        k_reflected = None if p.rician_k_db is None else 0.0
        distance = math.dist(tx, rx)
        blocked_db = sum(
            ob.loss_db for ob in p.obstacles if _segment_crosses_polygon(tx, rx, ob.polygon)
        )
        paths = [
            Path(
                common_db - float(p.path_loss_db(distance)) - blocked_db,
                bearing_of_enu(tx[0] - rx[0], tx[1] - rx[1]),
                k_direct,
            )
        ]
        for ref in p.reflectors:
            here = (ref.east_m, ref.north_m)
            if math.dist(here, rx) > ref.radius_m:
                continue
            length = math.dist(tx, here) + math.dist(here, rx)
            paths.append(
                Path(
                    common_db - float(p.path_loss_db(length)) - ref.loss_db,
                    bearing_of_enu(here[0] - rx[0], here[1] - rx[1]),
                    k_reflected,
                )
            )
        return paths

    @staticmethod
    def fading_with(paths: list[Path], rng: np.random.Generator) -> NDArray[np.complex128]:
        """One complex amplitude per path for one frame, with E|h|² = 1.

        Without fading, the direct path keeps phase 0 and the others get random phases (so
        paths still add as independent waves).
        """
        h = np.ones(len(paths), dtype=complex)
        for i, path in enumerate(paths):
            phase = np.exp(2j * np.pi * rng.random()) if i > 0 else 1.0
            if path.rician_k is None:
                h[i] = phase
                continue
            k = path.rician_k
            scatter = (rng.normal() + 1j * rng.normal()) / math.sqrt(2.0)
            h[i] = (math.sqrt(k / (k + 1)) + scatter / math.sqrt(k + 1)) * phase
        return h


def received_amplitude(
    paths: list[Path], fades: NDArray[np.complex128], pattern: Pattern, heading_deg: float
) -> complex:
    """Complex amplitude (√mW) at the antenna port: paths weighted by the antenna's gain.

    The paths add coherently with the per-path phases of ``fades``; with one path and no fading
    ``|a|²`` is exactly EIRP − losses + antenna gain.
    """
    total = 0j
    for path, fade in zip(paths, fades, strict=True):
        gain_dbi = pattern.gain_dbi(path.arrival_bearing_deg - heading_deg)
        total += complex(fade) * 10.0 ** ((path.power_dbm + gain_dbi) / 20.0)
    return total


def _segment_crosses_polygon(
    a: tuple[float, float], b: tuple[float, float], polygon: NDArray[np.float64]
) -> bool:
    p = polygon
    q = np.roll(polygon, -1, axis=0)
    d = (b[0] - a[0], b[1] - a[1])
    e = q - p
    denom = d[0] * e[:, 1] - d[1] * e[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((p[:, 0] - a[0]) * e[:, 1] - (p[:, 1] - a[1]) * e[:, 0]) / denom
        u = ((p[:, 0] - a[0]) * d[1] - (p[:, 1] - a[1]) * d[0]) / denom
    hits = (denom != 0) & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)
    return bool(hits.any())
