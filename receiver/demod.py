"""Measuring and decoding one detected frame from the band spectra around it.

The detector gives a carrier bin and a window start to the nearest 1 ms. From the complex band
spectra ``X`` of the blocks around it, the 32 bins centred on the carrier are taken back to the
time domain (a 32-point inverse FFT per block: the channel mixed down by the bin's frequency and
decimated to 32 kS/s, 16 samples per bit, phase-continuous across blocks because the bin
frequencies are whole kHz). Then:

1. **Carrier**: the two tones sit at ``δ ± 2 kHz``; ``δ`` maximises the summed power of the pair
   in a zero-padded spectrum of the burst.
2. **Timing**: with the tones brought to ±2 kHz, per-bit energies in each tone come from running
   sums (the optimal non-coherent binary FSK detector); the offset that best matches the known
   24-bit preamble and sync word gives the first bit's start, refined between samples.
3. **Bits**: the larger tone energy per bit; the frame decodes only when the 24 known bits are
   all right, the CRC checks, the ID is not reserved, and the bits are confident enough — so
   noise does not decode into a plausible ID.
4. **Frequency**: with the decoded (or decided) bits, the modulation is stripped and the residual
   carrier measured from the phase progression.
5. **Power**: from the power spectra of the blocks wholly inside the constant-envelope part,
   summed over the 17 bins within ±8 kHz of the carrier, less the noise floor; divided by the
   share of a frame's energy that falls in those bins. SNR is that power over the noise in 10 kHz.
6. **Collision**: another burst overlapping in time and channel shows as a step in the power
   across the body or energy just before or after it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numpy.typing import NDArray

from receiver.channelize import BIN_HZ
from safetynet.sntx import (
    BIT_RATE_BPS,
    FRAME_BITS,
    HEADER_BITS,
    TONE_DEVIATION_HZ,
    header_bits,
    parse_payload,
)

SUB_BINS = 32
SUB_RATE_HZ = SUB_BINS * BIN_HZ  # 32 kS/s
SAMPLES_PER_BIT = int(SUB_RATE_HZ / BIT_RATE_BPS)  # 16
LEAD_BLOCKS = 6  # the detector's window start is good to a few ms on weak frames
SPAN_BLOCKS = 42
SEARCH_SAMPLES = 6 * SUB_BINS  # ±6 ms around it
POWER_HALF_BINS = 8  # ±8 kHz: the frame, and nothing of a neighbour 25 kHz away
MIN_MEAN_CONFIDENCE = 0.45  # mean |E1−E0|/(E1+E0) over payload bits for a decode
COLLISION_STEP_DB = 3.0
SNR_NOISE_BANDWIDTH_HZ = 10_000.0  # SNR is the frame's power over the noise in this bandwidth

_HEADER_SIGNS = 2.0 * header_bits().astype(np.float64) - 1.0


@dataclass(frozen=True)
class Measurement:
    start_sample: float  # absolute sample index of the first bit's start
    freq_offset_hz: float  # carrier offset from the centre of the detected carrier bin
    power_fs: float  # mean power over the constant envelope, full-scale units, noise removed
    noise_fs_per_hz: float  # noise density around it, full-scale units per Hz
    bracelet_id: int | None
    status_byte: int | None
    collision: bool
    confidence: float

    @property
    def snr10k_db(self) -> float:
        return 10.0 * math.log10(
            max(self.power_fs, 1e-30) / (self.noise_fs_per_hz * SNR_NOISE_BANDWIDTH_HZ)
        )


def _tone_phasors() -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    n = np.arange(SPAN_BLOCKS * SUB_BINS)
    w = 2 * np.pi * TONE_DEVIATION_HZ / SUB_RATE_HZ
    return np.exp(-1j * w * n), np.exp(1j * w * n)


_DOWN_ONE, _DOWN_ZERO = _tone_phasors()  # multiply to bring the "1" (or "0") tone to 0 Hz
# y[m] = Σ_j sub[j] · exp(2πi (j − 16) m / 32): column j of ``sub`` is the bin at offset j − 16.
_IDFT = np.exp(
    2j * np.pi * np.outer(np.arange(SUB_BINS) - SUB_BINS // 2, np.arange(SUB_BINS)) / SUB_BINS
)


def measure(
    sub: NDArray[np.complex128],
    powers: NDArray[np.float32],
    floor: NDArray[np.float64],
    first_block: int,
    block_samples: int,
    capture_fraction: float,
) -> Measurement | None:
    """Measure and decode the frame whose window starts at ``first_block + LEAD_BLOCKS``.

    ``sub`` holds, for the ``SPAN_BLOCKS`` blocks from absolute block ``first_block``, the 32
    complex bins from the carrier bin − 16 up (full-scale amplitude); ``powers`` the same
    blocks' powers of the bins within ±``POWER_HALF_BINS`` of the carrier and ``floor`` those
    bins' noise (full-scale power per bin); ``block_samples`` is N.
    """
    # Inverse DFT per block (offset 0 is the carrier bin): a 32×32 matrix product.
    blocks = sub @ _IDFT
    delta_hz = _carrier(blocks.reshape(-1))
    # Mix δ down: exp(−2πiδn/fs) for n = 32a + b is a product of two short exponentials.
    w = -2j * np.pi * delta_hz / SUB_RATE_HZ
    blocks *= np.exp(w * SUB_BINS * np.arange(blocks.shape[0]))[:, None]
    blocks *= np.exp(w * np.arange(SUB_BINS))[None, :]
    y = blocks.reshape(-1)
    c1 = np.concatenate(([0], np.cumsum(y * _DOWN_ONE[: y.size])))
    c0 = np.concatenate(([0], np.cumsum(y * _DOWN_ZERO[: y.size])))
    # Energy of a bit starting at each sample, in either tone; their difference.
    d1 = np.abs(c1[SAMPLES_PER_BIT:] - c1[:-SAMPLES_PER_BIT]) ** 2
    d0 = np.abs(c0[SAMPLES_PER_BIT:] - c0[:-SAMPLES_PER_BIT]) ** 2

    # Search the first bit's start around the detector's window start: the header's bits
    # taken every 16 samples from each candidate start, against their known values.
    nominal = LEAD_BLOCKS * SUB_BINS
    first = max(0, nominal - SEARCH_SAMPLES)
    last = min(y.size - FRAME_BITS * SAMPLES_PER_BIT, nominal + SEARCH_SAMPLES)
    if last <= first:
        return None
    # per_bit[s, b] = diff[first + s + 16·b], as a read-only strided view: its last element,
    # last − 1 + 16·23, lies within diff (size y.size − 15), since last ≤ y.size − 16·56; and
    # np.ndarray refuses a view that would reach past its buffer.
    diff = d1 - d0
    per_bit = np.ndarray(
        (last - first, HEADER_BITS), diff.dtype, diff, offset=first * diff.itemsize,
        strides=(diff.itemsize, SAMPLES_PER_BIT * diff.itemsize),
    )  # fmt: skip
    per_bit.flags.writeable = False
    metric = per_bit @ _HEADER_SIGNS
    best = int(np.argmax(metric))
    frac = 0.0
    if 0 < best < metric.size - 1:
        a, b, c = metric[best - 1], metric[best], metric[best + 1]
        denom = a - 2 * b + c
        frac = float(0.5 * (a - c) / denom) if denom < 0 else 0.0
    start = first + best

    bit_starts = start + SAMPLES_PER_BIT * np.arange(FRAME_BITS)
    b1, b0 = d1[bit_starts], d0[bit_starts]
    bits = (b1 > b0).astype(np.uint8)
    confidence = np.abs(b1 - b0) / np.maximum(b1 + b0, 1e-30)
    payload_conf = float(confidence[HEADER_BITS:].mean())

    bracelet_id: int | None = None
    status: int | None = None
    if np.array_equal(bits[:HEADER_BITS], header_bits()) and payload_conf >= MIN_MEAN_CONFIDENCE:
        parsed = parse_payload(np.packbits(bits[HEADER_BITS:]).tobytes())
        if parsed is not None:
            bracelet_id, status = parsed

    # Residual carrier with the modulation stripped (decided bits are right where it matters).
    residual_hz = _residual(y[start : start + FRAME_BITS * SAMPLES_PER_BIT], bits)
    freq_offset = delta_hz + residual_hz  # from the carrier bin's centre

    start_sub = start + frac
    start_sample = first_block * block_samples + start_sub * block_samples / SUB_BINS

    power, noise_per_bin, collision = _power(powers, floor, start_sub / SUB_BINS)
    return Measurement(
        start_sample=start_sample,
        freq_offset_hz=freq_offset,
        power_fs=power / capture_fraction,
        noise_fs_per_hz=noise_per_bin / BIN_HZ,
        bracelet_id=bracelet_id,
        status_byte=status,
        collision=collision,
        confidence=payload_conf,
    )


def _carrier(y: NDArray[np.complex128]) -> float:
    """δ (Hz) maximising the power at δ − 2 kHz plus δ + 2 kHz, |δ| ≤ 4.5 kHz."""
    # Summing pairs of samples (32 → 16 kS/s) keeps ±8 kHz, all the tones can reach, for half
    # the transform.
    n_fft = 1024
    decimated = y[: (y.size // 2) * 2].reshape(-1, 2).sum(axis=1)
    spec = np.abs(scipy.fft.fft(decimated, n_fft)) ** 2
    res = SUB_RATE_HZ / 2 / n_fft
    shift = round(TONE_DEVIATION_HZ / res)
    span = int(4500 / res)  # the detector may pick a side peak 4 kHz off (one tone aligned)
    deltas = np.arange(-span, span + 1)
    score = spec[(deltas - shift) % n_fft] + spec[(deltas + shift) % n_fft]
    # Smooth over the tones' width (each bit is 0.5 ms long: about ±1 kHz of main lobe): a
    # moving sum of ``width`` points centred as ``np.convolve(..., mode="same")`` centres it.
    width = int(400 / res)
    sums = np.concatenate(([0.0], np.cumsum(score)))
    ends = np.clip(np.arange(score.size) + (width - 1) // 2 + 1, 0, score.size)
    smooth = sums[ends] - sums[np.clip(ends - width, 0, score.size)]
    return float(deltas[int(np.argmax(smooth))] * res)


_BIT_TURN = np.exp(-1j * 2 * np.pi * TONE_DEVIATION_HZ / SUB_RATE_HZ * np.arange(SAMPLES_PER_BIT))


def _residual(y: NDArray[np.complex128], bits: NDArray[np.uint8]) -> float:
    """Carrier frequency left in ``y`` (one frame, first bit at 0) once the FSK is removed."""
    # The FSK phase, taken off: within bit b it turns by ±step a sample from where bit b − 1
    # left it, so it is a per-bit start phase times a 16-sample turn (or its conjugate).
    symbols = 2.0 * bits - 1.0
    step = 2 * np.pi * TONE_DEVIATION_HZ / SUB_RATE_HZ
    start_phase = np.concatenate(([0.0], np.cumsum(symbols[:-1] * step * SAMPLES_PER_BIT)))
    turn = np.where(bits[:, None] == 1, _BIT_TURN[None, :], np.conj(_BIT_TURN)[None, :])
    clean = y.reshape(-1, SAMPLES_PER_BIT) * turn * np.exp(-1j * start_phase)[:, None]
    flat = clean.reshape(-1)
    # Skip a few samples at each bit edge, where the block-wise filtering smears the tones.
    lag = flat[SAMPLES_PER_BIT:] * np.conj(flat[:-SAMPLES_PER_BIT])
    return float(np.angle(lag.sum()) * SUB_RATE_HZ / (2 * np.pi * SAMPLES_PER_BIT))


def _power(
    cols: NDArray[np.float32], floor: NDArray[np.float64], start_blocks: float
) -> tuple[float, float, bool]:
    """(signal power, mean noise per bin, collision) from the frame's bins' power spectra."""
    live = cols.any(axis=0)  # the zeroed DC bin, if it falls here, holds neither signal nor noise
    noise = floor[live]
    if noise.size == 0:
        return 0.0, 1e-30, False
    noise_block = float(noise.sum())
    per_block = cols.sum(axis=1, dtype=np.float64) - noise_block
    body_start = math.ceil(start_blocks + 0.3)
    body_end = math.floor(start_blocks + FRAME_BITS / BIT_RATE_BPS * 1000 - 0.3)
    body = per_block[body_start:body_end]
    n = body.size
    if n < 3:
        return 0.0, float(noise.mean()), False
    power = float(body.mean())
    third = n // 3
    means = np.add.reduceat(body, [0, third, 2 * third]) / (third, third, n - 2 * third)
    strong = power > 10 * noise_block / math.sqrt(n)
    step = strong and float(means.max()) > max(float(means.min()), 1e-30) * 10 ** (
        COLLISION_STEP_DB / 10
    )
    outside = np.concatenate(
        (
            per_block[max(body_start - 3, 0) : max(body_start - 2, 0)],
            per_block[body_end + 2 : body_end + 3],
        )
    )
    spill = strong and outside.size > 0 and float(outside.max()) > 0.3 * power
    return power, float(noise.mean()), bool(step or spill)


@functools.cache
def body_capture_fraction(sample_rate_hz: float, n_frames: int = 32, seed: int = 2) -> float:
    """Share of a frame's constant-envelope power that lands within ±8 bins of its carrier bin.

    Computed the way :func:`_power` measures (whole 1 ms blocks inside the body), averaged over
    payloads, carrier offsets within a bin and block alignments. Computed once per sample rate.
    """
    from receiver.detect import cpfsk_baseband

    rng = np.random.default_rng(seed)
    n = round(sample_rate_hz / BIN_HZ)
    shares = []
    for _ in range(n_frames):
        bits = np.unpackbits(np.array([0xAA, 0x2D, 0xD4, *rng.integers(0, 256, 4)], dtype=np.uint8))
        lead = float(rng.uniform(0.001, 0.002))
        z = cpfsk_baseband(bits, sample_rate_hz, lead_s=lead)
        offset = float(rng.uniform(-0.5, 0.5)) * BIN_HZ
        z = z * np.exp(2j * np.pi * offset * np.arange(z.size) / sample_rate_hz)
        blocks = z[: (z.size // n) * n].reshape(-1, n)
        first = math.ceil(lead * 1000 + 0.3)
        last = math.floor(lead * 1000 + 28 - 0.3)
        spec = np.fft.fftshift(np.abs(np.fft.fft(blocks[first:last], axis=1)) ** 2 / n**2, axes=1)
        centre = n // 2
        inside = spec[:, centre - POWER_HALF_BINS : centre + POWER_HALF_BINS + 1].sum(axis=1)
        shares.append(float(inside.mean()))  # the body has |z| = 1: total power 1 per block
    return float(np.mean(shares))
