"""A KrakenSDR's DAQ IQ server for a simulated array: Heimdall frames over TCP.

It speaks what the Heimdall firmware's IQ server does (:mod:`safetynet.heimdall`): a client
connects, sends ``streaming`` and gets a frame; each ``IQDownload`` it sends brings the next one;
anything else, or a closed socket, ends the session and the server waits for the next client
(one at a time; the simulated time runs on across reconnections, as the hardware keeps
sampling). Frames carry ``cpi_length`` samples of every channel as complex float32 (data type 3),
the tuners' 8-bit values scaled to full scale as the firmware's decimator does.

The first frame and one every ``cal_every_s`` of stream time are calibration frames (type 3,
``noise_source_state`` 1): antennas off, the common noise source on. For the receiver's tests
it can also corrupt frames' sync words (``bad_sync_frames``) or close the connection after a
number of frames (``drop_after_frames``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from firmware_sim.array import ADC_RATE_HZ, ArrayStream
from firmware_sim.serving import ServesClients
from firmware_sim.world import Link
from safetynet.heimdall import (
    NEXT_COMMAND,
    START_COMMAND,
    DataType,
    FrameType,
    IqHeader,
)

log = logging.getLogger(__name__)

CPI_LENGTH = 1 << 15  # samples per channel per frame: 109 ms at 300 kHz
CAL_EVERY_S = 60.0
COMMAND_WAIT_S = 0.2


@dataclass
class DaqServer(ServesClients):
    stream: ArrayStream
    host: str = "127.0.0.1"
    port: int = 5000
    cpi_length: int = CPI_LENGTH
    cal_every_s: float = CAL_EVERY_S
    speed: float = 0.0  # 1 = real time; 0 = as fast as the client asks
    bad_sync_frames: set[int] = field(default_factory=set)  # frame numbers sent corrupted
    drop_after_frames: int | None = None  # close the first session after this many frames
    frames_sent: int = 0
    links: list[Link] = field(default_factory=list)  # every frame heard, for the tests' truth
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None
    _cpi_index: int = 0
    _last_cal_s: float | None = None
    client_kind = "DAQ"

    @property
    def finished(self) -> bool:
        return self.stream.t_next_s >= self.stream.world.duration_s

    def describe(self) -> str:
        return f"KrakenSDR DAQ server for {self.stream.receiver.receiver_id}"

    def next_frame(self) -> bytes:
        """The next frame's bytes (header and payload)."""
        t0 = self.stream.t_next_s
        calibration = self._last_cal_s is None or t0 - self._last_cal_s >= self.cal_every_s
        if calibration:
            self._last_cal_s = t0
        z, links = self.stream.read(self.cpi_length, calibration=calibration)
        self.links.extend(links)
        start = self.stream.world.start.timestamp()
        header = IqHeader(
            frame_type=FrameType.CALIBRATION if calibration else FrameType.DATA,
            unit_id=self.stream.receiver.index,
            active_ant_chs=self.stream.geometry.n,
            rf_center_freq_hz=round(self.stream.center_hz),
            adc_sampling_freq_hz=ADC_RATE_HZ,
            sampling_freq_hz=round(self.stream.sample_rate_hz),
            cpi_length=self.cpi_length,
            time_stamp_ms=round((start + t0) * 1000.0),
            daq_block_index=self._cpi_index,
            cpi_index=self._cpi_index,
            data_type=DataType.CF32,
            sample_bit_depth=32,
            if_gains_tenth_db=[round(self.stream.tuners.gain_db * 10)] * self.stream.geometry.n,
            noise_source_state=1 if calibration else 0,
        )
        self._cpi_index += 1
        raw = bytearray(header.pack())
        if self.frames_sent in self.bad_sync_frames:
            raw[0:4] = b"\xde\xad\xbe\xef"
        payload = np.ascontiguousarray(z, dtype=np.complex64).tobytes()  # channel after channel
        self.frames_sent += 1
        return bytes(raw) + payload

    def _serve_client(self, conn: socket.socket) -> None:
        conn.settimeout(COMMAND_WAIT_S)
        if self._command(conn) != START_COMMAND:
            return
        wall0 = time.monotonic()
        stream_t0 = self.stream.t_next_s
        sent = 0
        try:
            while not self._stop.is_set() and not self.finished:
                conn.settimeout(None)
                conn.sendall(self.next_frame())
                sent += 1
                if self.drop_after_frames is not None and sent >= self.drop_after_frames:
                    log.info("dropping the connection after %d frames as asked", sent)
                    self.drop_after_frames = None
                    break
                if self.speed > 0:
                    delay = wall0 + (self.stream.t_next_s - stream_t0) / self.speed
                    time.sleep(max(delay - time.monotonic(), 0.0))
                conn.settimeout(COMMAND_WAIT_S)
                command = self._command(conn)
                if command != NEXT_COMMAND:
                    log.info("DAQ client sent %r: session over", command)
                    break
        except OSError:  # the client went away
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _command(self, conn: socket.socket) -> bytes | None:
        """The client's next command (None if it closed or stopped), waiting in slices."""
        while not self._stop.is_set():
            try:
                data = conn.recv(1024)
            except TimeoutError:
                continue
            except OSError:
                return None
            return data.strip(b"\0\r\n") if data else None
        return None
