"""The SDR receiver: a sample source in, pulse and status reports out.

:class:`SdrReceiver` runs the chunked DSP (:mod:`receiver.channelize`, :mod:`receiver.detect`,
:mod:`receiver.demod`) and minds the front end:

- **DC**: the DC bin is zeroed (no channel centre sits there at the recommended tuning);
- **images**: a pulse mirrored about the tuning from a much stronger one at the same moment is
  the I/Q imbalance's image, not a bracelet, and is dropped;
- **clipping**: saturated samples are counted; when a chunk clips, the gain control
  (:mod:`receiver.gain`) steps the gain down as a searcher does when close, and back up after a
  quiet minute; RSSI stays calibrated across changes because each block keeps the calibration
  of the gain it was taken at;
- **the dongle's own frequency error**: every decoded frame's carrier, against its channel's
  nominal frequency, is an estimate of the LO error within the bracelet's ±2.5 ppm; the median
  of the recent ones is reported in ``status`` and used to assign channels (a dongle 60 ppm off
  moves a bracelet half a channel).

Detection is in two stages (:mod:`receiver.detect`: the spectrogram nominates, the coherent
header search decides); then **cadence** (:mod:`receiver.cadence`): a bracelet once decoded is
followed, and where the detector missed its next frame, the window its one-second cadence
allows is searched for that frame, every bit of it known.
"""

from __future__ import annotations

import itertools
import logging
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from receiver.cadence import KNOWN_HALF_HZ, CadenceSearch, Window, known_threshold
from receiver.channelize import BIN_HZ, Band, Blocks, Channelizer
from receiver.demod import (
    LEAD_BLOCKS,
    POWER_HALF_BINS,
    SEARCH_SAMPLES,
    SNR_NOISE_BANDWIDTH_HZ,
    SPAN_BLOCKS,
    SUB_BINS,
    Measurement,
    body_capture_fraction,
    measure,
    measure_known,
)
from receiver.detect import (
    PAD,
    PEAK_HALF_BLOCKS,
    STRIDE,
    WINDOW_BLOCKS,
    WINDOW_STEPS,
    Detector,
    NoiseFloor,
    header_threshold,
)
from receiver.gain import CLIP_SAMPLES_PER_CHUNK, GainControl, GainTimeline
from receiver.samples import Chunk, SampleSource
from safetynet.reports import (
    CHANNEL_1_HZ,
    CHANNEL_SPACING_HZ,
    N_CHANNELS,
    POWER_DBM_RANGE,
    SNR_DB_RANGE,
    Antenna,
    Pulse,
    PulseStatus,
    Report,
    Status,
    channel_center_hz,
)
from safetynet.sntx import FRAME_BITS, ON_AIR_S, TONE_DEVIATION_HZ

log = logging.getLogger(__name__)

CHUNK_BLOCKS = 100
HISTORY_BLOCKS = WINDOW_BLOCKS + 2 * PEAK_HALF_BLOCKS + SPAN_BLOCKS + 2 * STRIDE + 160  # (cadence)
STATUS_EVERY_S = 5.0
IMAGE_MARGIN_DB = 15.0  # a mirror-frequency frame this much weaker than the strong one: its image
IMAGE_TOLERANCE_HZ = 2_000.0  # how near the mirror frequency an image lands
CLIP_SPUR_MARGIN_DB = 6.0
LEAKAGE_MARGIN_DB = 6.0  # a frame must stand this far above a stronger one's leakage
MASK_MEMORY_S = 0.2  # frames of earlier chunks this recent may still mask new ones
RECENT_FRAMES = 64
LO_HISTORY = 30
CARRIER_SEARCH_HZ = 14_000.0  # carriers are looked for within ±13 kHz (+ 1 kHz) of a channel
PPM = 1e6  # parts per million
# Finds whose header statistic is under SIDE_CHECK_BELOW (about 42 dB-Hz, well above where a
# side peak can outrun the main one or the window start be far off) are searched again, wider:
# WIDE_BLOCKS (ms) more either side in time, and from SIDE_PEAK_BINS either side of the bin
# (a weak frame's statistic has side peaks there: its tones are 4 kHz apart).
SIDE_PEAK_BINS = 4
SIDE_CHECK_BELOW = 200.0
WIDE_BLOCKS = 8
SAME_FRAME_S = 1e-3  # two finds this near in start and carrier are one frame
SAME_FRAME_HZ = 1_500.0
SAME_FRAME_MEMORY_S = 1.0  # reported frames this recent are looked at for second finds
KNOWN_MARGIN_BLOCKS = 8  # 8 ms: past the preamble's shifted copies of a frame (4 ms and less)
FRAME_SAMPLES_SUB = FRAME_BITS * SUB_BINS // 2  # a frame's bits at 32 kS/s (16 a bit)


def leakage_db(distance_hz: float) -> float:
    """A frame's power, relative to its own, that leaks into the ±8 kHz measured ``distance_hz``
    away: each of those bins gets about ``1/(π·d)²`` of it, ``d`` (kHz) being its distance from
    the nearer tone (the rectangular window's sidelobes fall as 1/d²)."""
    centre = distance_hz / BIN_HZ
    tone_bins = TONE_DEVIATION_HZ / BIN_HZ
    share = sum(
        1.0 / (math.pi * max(abs(centre + k) - tone_bins, 1.0)) ** 2
        for k in range(-POWER_HALF_BINS, POWER_HALF_BINS + 1)
    )
    return 10.0 * math.log10(share)


@dataclass(frozen=True)
class HeardFrame:
    """A frame the DSP heard, with everything it measured (before it becomes a report)."""

    start_sample: float
    t: datetime
    channel: int
    freq_hz: float  # as heard (the dongle's error not removed)
    rssi_dbm: float  # dBFS when uncalibrated
    power_dbfs: float
    snr_db: float
    bracelet_id: int | None
    status_byte: int | None
    collision: bool
    gain_db: float | None
    calibrated: bool
    clipped: bool
    statistic: float  # the coherent search's statistic (receiver.demod)


@dataclass
class ReceiverConfig:
    receiver_id: str = "SDR-1"
    position: tuple[float, float, float] | None = None  # overrides the source's
    antenna: Antenna = "omni"
    # The detector is calibrated on ideal noise; a real floor estimate adds some: aiming at 0.5
    # keeps the measured rate under one per channel-hour (bench/receiver_detection.py).
    false_per_channel_hour: float = 0.5
    auto_gain: bool = True
    heading: Callable[[datetime], float | None] | None = None
    # The spectrogram's statistic only nominates candidates (this many per channel-hour on
    # noise); the coherent header search of each decides (receiver.detect.header_threshold).
    candidates_per_channel_hour: float = 100.0
    cadence: bool = True  # look for a heard bracelet's next frames where its cadence puts them


@dataclass
class SdrReceiver:
    source: SampleSource
    config: ReceiverConfig = field(default_factory=ReceiverConfig)
    next_seq: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)

    def __post_init__(self) -> None:
        fs = self.source.sample_rate_hz
        self.band = Band(fs, self.source.center_hz)
        self.block_samples = self.band.n_fft
        self.channelizer = Channelizer(self.band)
        log.info("channelising with %s", self.channelizer.transform.backend)
        self.floor = NoiseFloor(self.band.n_bins)
        self.detector = Detector(fs, self.config.candidates_per_channel_hour)
        self.min_statistic = header_threshold(
            self.config.candidates_per_channel_hour, self.config.false_per_channel_hour
        )
        # Called with every candidate measured, before thresholds and masks (calibration).
        self.observe: Callable[[HeardFrame], None] | None = None
        self.cadence = CadenceSearch(fs) if self.config.cadence else None
        self.capture = body_capture_fraction(fs)
        self._history: deque[Blocks] = deque()
        self._carry: NDArray[np.uint8] | NDArray[np.complex64] | None = None
        self._carry_chunk: Chunk | None = None
        self._blocks_done = 0
        self._allowed = self._allowed_bins()
        self._inverse: tuple[int, NDArray[np.float32]] | None = None
        self._lo_offsets_hz: deque[float] = deque(maxlen=LO_HISTORY)
        self._lo_offset_hz = 0.0
        self._recent: deque[HeardFrame] = deque(maxlen=RECENT_FRAMES)
        self._clipped_since_status = False
        self._next_status_s = 0.0
        self.gains = GainTimeline(fs, self.block_samples, self.source.start_time)
        self.gain_control = GainControl(
            self.gains, self.source.set_gain, auto=self.config.auto_gain
        )
        self.frames_heard = 0
        self.collisions = 0
        self.images_dropped = 0

    # --- public -----------------------------------------------------------------------------
    @property
    def lo_error_ppm(self) -> float | None:
        """The dongle's own frequency error (ppm), from decoded frames; None until one."""
        if not self._lo_offsets_hz:
            return None
        return -self._lo_offset_hz / self.source.center_hz * PPM

    def run(self, stop: Callable[[], bool] | None = None) -> Iterator[Report]:
        """Read the source to its end (or forever, if live, until ``stop`` says so: it is
        looked at before every chunk) and yield reports as they come."""
        n = CHUNK_BLOCKS * self.block_samples
        while stop is None or not stop():
            chunk = self.source.read(n)
            if chunk is None:
                break
            yield from self.process(chunk)
        yield from self.finish()

    def finish(self) -> list[Report]:
        """The end of the stream: the frames still pending (too near the end for the detector to
        have seen all around them) are measured and reported, the blocks the recording does not
        have counted as silent."""
        if not self._history:
            return []
        candidates = self.detector.flush()
        clipped = self._history[-1].saturated > CLIP_SAMPLES_PER_CHUNK
        heard = [self._measure(c.block, c.bin, clipped, to_the_end=True) for c in candidates]
        return [self._pulse(h) for h in self._keep([h for h in heard if h is not None])]

    def process(self, chunk: Chunk) -> list[Report]:
        """Process one chunk of samples (any length); returns the reports it completes.

        The DSP works on whole groups of ``STRIDE`` blocks: what is left over waits for the
        next chunk (unless samples were lost in between).
        """
        chunk = self._join_carry(chunk)
        first_block = self._blocks_done
        step = STRIDE * self.block_samples
        if chunk.cu8 is not None:
            even = (chunk.cu8.size // (2 * step)) * 2 * step
            blocks = self.channelizer.from_cu8(chunk.cu8[:even], first_block)
            self._carry = chunk.cu8[even:].copy()
        else:
            assert chunk.iq is not None
            even = (chunk.iq.size // step) * step
            blocks = self.channelizer.from_iq(chunk.iq[:even], first_block)
            self._carry = chunk.iq[even:].copy()
        self._carry_chunk = chunk
        if blocks.n_blocks == 0:
            return []
        if chunk.discontinuity:
            self._restart()
        clipped = blocks.saturated > CLIP_SAMPLES_PER_CHUNK
        self.gains.register(chunk, blocks)
        self._history.append(blocks)
        while (
            self._history
            and self._history[0].first_block + self._history[0].n_blocks
            < first_block - HISTORY_BLOCKS
        ):
            self._history.popleft()
        groups = self.detector.group(blocks.power)
        self.floor.update(groups[:, PAD : PAD + self.band.n_bins], STRIDE, self.band.dc_index)
        d = self.detector.statistic(groups, self._inverse_floor(), self.band.dc_index)
        first_window = first_block - STRIDE * (WINDOW_STEPS - 1)
        candidates = self.detector.push(d, first_window, self._allowed)
        self._blocks_done += blocks.n_blocks
        heard_frames = [self._measure(c.block, c.bin, clipped) for c in candidates]
        reports: list[Report] = [
            self._pulse(h) for h in self._keep([h for h in heard_frames if h is not None])
        ]
        if self.cadence is not None:
            # Up to where the detector's peaks are all final: what it missed, it has missed.
            settled = self._blocks_done - 2 * PEAK_HALF_BLOCKS - WINDOW_BLOCKS - 2 * STRIDE
            found = [
                self._measure_window(w) for w in self.cadence.due(settled * self.block_samples)
            ]
            reports += [self._pulse(h) for h in self._keep([h for h in found if h is not None])]
        now_s = self._blocks_done * self.block_samples / self.source.sample_rate_hz
        self._clipped_since_status |= clipped
        loudest = max((h.power_dbfs for h in self._recent if h.clipped), default=None)
        self.gain_control.after_chunk(clipped, now_s, loudest)
        if now_s >= self._next_status_s:
            reports.append(self._status(now_s))
            self._next_status_s = now_s + STATUS_EVERY_S
        self.gains.trim(self._history[0].first_block if self._history else self._blocks_done)
        return reports

    # --- DSP plumbing ---------------------------------------------------------------------------
    def _inverse_floor(self) -> NDArray[np.float32]:
        """``1 / floor`` per bin (0 where the floor is 0), recomputed only when the floor moves."""
        floor = self.floor.floor
        assert floor is not None
        if self._inverse is None or self._inverse[0] != self.floor.version:
            inverse = np.where(floor > 0, 1.0 / np.maximum(floor, 1e-30), 0.0)
            self._inverse = (self.floor.version, inverse.astype(np.float32))
        return self._inverse[1]

    def _join_carry(self, chunk: Chunk) -> Chunk:
        """Prepend the samples the previous chunk left over, when they continue into this one."""
        carry, previous = self._carry, self._carry_chunk
        self._carry = None
        if carry is None or carry.size == 0 or previous is None or chunk.discontinuity:
            return chunk
        fs = self.source.sample_rate_hz
        n_carry = carry.size // 2 if chunk.cu8 is not None else carry.size
        t0 = None if chunk.t0 is None else chunk.t0 - timedelta(seconds=n_carry / fs)
        if chunk.cu8 is not None and carry.dtype == np.uint8:
            return replace(chunk, first_sample=chunk.first_sample - n_carry,
                           cu8=np.concatenate((carry, chunk.cu8)), t0=t0)  # fmt: skip
        if chunk.iq is not None and carry.dtype != np.uint8:
            return replace(chunk, first_sample=chunk.first_sample - n_carry,
                           iq=np.concatenate((carry, chunk.iq)), t0=t0)  # fmt: skip
        return chunk

    def _gather(
        self, first: int, n: int, carrier_bin: int, to_the_end: bool = False
    ) -> tuple[NDArray[np.complex128], NDArray[np.float32]] | None:
        """The 32 complex bins from ``carrier_bin − 16`` and the powers of the bins within
        ±``POWER_HALF_BINS`` of it, for blocks [first, first + n), in full-scale units; None when
        they are not (or no longer) held. With ``to_the_end`` (the stream has ended), blocks
        past the last one held are zeros."""
        parts_sub: list[NDArray[np.complex128]] = []
        parts_pow: list[NDArray[np.float32]] = []
        band_idx = np.arange(carrier_bin - SUB_BINS // 2, carrier_bin + SUB_BINS // 2)
        valid = (band_idx >= 0) & (band_idx < self.band.n_bins) & (band_idx != self.band.dc_index)
        cols = np.clip(band_idx, 0, self.band.n_bins - 1)
        lo_bin, hi_bin = self._power_bins(carrier_bin)
        need = first
        for blocks in self._history:
            lo = max(need, blocks.first_block)
            hi = min(first + n, blocks.first_block + blocks.n_blocks)
            if lo >= hi:
                continue
            if lo != need:
                return None
            rows = slice(lo - blocks.first_block, hi - blocks.first_block)
            piece = blocks.spectrum[rows, :][:, cols] * np.float32(math.sqrt(blocks.scale))
            piece[:, ~valid] = 0
            parts_sub.append(piece.astype(np.complex128))
            parts_pow.append(blocks.power[rows, lo_bin:hi_bin] * np.float32(blocks.scale))
            need = hi
        if need != first + n:
            if not to_the_end or not parts_sub:
                return None
            missing = first + n - need
            parts_sub.append(np.zeros((missing, SUB_BINS), np.complex128))
            parts_pow.append(np.zeros((missing, hi_bin - lo_bin), np.float32))
        return np.concatenate(parts_sub), np.concatenate(parts_pow)

    def _clipped_over(self, first: int, n: int) -> bool:
        """Whether a chunk that clipped holds any of blocks [first, first + n): a frame is
        flagged by the samples it spans, not by the chunk it happens to be measured in."""
        return any(
            b.saturated > CLIP_SAMPLES_PER_CHUNK
            and b.first_block < first + n
            and first < b.first_block + b.n_blocks
            for b in self._history
        )

    def _power_bins(self, carrier_bin: int) -> tuple[int, int]:
        """The band bins [lo, hi) a frame's power is measured over."""
        return max(carrier_bin - POWER_HALF_BINS, 0), min(
            carrier_bin + POWER_HALF_BINS + 1, self.band.n_bins
        )

    def _allowed_bins(self) -> NDArray[np.bool_]:
        """Bins where a carrier may be: within ``CARRIER_SEARCH_HZ`` of a channel centre."""
        offsets = np.asarray(self.band.offset_hz(np.arange(self.band.n_bins, dtype=float)))
        freqs = self.source.center_hz + offsets
        low = CHANNEL_1_HZ - CARRIER_SEARCH_HZ
        high = CHANNEL_1_HZ + (N_CHANNELS - 1) * CHANNEL_SPACING_HZ + CARRIER_SEARCH_HZ
        allowed = (freqs >= low) & (freqs <= high)
        allowed[self.band.dc_index] = False
        return np.asarray(allowed)

    def _measure(
        self, window_block: int, carrier_bin: int, clipped: bool, to_the_end: bool = False
    ) -> HeardFrame | None:
        """Search, measure and decode the candidate the detector nominated at ``carrier_bin``.

        A weak find is then searched again, wider, its cell chosen with the payload's energy
        too (:func:`receiver.demod.search_header`'s ``whole_frame``). It moves a find, never
        makes one: noise finds stay as many. Two ways a weak frame's first find can be off:

        - **in time**: its spectrogram window may start more than the search's ±5 ms from the
          frame; inside the frame, any start lines up some of the header's bits with payload
          bits of the same tone, and with a modulation index of 2 those add coherently (a
          quarter of the frame's statistic where half of them agree): a find milliseconds
          off, of the header's statistic alone but not of the frame's energy. So
          ``WIDE_BLOCKS`` more either side;
        - **in frequency**: it may be nominated on a side peak of its statistic,
          ``SIDE_PEAK_BINS`` off its carrier (one tone under the template's middle), where the
          header search's ±1.5 kHz does not reach the carrier and the best cell is the header's
          tone-swapped copy (its ±2 kHz tones, seen 4 kHz off, are each other's; the other tone
          holds nothing). So from the bins the carrier would be at for that too.
        """
        first = window_block - LEAD_BLOCKS
        m = self._search(first, carrier_bin, to_the_end)
        if m is not None and self.min_statistic <= m.statistic < SIDE_CHECK_BELOW:
            best: tuple[Measurement, int] | None = None
            for side in (0, -SIDE_PEAK_BINS, SIDE_PEAK_BINS):
                other = carrier_bin + side
                if not (0 <= other < self.band.n_bins and self._allowed[other]):
                    continue
                alt = self._search(first, other, to_the_end, 0.0, WIDE_BLOCKS)
                if alt is not None and (best is None or alt.score > best[0].score):
                    best = (alt, other)
            if best is not None:
                m, carrier_bin = best
        heard = self._heard(m, carrier_bin, clipped or self._clipped_over(first, SPAN_BLOCKS))
        if heard is not None and self.observe is not None:
            self.observe(heard)
            if heard.statistic < self.min_statistic:
                return None
        return heard

    def _search(
        self,
        first: int,
        carrier_bin: int,
        to_the_end: bool,
        above: float | None = None,
        wide_blocks: int = 0,
    ) -> Measurement | None:
        """:func:`receiver.demod.measure` of the ``SPAN_BLOCKS`` blocks from ``first`` at
        ``carrier_bin``; None when they are not held or its statistic stays below ``above``
        (default: the header threshold; 0 while calibrating). With ``wide_blocks``, its starts
        are searched that much further either side and its cell chosen with the payload's
        energy too."""
        first -= wide_blocks
        gathered = self._gather(first, SPAN_BLOCKS + 2 * wide_blocks, carrier_bin, to_the_end)
        if gathered is None:
            log.debug("frame at block %d fell outside the history; skipped", first + LEAD_BLOCKS)
            return None
        assert self.floor.floor is not None
        scale = self._history[-1].scale
        lo_bin, hi_bin = self._power_bins(carrier_bin)
        if above is None:
            above = 0.0 if self.observe else self.min_statistic
        return measure(
            gathered[0], gathered[1], self.floor.floor[lo_bin:hi_bin] * scale, first,
            self.block_samples, self.capture, above, LEAD_BLOCKS + wide_blocks,
            SEARCH_SAMPLES + wide_blocks * SUB_BINS, wide_blocks > 0,
        )  # fmt: skip

    def _measure_window(self, window: Window) -> HeardFrame | None:
        """The known-frame search of a followed bracelet's window (:mod:`receiver.cadence`)."""
        fs = self.source.sample_rate_hz
        carrier_bin = round((window.freq_hz - self.source.center_hz) / BIN_HZ) - (
            self.band.first_offset_bin
        )
        if not 0 <= carrier_bin < self.band.n_bins:
            return None
        n = self.block_samples
        first = math.floor(window.first_sample / n) - 1
        last = math.ceil((window.last_sample + ON_AIR_S * fs) / n) + 1
        starts = (last - first) * SUB_BINS - FRAME_SAMPLES_SUB
        # Searched KNOWN_MARGIN_BLOCKS past either end: a frame just outside the window has
        # shifted copies inside it (the preamble's 1010… matches itself two bits on), and
        # only a best start inside the window is its frame.
        first -= KNOWN_MARGIN_BLOCKS
        last += KNOWN_MARGIN_BLOCKS
        gathered = self._gather(first, last - first, carrier_bin)
        if gathered is None:
            log.debug("window of %04X fell outside the history; skipped", window.bracelet_id)
            return None
        assert self.floor.floor is not None
        scale = self._history[-1].scale
        lo_bin, hi_bin = self._power_bins(carrier_bin)
        offset_hz = window.freq_hz - self.source.center_hz - float(self.band.offset_hz(carrier_bin))
        m = measure_known(
            gathered[0], gathered[1], self.floor.floor[lo_bin:hi_bin] * scale, first, n,
            self.capture, window.bits, offset_hz, KNOWN_HALF_HZ, known_threshold(starts),
        )  # fmt: skip
        inside = (first + KNOWN_MARGIN_BLOCKS) * n, (last - KNOWN_MARGIN_BLOCKS) * n - ON_AIR_S * fs
        if m is not None and not inside[0] <= m.start_sample <= inside[1]:
            log.debug("window of %04X: its best start lies outside it", window.bracelet_id)
            m = None
        heard = self._heard(m, carrier_bin, self._clipped_over(first, last - first))
        if heard is not None and self.cadence is not None:
            self.cadence.found_frame(window, heard.start_sample)
        return heard

    def _heard(self, m: Measurement | None, carrier_bin: int, clipped: bool) -> HeardFrame | None:
        if m is None or not m.power_fs > 0 or not math.isfinite(m.snr10k_db):
            return None
        freq_hz = self.source.center_hz + float(self.band.offset_hz(carrier_bin)) + m.freq_offset_hz
        segment = self.gains.at(int(m.start_sample // self.block_samples))
        gain_db, cal = segment.gain_db, segment.cal_dbm_at_fullscale
        power_dbfs = 10 * math.log10(m.power_fs)
        return HeardFrame(
            start_sample=m.start_sample,
            t=segment.time_of(m.start_sample, self.block_samples, self.source.sample_rate_hz),
            channel=self._channel_of(freq_hz),
            freq_hz=freq_hz,
            rssi_dbm=power_dbfs + (cal if cal is not None else 0.0),
            power_dbfs=power_dbfs,
            snr_db=m.snr10k_db,
            bracelet_id=m.bracelet_id,
            status_byte=m.status_byte,
            collision=m.collision,
            gain_db=gain_db,
            calibrated=cal is not None,
            clipped=clipped,
            statistic=m.statistic,
        )

    def _keep(self, frames: list[HeardFrame]) -> list[HeardFrame]:
        """Drop second finds of a frame already reported and artefacts of stronger frames, then
        account for what is kept.

        **Leakage**: the rectangular 1 ms blocks leak a strong frame's energy into every bin
        (:func:`leakage_db`); a weaker frame overlapping it in time that does not stand 6 dB
        above that leakage cannot be told from it.
        **Images**: the I/Q imbalance mirrors a strong frame about the tuning; a frame at the
        mirror frequency at the same moment, 15 dB or more weaker, is that image.
        **Clipping spurs**: a frame that drove the converter into clipping spreads harmonics and
        intermodulation over the whole band; weaker frames at the same moment are dropped.
        """
        if not frames:
            return []
        fs = self.source.sample_rate_hz
        overlap = ON_AIR_S * fs
        reference = [
            h
            for h in self._recent
            if h.start_sample > self._blocks_done * self.block_samples - MASK_MEMORY_S * fs
        ]
        # A cadence window is searched up to a few tenths of a second after its frame.
        reported = [
            h
            for h in self._recent
            if h.start_sample > self._blocks_done * self.block_samples - SAME_FRAME_MEMORY_S * fs
        ]
        kept: list[HeardFrame] = []
        for frame in sorted(frames, key=lambda h: -h.power_dbfs):
            if any(self._same_frame(h, frame) for h in (*reported, *kept)):
                continue
            if not any(self._masks(strong, frame, overlap) for strong in (*reference, *kept)):
                kept.append(frame)
        kept.sort(key=lambda h: h.start_sample)
        for heard in kept:
            self.frames_heard += 1
            if heard.collision:
                self.collisions += 1
                log.info("collision on channel %d at %s", heard.channel, heard.t)
            if heard.bracelet_id is not None:
                self._lo_offsets_hz.append(heard.freq_hz - channel_center_hz(heard.channel))
                self._lo_offset_hz = statistics.median(self._lo_offsets_hz)
            self.gain_control.heard(heard.power_dbfs, heard.start_sample / fs)
            self._recent.append(heard)
            if self.cadence is not None:
                self.cadence.heard(
                    heard.start_sample, heard.freq_hz, heard.bracelet_id, heard.status_byte
                )
        return kept

    def _same_frame(self, one: HeardFrame, other: HeardFrame) -> bool:
        """Whether two finds are one frame: two candidates each moved onto it (:meth:`_measure`),
        or the detector's find and a cadence window's (a bracelet followed under an ID misread
        from this one's frame, a few bits off, finds this one's frames)."""
        return (
            abs(one.start_sample - other.start_sample) < SAME_FRAME_S * self.source.sample_rate_hz
            and abs(one.freq_hz - other.freq_hz) < SAME_FRAME_HZ
        )

    def _masks(self, strong: HeardFrame, weak: HeardFrame, overlap_samples: float) -> bool:
        if strong.power_dbfs <= weak.power_dbfs:
            return False
        apart = abs(strong.start_sample - weak.start_sample)
        if apart > overlap_samples:
            return False
        if strong.clipped and weak.power_dbfs < strong.power_dbfs - CLIP_SPUR_MARGIN_DB:
            return True  # a clipped frame's harmonics and intermodulation land anywhere
        if (
            weak.power_dbfs
            < strong.power_dbfs + leakage_db(abs(strong.freq_hz - weak.freq_hz)) + LEAKAGE_MARGIN_DB
        ):
            log.debug("dropped leakage at %.0f Hz", weak.freq_hz)
            return True
        mirror_hz = 2 * self.source.center_hz - strong.freq_hz
        if (
            abs(mirror_hz - weak.freq_hz) < IMAGE_TOLERANCE_HZ
            and strong.power_dbfs - weak.power_dbfs > IMAGE_MARGIN_DB
        ):
            self.images_dropped += 1
            return True
        return False

    def _channel_of(self, freq_hz: float) -> int:
        """Nearest channel, after removing the dongle's estimated offset (bracelets: ±2.5 ppm)."""
        index = round((freq_hz - self._lo_offset_hz - CHANNEL_1_HZ) / CHANNEL_SPACING_HZ) + 1
        return int(min(max(index, 1), N_CHANNELS))

    def _restart(self) -> None:
        """Samples were lost: forget what spans the gap (the noise floor stays)."""
        self._history.clear()
        self.detector.reset()
        if self.cadence is not None:  # its windows count samples, and samples were lost
            self.cadence.followed.clear()
        self.gains.forget_noise()

    # --- reports ----------------------------------------------------------------------------
    def _position(self) -> tuple[float, float, float] | None:
        return self.config.position or self.source.position

    def _pulse(self, heard: HeardFrame) -> Pulse:
        pos = self._position()
        heading = self.config.heading(heard.t) if self.config.heading else None
        decoded = heard.bracelet_id is not None and heard.status_byte is not None
        return Pulse(
            receiver_id=self.config.receiver_id,
            seq=self.next_seq(),
            t=heard.t,
            channel=heard.channel,
            freq_hz=round(heard.freq_hz),
            bracelet_id=f"{heard.bracelet_id:04X}" if decoded else None,
            status=PulseStatus.from_byte(heard.status_byte)
            if decoded and heard.status_byte is not None
            else None,
            rssi_dbm=round(_clamp(heard.rssi_dbm, POWER_DBM_RANGE), 1),
            snr_db=round(_clamp(heard.snr_db, SNR_DB_RANGE), 1),
            gain_db=heard.gain_db if heard.calibrated else None,
            lat_deg=pos[0] if pos else None,
            lon_deg=pos[1] if pos else None,
            alt_m=pos[2] if pos else None,
            heading_deg=None if heading is None else round(heading, 1) % 360.0,
            antenna=self.config.antenna,
        )

    def _status(self, now_s: float) -> Status:
        pos = self._position()
        current = self.gains.current()
        gain_db = None if current is None else current.gain_db
        cal = None if current is None else current.cal_dbm_at_fullscale
        noise = None
        if self.floor.floor is not None and cal is not None:
            scale = self._history[-1].scale if self._history else 1.0
            per_hz = float(np.median(self.floor.floor[self._allowed])) * scale / BIN_HZ
            if per_hz > 0:  # (an all-zero floor: the noise is below the converter's last bit)
                noise_dbm = 10 * math.log10(per_hz * SNR_NOISE_BANDWIDTH_HZ) + cal
                noise = round(_clamp(noise_dbm, POWER_DBM_RANGE), 1)
        lo = self.lo_error_ppm
        clipping = self._clipped_since_status
        self._clipped_since_status = False
        return Status(
            receiver_id=self.config.receiver_id,
            seq=self.next_seq(),
            t=self.gains.time_of_block(self._blocks_done),
            lat_deg=pos[0] if pos else None,
            lon_deg=pos[1] if pos else None,
            gps_fix=pos is not None,
            gain_db=gain_db,
            noise_dbm=noise,
            clipping=clipping,
            battery_v=None,
            lo_error_ppm=None if lo is None else round(lo, 2),
        )


def _clamp(value: float, valid: tuple[float, float]) -> float:
    """``value`` brought within a report field's valid range ``(lo, hi)``."""
    return min(max(value, valid[0]), valid[1])
