"""Measuring and decoding one detected frame from the band spectra around it.

The detector gives a carrier bin and a window start to the nearest 4 ms. From the complex band
spectra ``X`` of the blocks around it, the 32 bins centred on the carrier are taken back to the
time domain (a 32-point inverse FFT per block: the channel mixed down by the bin's frequency and
decimated to 32 kS/s, 16 samples per bit, phase-continuous across blocks because the bin
frequencies are whole kHz). Then:

1. **Header search** (:func:`search_header`): SNTX-1's tones sit ±2 kHz from the carrier and
   each bit lasts 0.5 ms, so every bit turns either tone's phase by exactly 2π (modulation index
   2): the phase at every bit's start is the carrier's own, whatever the data. Each bit's matched
   tone filter (a 16-sample correlation with the tone) therefore adds up *coherently* across the
   24 known bits of the preamble and sync word. For every start within ±5 ms and every carrier
   within ±1.5 kHz of the bin (three coarse steps, each resolved to 31 Hz by a 64-point FFT over
   the 24 bits), ``T = |Σ_b r_b(s) e^{−2πi f b/2000}|² / (384 σ²)`` is, on noise, Exp(1); its
   maximum is the frame's detection statistic and gives start, carrier and phase.
2. **Timing**: the coherent sum's amplitude against the start is a triangle whose apex is the
   first bit's start (a bit's filter one sample early or late takes one sample of a neighbouring
   bit's other tone, either side alike); the apex is placed between samples where its two sides'
   lines meet. (The energy-difference metric this replaced peaked half a sample, 15.6 µs, late:
   its parabola was fitted to a boxcar's energies.)
3. **Bits**, coherently (:func:`decode_bits`): with the carrier's phase and frequency from the
   header (refined on the decided bits, twice), each payload bit is the tone with the larger
   in-phase output (3 dB better than comparing tone energies); the frame decodes when at most
   two of the 24 known bits are wrong, the payload's decisions stand out as clearly as six tenths
   of the header's level (else the phase was lost and the bits are noise's), and the CRC checks,
   or checks once the least reliable payload bit is flipped (CRC-8 0x07 has Hamming distance 4
   here: one flip never turns a frame with two errors into another valid frame). Reserved IDs
   never decode.
4. **Frequency**: with the decided bits, the modulation is stripped and the residual carrier
   measured from the phase progression.
5. **Power**: from the power spectra of the blocks wholly inside the constant-envelope part,
   summed over the 17 bins within ±8 kHz of the carrier, less the noise floor; divided by the
   share of a frame's energy that falls in those bins. SNR is that power over the noise in 10 kHz.
6. **Collision**: another burst overlapping in time and channel shows as a step in the power
   across the body or energy just before or after it.

:func:`search_known` is the header search with every bit known (a bracelet already heard: its ID,
and its status with the frame counter stepped on): all 56 bits add coherently, 3.7 dB more than
the header alone, over the narrow window its cadence allows.
"""

from __future__ import annotations

import cmath
import functools
import math
from dataclasses import dataclass
from typing import TypeVar

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
SEARCH_SAMPLES = 5 * SUB_BINS  # ±5 ms around it
POWER_HALF_BINS = 8  # ±8 kHz: the frame, and nothing of a neighbour 25 kHz away
COARSE_OFFSETS_HZ = (0.0, -1000.0, 1000.0)  # carriers within ±1.5 kHz of the bin's centre
HEADER_FFT = 64  # over the 24 header bits at 2 kHz: 31.25 Hz steps
HEADER_COARSE_STEP = 2  # samples between the starts the header search tries first
FINE_HALF_HZ = 500.0  # each coarse step keeps the FFT's ±500 Hz (its edges lose to the filters)
KNOWN_FFT = 128  # over the 56 bits of a known frame: 15.6 Hz steps
KNOWN_COARSE_STEP = 4  # samples between the starts a known frame's search tries first
MAX_HEADER_ERRORS = 2
ENERGY_CAP = 2.0  # a whole-frame search counts payload energy up to this times the statistic
MIN_PAYLOAD_MARGIN = 0.6  # mean |in-phase difference| of the payload's bits, of the header's level
# No ID is read below this header statistic (37 dB-Hz, 4.5 dB below where nine frames in ten
# decode; under 2 % of frames decode there): 3 payload errors and the flip below make another
# valid frame, and so weak a frame has them.
MIN_DECODE_STATISTIC = 60.0
COLLISION_STEP_DB = 3.0
SNR_NOISE_BANDWIDTH_HZ = 10_000.0  # SNR is the frame's power over the noise in this bandwidth

_Scalar = TypeVar("_Scalar", bound=np.generic)
_BIT_INDEX = np.arange(FRAME_BITS)
_HEADER = header_bits().astype(bool)
_OMEGA = 2 * np.pi * TONE_DEVIATION_HZ / SUB_RATE_HZ  # the "1" tone's turn per sample
_ALTERNATE = SUB_BINS * (-1.0) ** np.arange(SUB_BINS)  # see baseband


@dataclass(frozen=True)
class Measurement:
    start_sample: float  # absolute sample index of the first bit's start
    freq_offset_hz: float  # carrier offset from the centre of the detected carrier bin
    power_fs: float  # mean power over the constant envelope, full-scale units, noise removed
    noise_fs_per_hz: float  # noise density around it, full-scale units per Hz
    bracelet_id: int | None
    status_byte: int | None
    collision: bool
    statistic: float  # the coherent search's maximum (Exp(1) per cell on noise)
    score: float = 0.0  # what its cell was chosen by (Hit.score)

    @property
    def snr10k_db(self) -> float:
        return 10.0 * math.log10(
            max(self.power_fs, 1e-30) / (self.noise_fs_per_hz * SNR_NOISE_BANDWIDTH_HZ)
        )


@dataclass(frozen=True)
class Hit:
    """The best cell of a coherent search: its statistic, where and at what carrier."""

    statistic: float
    start: int  # sample of ``y`` where the best bit filter starts
    start_frac: float  # the first bit's start, between samples
    freq_hz: float  # carrier offset (Hz) from the frequency ``y`` was mixed down from
    n_bits: int = HEADER_BITS  # bits summed coherently
    score: float = 0.0  # what the cell was chosen by: the statistic, or with the frame's energy


def _turn(n: int, freq_hz: float) -> NDArray[np.complex128]:
    """``exp(−2πi f k / 32 kHz)`` for ``k < n``: mixes ``f`` down to 0 Hz."""
    if freq_hz in _FIXED_TURNS:
        return _fixed_turn(n, freq_hz)
    out: NDArray[np.complex128] = np.exp(-2j * np.pi * freq_hz / SUB_RATE_HZ * np.arange(n))
    return out


_FIXED_TURNS = frozenset((TONE_DEVIATION_HZ, *COARSE_OFFSETS_HZ))


@functools.lru_cache(maxsize=64)
def _fixed_turn(n: int, freq_hz: float) -> NDArray[np.complex128]:
    out: NDArray[np.complex128] = np.exp(-2j * np.pi * freq_hz / SUB_RATE_HZ * np.arange(n))
    out.flags.writeable = False
    return out


def tone_filters(
    y: NDArray[np.complex128],
) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    """Every bit's matched filters: ``b1[s] = Σ_{k<16} y[s+k]·e^{−iωk}`` for the "1" tone and
    ``b0`` for the "0" tone (ω: 2 kHz at 32 kS/s), for every start ``s`` (size − 15 of them).

    Referenced to the bit's own start, so for a frame starting at ``s0`` the right tone's output
    of bit ``b`` is the same phasor for every ``b`` (the modulation index is 2).
    """
    n = y.size
    turn = _turn(n, TONE_DEVIATION_HZ)
    c1 = np.empty(n + 1, np.complex128)
    c0 = np.empty(n + 1, np.complex128)
    c1[0] = c0[0] = 0
    np.cumsum(y * turn, out=c1[1:])
    np.cumsum(y * np.conj(turn), out=c0[1:])
    m = n - SAMPLES_PER_BIT + 1
    b1 = (c1[SAMPLES_PER_BIT:] - c1[:m]) * np.conj(turn[:m])
    b0 = (c0[SAMPLES_PER_BIT:] - c0[:m]) * turn[:m]
    return b1, b0


def _per_bit(
    b: NDArray[_Scalar], first: int, count: int, n_bits: int, step: int = 1
) -> NDArray[_Scalar]:
    """Read-only view ``v[i, j] = b[first + step·i + 16·j]`` (``count`` starts, ``n_bits`` bits).

    np.ndarray refuses a view that would reach past its buffer, so a caller's range error fails
    loudly instead of reading stray memory.
    """
    view: NDArray[_Scalar] = np.ndarray(
        (count, n_bits), b.dtype, b, offset=first * b.itemsize,
        strides=(step * b.itemsize, SAMPLES_PER_BIT * b.itemsize),
    )  # fmt: skip
    view.flags.writeable = False
    return view


def _frequency_columns(n_fft: int, half_hz: float) -> NDArray[np.int64]:
    """FFT columns (bit-rate sampling) within ±``half_hz``, as signed offsets."""
    k = int(half_hz * n_fft / BIT_RATE_BPS)
    return np.arange(-k, k + 1)


def _coherent(
    b1: NDArray[np.complex128],
    b0: NDArray[np.complex128],
    bits: NDArray[np.bool_],
    first: int,
    count: int,
    n_fft: int,
    half_hz: float,
    cell_var: float,
    step: int = 1,
    energy_bits: int = 0,
) -> Hit:
    """The best start in ``first + step·i`` (``i < count``) and carrier within ±``half_hz`` of
    ``Σ_b r_b e^{−2πi f t_b}``, ``r_b`` the filter of bit ``b``'s tone, normalised by its
    noise variance ``len(bits)·cell_var`` (Exp(1) per cell on noise).

    With ``energy_bits``, the start is chosen by that statistic ``T`` plus the energy of the
    ``energy_bits`` bits that follow, both tones (``E = Σ (|b1|² + |b0|²)/cell_var −
    2·energy_bits``: 0 on noise on average), ``T + min(E, 2T)``: the frame's whole length, where
    a start inside the frame lines up some of the known bits with payload bits of the same tone
    and finds a share of the statistic, but less of the energy."""
    n_bits = bits.size
    v = np.where(
        bits, _per_bit(b1, first, count, n_bits, step), _per_bit(b0, first, count, n_bits, step)
    )
    spectra = scipy.fft.fft(v, n_fft, axis=1, workers=1)
    cols = _frequency_columns(n_fft, half_hz) % n_fft
    k = cols.size // 2  # cols: −k..k, the negative ones at the end of the FFT's
    kept = np.concatenate((spectra[:, n_fft - k :], spectra[:, : k + 1]), axis=1)
    power = kept.real**2 + kept.imag**2
    scale = 1.0 / (n_bits * cell_var)
    if energy_bits:
        energy = (b1.real**2 + b1.imag**2) + (b0.real**2 + b0.imag**2)
        after = _per_bit(energy, first + n_bits * SAMPLES_PER_BIT, count, energy_bits, step)
        statistic = power.max(axis=1) * scale
        excess = after.sum(axis=1) / cell_var - 2.0 * energy_bits
        # A frame's payload holds 4/3 of what its header's statistic does; energy beyond twice
        # that is another burst's (a strong neighbour's leakage, a spur), not this frame's.
        score = statistic + np.minimum(excess, ENERGY_CAP * statistic)
        i = int(np.argmax(score))
        j = int(np.argmax(power[i]))
        best_score = float(score[i])
    else:
        flat = int(np.argmax(power))
        i, j = divmod(flat, cols.size)
        best_score = float(power[i, j] * scale)
    # Between FFT columns: a parabola through the powers (the FFT's main lobe is smooth).
    fine = 0.0
    if 0 < j < cols.size - 1:
        a, c, e = power[i, j - 1], power[i, j], power[i, j + 1]
        denom = a - 2 * c + e
        fine = float(0.5 * (a - e) / denom) if denom < 0 else 0.0
    freq = (
        (float(cols[j] if cols[j] < n_fft // 2 else cols[j] - n_fft) + fine) * BIT_RATE_BPS / n_fft
    )
    # Between samples: the amplitude falls off either side of the best start as a triangle
    # (the filters are boxcars); its apex lies where the two sides' lines meet.
    amplitude = np.sqrt(power[:, j])
    frac = 0.0
    if step == 1 and 0 < i < count - 1:
        a, c, e = amplitude[i - 1], amplitude[i], amplitude[i + 1]
        low = min(a, e)
        if c > low:
            frac = float(np.clip((e - a) / (2 * (c - low)), -0.5, 0.5))
    start = first + step * i
    return Hit(
        statistic=float(power[i, j] * scale),
        start=start,
        start_frac=start + frac,
        freq_hz=freq,
        n_bits=n_bits,
        score=best_score,
    )


def search_header(
    y: NDArray[np.complex128], noise_var: float, first: int, count: int, whole_frame: bool = False
) -> Hit:
    """The coherent header search over starts ``first .. first + count − 1`` of ``y`` and
    carriers within ±1.5 kHz of 0 Hz (every second start, then the best one's neighbours);
    ``noise_var`` is the noise power per sample of ``y``. With ``whole_frame``, the cell is
    chosen with the payload's energy too (:func:`_coherent`'s ``energy_bits``); ``y`` must then
    hold a whole frame from every start."""
    best: tuple[Hit, float, NDArray[np.complex128], NDArray[np.complex128]] | None = None
    cell = SAMPLES_PER_BIT * noise_var
    step = HEADER_COARSE_STEP
    payload = FRAME_BITS - HEADER_BITS if whole_frame else 0
    for coarse in COARSE_OFFSETS_HZ:
        b1, b0 = tone_filters(y * _turn(y.size, coarse))
        n = (count + step - 1) // step
        hit = _coherent(
            b1, b0, _HEADER, first, n, HEADER_FFT, FINE_HALF_HZ, cell, step=step,
            energy_bits=payload,
        )  # fmt: skip
        if best is None or hit.score > best[0].score:
            best = (hit, coarse, b1, b0)
    assert best is not None
    hit, coarse, b1, b0 = best
    # Every start near the best of every second one.
    lo = max(first, hit.start - step)
    hi = min(first + count, hit.start + step + 1)
    hit = _coherent(
        b1, b0, _HEADER, lo, hi - lo, HEADER_FFT, FINE_HALF_HZ, cell, energy_bits=payload
    )
    return Hit(
        hit.statistic, hit.start, hit.start_frac, hit.freq_hz + coarse, hit.n_bits, hit.score
    )


def search_known(
    y: NDArray[np.complex128],
    bits: NDArray[np.uint8],
    noise_var: float,
    first: int,
    count: int,
    half_hz: float,
) -> Hit:
    """The coherent search for a known frame (all 56 ``bits``) over starts ``first .. first +
    count − 1`` and carriers within ±``half_hz`` of 0 Hz: every fourth start first (an eighth of
    a bit off costs under 0.3 dB), then the best one's neighbours."""
    b1, b0 = tone_filters(y)
    known = bits.astype(bool)
    cell = SAMPLES_PER_BIT * noise_var
    step = KNOWN_COARSE_STEP
    coarse = _coherent(
        b1, b0, known, first, (count + step - 1) // step, KNOWN_FFT, half_hz, cell, step=step
    )
    lo = max(first, coarse.start - step)
    hi = min(first + count, coarse.start + step + 1)
    return _coherent(b1, b0, known, lo, hi - lo, KNOWN_FFT, half_hz, cell)


def decode_bits(
    z1: NDArray[np.complex128], z0: NDArray[np.complex128]
) -> tuple[NDArray[np.uint8], int | None, int | None]:
    """Coherent decisions on one frame's 56 bits from their tone filters ``z1``, ``z0`` (carrier
    mixed down, first bit at index 0): (bits, bracelet ID, status byte), the last two None unless
    the frame decodes."""
    # (Small arrays: every numpy call costs more than its arithmetic, so few of them.)
    dz = z1 - z0  # a bit is "1" where Re(dz·conj(ref)) > 0, i.e. its "1" tone is in phase
    weights = np.where(_HEADER, z1[:HEADER_BITS], z0[:HEADER_BITS])
    known = _BIT_INDEX[:HEADER_BITS]
    ref = np.ones(FRAME_BITS, np.complex128)
    ones = np.zeros(FRAME_BITS, bool)
    for _ in range(3):
        # The carrier's phase and its drift per bit, from the bits decided so far.
        drift = (
            cmath.phase(complex(np.vdot(weights[:-1], weights[1:]))) if weights.size > 1 else 0.0
        )
        reference = np.exp(1j * drift * _BIT_INDEX)
        phase = complex(np.vdot(reference[known], weights))
        ref = reference * (phase / max(abs(phase), 1e-30))
        ones = (dz * ref.conj()).real > 0
        chosen = np.where(ones, z1, z0)
        known = np.flatnonzero(chosen)  # (a bit past a recording's end holds nothing)
        weights = chosen[known]
    bits = ones.astype(np.uint8)
    header_errors = int(np.count_nonzero(ones[:HEADER_BITS] != _HEADER))
    if header_errors > MAX_HEADER_ERRORS:
        return bits, None, None
    # The payload's decisions must stand out as the header's bits do: where the carrier's phase
    # was lost (a weak frame's drift misjudged), they are noise's, and a CRC-8 passes one such
    # payload in 256 (two in 256 with the flip below).
    conj_ref = ref[:HEADER_BITS].conj()
    header_u = np.where(_HEADER, z1[:HEADER_BITS] * conj_ref, z0[:HEADER_BITS] * conj_ref).real
    amplitude = float(header_u.sum()) / HEADER_BITS
    spread = np.abs((dz[HEADER_BITS:] * ref[HEADER_BITS:].conj()).real)
    margin = float(spread.sum()) / (FRAME_BITS - HEADER_BITS)
    if margin < MIN_PAYLOAD_MARGIN * amplitude:
        return bits, None, None
    payload = bits[HEADER_BITS:].copy()
    parsed = parse_payload(np.packbits(payload).tobytes())
    if parsed is None:
        weakest = int(np.argmin(spread))
        payload[weakest] ^= 1
        parsed = parse_payload(np.packbits(payload).tobytes())
    if parsed is None:
        return bits, None, None
    return np.concatenate((_HEADER.astype(np.uint8), payload)), parsed[0], parsed[1]


def baseband(sub: NDArray[np.complex128]) -> NDArray[np.complex128]:
    """The 32 kS/s samples of blocks of 32 bins around a carrier (``sub``: blocks × 32, the
    carrier bin at column 16): an inverse DFT per block, ``y[m] = Σ_j sub[j]·e^{2πi(j−16)m/32}``,
    which is 32 · ifft · (−1)^m (an FFT: a BLAS matrix product here ran ten times slower on a
    busy machine, its threads fighting for the cores)."""
    y = scipy.fft.ifft(sub, axis=1, workers=1)
    y *= _ALTERNATE
    out: NDArray[np.complex128] = y.reshape(-1)
    return out


def _tone_filter_weights() -> NDArray[np.float64]:
    """Each of the 32 bins' share ``w_j`` of a bit filter's noise, averaged over the filter's
    32 starts within a block and the two tones (the header holds twelve "1"s and twelve "0"s),
    scaled to sum to 32 (the per-sample noise of all 32 bins held).

    Column 16 is the carrier. A filter within one block hears bin ``j`` through its response
    ``|Σ_k e^{2πi(j − 16 ∓ 2)k/32}|²`` (nulls at every other bin); one straddling two blocks
    hears their independent noise through the two parts' responses.
    """
    offsets = np.arange(SUB_BINS) - SUB_BINS // 2
    weights = np.zeros(SUB_BINS)
    for tone_bins in (TONE_DEVIATION_HZ / BIN_HZ, -TONE_DEVIATION_HZ / BIN_HZ):
        for start in range(SUB_BINS):
            in_first = min(SUB_BINS - start, SAMPLES_PER_BIT)
            for length in (in_first, SAMPLES_PER_BIT - in_first):
                k = np.arange(length)
                phase = 2j * np.pi * (offsets[:, None] - tone_bins) * k[None, :] / SUB_BINS
                weights += np.abs(np.exp(phase).sum(axis=1)) ** 2
    out: NDArray[np.float64] = weights * (SUB_BINS / weights.sum())
    return out


_FILTER_WEIGHTS = _tone_filter_weights()


def noise_per_sample(sub: NDArray[np.complex128], floor: NDArray[np.float64]) -> float:
    """Noise power per sample of :func:`baseband`, as the bit filters see it (``floor``: noise
    per bin, full scale): ``Σ_j w_j · floor`` over the bins held, ``w_j`` each bin's share of a
    filter's noise (:func:`_tone_filter_weights`).

    Counting the bins held alike, as the plain per-sample power does, undercounted a filter's
    noise near the band's edges: a carrier 3 kHz inside the band holds 19 of its 32 bins, but
    its filters miss only 6 % of their noise with the 13 others, so their statistics came out
    1.6 times too high, and half the false pulses on noise were there.
    """
    live = floor[floor > 0]
    if live.size == 0:
        return 1e-30
    held = np.any(sub != 0, axis=0)
    return float(live.mean()) * max(float(_FILTER_WEIGHTS[held].sum()), 1.0)


def measure(
    sub: NDArray[np.complex128],
    powers: NDArray[np.float32],
    floor: NDArray[np.float64],
    first_block: int,
    block_samples: int,
    capture_fraction: float,
    min_statistic: float = 0.0,
    lead_blocks: int = LEAD_BLOCKS,
    half_samples: int = SEARCH_SAMPLES,
    whole_frame: bool = False,
) -> Measurement | None:
    """Search, measure and decode the frame whose window starts at ``first_block + lead_blocks``
    (starts within ±``half_samples`` of it; with ``whole_frame`` the cell is chosen with the
    payload's energy too: :func:`search_header`); None when the header search's statistic stays
    below ``min_statistic``.

    ``sub`` holds, for the ``SPAN_BLOCKS`` blocks from absolute block ``first_block``, the 32
    complex bins from the carrier bin − 16 up (full-scale amplitude); ``powers`` the same
    blocks' powers of the bins within ±``POWER_HALF_BINS`` of the carrier and ``floor`` those
    bins' noise (full-scale power per bin); ``block_samples`` is N.
    """
    y = baseband(sub)
    nominal = lead_blocks * SUB_BINS
    first = max(0, nominal - half_samples)
    last = min(y.size - FRAME_BITS * SAMPLES_PER_BIT, nominal + half_samples)
    if last <= first:
        return None
    noise_var = noise_per_sample(sub, floor)
    hit = search_header(y, noise_var, first, last - first, whole_frame)
    if hit.statistic < min_statistic:
        return None
    return _finish(y, hit, powers, floor, first_block, block_samples, capture_fraction, noise_var)


def measure_known(
    sub: NDArray[np.complex128],
    powers: NDArray[np.float32],
    floor: NDArray[np.float64],
    first_block: int,
    block_samples: int,
    capture_fraction: float,
    bits: NDArray[np.uint8],
    freq_hz: float,
    half_hz: float,
    min_statistic: float,
) -> Measurement | None:
    """Search for a known frame (``bits``) anywhere its first bit may start in the blocks of
    ``sub`` (as in :func:`measure`, but any number of blocks), its carrier within ±``half_hz`` of
    ``freq_hz`` from the carrier bin's centre; None below ``min_statistic``."""
    y = baseband(sub)
    count = y.size - FRAME_BITS * SAMPLES_PER_BIT
    if count <= 2:
        return None
    noise_var = noise_per_sample(sub, floor)
    mixed = y * _turn(y.size, freq_hz)
    hit = search_known(mixed, bits, noise_var, 0, count, half_hz)
    if hit.statistic < min_statistic:
        return None
    hit = Hit(hit.statistic, hit.start, hit.start_frac, hit.freq_hz + freq_hz, hit.n_bits)
    return _finish(y, hit, powers, floor, first_block, block_samples, capture_fraction, noise_var)


def _finish(
    y: NDArray[np.complex128],
    hit: Hit,
    powers: NDArray[np.float32],
    floor: NDArray[np.float64],
    first_block: int,
    block_samples: int,
    capture_fraction: float,
    noise_var: float,
) -> Measurement:
    """Decode, then measure frequency, power and timing, at a search's best cell.

    A frame so weak that its power over the spectra, less the noise, comes out at or below zero
    takes its power from the coherent sum instead: ``|Σ|²`` is ``T·n·16·σ²``, of which
    ``n·16·σ²`` is noise, over ``(n·16)²`` per sample."""
    mixed = y * _turn(y.size, hit.freq_hz)
    b1, b0 = tone_filters(mixed)
    at = hit.start + SAMPLES_PER_BIT * np.arange(FRAME_BITS)
    bits, bracelet_id, status = decode_bits(b1[at], b0[at])
    if hit.statistic < MIN_DECODE_STATISTIC * hit.n_bits / HEADER_BITS:
        bracelet_id = status = None  # too weak to read: its errors are many, and may pass the CRC
    # Residual carrier with the modulation stripped (decided bits are right where it matters).
    residual_hz = _residual(mixed[hit.start : hit.start + FRAME_BITS * SAMPLES_PER_BIT], bits)
    start_sub = hit.start_frac
    start_sample = first_block * block_samples + start_sub * block_samples / SUB_BINS
    power, noise_per_bin, collision = _power(powers, floor, start_sub / SUB_BINS)
    power /= capture_fraction
    if power <= 0:
        cells = hit.n_bits * SAMPLES_PER_BIT
        power = max(hit.statistic - 1.0, 1e-3) * noise_var / cells
    return Measurement(
        start_sample=start_sample,
        freq_offset_hz=hit.freq_hz + residual_hz,
        power_fs=power,
        noise_fs_per_hz=noise_per_bin / BIN_HZ,
        bracelet_id=bracelet_id,
        status_byte=status,
        collision=collision,
        statistic=hit.statistic,
        score=hit.score,
    )


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
