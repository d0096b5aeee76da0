"""RTL-SDR facts shared by the simulator and the receiver.

- The R820T tuner's gain steps (dB), as librtlsdr reports them.
- The nominal calibration of spec/air-interface.md §8: ``P_dBm = P_dBFS + cal_dbm_at_fullscale``,
  with ``cal_dbm_at_fullscale = FULLSCALE_DBM_AT_0DB − gain_db`` for a typical dongle; a measured
  table per dongle replaces it.
- The cu8 sample format: interleaved unsigned 8-bit I/Q, value ``(x − 127.5) / 127.5``.
- The standard rtl_tcp protocol: a 12-byte header ``RTL0`` + tuner type + gain count (big-endian
  uint32), then the cu8 stream; commands of 5 bytes (1 byte code, 4 bytes big-endian argument).
"""

from __future__ import annotations

import struct
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

R820T_GAINS_DB: tuple[float, ...] = (
    0.0, 0.9, 1.4, 2.7, 3.7, 7.7, 8.7, 12.5, 14.4, 15.7, 16.6, 19.7, 20.7, 22.9, 25.4,
    28.0, 29.7, 32.8, 33.8, 36.4, 37.2, 38.6, 40.2, 42.1, 43.4, 43.9, 44.5, 48.0, 49.6,
)  # fmt: skip

# Input power (dBm at the antenna port) that reaches digital full scale with 0 dB of tuner gain.
# Chosen so that the conformance vector's -80 dBm at 40.2 dB holds for the nominal table.
FULLSCALE_DBM_AT_0DB = -39.8

SAMPLE_RATES_HZ: tuple[int, ...] = (1_024_000, 2_048_000, 2_400_000)

CU8_CENTER = 127.5


def nominal_cal_dbm_at_fullscale(gain_db: float) -> float:
    """Nominal calibration offset (dBm at full scale) for a tuner gain setting."""
    return FULLSCALE_DBM_AT_0DB - gain_db


def nearest_gain_db(gain_db: float) -> float:
    """The R820T gain step nearest to ``gain_db`` (what librtlsdr selects)."""
    return min(R820T_GAINS_DB, key=lambda g: abs(g - gain_db))


def cu8_to_complex(
    raw: NDArray[np.uint8], out: NDArray[np.complex64] | None = None
) -> NDArray[np.complex64]:
    """Interleaved cu8 bytes → complex64 samples ``(x − 127.5) / 127.5`` (into ``out`` if given)."""
    n = raw.size // 2
    if out is None:
        out = np.empty(n, dtype=np.complex64)
    pairs = out[:n].view(np.float32).reshape(n, 2)
    np.subtract(raw[: 2 * n].reshape(n, 2), CU8_CENTER, out=pairs, casting="unsafe")
    pairs *= np.float32(1.0 / CU8_CENTER)
    return out[:n]


class TunerType(IntEnum):
    """rtl_tcp tuner type codes (librtlsdr's enum)."""

    UNKNOWN = 0
    E4000 = 1
    FC0012 = 2
    FC0013 = 3
    FC2580 = 4
    R820T = 5
    R828D = 6


class Command(IntEnum):
    """rtl_tcp command codes (5-byte commands: code, big-endian uint32 argument)."""

    SET_FREQUENCY = 0x01
    SET_SAMPLE_RATE = 0x02
    SET_GAIN_MODE = 0x03  # 0 automatic, 1 manual
    SET_GAIN = 0x04  # tenths of a dB
    SET_FREQ_CORRECTION = 0x05  # ppm, signed
    SET_IF_GAIN = 0x06
    SET_TEST_MODE = 0x07
    SET_AGC_MODE = 0x08
    SET_DIRECT_SAMPLING = 0x09
    SET_OFFSET_TUNING = 0x0A
    SET_RTL_XTAL = 0x0B
    SET_TUNER_XTAL = 0x0C
    SET_GAIN_BY_INDEX = 0x0D
    SET_BIAS_TEE = 0x0E


HEADER_MAGIC = b"RTL0"
HEADER_SIZE = 12
COMMAND_SIZE = 5


def pack_header(tuner: TunerType, gain_count: int) -> bytes:
    return HEADER_MAGIC + struct.pack(">II", int(tuner), gain_count)


def unpack_header(data: bytes) -> tuple[int, int]:
    """(tuner type, gain count) of a 12-byte rtl_tcp header; ValueError if it is not one."""
    if len(data) != HEADER_SIZE or data[:4] != HEADER_MAGIC:
        raise ValueError(f"not an rtl_tcp header: {data[:12]!r}")
    tuner, gains = struct.unpack(">II", data[4:])
    return int(tuner), int(gains)


def pack_command(command: Command, argument: int) -> bytes:
    return struct.pack(">BI", int(command), argument & 0xFFFFFFFF)


def unpack_command(data: bytes) -> tuple[int, int]:
    """(code, argument as unsigned) of a 5-byte command."""
    code, argument = struct.unpack(">BI", data)
    return int(code), int(argument)


def signed32(value: int) -> int:
    """Reinterpret an unsigned 32-bit command argument as signed (frequency correction)."""
    return value - (1 << 32) if value & 0x80000000 else value
