"""A plainly written SNTX-1 demodulator for tests only — deliberately not the receiver's code.

It knows the channel's frequency offset in advance (the test sets the dongle's and bracelet's
errors), mixes the channel to zero, low-pass filters with a moving average, finds bursts by an
envelope threshold, and reads bits with an FM discriminator sampled at bit centres after
locating the sync word.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

BIT_S = 1 / 2000


def read_cu8(path: Path) -> NDArray[np.complex128]:
    raw = np.fromfile(path, dtype=np.uint8).astype(np.float64)
    return (raw[0::2] - 127.5) / 127.5 + 1j * (raw[1::2] - 127.5) / 127.5


def crc8(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


@dataclass
class PlainFrame:
    start_s: float  # first preamble bit
    on_air_s: float  # envelope above half its peak
    bracelet_id: int
    status: int
    crc_ok: bool
    deviation_hz: float
    centre_offset_hz: float  # measured carrier offset from the assumed one


def demodulate(
    iq: NDArray[np.complex128], fs: float, offset_hz: float, smooth_hz: float = 10_000
) -> list[PlainFrame]:
    n = np.arange(iq.size)
    base = iq * np.exp(-2j * np.pi * offset_hz * n / fs)
    taps = max(1, int(fs / smooth_hz))
    # Two boxcars in cascade: nulls every smooth_hz, sidelobes low enough that a neighbour
    # channel 50 kHz away stays 40 dB down.
    box = np.ones(taps) / taps
    lp = np.convolve(np.convolve(base, box, mode="same"), box, mode="same")
    env = np.abs(lp)
    noise = np.median(env)
    above = env > max(8 * noise, 0.3 * env.max())
    edges = np.flatnonzero(np.diff(above.astype(int)))
    frames = []
    bit_n = fs * BIT_S
    for start, stop in zip(edges[0::2] + 1, edges[1::2] + 1, strict=False):
        if (stop - start) / fs < 0.02:
            continue
        seg = slice(max(0, start - int(0.003 * fs)), min(iq.size, stop + int(0.003 * fs)))
        e = env[seg]
        half = e > 0.5 * np.percentile(e, 95)
        idx = np.flatnonzero(half)
        on_air = (idx[-1] - idx[0]) / fs
        disc = np.angle(lp[seg][1:] * np.conj(lp[seg][:-1])) * fs / (2 * np.pi)
        # Find the first bit: the preamble's 1→0 alternations; search for the best alignment of
        # the known 24-bit header against the discriminator.
        header = np.unpackbits(np.array([0xAA, 0x2D, 0xD4], dtype=np.uint8)).astype(float) * 2 - 1
        # Integrate-and-dump each bit over its middle 60 % and correlate with the known header;
        # the score peaks where the bit boundaries line up.
        cum = np.concatenate(([0.0], np.cumsum(disc)))
        first_guess = int(idx[0])
        best, best_k = -np.inf, first_guess
        for k in range(max(0, first_guess - int(bit_n)), first_guess + int(3 * bit_n)):
            lo = (k + (np.arange(24) + 0.2) * bit_n).astype(int)
            hi = (k + (np.arange(24) + 0.8) * bit_n).astype(int)
            if hi[-1] >= cum.size:
                break
            score = float(np.dot((cum[hi] - cum[lo]) / (hi - lo), header))
            if score > best:
                best, best_k = score, k
        centres = (best_k + (np.arange(56) + 0.5) * bit_n).astype(int)
        if centres[-1] >= disc.size:
            continue
        values = disc[centres]
        bits = (values > np.median(values[:8])).astype(np.uint8)
        data = np.packbits(bits).tobytes()
        payload = data[3:6]
        ones = values[bits == 1]
        zeros = values[bits == 0]
        frames.append(
            PlainFrame(
                start_s=(seg.start + best_k) / fs,
                on_air_s=on_air,
                bracelet_id=(payload[0] << 8) | payload[1],
                status=payload[2],
                crc_ok=crc8(payload) == data[6] and data[:3] == bytes([0xAA, 0x2D, 0xD4]),
                deviation_hz=float((np.mean(ones) - np.mean(zeros)) / 2),
                centre_offset_hz=float((np.mean(ones) + np.mean(zeros)) / 2),
            )
        )
    return frames
