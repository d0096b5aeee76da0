"""Calibrate the detector's threshold: the rate of noise-only peaks per channel-hour against z.

Feeds cells drawn Exp(1) (what the floor-normalised spectrogram of noise is) through the very
statistic and peak picking of :mod:`receiver.detect`, counts the final peaks above each z-score,
fits ``log(rate) = A − B·z`` to the tail, and prints A and B (the constants ``FA_TAIL_A`` and
``FA_TAIL_B``) with the threshold for one false frame per channel-hour.
Run: python bench/calibrate_detector.py [CHANNEL_HOURS]
"""

from __future__ import annotations

import sys

import numpy as np
from common import Progress

from receiver.detect import STRIDE, WINDOW_STEPS, Detector

BINS = 1000
CHANNEL_BINS = 25


def main() -> None:
    channel_hours = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    seconds = channel_hours * 3600 / (BINS / CHANNEL_BINS)
    detector = Detector(2.4e6)
    z_low = 4.0
    detector.threshold = z_low
    rng = np.random.default_rng(11)
    allowed = np.ones(BINS, bool)
    chunk = 100
    peaks: list[float] = []
    blocks = int(seconds * 1000)
    progress = Progress("noise blocks", blocks)
    for first in range(0, blocks, chunk):
        cells = rng.exponential(size=(chunk, BINS)).astype(np.float32)
        d = detector.statistic(detector.group(cells))
        peaks += [
            c.statistic for c in detector.push(d, first - STRIDE * (WINDOW_STEPS - 1), allowed)
        ]
        progress.update(first + chunk)
    z = np.array(peaks)
    grid = np.arange(z_low, 8.01, 0.25)
    rates = np.array([(z > g).sum() / channel_hours for g in grid])
    for g, r in zip(grid, rates, strict=True):
        print(f"z > {g:5.2f}: {r:10.3f} false peaks per channel-hour")
    usable = (rates >= 20 / channel_hours) & (grid >= 5.5)  # the tail, with 20 peaks or more
    b, a = np.polyfit(grid[usable], np.log(rates[usable]), 1)
    print(f"fit: rate = exp({a:.3f} - {-b:.3f} z)  ->  FA_TAIL_A = {a:.3f}, FA_TAIL_B = {-b:.3f}")
    print(f"one per channel-hour at z = {a / -b:.2f}")


if __name__ == "__main__":
    main()
