"""Calibrate the detector's thresholds on noise: the tails of its three statistics.

- ``spectrogram``: cells drawn Exp(1) (what the floor-normalised spectrogram of noise is) through
  the very statistic and peak picking of :mod:`receiver.detect`; the rate of final peaks per
  channel-hour above each z-score, fitted ``log(rate) = A − B·z`` on the tail: ``FA_TAIL_A``,
  ``FA_TAIL_B``.
- ``header``: the simulator's dongle noise (thermal noise, I/Q imbalance, 8-bit converter)
  through the whole receiver, the coherent header search's statistic of every candidate the
  spectrogram nominates at the receiver's setting; ``log P(T > t) = A − B·t`` per candidate
  nominated on ideal noise: ``HEADER_TAIL_A``, ``HEADER_TAIL_B``.
- ``known``: white Gaussian noise through :func:`receiver.demod.search_known`, windows of 3,200
  starts (100 ms at 32 kS/s); ``P(T > t) = exp(A − t)``: ``KNOWN_TAIL_A``.

Run: python bench/calibrate_detector.py [spectrogram CHANNEL_HOURS | header SECONDS | known WINDOWS]
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime

import numpy as np
from common import Progress

from firmware_sim.frontend import RtlFrontEnd
from receiver.cadence import KNOWN_TAIL_SAMPLES
from receiver.detect import STRIDE, WINDOW_STEPS, Detector
from receiver.samples import Chunk
from receiver.sdr import FRAME_SAMPLES_SUB, HeardFrame, ReceiverConfig, SdrReceiver
from safetynet.sntx import frame_bits

BINS = 1000
CHANNEL_BINS = 25
FS = 2_400_000


def spectrogram(channel_hours: float) -> None:
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


class NoiseSource:
    """The simulated dongle's noise alone, as a sample source."""

    sample_rate_hz = float(FS)
    center_hz = 216_500_000.0
    position = None
    live = False
    start_time = datetime(2026, 11, 28, 14, tzinfo=UTC)

    def __init__(self, seconds: float, seed: int) -> None:
        self.frontend = RtlFrontEnd()
        self.rng = np.random.default_rng(seed)
        self.left = int(seconds * FS)
        self.done = 0
        self.progress = Progress("noise seconds", seconds)

    def read(self, n: int) -> Chunk | None:
        if self.left <= 0:
            return None
        n = min(n, self.left)
        z = np.zeros(n, np.complex64)
        self.frontend.add_noise(z, self.rng)
        cu8, _ = self.frontend.digitise(z)
        chunk = Chunk(self.done, cu8=cu8, gain_db=40.2,
                      cal_dbm_at_fullscale=self.frontend.cal_dbm_at_fullscale)  # fmt: skip
        self.done += n
        self.left -= n
        self.progress.update(self.done / FS)
        return chunk

    def set_gain(self, gain_db: float | None) -> bool:
        return False

    def close(self) -> None:
        pass


def header(seconds: float) -> None:
    config = ReceiverConfig()
    receiver = SdrReceiver(NoiseSource(seconds, 1), config)  # type: ignore[arg-type]
    stats: list[float] = []

    def observe(heard: HeardFrame) -> None:
        stats.append(heard.statistic)

    receiver.observe = observe
    for _ in receiver.run():
        pass
    channel_hours = seconds * 40 / 3600
    t = np.array(stats)
    nominal = config.candidates_per_channel_hour
    print(
        f"{channel_hours:.1f} channel-hours: {t.size} candidates = {t.size / channel_hours:.0f} "
        f"per channel-hour (nominal {nominal:g})"
    )
    grid = np.arange(8.0, 24.01, 1.0)
    shares = np.array([(t > g).mean() for g in grid])
    for g, s in zip(grid, shares, strict=True):
        print(f"T > {g:4.1f}: {s:.4f} of candidates")
    usable = (shares * t.size >= 15) & (shares <= 0.3)
    b, a = np.polyfit(grid[usable], np.log(shares[usable]), 1)
    a_nominal = a + math.log(t.size / channel_hours / nominal)
    print(
        f"fit: P(T > t) = exp({a:.3f} - {-b:.3f} t) per candidate  ->  HEADER_TAIL_A = "
        f"{a_nominal:.3f} (per nominal candidate), HEADER_TAIL_B = {-b:.3f}"
    )


def known(windows: int) -> None:
    from receiver.demod import search_known

    rng = np.random.default_rng(3)
    bits = frame_bits(0x3A7F, 41)
    n = KNOWN_TAIL_SAMPLES + FRAME_SAMPLES_SUB
    t = np.empty(windows)
    progress = Progress("windows", windows)
    for i in range(windows):
        y = ((rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)).astype(
            np.complex128
        )
        t[i] = search_known(y, bits, 1.0, 0, KNOWN_TAIL_SAMPLES, 150.0).statistic
        progress.update(i + 1)
    grid = np.arange(8.0, 16.01, 0.5)
    shares = np.array([(t > g).mean() for g in grid])
    for g, s in zip(grid, shares, strict=True):
        print(f"T > {g:4.1f}: {s:.4f} of windows")
    usable = (shares * windows >= 15) & (shares <= 0.2)
    a = float(np.mean(np.log(shares[usable]) + grid[usable]))
    print(f"fit: P(T > t) = exp({a:.2f} - t) per window of {KNOWN_TAIL_SAMPLES}  ->  KNOWN_TAIL_A")


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "spectrogram"
    amount = float(sys.argv[2]) if len(sys.argv) > 2 else None
    if kind == "spectrogram":
        spectrogram(amount or 5.0)
    elif kind == "header":
        header(amount or 1800.0)
    elif kind == "known":
        known(int(amount or 4000))
    else:
        sys.exit(f"unknown calibration {kind!r}: spectrogram, header or known")


if __name__ == "__main__":
    main()
