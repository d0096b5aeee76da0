"""Cadence-aided detection: once a bracelet has been heard, its next frames are looked for where
its one-second cadence puts them, with every bit of them known.

A decoded frame tells the receiver the bracelet's ID, its status (whose 5-bit frame counter
steps by one a frame, the flags rarely change) and its carrier to a few hertz, so its next frame
is known bit for bit. Its start is known to the jitter: frame ``k`` starts at ``t0 + k·T + j_k``
(spec §2: ``j_k`` uniform in ±25 ms, ``T`` one second within ±100 ppm). From the frames already
heard, ``t0 + k·T`` is predicted as the mean of ``s_i + (k − k_i)·T`` (each ``s_i`` is off by its
own jitter: the mean of ``n`` is off by about 14 ms/√n); the window adds ±25 ms for the new
frame's own jitter and the clock's 100 ppm over the gap.

When the single-frame detector has reported nothing of the bracelet in that window,
:func:`receiver.demod.measure_known` searches it coherently over all 56 bits (3.7 dB more
than the 24-bit header alone) and carriers within ±150 Hz, for a threshold set by the window's
size (:func:`known_threshold`): the false pulses this adds stay at ``KNOWN_FALSE_PER_HOUR`` per
bracelet followed, for frames 3 to 4 dB weaker than the single-frame threshold.

:class:`CadenceSearch` holds the bracelets followed; the receiver feeds it every frame it keeps
and asks it which windows are due.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from safetynet.sntx import FRAME_JITTER_S, FRAME_PERIOD_S, frame_bits

CLOCK_TOLERANCE = 100e-6  # the bracelet's clock: ±100 ppm (spec §2)
FOLLOW_S = 120.0  # a bracelet is followed this long after it was last heard
ANCHORS = 8  # the frames heard last, from which the next is predicted
KNOWN_HALF_HZ = 150.0  # carrier search about the bracelet's last carrier
# The known-frame search's maximum over a window of 3,200 samples at 32 kS/s (100 ms) on noise:
# P(T > t) = exp(KNOWN_TAIL_A − t), an Exp(1) per cell over about 40,000 cells (Monte Carlo,
# bench/calibrate_detector.py); a window of n samples has n/3,200 times as many cells.
KNOWN_TAIL_A = 10.6
KNOWN_TAIL_SAMPLES = 3200
KNOWN_FALSE_PER_HOUR = 0.1  # added false pulses per bracelet followed, per hour
JITTER_SD_S = FRAME_JITTER_S / math.sqrt(3.0)  # of a uniform ±25 ms


def known_threshold(window_samples: int, false_per_hour: float = KNOWN_FALSE_PER_HOUR) -> float:
    """Threshold on the known-frame statistic for a window of ``window_samples`` starts (32 kS/s)
    searched once a second: ``false_per_hour`` false finds per hour of following a bracelet."""
    per_window = false_per_hour / 3600.0 * FRAME_PERIOD_S
    return KNOWN_TAIL_A + math.log(window_samples / KNOWN_TAIL_SAMPLES) - math.log(per_window)


@dataclass
class Followed:
    """A bracelet heard on this receiver: what its next frame will be, and when and where."""

    bracelet_id: int
    status_byte: int
    seq_frame: int  # the frame number (below) of the frame the status was read from
    freq_hz: float  # carrier as heard
    anchors: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=ANCHORS))
    searched: int = 0  # the last frame number searched for or heard
    last_heard_sample: float = 0.0

    def frame_number(self, start_sample: float, sample_rate_hz: float) -> int:
        """Frame number of a frame starting at ``start_sample`` (0: the first one heard)."""
        k0, s0 = self.anchors[0]
        return k0 + round((start_sample - s0) / (FRAME_PERIOD_S * sample_rate_hz))

    def predict(self, k: int, sample_rate_hz: float) -> tuple[float, float]:
        """(expected start sample of frame ``k``, half-width of its window in samples)."""
        period = FRAME_PERIOD_S * sample_rate_hz
        n = len(self.anchors)
        # The mean of s + (k − k_i)·T over the anchors, in plain floats (np.mean of eight
        # floats cost more than the rest of the cadence search: this runs every chunk).
        centre = (sum(s for _, s in self.anchors) + (n * k - sum(ki for ki, _ in self.anchors))
                  * period) / n  # fmt: skip
        gap_s = (k - self.anchors[-1][0]) * FRAME_PERIOD_S
        spread_s = 2.0 * JITTER_SD_S / math.sqrt(n) + CLOCK_TOLERANCE * gap_s
        half_s = FRAME_JITTER_S + min(spread_s, FRAME_JITTER_S)
        return centre, half_s * sample_rate_hz

    def bits_of(self, k: int) -> NDArray[np.uint8]:
        """The bits of frame ``k``: the last status read, its counter stepped on."""
        seq = ((self.status_byte >> 3) + (k - self.seq_frame)) % 32
        return frame_bits(self.bracelet_id, (seq << 3) | (self.status_byte & 0x07))


@dataclass(frozen=True)
class Window:
    """A due search: the frame expected, where (samples at the receiver's rate) and what."""

    bracelet_id: int
    frame: int
    first_sample: float
    last_sample: float  # the latest start of its first bit
    freq_hz: float
    bits: NDArray[np.uint8]


@dataclass
class CadenceSearch:
    """The bracelets followed by one receiver and the windows where their next frames are due."""

    sample_rate_hz: float
    followed: dict[int, Followed] = field(default_factory=dict)
    found: int = 0  # frames found by the known-frame search

    def heard(
        self, start_sample: float, freq_hz: float, bracelet_id: int | None, status_byte: int | None
    ) -> None:
        """A frame the receiver kept: a decoded one starts or feeds a bracelet's cadence; an
        undecoded one within a followed bracelet's window and carrier counts as its frame."""
        fs = self.sample_rate_hz
        if bracelet_id is not None and status_byte is not None:
            f = self.followed.get(bracelet_id)
            if f is None or start_sample - f.last_heard_sample > FOLLOW_S * fs:
                f = self.followed[bracelet_id] = Followed(bracelet_id, status_byte, 0, freq_hz)
                f.anchors.append((0, start_sample))
                f.searched = 0
            else:
                k = f.frame_number(start_sample, fs)
                if k <= f.anchors[-1][0]:
                    return  # a second report of one frame
                f.anchors.append((k, start_sample))
                f.status_byte, f.seq_frame, f.freq_hz = status_byte, k, freq_hz
                f.searched = max(f.searched, k)
            f.last_heard_sample = start_sample
            return
        for f in self.followed.values():
            if abs(freq_hz - f.freq_hz) > 2 * KNOWN_HALF_HZ + 1000.0:
                continue
            k = f.frame_number(start_sample, fs)
            centre, half = f.predict(k, fs)
            if abs(start_sample - centre) <= half and k > f.anchors[-1][0]:
                f.anchors.append((k, start_sample))
                f.searched = max(f.searched, k)
                f.last_heard_sample = start_sample

    def due(self, before_sample: float) -> list[Window]:
        """Windows not yet searched whose last possible frame ends before ``before_sample``;
        bracelets unheard for ``FOLLOW_S`` are dropped."""
        fs = self.sample_rate_hz
        out: list[Window] = []
        for key, f in list(self.followed.items()):
            if before_sample - f.last_heard_sample > FOLLOW_S * fs:
                del self.followed[key]
                continue
            while True:
                k = f.searched + 1
                centre, half = f.predict(k, fs)
                if centre + half + 0.035 * fs > before_sample:
                    break
                f.searched = k
                out.append(
                    Window(f.bracelet_id, k, centre - half, centre + half, f.freq_hz, f.bits_of(k))
                )
        return out

    def found_frame(self, window: Window, start_sample: float) -> None:
        """The known-frame search found ``window``'s frame at ``start_sample``."""
        f = self.followed.get(window.bracelet_id)
        self.found += 1
        if f is None:
            return
        f.anchors.append((window.frame, start_sample))
        f.last_heard_sample = start_sample
