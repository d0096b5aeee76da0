"""Gain control of an RTL-SDR front end, and the record of the gain each block was taken at.

**Policy** (:func:`gain_after_clipping`, :func:`gain_after_quiet`, :class:`GainControl`): when a
chunk clips, the gain steps down to leave ``HEADROOM_DB`` above the strongest recent clipped
pulse (at least ``MIN_STEP_DOWN_DB``), as a searcher turns the gain down when close; after
``QUIET_S_BEFORE_GAIN_UP`` without a loud frame it steps back up by ``STEP_UP_DB``.

**Timeline** (:class:`GainTimeline`): a new gain asked of a live dongle reaches the samples some
time after the request (the samples in flight were taken at the old one). The band's noise power
steps by about the gain change when it lands; until that step is seen (at most
``GAIN_LANDING_MAX_S``), the blocks keep the old gain's calibration, so RSSI stays right across
the change. Each run of blocks at one gain is a :class:`Segment` with its calibration and time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from receiver.channelize import Blocks
from receiver.samples import Chunk
from safetynet.rtl import R820T_GAINS_DB

log = logging.getLogger(__name__)

HEADROOM_DB = 10.0  # left above the strongest recent clipped frame when stepping down
MIN_STEP_DOWN_DB = 10.0  # the least a clipping chunk takes off the gain
STEP_UP_DB = 10.0  # the least a quiet spell puts back
QUIET_S_BEFORE_GAIN_UP = 60.0  # no loud frame for this long: the gain goes back up
LOUD_DBFS = -20.0  # a frame above this (dB full scale) keeps the gain down
CLIP_SAMPLES_PER_CHUNK = 4  # more saturated samples than this in a chunk: the chunk clipped
GAIN_LANDING_MAX_S = 1.0  # a requested gain shows in the samples within this time
LANDING_FRACTION = 0.5  # the band noise has moved by this share of the step (in dB): landed
LANDING_HOLD_BLOCKS = 4  # ... in this many consecutive blocks
NOISE_REFERENCE_BLOCKS = 10  # band noise before a change: median over the last blocks
_TINY = 1e-30  # keeps logarithms finite on empty blocks


def gain_after_clipping(
    gain_db: float, loudest_clipped_dbfs: float | None, steps_db: tuple[float, ...] = R820T_GAINS_DB
) -> float:
    """The gain step to take after clipping at ``gain_db`` (dB): ``HEADROOM_DB`` below the
    loudest clipped frame's level (dBFS; 0 when none was measured), at least
    ``MIN_STEP_DOWN_DB`` down; the lowest step when nothing is that low."""
    over_db = loudest_clipped_dbfs if loudest_clipped_dbfs is not None else 0.0
    target_db = gain_db - max(over_db + HEADROOM_DB, MIN_STEP_DOWN_DB)
    lower = [g for g in steps_db if g <= target_db] or [steps_db[0]]
    return lower[-1]


def gain_after_quiet(gain_db: float, steps_db: tuple[float, ...] = R820T_GAINS_DB) -> float | None:
    """The gain step to go up to after a quiet spell (the first ``STEP_UP_DB`` or more above
    ``gain_db``), or None when the gain is already near the top."""
    higher = [g for g in steps_db if g >= gain_db + STEP_UP_DB]
    return higher[0] if higher else None


@dataclass(frozen=True)
class Segment:
    """A run of blocks taken at one gain: its calibration and the time of its first block."""

    first_block: int
    gain_db: float | None
    cal_dbm_at_fullscale: float | None
    t0: datetime

    def time_of(self, sample: float, block_samples: int, sample_rate_hz: float) -> datetime:
        return self.t0 + timedelta(
            seconds=(sample - self.first_block * block_samples) / sample_rate_hz
        )


class GainTimeline:
    """Which gain and calibration each block was taken at, and when it was taken."""

    def __init__(self, sample_rate_hz: float, block_samples: int, start_time: datetime) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.block_samples = block_samples
        self.start_time = start_time
        self.pending_since: int | None = None  # first block of a change not yet seen landing
        self._segments: dict[int, Segment] = {}  # first block → gain, calibration, time
        self._noise_from: Blocks | None = None

    def register(self, chunk: Chunk, blocks: Blocks) -> None:
        """Record the chunk's gain, calibration and time, splitting it where a gain change lands."""
        fs = self.sample_rate_hz
        n = self.block_samples
        first = blocks.first_block
        t0 = chunk.t0 or (self.start_time + timedelta(seconds=chunk.first_sample / fs))
        new = Segment(first, chunk.gain_db, chunk.cal_dbm_at_fullscale, t0)
        previous = self.current()
        if (
            previous is not None
            and previous.gain_db is not None
            and new.gain_db is not None
            and previous.gain_db != new.gain_db
            and not chunk.discontinuity
        ):
            step_db = new.gain_db - previous.gain_db
            # Band noise per block: only needed while a gain change is on its way.
            split = self._step_in(blocks.power.sum(axis=1) * np.float32(blocks.scale), step_db)
            pending = self.pending_since
            waited = 0 if pending is None else first - pending
            if split is None and waited < round(GAIN_LANDING_MAX_S * fs / n):  # not landed yet
                self.pending_since = first if pending is None else pending
                self._segments[first] = Segment(
                    first, previous.gain_db, previous.cal_dbm_at_fullscale, t0
                )
                return
            self.pending_since = None
            split = split or 0
            if split > 0:
                self._segments[first] = Segment(
                    first, previous.gain_db, previous.cal_dbm_at_fullscale, t0
                )
            self._segments[first + split] = Segment(
                first + split, new.gain_db, new.cal_dbm_at_fullscale,
                t0 + timedelta(seconds=split * n / fs),
            )  # fmt: skip
            log.info(
                "gain %.1f -> %.1f dB in effect from block %d",
                previous.gain_db,
                new.gain_db,
                first + split,
            )
        else:
            self._segments[first] = new
        self._noise_from = blocks  # the band noise before any gain change: worked out if needed

    def forget_noise(self) -> None:
        """Samples were lost: the band noise before the gap says nothing of what follows."""
        self._noise_from = None

    def _last_noise(self) -> float | None:
        """Median band noise per block over the last blocks of the chunk before this one."""
        blocks = self._noise_from
        if blocks is None:
            return None
        return float(np.median(blocks.power[-NOISE_REFERENCE_BLOCKS:].sum(axis=1)) * blocks.scale)

    def _step_in(self, noise: NDArray[np.float32], step_db: float) -> int | None:
        """First block from which the band noise has moved by ``LANDING_FRACTION`` of
        ``step_db`` and holds there for ``LANDING_HOLD_BLOCKS``."""
        last_noise = self._last_noise()
        if last_noise is None or last_noise <= 0:
            return 0
        ratio_db = 10 * np.log10(np.maximum(noise, _TINY) / last_noise)
        moved = ratio_db * np.sign(step_db) > abs(step_db) * LANDING_FRACTION
        hold = LANDING_HOLD_BLOCKS
        held = np.convolve(moved.astype(int), np.ones(hold, int), mode="full")[hold - 1 :] == hold
        index = np.flatnonzero(held)
        return int(index[0]) if index.size else None

    def at(self, block: int) -> Segment:
        """The segment that holds ``block`` (the oldest kept, for blocks before it)."""
        starts = [b for b in self._segments if b <= block]
        return self._segments[max(starts)] if starts else self._segments[min(self._segments)]

    def current(self) -> Segment | None:
        return self._segments[max(self._segments)] if self._segments else None

    def time_of_block(self, block: int) -> datetime:
        n = self.block_samples
        return self.at(block).time_of(block * n, n, self.sample_rate_hz)

    def trim(self, keep_from: int) -> None:
        """Forget the segments wholly before block ``keep_from`` (the one in force stays)."""
        older = sorted(b for b in self._segments if b < keep_from)
        for b in older[:-1]:
            del self._segments[b]


class GainControl:
    """Steps a live source's gain down on clipping and up after a quiet spell."""

    def __init__(
        self, timeline: GainTimeline, set_gain: Callable[[float], bool], auto: bool = True
    ) -> None:
        self.timeline = timeline
        self.set_gain = set_gain
        self.auto = auto
        self.last_loud_s = 0.0

    def heard(self, power_dbfs: float, t_s: float) -> None:
        """A frame was heard at ``t_s`` (stream seconds): a loud one keeps the gain down."""
        if power_dbfs > LOUD_DBFS:
            self.last_loud_s = t_s

    def after_chunk(self, clipped: bool, now_s: float, loudest_clipped_dbfs: float | None) -> None:
        """Act on a processed chunk: step down if it clipped, else perhaps step up."""
        if clipped:
            self._step_down(loudest_clipped_dbfs)
        elif self.auto:
            self._maybe_step_up(now_s)

    def _current_gain_db(self) -> float | None:
        current = self.timeline.current()
        return None if current is None else current.gain_db

    def _step_down(self, loudest_clipped_dbfs: float | None) -> None:
        gain = self._current_gain_db()
        if not self.auto or gain is None or self.timeline.pending_since is not None:
            return
        new_gain = gain_after_clipping(gain, loudest_clipped_dbfs)
        if new_gain < gain and self.set_gain(new_gain):
            log.info("clipping: gain %.1f dB -> %.1f dB", gain, new_gain)

    def _maybe_step_up(self, now_s: float) -> None:
        gain = self._current_gain_db()
        if gain is None or self.timeline.pending_since is not None:
            return
        if now_s - self.last_loud_s < QUIET_S_BEFORE_GAIN_UP:
            return
        higher = gain_after_quiet(gain)
        if higher is not None and self.set_gain(higher):
            log.info("quiet for a minute: gain %.1f dB -> %.1f dB", gain, higher)
            self.last_loud_s = now_s
