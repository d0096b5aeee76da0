"""Our own client of the standard rtl_tcp protocol (pyrtlsdr's client speaks something else).

On connect the server sends a 12-byte header (``RTL0``, tuner type, number of gain steps); then
unsigned 8-bit I/Q flows. The client sends 5-byte commands (code, big-endian argument): sample
rate, frequency, frequency correction, gain mode and gain (tenths of a dB).

When the stream drops, :meth:`RtlTcpSource.read` reconnects with exponential backoff (0.5 s to
10 s), resends the settings, and marks the next chunk as a discontinuity: the samples the dongle
took while the link was down are lost, and their time is accounted for by the wall clock.

Every wait — connecting, reading, backing off — is cut into slices of ``STOP_POLL_S`` that look
at the ``stop`` callable: once it says stop, :meth:`RtlTcpSource.read` returns ``None`` (the end
of the stream) within a fraction of a second, whatever state the link is in.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time
from collections.abc import Callable
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
STOP_POLL_S = 0.1  # no wait lasts longer than this without looking at ``stop``


class StopRequestedError(Exception):
    """Raised inside the client when ``stop`` says so; :meth:`RtlTcpSource.read` turns it into
    the end of the stream."""


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
        stop: Callable[[], bool] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.sample_rate_hz = sample_rate_hz
        self.center_hz = center_hz
        self.gain_db = None if gain_db is None else nearest_gain_db(gain_db)
        self.ppm = ppm
        self.give_up_after_s = give_up_after_s
        self.stop = stop or (lambda: False)
        self.tuner_type: int | None = None
        self.gain_count: int | None = None
        self.reconnects = 0
        self._sock: socket.socket | None = None
        self._next_sample = 0
        self._discontinuity = False
        try:
            self._connect()
        except StopRequestedError:
            raise DeviceError(f"rtl_tcp {host}:{port}: stopped while connecting") from None
        self.start_time = self._anchor_time

    # --- connection -----------------------------------------------------------------------------
    def _open_socket(self) -> socket.socket:
        """A connected TCP socket, the connection made in slices that look at ``stop``."""
        last: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                code = sock.connect_ex(address)
                deadline = time.monotonic() + CONNECT_TIMEOUT_S
                while code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
                    if self.stop():
                        raise StopRequestedError
                    left_s = deadline - time.monotonic()
                    if left_s <= 0:
                        raise TimeoutError(f"no answer within {CONNECT_TIMEOUT_S:.0f} s")
                    _, writable, _ = select.select([], [sock], [], min(STOP_POLL_S, left_s))
                    if writable:
                        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code != 0:
                    raise ConnectionRefusedError(
                        code, f"cannot connect: {errno.errorcode.get(code, code)}"
                    )
                sock.settimeout(STOP_POLL_S)
                return sock
            except OSError as err:
                sock.close()
                last = err
            except StopRequestedError:
                sock.close()
                raise
        raise last or OSError(f"{self.host} has no address")

    def _connect(self) -> None:
        sock = self._open_socket()
        try:
            header = self._recv_exact(sock, HEADER_SIZE)
            self.tuner_type, self.gain_count = unpack_header(header)
            sock.sendall(self._settings())
        except StopRequestedError:
            sock.close()
            raise
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

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        """``n`` bytes; ``TimeoutError`` when the server sends nothing for ``READ_TIMEOUT_S``."""
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        quiet_since = time.monotonic()
        while got < n:
            if self.stop():
                raise StopRequestedError
            try:
                k = sock.recv_into(view[got:], n - got)
            except TimeoutError:  # one slice with nothing: look at stop, then wait on
                if time.monotonic() - quiet_since > READ_TIMEOUT_S:
                    raise TimeoutError(f"nothing for {READ_TIMEOUT_S:.0f} s") from None
                continue
            if k == 0:
                raise ConnectionError("the server closed the connection")
            got += k
            quiet_since = time.monotonic()
        return bytes(buf)

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` in slices; :class:`StopRequestedError` as soon as ``stop`` says so."""
        end = time.monotonic() + seconds
        while (left_s := end - time.monotonic()) > 0:
            if self.stop():
                raise StopRequestedError
            time.sleep(min(STOP_POLL_S, left_s))

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
                self._pause(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            self.reconnects += 1
            self._discontinuity = True
            return

    # --- SampleSource -----------------------------------------------------------------------------
    def read(self, n_samples: int) -> Chunk | None:
        """The next ``n_samples``, reconnecting as long as it takes; None once ``stop`` says so."""
        try:
            raw = self._read_bytes(2 * n_samples)
        except StopRequestedError:
            log.info("rtl_tcp %s:%d: stopped", self.host, self.port)
            self.close()
            return None
        return self._chunk(raw, n_samples)

    def _read_bytes(self, n_bytes: int) -> bytes:
        while True:
            if self._sock is None:
                self._reconnect()
            assert self._sock is not None
            try:
                return self._recv_exact(self._sock, n_bytes)
            except (OSError, ConnectionError) as err:
                log.warning("rtl_tcp stream from %s:%d dropped: %s", self.host, self.port, err)
                self._sock.close()
                self._sock = None

    def _chunk(self, raw: bytes, n_samples: int) -> Chunk:
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
