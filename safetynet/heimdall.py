"""The KrakenSDR's DAQ stream: Heimdall IQ frames, shared by the simulator and the receiver.

A KrakenSDR (five RTL2832U/R820T tuners on one clock) runs the Heimdall DAQ firmware, whose IQ
server (TCP port 5000) sends frames of a fixed 1,024-byte header followed by the channels'
samples. The client connects, sends ``streaming``, then ``IQDownload`` before every further
frame (anything else ends the session). The header is the firmware's ``iq_header_struct``
(``_daq_core/iq_header.h`` in ``krakenrf/heimdall_daq_fw``) as a little-endian C compiler lays it
out, natural alignment included (4 padding bytes before ``rf_center_freq`` and before
``time_stamp``)::

    offset  field                  type        notes
       0    sync_word              uint32      0x2BF7B95A
       4    frame_type             uint32      0 data, 1 dummy, 2 ramp, 3 calibration, 4 trigger
       8    hardware_id            char[16]    NUL-padded, e.g. "KrakenSDR"
      24    unit_id                uint32
      28    active_ant_chs         uint32      channels in the payload
      32    ioo_type               uint32
      40    rf_center_freq         uint64      Hz
      48    adc_sampling_freq      uint64      Hz
      56    sampling_freq          uint64      Hz, after decimation
      64    cpi_length             uint32      samples per channel
      72    time_stamp             uint64      Unix time, ms
      80    daq_block_index        uint32
      84    cpi_index              uint32      +1 per frame (a gap: frames were dropped)
      88    ext_integration_cntr   uint64
      96    data_type              uint32      2 cint8 (offset binary), 3 complex float32
     100    sample_bit_depth       uint32      8 or 32 (per I or Q)
     104    adc_overdrive_flags    uint32      bit per channel
     108    if_gains               uint32[32]  tenths of a dB per channel
     236    delay_sync_flag        uint32
     240    iq_sync_flag           uint32
     244    sync_state             uint32
     248    noise_source_state     uint32      1 while the calibration noise source is on
     252    reserved               uint32[192]
    1020    header_version         uint32      7

The payload is channel after channel, each ``cpi_length`` interleaved I/Q values: float32 in
full-scale units for ``data_type`` 3 (the decimator's output: ``(x − 127.5) / 127.5`` of the
tuner's 8-bit samples), offset-binary bytes for ``data_type`` 2 (the raw tuner output).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

SYNC_WORD = 0x2BF7B95A
HEADER_SIZE = 1024
HEADER_VERSION = 7
IQ_SERVER_PORT = 5000
MAX_CHANNELS = 32  # if_gains has room for 32
MAX_CPI_LENGTH = 1 << 22  # Heimdall's own buffers stop well below this
START_COMMAND = b"streaming"
NEXT_COMMAND = b"IQDownload"

# Little-endian, padding written out ("4x") where the C compiler aligns the 64-bit fields.
_LAYOUT = struct.Struct("<II16sIII4xQQQI4xQIIQIII32IIIII192II")
assert _LAYOUT.size == HEADER_SIZE


class FrameType(IntEnum):
    DATA = 0
    DUMMY = 1
    RAMP = 2
    CALIBRATION = 3
    TRIGGER = 4


class DataType(IntEnum):
    CINT8 = 2  # offset-binary bytes, as the tuners deliver them
    CF32 = 3  # complex float32, full-scale units, as the decimator delivers them


BIT_DEPTHS = {DataType.CINT8: 8, DataType.CF32: 32}


class HeaderError(ValueError):
    """A header that no Heimdall firmware would send (its message says which field and why)."""


@dataclass
class IqHeader:
    """One frame's header (fields as in the module docstring; frequencies in Hz, time in ms)."""

    frame_type: int = FrameType.DATA
    hardware_id: str = "KrakenSDR"
    unit_id: int = 0
    active_ant_chs: int = 5
    ioo_type: int = 0
    rf_center_freq_hz: int = 0
    adc_sampling_freq_hz: int = 0
    sampling_freq_hz: int = 0
    cpi_length: int = 0
    time_stamp_ms: int = 0
    daq_block_index: int = 0
    cpi_index: int = 0
    ext_integration_cntr: int = 0
    data_type: int = DataType.CF32
    sample_bit_depth: int = 32
    adc_overdrive_flags: int = 0
    if_gains_tenth_db: list[int] = field(default_factory=lambda: [0] * MAX_CHANNELS)
    delay_sync_flag: int = 1
    iq_sync_flag: int = 1
    sync_state: int = 6
    noise_source_state: int = 0
    header_version: int = HEADER_VERSION
    sync_word: int = SYNC_WORD

    @property
    def payload_bytes(self) -> int:
        """Bytes of samples after the header: channels × samples × (I and Q) × bit depth."""
        return self.active_ant_chs * self.cpi_length * 2 * self.sample_bit_depth // 8

    def pack(self) -> bytes:
        name = self.hardware_id.encode("ascii")[:15]
        gains = list(self.if_gains_tenth_db) + [0] * (MAX_CHANNELS - len(self.if_gains_tenth_db))
        return _LAYOUT.pack(
            self.sync_word, self.frame_type, name, self.unit_id, self.active_ant_chs,
            self.ioo_type, self.rf_center_freq_hz, self.adc_sampling_freq_hz,
            self.sampling_freq_hz, self.cpi_length, self.time_stamp_ms, self.daq_block_index,
            self.cpi_index, self.ext_integration_cntr, self.data_type, self.sample_bit_depth,
            self.adc_overdrive_flags, *gains[:MAX_CHANNELS], self.delay_sync_flag,
            self.iq_sync_flag, self.sync_state, self.noise_source_state, *([0] * 192),
            self.header_version,
        )  # fmt: skip

    @classmethod
    def unpack(cls, data: bytes) -> IqHeader:
        """Decode and validate a header; :class:`HeaderError` says what is impossible in it."""
        if len(data) != HEADER_SIZE:
            raise HeaderError(f"a header is {HEADER_SIZE} bytes, got {len(data)}")
        v = _LAYOUT.unpack(data)
        if v[0] != SYNC_WORD:
            raise HeaderError(f"sync word must be {SYNC_WORD:#010x}, got {v[0]:#010x}")
        header = cls(
            sync_word=v[0], frame_type=v[1],
            hardware_id=v[2].split(b"\0", 1)[0].decode("ascii", "replace"), unit_id=v[3],
            active_ant_chs=v[4], ioo_type=v[5], rf_center_freq_hz=v[6],
            adc_sampling_freq_hz=v[7], sampling_freq_hz=v[8], cpi_length=v[9],
            time_stamp_ms=v[10], daq_block_index=v[11], cpi_index=v[12],
            ext_integration_cntr=v[13], data_type=v[14], sample_bit_depth=v[15],
            adc_overdrive_flags=v[16], if_gains_tenth_db=list(v[17:49]), delay_sync_flag=v[49],
            iq_sync_flag=v[50], sync_state=v[51], noise_source_state=v[52],
            header_version=v[-1],
        )  # fmt: skip
        header.validate()
        return header

    def validate(self) -> None:
        if self.frame_type not in set(FrameType):
            raise HeaderError(f"frame_type must be 0..4, got {self.frame_type}")
        if not 1 <= self.active_ant_chs <= MAX_CHANNELS:
            raise HeaderError(
                f"active_ant_chs must be 1..{MAX_CHANNELS}, got {self.active_ant_chs}"
            )
        if self.cpi_length > MAX_CPI_LENGTH:
            raise HeaderError(f"cpi_length must be at most {MAX_CPI_LENGTH}, got {self.cpi_length}")
        if self.frame_type in (FrameType.DATA, FrameType.CALIBRATION):
            if self.data_type not in set(DataType):
                raise HeaderError(f"data_type must be 2 (cint8) or 3 (cf32), got {self.data_type}")
            expected = BIT_DEPTHS[DataType(self.data_type)]
            if self.sample_bit_depth != expected:
                raise HeaderError(
                    f"sample_bit_depth of data_type {self.data_type} must be {expected}, "
                    f"got {self.sample_bit_depth}"
                )
            if self.cpi_length == 0:
                raise HeaderError("a data or calibration frame needs cpi_length > 0")
            if not 0 < self.sampling_freq_hz <= 10_000_000:
                raise HeaderError(
                    f"sampling_freq must be within 1 Hz..10 MHz, got {self.sampling_freq_hz}"
                )
            if not 24_000_000 <= self.rf_center_freq_hz <= 1_766_000_000:
                raise HeaderError(
                    "rf_center_freq must be within the R820T's 24..1766 MHz, "
                    f"got {self.rf_center_freq_hz}"
                )
