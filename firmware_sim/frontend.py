"""An RTL-SDR front end (R820T tuner, RTL2832U 8-bit ADC) as the receiver's software sees it.

The complex baseband reaching the ADC is, in units of digital full scale,
``z = (signal + noise) · 10^(−cal/20)`` with ``cal = cal_dbm_at_fullscale(gain)`` — so that a
known input power lands at a known dBFS (spec §8) — then the tuner's DC offset and I/Q
imbalance are applied, and the ADC quantises to 8 bits with clipping at full scale:
``x = clip(round(127.5 + 127.5·z), 0, 255)``.

Thermal noise at the antenna port is ``−174 dBm/Hz + NF``. The crystal is off by ``ppm_error``;
after the host's frequency correction, the residual error moves the local oscillator
(``f_LO = f_c·(1 + e)``) and the sample clock (``fs_true = fs·(1 + e)``) together, as on a real
dongle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from safetynet.rtl import (
    R820T_GAINS_DB,
    SAMPLE_RATES_HZ,
    nearest_gain_db,
    nominal_cal_dbm_at_fullscale,
)
from safetynet.sntx import RECOMMENDED_CENTER_HZ, RECOMMENDED_SAMPLE_RATE_HZ

THERMAL_DBM_PER_HZ = -174.0
NOISE_POOL_SIZE = 1 << 24
AUTO_GAIN_DB = 40.2  # what the tuner's AGC settles on with only noise in the band


@dataclass
class RtlFrontEnd:
    """Settings and impairments of one dongle. ``gain_db`` None means automatic gain."""

    sample_rate_hz: float = RECOMMENDED_SAMPLE_RATE_HZ
    center_hz: float = RECOMMENDED_CENTER_HZ
    gain_db: float | None = AUTO_GAIN_DB
    ppm_error: float = 0.0
    ppm_correction: int = 0
    noise_figure_db: float = 4.0
    dc_offset: complex = 0.004 - 0.003j  # full-scale units (about −45 dBFS)
    iq_gain_imbalance_db: float = 0.1
    iq_phase_imbalance_deg: float = 0.5
    cal_error_db: float = 0.0  # how far this dongle is from the nominal table
    digital_agc: bool = False  # the RTL2832's digital AGC; recorded, not modelled
    _scratch: NDArray[np.float32] = field(
        default_factory=lambda: np.empty(0, np.float32), repr=False
    )

    def __post_init__(self) -> None:
        self.set_sample_rate(self.sample_rate_hz)
        self.set_gain(self.gain_db)

    # --- settings, as rtl_tcp commands change them ------------------------------------------
    def set_sample_rate(self, sample_rate_hz: float) -> None:
        if int(sample_rate_hz) not in SAMPLE_RATES_HZ:
            rates = ", ".join(str(r) for r in SAMPLE_RATES_HZ)
            raise ValueError(f"sample rate must be one of {rates} S/s, got {sample_rate_hz}")
        self.sample_rate_hz = float(sample_rate_hz)

    def set_gain(self, gain_db: float | None) -> None:
        self.gain_db = None if gain_db is None else nearest_gain_db(gain_db)

    @property
    def effective_gain_db(self) -> float:
        return AUTO_GAIN_DB if self.gain_db is None else self.gain_db

    @property
    def gains_db(self) -> tuple[float, ...]:
        return R820T_GAINS_DB

    @property
    def residual_ppm(self) -> float:
        return self.ppm_error - self.ppm_correction

    @property
    def lo_hz(self) -> float:
        """The true local-oscillator frequency."""
        return self.center_hz * (1.0 + self.residual_ppm * 1e-6)

    @property
    def true_sample_rate_hz(self) -> float:
        return self.sample_rate_hz * (1.0 + self.residual_ppm * 1e-6)

    @property
    def cal_dbm_at_fullscale(self) -> float:
        """The true calibration of this dongle at its gain (nominal table + its own error)."""
        return nominal_cal_dbm_at_fullscale(self.effective_gain_db) + self.cal_error_db

    @property
    def noise_dbm_per_hz(self) -> float:
        return THERMAL_DBM_PER_HZ + self.noise_figure_db

    def noise_dbfs(self) -> float:
        """Thermal noise power over the sampled band, in dBFS."""
        return (
            self.noise_dbm_per_hz + 10 * math.log10(self.sample_rate_hz) - self.cal_dbm_at_fullscale
        )

    # --- the signal path --------------------------------------------------------------------
    def add_noise(self, z: NDArray[np.complex64], rng: np.random.Generator) -> None:
        """Add thermal noise to ``z`` (full-scale units) in place.

        Drawing 4.8 million normal variates per simulated second dominated the renderer, so the
        noise is the sum of two disjoint slices of a fixed pool of Gaussian samples at random
        offsets, scaled by 1/√2 (Gaussian, white, and different for every chunk: the pool holds
        2²⁴ samples, so a chunk's pair of offsets practically never repeats).
        """
        pool = _noise_pool()
        flat = z.view(np.float32)
        n = flat.size
        if n > pool.size // 2:
            raise ValueError(f"chunks of at most {pool.size // 4} samples, got {n // 2}")
        # Two disjoint slices: overlapping ones would sum a sample with a shifted copy of itself,
        # which is coloured (comb-filtered) noise, not white.
        while True:
            a, b = rng.integers(0, pool.size - n, size=2)
            if abs(int(a) - int(b)) >= n:
                break
        a -= a % 2  # keep I and Q in their lanes
        b -= b % 2
        sigma = np.float32(math.sqrt(10.0 ** (self.noise_dbfs() / 10.0) / 2.0) / math.sqrt(2.0))
        if self._scratch.size < n:
            self._scratch = np.empty(n, np.float32)
        buf = self._scratch[:n]
        np.add(pool[a : a + n], pool[b : b + n], out=buf)
        buf *= sigma
        flat += buf

    def digitise(
        self, z: NDArray[np.complex64], out: NDArray[np.uint8] | None = None
    ) -> tuple[NDArray[np.uint8], bool]:
        """DC offset, I/Q imbalance and 8-bit quantisation of ``z``; returns (cu8, clipped).

        ``z`` is modified in place; ``out`` (2·N bytes) is filled when given.
        """
        pairs = z.view(np.float32).reshape(-1, 2)
        i, q = pairs[:, 0], pairs[:, 1]
        phi = math.radians(self.iq_phase_imbalance_deg)
        g = 10.0 ** (self.iq_gain_imbalance_db / 20.0)
        # Q' = g·(Q·cos φ − I·sin φ): the Q branch's mixer is off by φ and its gain by g.
        q *= np.float32(g * math.cos(phi))
        q -= np.float32(g * math.sin(phi)) * i
        i += np.float32(self.dc_offset.real)
        q += np.float32(self.dc_offset.imag)
        flat = pairs.reshape(-1)
        flat *= np.float32(127.5)
        flat += np.float32(127.5)
        clipped = bool(flat.max() > 255.49 or flat.min() < -0.49)
        np.clip(flat, 0.0, 255.0, out=flat)
        if out is None:
            out = np.empty(flat.size, np.uint8)
        np.rint(flat, out=flat)
        out[:] = flat
        return out, clipped


@lru_cache(maxsize=1)
def _noise_pool() -> NDArray[np.float32]:
    """A fixed pool of standard normal float32 samples shared by all front ends."""
    return np.random.default_rng(0x5AFE).standard_normal(NOISE_POOL_SIZE, dtype=np.float32)
