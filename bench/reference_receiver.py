"""A plain SNTX-1 receiver written for the detection benchmark, to set this project's beside.

What a careful engineer writes first, with nothing of ``receiver/`` but the CRC check:

- **detection**: 1 ms blocks through an FFT (1 kHz bins); each bin's noise floor is the median
  over the recording's second of blocks divided by ln 2 (the median of an exponential); the
  normalised powers are summed over 28 blocks and 5 bins (the frame's 28 ms, its tones ±2 kHz
  about the carrier), a Gamma(140) on noise; the threshold is that Gamma's tail at one false sum
  per channel-hour of sums (3.6 million starts × 25 bins: a conservative count, the sums
  overlap); the largest sum with none larger within ±30 ms and ±12 kHz is a frame;
- **decoding**: the raw samples mixed down by the bin's frequency, averaged to 32 kS/s, the
  energy of each 0.5 ms bit in either tone (non-coherent FSK), the first bit found by matching
  the 24 known bits within ±4 ms, hard decisions and the CRC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.stats
from numpy.typing import NDArray

from safetynet.sntx import header_bits, parse_payload

WINDOW_BLOCKS = 28
WINDOW_BINS = 5
SUPPRESS_BLOCKS = 30
SUPPRESS_BINS = 12
SUB_RATE_HZ = 32_000
BAND_LOW_HZ = 215_996_500.0  # channel 1 − 16 kHz
BAND_HIGH_HZ = 217_003_500.0  # channel 40 + 16 kHz


@dataclass(frozen=True)
class PlainPulse:
    start_s: float  # from the recording's first sample
    freq_hz: float  # as heard (the bin's centre, or the decoder's)
    bracelet_id: int | None
    status_byte: int | None


def _iq(cu8: NDArray[np.uint8]) -> NDArray[np.complex64]:
    x = (cu8.astype(np.float32) - 127.5) / 127.5
    return x.view(np.complex64)


def detect(
    cu8: NDArray[np.uint8], sample_rate_hz: float, center_hz: float, false_per_channel_hour: float
) -> list[PlainPulse]:
    """Every frame the plain receiver hears in a whole recording (cu8 bytes)."""
    n = round(sample_rate_hz / 1000)
    iq = _iq(cu8)
    n_blocks = iq.size // n
    freqs = center_hz + scipy.fft.fftfreq(n, 1 / sample_rate_hz)
    cols = np.flatnonzero((freqs >= BAND_LOW_HZ) & (freqs <= BAND_HIGH_HZ))
    cols = cols[np.argsort(freqs[cols])]
    dc = int(np.argmin(np.abs(freqs[cols] - center_hz)))
    power = np.empty((n_blocks, cols.size), np.float32)
    step = 1000
    for b0 in range(0, n_blocks, step):
        b1 = min(b0 + step, n_blocks)
        spectra = scipy.fft.fft(iq[b0 * n : b1 * n].reshape(-1, n), axis=1, workers=1)
        power[b0:b1] = np.abs(spectra[:, cols]) ** 2
    # The floor per bin and second, then normalised; the DC bin holds the dongle's leakage.
    for b0 in range(0, n_blocks, 1000):
        second = power[b0 : b0 + 1000]
        floor = np.median(second, axis=0) / math.log(2)
        second /= np.maximum(floor, 1e-30)[None, :]
    power[:, dc] = 1.0
    # Sums over 28 blocks × 5 bins (cumulative sums in float64).
    c = np.cumsum(np.vstack((np.zeros((1, cols.size)), power.astype(np.float64))), axis=0)
    over_time = c[WINDOW_BLOCKS:] - c[:-WINDOW_BLOCKS]
    c = np.cumsum(np.hstack((np.zeros((over_time.shape[0], 1)), over_time)), axis=1)
    sums = c[:, WINDOW_BINS:] - c[:, :-WINDOW_BINS]  # column j: bins j .. j + 4, centre j + 2
    cells = WINDOW_BLOCKS * WINDOW_BINS
    sums_per_channel_hour = 3.6e6 * 25
    threshold = float(scipy.stats.gamma.isf(false_per_channel_hour / sums_per_channel_hour, cells))
    rows, cols_hit = np.nonzero(sums > threshold)
    values = sums[rows, cols_hit]
    order = np.argsort(-values)
    taken: list[tuple[int, int]] = []
    for i in order:
        r, k = int(rows[i]), int(cols_hit[i])
        if any(abs(r - a) <= SUPPRESS_BLOCKS and abs(k - b) <= SUPPRESS_BINS for a, b in taken):
            continue
        taken.append((r, k))
    band_freqs = freqs[cols]
    out = []
    for r, k in sorted(taken):
        carrier_hz = float(band_freqs[k + WINDOW_BINS // 2])
        out.append(_decode(iq, r * n, carrier_hz - center_hz, sample_rate_hz, carrier_hz))
    return out


_HEADER_SIGNS = 2.0 * header_bits() - 1.0


def _decode(
    iq: NDArray[np.complex64], start: int, offset_hz: float, sample_rate_hz: float, freq_hz: float
) -> PlainPulse:
    """Non-coherent FSK decoding of the frame whose window starts at sample ``start``."""
    down = round(sample_rate_hz / SUB_RATE_HZ)
    lead = 4 * down * 32  # 4 ms
    first = max(start - lead, 0)
    raw = iq[first : start + lead + 30 * down * 32].astype(np.complex128)
    raw *= np.exp(-2j * np.pi * offset_hz / sample_rate_hz * (first + np.arange(raw.size)))
    y = raw[: raw.size // down * down].reshape(-1, down).mean(axis=1)
    w = 2 * np.pi * 2000 / SUB_RATE_HZ
    m = np.arange(y.size)
    c1 = np.concatenate(([0], np.cumsum(y * np.exp(-1j * w * m))))
    c0 = np.concatenate(([0], np.cumsum(y * np.exp(1j * w * m))))
    e1 = np.abs(c1[16:] - c1[:-16]) ** 2
    e0 = np.abs(c0[16:] - c0[:-16]) ** 2
    diff = e1 - e0
    last = diff.size - 56 * 16
    start_s = start / sample_rate_hz
    if last <= 0:
        return PlainPulse(start_s, freq_hz, None, None)
    metric = np.array([diff[s : s + 24 * 16 : 16] @ _HEADER_SIGNS for s in range(last)])
    s = int(np.argmax(metric))
    bits = (diff[s : s + 56 * 16 : 16] > 0).astype(np.uint8)
    start_s = (first + s * down) / sample_rate_hz
    if not np.array_equal(bits[:24], header_bits()):
        return PlainPulse(start_s, freq_hz, None, None)
    parsed = parse_payload(np.packbits(bits[24:]).tobytes())
    if parsed is None:
        return PlainPulse(start_s, freq_hz, None, None)
    return PlainPulse(start_s, freq_hz, parsed[0], parsed[1])
