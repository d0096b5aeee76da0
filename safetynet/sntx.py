"""SNTX-1 air-interface facts shared by the simulator and the receiver (spec/air-interface.md).

Frame layout (56 bits, MSB first, 2,000 bit/s): preamble ``0xAA``, sync ``0x2DD4``, bracelet ID
(16 bits, big-endian), status byte, CRC-8 (poly 0x07, init 0, no reflection, xor-out 0) over
ID-high, ID-low, status.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

BIT_RATE_BPS = 2000.0
TONE_DEVIATION_HZ = 2000.0
RAMP_S = 0.5e-3
FRAME_PERIOD_S = 1.0
FRAME_JITTER_S = 25e-3
PREAMBLE = 0xAA
SYNC_WORD = 0x2DD4
FRAME_BITS = 56
FRAME_S = FRAME_BITS / BIT_RATE_BPS  # 28 ms of bits
ON_AIR_S = FRAME_S + 2 * RAMP_S  # 29 ms with the ramps
HEADER_BITS = 24  # preamble + sync
BRACELET_CARRIER_TOLERANCE_PPM = 2.5
RECOMMENDED_CENTER_HZ = 216_500_000
RECOMMENDED_SAMPLE_RATE_HZ = 2_400_000


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, init 0x00, no reflection, xor-out 0x00 (check "123456789" → 0xF4)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def frame_bytes(bracelet_id: int, status_byte: int) -> bytes:
    """The 7 bytes of a frame: preamble, sync (2), ID (2), status, CRC."""
    if not 0 < bracelet_id < 0xFFFF:
        raise ValueError(f"bracelet ID must be within 0x0001..0xFFFE, got {bracelet_id:#06x}")
    if not 0 <= status_byte <= 0xFF:
        raise ValueError(f"status byte must be within 0..255, got {status_byte}")
    payload = bytes([bracelet_id >> 8, bracelet_id & 0xFF, status_byte])
    return bytes([PREAMBLE, SYNC_WORD >> 8, SYNC_WORD & 0xFF]) + payload + bytes([crc8(payload)])


def frame_bits(bracelet_id: int, status_byte: int) -> NDArray[np.uint8]:
    """The 56 bits of a frame, most significant bit first, as an array of 0/1."""
    return np.unpackbits(np.frombuffer(frame_bytes(bracelet_id, status_byte), dtype=np.uint8))


def header_bits() -> NDArray[np.uint8]:
    """The 24 known bits every frame starts with (preamble and sync word)."""
    return np.unpackbits(np.array([PREAMBLE, SYNC_WORD >> 8, SYNC_WORD & 0xFF], dtype=np.uint8))


def parse_payload(payload: bytes) -> tuple[int, int] | None:
    """(bracelet_id, status_byte) of the 4 bytes after the sync word, or None if the CRC fails."""
    if len(payload) != 4 or crc8(payload[:3]) != payload[3]:
        return None
    bracelet_id = (payload[0] << 8) | payload[1]
    if bracelet_id in (0x0000, 0xFFFF):
        return None
    return bracelet_id, payload[2]
