"""Detecting frames in the band spectrogram: noise floor per bin, a matched energy statistic,
an extreme-value threshold.

**Noise floor.** Cells are averaged over 4 ms × 8 kHz (the statistic's own sums); every second
the median over time of those means (robust to 29 ms pulses taking a few of them) is scaled to a
mean, interpolated back to every bin and smoothed with a time constant of about two seconds.

**Statistic.** A frame puts its energy in a known spread of bins around its carrier for 28 ms.
With the spectrogram normalised by the floor (noise cells are then Exp(1), independent across
bins and blocks), the optimal detector for a weak signal is the energy weighted by the expected
signal share of each cell: ``D[b, k] = Σ_{j<28} Σ_m w_m · S[b + j, k + m] / floor[k + m]``, with
``w`` the frame's mean spectral profile in 1 kHz bins (computed, not guessed, in
:func:`frame_profile`). The threshold comes from the measured tail of the noise-only peak rate
(:func:`threshold_for`).

**Peaks.** Cells above the threshold are kept; a candidate is the largest of them with no larger
one within ±30 blocks and ±16 bins.

**Two stages.** The spectrogram's 1 ms × 1 kHz cells fit the frame's 0.5 ms bits and ±2 kHz
tones loosely, so this statistic only nominates candidates, at a low threshold (about a hundred
per channel-hour on noise); the coherent search of the 24 known bits
(:func:`receiver.demod.search_header`) decides, at the threshold :func:`header_threshold` sets
for the false frames wanted (``bench/receiver_detection.py`` measures the two together against
the single-frame limits, and a plain receiver).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.stats
from numpy.typing import NDArray

from receiver.channelize import BIN_HZ
from safetynet.sntx import BIT_RATE_BPS, FRAME_BITS, RAMP_S, TONE_DEVIATION_HZ

WINDOW_BLOCKS = 28
STRIDE = 4
WINDOW_STEPS = WINDOW_BLOCKS // STRIDE
# Tail of the false-peak rate per channel-hour against the z-score threshold, measured by
# bench/calibrate_detector.py: rate = exp(FA_TAIL_A − FA_TAIL_B · z).
FA_TAIL_A = 24.708  # 40 channel-hours: one false peak per channel-hour at z = 6.44
FA_TAIL_B = 3.837
PEAK_HALF_BLOCKS = 30
PEAK_HALF_BINS = 16  # a frame's energy spans ±8 kHz; its statistic has side peaks at ±4 kHz
PROFILE_HALF_BINS = 8
PAD = 3  # zero columns either side of the band, as wide as the templates reach
FLOOR_GROUP_BINS = 8  # a power of two: cells are summed pairwise
FLOOR_UPDATE_BLOCKS = 1000
FLOOR_TIME_CONSTANT_S = 2.0


def cpfsk_baseband(
    bits: NDArray[np.uint8], sample_rate_hz: float, lead_s: float = 0.0
) -> NDArray[np.complex128]:
    """Unit-amplitude SNTX-1 burst at 0 Hz carrier, first bit at ``lead_s``, with its ramps."""
    n = round((lead_s + FRAME_BITS / BIT_RATE_BPS + RAMP_S + 1e-3) * sample_rate_hz)
    t = np.arange(n) / sample_rate_hz - lead_s
    bit_s = 1.0 / BIT_RATE_BPS
    index = np.clip(np.floor(t / bit_s).astype(int), 0, bits.size - 1)
    symbols = 2.0 * bits - 1.0
    phase_at_bit = np.concatenate(
        ([0.0], np.cumsum(symbols) * 2 * np.pi * TONE_DEVIATION_HZ * bit_s)
    )
    phase = phase_at_bit[index] + 2 * np.pi * TONE_DEVIATION_HZ * symbols[index] * (
        t - index * bit_s
    )
    end = bits.size * bit_s
    env = np.where((t >= 0) & (t < end), 1.0, 0.0)
    up = (t >= -RAMP_S) & (t < 0)
    env[up] = 0.5 * (1 - np.cos(np.pi * (t[up] + RAMP_S) / RAMP_S))
    down = (t >= end) & (t < end + RAMP_S)
    env[down] = 0.5 * (1 + np.cos(np.pi * (t[down] - end) / RAMP_S))
    burst: NDArray[np.complex128] = env * np.exp(1j * phase)
    return burst


def frame_profile(
    sample_rate_hz: float,
    offset_bins: tuple[float, float] = (-0.5, 0.5),
    n_frames: int = 64,
    seed: int = 1,
) -> NDArray[np.float64]:
    """Mean share of a frame's energy per 1 kHz bin offset (−8..+8) from its carrier bin.

    Averaged over random payloads, block alignments and carrier offsets within ``offset_bins``
    of the bin's centre.
    """
    rng = np.random.default_rng(seed)
    n = round(sample_rate_hz / BIN_HZ)
    profile = np.zeros(2 * PROFILE_HALF_BINS + 1)
    for _ in range(n_frames):
        bits = np.unpackbits(np.array([0xAA, 0x2D, 0xD4, *rng.integers(0, 256, 4)], dtype=np.uint8))
        z = cpfsk_baseband(bits, sample_rate_hz, lead_s=float(rng.uniform(0.001, 0.002)))
        offset = float(rng.uniform(*offset_bins)) * BIN_HZ
        z = z * np.exp(2j * np.pi * offset * np.arange(z.size) / sample_rate_hz)
        blocks = z[: (z.size // n) * n].reshape(-1, n)
        power = np.abs(np.fft.fft(blocks, axis=1)) ** 2
        energy = np.fft.fftshift(power.sum(axis=0))
        centre = n // 2
        profile += energy[centre - PROFILE_HALF_BINS : centre + PROFILE_HALF_BINS + 1]
    shares: NDArray[np.float64] = profile / profile.sum()
    return shares


@functools.cache
def _inverse_counts(
    n_groups: int, width: int, group_blocks: int, dc_index: int | None
) -> NDArray[np.float32]:
    """1 / the number of cells summed per floor group (the zeroed DC bin is not one)."""
    counts = np.full(n_groups, float(group_blocks * width))
    if dc_index is not None and dc_index < n_groups * width:
        counts[dc_index // width] -= group_blocks
    inverse: NDArray[np.float32] = (1.0 / counts).astype(np.float32)
    inverse.flags.writeable = False
    return inverse


@dataclass
class NoiseFloor:
    """Per-bin noise power (full-scale units per 1 kHz bin), tracked over time."""

    n_bins: int
    block_s: float = 1e-3
    floor: NDArray[np.float64] | None = None
    version: int = 0  # counts the floor's moves
    _means: list[NDArray[np.float32]] = field(default_factory=list)
    _blocks_pending: int = 0

    def update(
        self, groups: NDArray[np.float32], group_blocks: int, dc_index: int | None = None
    ) -> None:
        """Take a chunk's powers summed over ``group_blocks`` blocks (at least 3 such rows, the
        detector's :meth:`Detector.group`); the floor moves every ``FLOOR_UPDATE_BLOCKS``.

        Cells are those rows' sums over 8 bins; the median over time of the cells' means, per
        8-bin group, is interpolated back to every bin (the floor is smooth in frequency: the
        tuner's passband). ``dc_index``'s zeroed bin is left out of its group.
        """
        rows, n_bins = groups.shape
        if rows < 3:
            return
        width = FLOOR_GROUP_BINS
        n_groups = n_bins // width
        # Neighbours added pairwise, three times (8 = 2³): numpy's reduction over a short inner
        # axis, or eight strided slices, cost three to four times as much.
        sums = groups[:, : n_groups * width]
        while sums.shape[1] > n_groups:
            sums = sums[:, 0::2] + sums[:, 1::2]
        sums *= _inverse_counts(n_groups, width, group_blocks, dc_index)
        self._means.append(sums)
        self._blocks_pending += rows * group_blocks
        if self.floor is not None and self._blocks_pending < FLOOR_UPDATE_BLOCKS:
            return
        means = np.concatenate(self._means)
        self._means = []
        blocks, self._blocks_pending = self._blocks_pending, 0
        # The median over time: the mean of the two middle values of each sorted column
        # (np.partition, and np.median with it, took seven times as long on these sums).
        rows_now = means.shape[0]
        ordered = np.sort(means, axis=0)
        middle = ordered[[(rows_now - 1) // 2, rows_now // 2]]
        median = middle.mean(axis=0, dtype=np.float64)
        per_group = median / self._bias(group_blocks * width)
        centres = np.arange(n_groups) * width + (width - 1) / 2.0
        estimate = np.interp(np.arange(n_bins), centres, per_group)
        self.version += 1
        if self.floor is None:
            self.floor = estimate
            return
        alpha = 1.0 - math.exp(-blocks * self.block_s / FLOOR_TIME_CONSTANT_S)
        self.floor += alpha * (estimate - self.floor)

    @staticmethod
    @functools.cache
    def _bias(cells: int) -> float:
        """Median over time of a mean of ``cells`` Exp(1) cells, as a share of the mean.

        The mean of ``cells`` Exp(1) is Gamma(cells, 1/cells); its median is the sample median's
        expectation to well under 0.1 % for the 250 rows of a second.
        """
        return float(scipy.stats.gamma.median(cells) / cells)


@dataclass(frozen=True)
class Candidate:
    block: int  # absolute index of the statistic window's first block
    bin: int  # band index of the carrier bin
    statistic: float
    threshold: float


@dataclass(frozen=True)
class Template:
    """Weights over bin offsets ``first_offset .. first_offset + len − 1`` from the carrier bin,
    symmetric about the middle of that span (a carrier centred in a bin, or between two)."""

    taps: NDArray[np.float32]
    first_offset: int

    @classmethod
    def from_profile(cls, profile: NDArray[np.float64], first: int, last: int) -> Template:
        """The profile's shares from offset ``first`` to ``last``, made symmetric: the expected
        profile is symmetric (tones at ±2 kHz, carrier offsets drawn evenly about the middle),
        so what differs between its two halves is the Monte Carlo's noise."""
        centre = profile.size // 2
        taps = profile[centre + first : centre + last + 1]
        taps = (taps + taps[::-1]) / 2
        return cls((taps / taps.sum()).astype(np.float32), first)

    def moments(self) -> tuple[float, float]:
        """Mean and standard deviation of the windowed statistic on noise alone (Exp(1) cells)."""
        w = self.taps.astype(np.float64)
        return WINDOW_BLOCKS * float(w.sum()), math.sqrt(WINDOW_BLOCKS * float((w * w).sum()))

    @property
    def offset(self) -> float:
        """``mean / sd`` of the statistic on noise: what the weighted sum scaled by ``1/sd``
        exceeds the z-score by."""
        mean, sd = self.moments()
        return mean / sd

    @functools.cached_property
    def scaled_taps(self) -> NDArray[np.float32]:
        """The taps divided by the statistic's standard deviation on noise."""
        _, sd = self.moments()
        return (self.taps / np.float32(sd)).astype(np.float32)

    def apply(self, padded: NDArray[np.float32]) -> NDArray[np.float32]:
        """``Σ_j taps[j] · x[k + first_offset + j] / sd`` (the z-score plus :attr:`offset`) at
        flat index ``k + first_offset`` of the result, for the flat rows of band bins
        ``padded`` (``PAD`` zero columns on either side of each row, so that no template
        reaches into the next row). One ``np.correlate`` (a C loop over the whole array)."""
        out: NDArray[np.float32] = np.correlate(padded, self.scaled_taps, "valid")
        return out


@functools.cache
def templates(sample_rate_hz: float) -> tuple[Template, Template]:
    """The two carrier hypotheses: at a bin's centre (±¼ bin), and between two bins.

    A carrier between bins splits each tone over two bins; one averaged template would lose
    0.8 dB on such frames. The centre template spans ±2 bins (the tones and what lies between:
    the rest holds 10 % of the energy but, weighted by its small shares, adds under 0.05 dB);
    the between-bins template spans −2..+3. Computed once per sample rate.
    """
    centre = Template.from_profile(frame_profile(sample_rate_hz, (-0.25, 0.25)), -2, 2)
    between = Template.from_profile(frame_profile(sample_rate_hz, (0.25, 0.75)), -2, 3)
    return centre, between


# The coherent header search's maximum over one candidate's cells (receiver.demod.search_header)
# on the candidates this statistic nominates from noise, per candidate nominated:
# P(T > t) = exp(HEADER_TAIL_A − HEADER_TAIL_B·t), measured by bench/calibrate_detector.py. Its
# slope is under 1 (an Exp(1) cell's) because noise is nominated where it runs hot.
HEADER_TAIL_A = 6.82
HEADER_TAIL_B = 0.614


def header_threshold(candidates_per_channel_hour: float, false_per_channel_hour: float) -> float:
    """Threshold on the header search's statistic for the wanted false frames per channel-hour,
    given the candidates nominated per channel-hour on ideal noise (:func:`threshold_for`)."""
    ratio = candidates_per_channel_hour / false_per_channel_hour
    return (HEADER_TAIL_A + math.log(ratio)) / HEADER_TAIL_B


def threshold_for(false_per_channel_hour: float) -> float:
    """Threshold on the statistic's z-score for the wanted false frames per channel-hour.

    The rate of noise peaks above ``z`` was measured by Monte Carlo through this very statistic
    and peak picking (``bench/calibrate_detector.py``, 40 channel-hours of Exp(1) cells): it
    falls as ``exp(FA_TAIL_A − FA_TAIL_B·z)`` per channel-hour.
    """
    return (FA_TAIL_A - math.log(false_per_channel_hour)) / FA_TAIL_B


def window_sums(rows: NDArray[np.float32], k: int, out: NDArray[np.float32]) -> None:
    """``out[i] = rows[i] + … + rows[i + k − 1]`` for every full window of ``k`` rows.

    Sums of 1, 2, 4, … rows are built by doubling and the window is put together from the
    powers of two in ``k``: about ``2·log2(k)`` passes over the rows, summed exactly as often
    in float32 as a plain sum (no running total to drift).
    """
    n_out = rows.shape[0] - k + 1
    span, power_sum = 1, rows  # power_sum[i] = rows[i] + … + rows[i + span − 1]
    taken = 0  # rows already added into out
    first = True
    remaining = k
    while remaining:
        if remaining & 1:
            piece = power_sum[taken : taken + n_out]
            if first:
                out[...] = piece
                first = False
            else:
                out += piece
            taken += span
        remaining >>= 1
        if remaining:
            power_sum = power_sum[:-span] + power_sum[span:]
            span *= 2


@dataclass
class Detector:
    """The matched energy statistic and its threshold; stateful across chunks.

    The statistic is evaluated every ``STRIDE`` blocks (4 ms): a frame's best window then misses
    one of its 28 blocks on average (0.16 dB), two at worst (0.3 dB), for a quarter of the work.
    Its value is the larger z-score of the two carrier templates.
    """

    sample_rate_hz: float
    false_per_channel_hour: float = 1.0
    threshold: float = field(init=False)
    _templates: tuple[Template, Template] = field(init=False)
    _tail: NDArray[np.float32] | None = None  # last WINDOW_STEPS−1 grouped rows
    _inverse: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None  # given, padded
    _blocks: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _bins: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    _stats: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        self._templates = templates(self.sample_rate_hz)
        self.threshold = threshold_for(self.false_per_channel_hour)

    def reset(self) -> None:
        """Forget the running window and the undecided peaks (after lost samples)."""
        self._tail = None
        self._blocks = np.zeros(0, np.int64)
        self._bins = np.zeros(0, np.int64)
        self._stats = np.zeros(0)

    @staticmethod
    def group(power: NDArray[np.float32]) -> NDArray[np.float32]:
        """Powers summed over each ``STRIDE`` blocks (``power`` holds a multiple of them), with
        ``PAD`` zero columns on either side: the layout :meth:`statistic` works in."""
        n = power.shape[1]
        grouped = np.zeros((power.shape[0] // STRIDE, n + 2 * PAD), np.float32)
        np.sum(power.reshape(-1, STRIDE, n), axis=1, out=grouped[:, PAD : PAD + n])
        return grouped

    def statistic(
        self,
        groups: NDArray[np.float32],
        inverse_floor: NDArray[np.float32] | None = None,
        dc_index: int | None = None,
    ) -> NDArray[np.float32]:
        """The statistic (a z-score) every ``STRIDE`` blocks for the windows ending in this chunk.

        ``groups`` holds the chunk's powers summed over ``STRIDE`` blocks, padded (:meth:`group`;
        it is normalised in place); multiplied by ``inverse_floor`` (per band bin) its noise
        cells are sums of ``STRIDE`` Exp(1). ``dc_index``'s zeroed bin counts as plain noise.
        Row ``i`` of the result is the window that starts ``STRIDE·(WINDOW_STEPS − 1 − i)``
        blocks before the chunk's first block (windows reaching back use the previous chunk's
        rows, kept here); its columns are the band's bins shifted by ``PAD`` (pad columns hold
        values of no meaning: :meth:`push` ignores them).

        Everything runs on whole contiguous arrays, flat: numpy's 2-D loops over row slices
        are three times slower.
        """
        rows, width = groups.shape
        if inverse_floor is not None:  # normalising after the sum: a quarter of the work
            if self._inverse is None or self._inverse[0] is not inverse_floor:
                padded_inverse = np.zeros(width, np.float32)
                padded_inverse[PAD : width - PAD] = inverse_floor
                self._inverse = (inverse_floor, padded_inverse)
            groups *= self._inverse[1][None, :]
        if dc_index is not None:
            groups[:, PAD + dc_index] = STRIDE
        if self._tail is None or self._tail.shape[1] != width:
            self._tail = np.zeros((WINDOW_STEPS - 1, width), np.float32)
        joined = np.concatenate((self._tail, groups), axis=0)
        self._tail = joined[-(WINDOW_STEPS - 1) :].copy()
        sums = np.empty((rows, width), np.float32)
        window_sums(joined, WINDOW_STEPS, out=sums)
        centre, between = self._templates
        # Flat index k of the result (k + first_offset of each correlation) for PAD ≤ k < size
        # − PAD; the outermost pad entries are set apart from the band's values.
        flat = sums.reshape(-1)
        n = flat.size - 2 * PAD
        z = np.empty(flat.size, np.float32)
        z[:PAD] = z[PAD + n :] = -np.inf
        inner = z[PAD : PAD + n]
        c0 = PAD + centre.first_offset
        np.subtract(centre.apply(flat)[c0 : c0 + n], np.float32(centre.offset), out=inner)
        b0 = PAD + between.first_offset
        z_between = between.apply(flat)[b0 : b0 + n]
        z_between -= np.float32(between.offset)
        np.maximum(inner, z_between, out=inner)
        statistic: NDArray[np.float32] = z.reshape(rows, width)
        return statistic

    def push(
        self, d: NDArray[np.float32], first_window_block: int, allowed: NDArray[np.bool_]
    ) -> list[Candidate]:
        """Add the cells of ``d`` above threshold; return the candidates now final.

        ``first_window_block`` is the absolute block where row 0's window starts; ``allowed``
        masks the bins where a carrier may be.
        """
        if d.size and d.max() <= self.threshold:  # the usual case: nothing here
            return self._finalise(first_window_block + STRIDE * (d.shape[0] - 1))
        # Flat indices, split into rows and columns: 2-D np.nonzero is ten times slower.
        rows, cols = np.divmod(np.flatnonzero(d.reshape(-1) > self.threshold), d.shape[1])
        cols -= PAD
        keep = (cols >= 0) & (cols < allowed.size)
        keep[keep] = allowed[cols[keep]]
        rows, cols = rows[keep], cols[keep]
        self._blocks = np.concatenate((self._blocks, first_window_block + STRIDE * rows))
        self._bins = np.concatenate((self._bins, cols))
        self._stats = np.concatenate((self._stats, d[rows, cols + PAD].astype(np.float64)))
        return self._finalise(first_window_block + STRIDE * (d.shape[0] - 1))

    def flush(self) -> list[Candidate]:
        """Every peak still waiting for its neighbourhood, now final (the stream has ended)."""
        return self._finalise(np.iinfo(np.int64).max - PEAK_HALF_BLOCKS)

    def _finalise(self, last_block: int) -> list[Candidate]:
        """Greedy non-maximum suppression; peaks whose neighbourhood is complete, and that no
        stronger pending peak overlaps in time, are final."""
        if self._stats.size == 0:
            return []
        order = np.argsort(-self._stats)
        blocks, bins, stats = self._blocks[order], self._bins[order], self._stats[order]
        peaks: list[int] = []
        remaining = np.arange(stats.size)  # strongest first
        while remaining.size:
            i = int(remaining[0])
            peaks.append(i)
            far = (np.abs(blocks[remaining] - blocks[i]) > PEAK_HALF_BLOCKS) | (
                np.abs(bins[remaining] - bins[i]) > PEAK_HALF_BINS
            )
            remaining = remaining[far]
        idx = np.array(peaks, dtype=np.int64)
        final = blocks[idx] + PEAK_HALF_BLOCKS <= last_block
        # A peak also waits while a stronger one near it in time is still pending (peaks are in
        # order of strength): the receiver then weighs a strong frame and its leakage, images
        # and clipping spurs together, whichever finished first.
        for k in np.flatnonzero(final):
            earlier = idx[:k][~final[:k]]
            if np.any(np.abs(blocks[earlier] - blocks[idx[k]]) <= PEAK_HALF_BLOCKS):
                final[k] = False
        out = [
            Candidate(int(blocks[i]), int(bins[i]), float(stats[i]), self.threshold)
            for i in idx[final]
        ]
        later = idx[~final]  # peaks still waiting for their neighbourhood; the rest is settled
        self._blocks, self._bins, self._stats = blocks[later], bins[later], stats[later]
        return sorted(out, key=lambda c: c.block)
