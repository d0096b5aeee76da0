"""Channelising the whole band at once: 1 ms blocks, 1 kHz bins, only the bins that matter.

Every block of ``N = fs / 1000`` samples is transformed with one FFT (scipy.fft, rectangular
window: the bins of white noise stay independent, and a block's spectrum sums exactly to its
power). The bins from ch 1 − 16 kHz to ch 40 + 16 kHz are kept, in ascending frequency, as the
complex spectrum ``X`` (for demodulation) and the power spectrum ``S = |X|² / N²`` (full-scale
units: a block's ``S`` summed over all bins is its mean ``|z|²``). The DC bin is zeroed — the
RTL-SDR's LO leakage sits there, and no channel centre does.

Samples arrive as cu8 bytes; the scale of ``(x − 127.5) / 127.5`` is folded into the FFT's
normalisation, so the conversion is one pass (subtract into a reused float buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from safetynet.reports import CHANNEL_1_HZ, CHANNEL_SPACING_HZ, N_CHANNELS
from safetynet.rtl import CU8_CENTER

BIN_HZ = 1000.0
MARGIN_HZ = 16_000.0  # beyond ±13 kHz of LO error, room for the signal's own width


@dataclass
class Band:
    """Which FFT bins are kept, for a sample rate and tuning."""

    sample_rate_hz: float
    center_hz: float
    n_fft: int = field(init=False)
    first_offset_bin: int = field(init=False)  # offset (in bins from the centre) of band[0]
    n_bins: int = field(init=False)

    def __post_init__(self) -> None:
        n = round(self.sample_rate_hz / BIN_HZ)
        if abs(n * BIN_HZ - self.sample_rate_hz) > 1e-6:
            raise ValueError(f"sample rate must be a multiple of 1 kHz, got {self.sample_rate_hz}")
        self.n_fft = n
        low = CHANNEL_1_HZ - MARGIN_HZ - self.center_hz
        high = CHANNEL_1_HZ + (N_CHANNELS - 1) * CHANNEL_SPACING_HZ + MARGIN_HZ - self.center_hz
        half = n // 2 - 1
        lo_bin = max(int(np.floor(low / BIN_HZ)), -half)
        hi_bin = min(int(np.ceil(high / BIN_HZ)), half)
        if lo_bin >= hi_bin:
            raise ValueError(f"tuning {self.center_hz} Hz does not cover the 216-217 MHz band")
        self.first_offset_bin = lo_bin
        self.n_bins = hi_bin - lo_bin + 1

    def offset_hz(self, index: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
        """Frequency offset from the tuning of band index ``index`` (Hz)."""
        return (np.asarray(index) + self.first_offset_bin) * BIN_HZ

    def index_of_offset(self, offset_hz: float) -> float:
        return offset_hz / BIN_HZ - self.first_offset_bin

    @property
    def dc_index(self) -> int:
        return -self.first_offset_bin


class Channelizer:
    """Turns cu8 bytes into complex band spectra ``X`` (blocks × bins) and powers ``S``."""

    def __init__(self, band: Band) -> None:
        self.band = band
        n = band.n_fft
        lo = band.first_offset_bin
        hi = lo + band.n_bins - 1
        # Band bins in FFT order: negative offsets live at the end of the FFT output.
        self._neg = slice(n + lo, n) if lo < 0 else slice(0, 0)
        self._pos = slice(max(lo, 0), hi + 1)
        self._scale = np.float32(1.0 / (CU8_CENTER * n))
        self._buf = np.empty(0, np.float32)

    def blocks(self, cu8: NDArray[np.uint8]) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
        """Spectra of the whole blocks in ``cu8`` (its length must be a multiple of 2·N)."""
        n = self.band.n_fft
        n_blocks = cu8.size // (2 * n)
        if self._buf.size < cu8.size:
            self._buf = np.empty(cu8.size, np.float32)
        flat = self._buf[: n_blocks * 2 * n]
        np.subtract(cu8[: flat.size], np.float32(CU8_CENTER), out=flat, dtype=np.float32)
        z = flat.view(np.complex64).reshape(n_blocks, n)
        spectrum = scipy.fft.fft(z, axis=1, overwrite_x=True, workers=1)
        band = np.concatenate((spectrum[:, self._neg], spectrum[:, self._pos]), axis=1)
        band *= self._scale
        band[:, self.band.dc_index] = 0
        power = np.empty(band.shape, np.float32)
        np.multiply(band.real, band.real, out=power)
        power += band.imag * band.imag
        return band, power

    def blocks_complex(self, z: NDArray[np.complex64]) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
        """The same for complex samples already normalised to full scale (SigMF ci16, cf32)."""
        n = self.band.n_fft
        n_blocks = z.size // n
        spectrum = scipy.fft.fft(z[: n_blocks * n].reshape(n_blocks, n), axis=1, workers=1)
        band = np.concatenate((spectrum[:, self._neg], spectrum[:, self._pos]), axis=1)
        band *= np.float32(1.0 / n)
        band[:, self.band.dc_index] = 0
        power = (band.real * band.real + band.imag * band.imag).astype(np.float32)
        return band.astype(np.complex64), power
