"""Channelising the whole band at once: 1 ms blocks, 1 kHz bins, one FFT per block.

Every block of ``N = fs / 1000`` samples is transformed with one FFT (scipy.fft, rectangular
window: the bins of white noise stay independent, and a block's spectrum sums exactly to its
power). Only the bins from ch 1 − 16 kHz to ch 40 + 16 kHz matter; their powers are taken, in
ascending frequency, as ``S`` (blocks × band bins). The complex FFT output is kept as it is, for
the few frames that need demodulating. The DC bin's power is zeroed — the RTL-SDR's LO leakage
sits there, and no channel centre does.

The transform is FFTW's (through pyFFTW, the ``sdr`` extra) when it is installed: planned once
per process by measurement, it runs 1.8 times as fast as scipy.fft's pocketfft on these 2,400
points (``bench/receiver_detection.py`` prints both). Without it, scipy.fft does the same sums.

To keep the hot loop to the FFT and one pass on either side, nothing is scaled here: ``scale``
converts ``|FFT|²`` to full-scale power per bin (``(x − 127.5)/127.5`` for cu8, then ``/N``), and
the detector only ever uses ``S`` relative to its own noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
        offset = (np.asarray(index, dtype=float) + self.first_offset_bin) * BIN_HZ
        return float(offset) if offset.ndim == 0 else offset

    @property
    def dc_index(self) -> int:
        return -self.first_offset_bin


@dataclass
class Blocks:
    """One chunk's channelised blocks."""

    first_block: int
    spectrum: NDArray[np.complex64]  # blocks × band bins, raw FFT values, ascending frequency
    power: NDArray[np.float32]  # blocks × band bins, |FFT|², DC zeroed
    scale: float  # |FFT|² × scale = full-scale power per bin
    saturated: int = 0  # samples at a rail (cu8: I or Q at 255; complex: |I| or |Q| ≥ 0.999)

    @property
    def n_blocks(self) -> int:
        return int(self.power.shape[0])


def _fftw_plan(rows: int, n: int) -> Any | None:
    """An FFTW plan for ``rows`` forward transforms of ``n`` points, from its own aligned input
    buffer to its own output buffer (out of place: 10 % faster than in place here); None when
    pyFFTW is not installed. FFTW keeps what it measured (its wisdom) for the process, so only
    the first plan of a shape takes its half second."""
    try:
        import pyfftw
    except ImportError:
        return None
    source = pyfftw.empty_aligned((rows, n), np.complex64)
    target = pyfftw.empty_aligned((rows, n), np.complex64)
    return pyfftw.FFTW(
        source, target, axes=(1,), flags=("FFTW_MEASURE", "FFTW_DESTROY_INPUT"), threads=1
    )


class Transform:
    """Forward FFTs of up to ``rows`` blocks of ``n`` samples at a time, in reused buffers.

    Fill :attr:`input` (its first ``m`` rows), then :meth:`run` gives their spectra. FFTW runs
    the full batches; a short batch (the end of a recording, or a chunk cut short) goes to
    scipy.fft in place, rather than planning every length.
    """

    def __init__(self, rows: int, n: int, use_fftw: bool = True) -> None:
        self._plan = _fftw_plan(rows, n) if use_fftw else None
        if self._plan is None:
            self.input: NDArray[np.complex64] = np.empty((rows, n), np.complex64)
        else:
            self.input = self._plan.input_array
        self.rows = rows

    @property
    def backend(self) -> str:
        return "scipy.fft" if self._plan is None else "FFTW"

    def run(self, m: int) -> NDArray[np.complex64]:
        """The spectra of the first ``m`` rows of :attr:`input` (which it may overwrite)."""
        if self._plan is not None and m == self.rows:
            self._plan.execute()
            spectra: NDArray[np.complex64] = self._plan.output_array
            return spectra
        out: NDArray[np.complex64] = scipy.fft.fft(
            self.input[:m], axis=1, overwrite_x=True, workers=1
        )
        return out


class Channelizer:
    """Turns cu8 bytes (or full-scale complex samples) into :class:`Blocks`.

    The blocks are converted and transformed ``BATCH`` at a time in the :class:`Transform`'s
    reused buffers, so that the hot loop stays in the processor's cache; only the band's bins
    are copied out.
    """

    BATCH = 100

    def __init__(self, band: Band, use_fftw: bool = True) -> None:
        self.band = band
        n = band.n_fft
        self.transform = Transform(self.BATCH, n, use_fftw)
        lo = band.first_offset_bin
        hi = lo + band.n_bins - 1
        self._neg = slice(n + lo, n) if lo < 0 else slice(0, 0)
        self._pos = slice(max(lo, 0), hi + 1)
        self._n_neg = -lo if lo < 0 else 0
        self._squares = np.empty((self.BATCH, 2 * band.n_bins), np.float32)
        self.cu8_scale = 1.0 / (CU8_CENTER * n) ** 2
        self.iq_scale = 1.0 / n**2

    def _transform(self, m: int, band: NDArray[np.complex64], power: NDArray[np.float32]) -> None:
        """The band bins and their powers of the ``m`` blocks in the transform's input, while
        they are still in the cache."""
        spectrum = self.transform.run(m)
        band[:, : self._n_neg] = spectrum[:, self._neg]
        band[:, self._n_neg :] = spectrum[:, self._pos]
        floats = band.view(np.float32)
        squares = self._squares[: floats.shape[0]]
        np.multiply(floats, floats, out=squares)
        np.add(squares[:, 0::2], squares[:, 1::2], out=power)

    def _blocks(self, n_blocks: int) -> tuple[NDArray[np.complex64], NDArray[np.float32]]:
        return (
            np.empty((n_blocks, self.band.n_bins), np.complex64),
            np.empty((n_blocks, self.band.n_bins), np.float32),
        )

    def _finish(
        self,
        band: NDArray[np.complex64],
        power: NDArray[np.float32],
        first: int,
        scale: float,
        saturated: int,
    ) -> Blocks:
        power[:, self.band.dc_index] = 0.0
        return Blocks(first, band, power, scale, saturated)

    def from_cu8(self, cu8: NDArray[np.uint8], first_block: int) -> Blocks:
        """Blocks of the whole blocks in ``cu8``."""
        n = self.band.n_fft
        n_blocks = cu8.size // (2 * n)
        band, power = self._blocks(n_blocks)
        saturated = 0
        for b0 in range(0, n_blocks, self.BATCH):
            b1 = min(b0 + self.BATCH, n_blocks)
            flat = self.transform.input[: b1 - b0].view(np.float32).reshape(-1)
            # The bytes as they are: their 127.5 offset lands in the DC bin alone, and that
            # bin is never used (its power is zeroed, its amplitude never demodulated).
            raw = cu8[b0 * 2 * n : b1 * 2 * n]
            np.copyto(flat, raw, casting="unsafe")
            # Clipping, while the bytes are in the cache: a clipping signal drives I and Q to
            # both rails as it turns, so the top rail alone finds it (and is rarely reached).
            if raw.max() == 255:
                saturated += int(np.count_nonzero(raw == 255))
            self._transform(b1 - b0, band[b0:b1], power[b0:b1])
        return self._finish(band, power, first_block, self.cu8_scale, saturated)

    def from_iq(self, iq: NDArray[np.complex64], first_block: int) -> Blocks:
        """Blocks of full-scale complex samples (SigMF ci16_le, cf32_le)."""
        n = self.band.n_fft
        n_blocks = iq.size // n
        band, power = self._blocks(n_blocks)
        blocks = np.asarray(iq[: n_blocks * n].reshape(n_blocks, n), np.complex64)
        saturated = int(np.count_nonzero(np.abs(blocks.view(np.float32)) >= 0.999))
        for b0 in range(0, n_blocks, self.BATCH):
            b1 = min(b0 + self.BATCH, n_blocks)
            self.transform.input[: b1 - b0] = blocks[b0:b1]
            self._transform(b1 - b0, band[b0:b1], power[b0:b1])
        return self._finish(band, power, first_block, self.iq_scale, saturated)
