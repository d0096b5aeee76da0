"""Our own client of the standard rtl_tcp protocol (pyrtlsdr's client speaks something else).

On connect the server sends a 12-byte header (``RTL0``, tuner type, number of gain steps); then
unsigned 8-bit I/Q flows. The client sends 5-byte commands (code, big-endian argument): sample
rate, frequency, frequency correction, gain mode and gain (tenths of a dB).

When the stream drops, :meth:`RtlTcpSource.read` reconnects with exponential backoff (0.5 s to
10 s), resends the settings, and marks the next chunk as a discontinuity: the samples the dongle
took while the link was down are lost, and their time is accounted for by the wall clock.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime, timedelta

import numpy as np

from receiver.samples import Chunk
from safetynet.errors import DeviceError
from safetynet.rtl import (
    HEADER_SIZE,
    Command,
    nearest_gain_db,
    nominal_cal_dbm_at_fullscale,
    pack_command,
    unpack_header,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0


class RtlTcpSource:
    """Samples from an rtl_tcp server (``rtltcp://host:port``)."""

    live = True
    position: tuple[float, float, float] | None = None

    def __init__(
        self,
        host: str,
        port: int,
        sample_rate_hz: float,
        center_hz: float,
        gain_db: float | None = None,
        ppm: int = 0,
        give_up_after_s: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.sample_rate_hz = sample_rate_hz
        self.center_hz = center_hz
        self.gain_db = None if gain_db is None else nearest_gain_db(gain_db)
        self.ppm = ppm
        self.give_up_after_s = give_up_after_s
        self.tuner_type: int | None = None
        self.gain_count: int | None = None
        self.reconnects = 0
        self._sock: socket.socket | None = None
        self._next_sample = 0
        self._discontinuity = False
        self._connect()
        self.start_time = self._anchor_time

    # --- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        try:
            sock.settimeout(READ_TIMEOUT_S)
            header = self._recv_exact(sock, HEADER_SIZE)
            self.tuner_type, self.gain_count = unpack_header(header)
            sock.sendall(self._settings())
        except (OSError, ValueError) as err:
            sock.close()
            raise DeviceError(f"rtl_tcp {self.host}:{self.port}: bad handshake: {err}") from err
        self._sock = sock
        self._anchor_time = datetime.now(UTC)
        self._anchor_sample = self._next_sample
        log.info(
            "rtl_tcp connected to %s:%d (tuner type %s)", self.host, self.port, self.tuner_type
        )

    def _settings(self) -> bytes:
        commands = [
            pack_command(Command.SET_SAMPLE_RATE, int(self.sample_rate_hz)),
            pack_command(Command.SET_FREQUENCY, int(self.center_hz)),
            pack_command(Command.SET_FREQ_CORRECTION, self.ppm),
        ]
        if self.gain_db is None:
            commands.append(pack_command(Command.SET_GAIN_MODE, 0))
        else:
            commands.append(pack_command(Command.SET_GAIN_MODE, 1))
            commands.append(pack_command(Command.SET_GAIN, round(self.gain_db * 10)))
        return b"".join(commands)

    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ConnectionError("the server closed the connection")
            got += k
        return bytes(buf)

    def _reconnect(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        delay = BACKOFF_MIN_S
        started = time.monotonic()
        while True:
            try:
                self._connect()
            except (OSError, DeviceError) as err:
                waited = time.monotonic() - started
                if self.give_up_after_s is not None and waited > self.give_up_after_s:
                    raise DeviceError(
                        f"rtl_tcp {self.host}:{self.port} gone for {waited:.0f} s: {err}"
                    ) from err
                log.warning(
                    "rtl_tcp %s:%d unreachable (%s); retrying in %.1f s",
                    self.host,
                    self.port,
                    err,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self.reconnects += 1
            self._discontinuity = True
            return

    # --- SampleSource -----------------------------------------------------------------------------
    def read(self, n_samples: int) -> Chunk | None:
        while True:
            if self._sock is None:
                self._reconnect()
            assert self._sock is not None
            try:
                raw = self._recv_exact(self._sock, 2 * n_samples)
                break
            except (OSError, ConnectionError) as err:
                log.warning("rtl_tcp stream from %s:%d dropped: %s", self.host, self.port, err)
                self._sock.close()
                self._sock = None
        first = self._next_sample
        self._next_sample += n_samples
        t0 = self._anchor_time + timedelta(
            seconds=(first - self._anchor_sample) / self.sample_rate_hz
        )
        chunk = Chunk(
            first, cu8=np.frombuffer(raw, np.uint8), gain_db=self.gain_db,
            cal_dbm_at_fullscale=(
                None if self.gain_db is None else nominal_cal_dbm_at_fullscale(self.gain_db)
            ),
            t0=t0, discontinuity=self._discontinuity,
        )  # fmt: skip
        self._discontinuity = False
        return chunk

    def set_gain(self, gain_db: float | None) -> bool:
        self.gain_db = None if gain_db is None else nearest_gain_db(gain_db)
        if self._sock is None:
            return True  # applied on reconnection
        try:
            if self.gain_db is None:
                self._sock.sendall(pack_command(Command.SET_GAIN_MODE, 0))
            else:
                self._sock.sendall(
                    pack_command(Command.SET_GAIN_MODE, 1)
                    + pack_command(Command.SET_GAIN, round(self.gain_db * 10))
                )
        except OSError as err:
            log.warning("could not send the gain to %s:%d: %s", self.host, self.port, err)
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
