"""A KrakenSDR as a sample source: Heimdall DAQ frames over TCP (``kraken://host:port``).

The client of :mod:`safetynet.heimdall`'s protocol: connect, send ``streaming``, read a frame
(1,024-byte header, then every channel's samples), send ``IQDownload``, read the next. Every
header is validated (:meth:`~safetynet.heimdall.IqHeader.unpack`: sync word, frame type, data
type against bit depth, channel count, sizes, frequencies) before a byte of its payload is
read: a bad one means the stream can no longer be trusted to be aligned, so the connection is
dropped and made again, as is one that closes or stays silent ``READ_TIMEOUT_S``. Reconnecting
backs off from 0.5 s to 10 s; every wait is cut into slices that look at ``stop``, so nothing
hangs. A stream whose channel count or sample rate changes is an error (:class:`DeviceError`).

**Calibration**: a calibration frame (the noise source on) gives the per-channel corrections
(:func:`receiver.doa.calibration_weights`); every later data frame is corrected with them.
Until the first one the channels are not coherent and :meth:`KrakenSource.window` gives
nothing (no bearings, pulses still flow).

:meth:`KrakenSource.read` returns channel 0's samples (the reference: what the single-channel
detector listens to); the last ``HOLD_S`` seconds of every channel stay available to
:meth:`KrakenSource.window` for the pulses found in them. A calibration frame's samples carry
no antenna signal, so the data after one is a discontinuity, as are frames after a gap in the
frame counter or a reconnection.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from receiver.doa import calibration_weights
from receiver.samples import Chunk
from safetynet.errors import DeviceError
from safetynet.heimdall import (
    HEADER_SIZE,
    NEXT_COMMAND,
    START_COMMAND,
    DataType,
    FrameType,
    HeaderError,
    IqHeader,
)
from safetynet.rtl import nominal_cal_dbm_at_fullscale

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 1.0
READ_TIMEOUT_S = 5.0
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 10.0
STOP_POLL_S = 0.1
HOLD_S = 3.0
MAX_PAYLOAD_BYTES = 64 << 20
STAMP_AGREES_S = 2e-3  # the header's ms time stamp and the counted time, within rounding


class LinkLostError(Exception):
    """The stream dropped or sent what cannot be read; the source reconnects."""


class StopRequestedError(Exception):
    pass


class KrakenSource:
    """A coherent array's channels from a KrakenSDR DAQ server."""

    live = True
    position: tuple[float, float, float] | None = None

    def __init__(
        self,
        host: str,
        port: int,
        n_channels: int | None = None,
        stop: Callable[[], bool] | None = None,
        give_up_after_s: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.stop = stop or (lambda: False)
        self.give_up_after_s = give_up_after_s
        self.n_channels = n_channels
        self.weights: NDArray[np.complex128] | None = None
        self.calibrations = 0
        self.reconnects = 0
        self.bad_headers = 0
        self.frames_read = 0
        self._sock: socket.socket | None = None
        self._held: deque[tuple[datetime, NDArray[np.complex64]]] = deque()
        self._next_index: int | None = None
        self._stream_sample = 0
        self._discontinuity = False
        self._first: tuple[IqHeader, NDArray[np.complex64]] | None = None
        self._rate_hz: int | None = None
        try:
            self._sock = self._connect_once()
            header, x = self._read_frame()
        except (OSError, LinkLostError, HeaderError, StopRequestedError) as err:
            self.close()
            raise DeviceError(f"KrakenSDR {host}:{port}: cannot start the stream: {err}") from err
        self._rate_hz = header.sampling_freq_hz
        self.sample_rate_hz = float(header.sampling_freq_hz)
        self.center_hz = float(header.rf_center_freq_hz)
        self.n_channels = header.active_ant_chs
        self.start_time = datetime.fromtimestamp(header.time_stamp_ms / 1000.0, UTC)
        self._t_next = self.start_time
        self._first = (header, x)

    @property
    def calibrated(self) -> bool:
        return self.weights is not None

    # --- the SampleSource interface --------------------------------------------------------
    def read(self, n_samples: int) -> Chunk | None:
        """The next data frame's reference channel (whatever ``n_samples``); None once stopped."""
        while True:
            try:
                header, x = self._take_frame()
            except StopRequestedError:
                return None
            t0 = self._frame_time(header)
            first = self._stream_sample
            self._stream_sample += header.cpi_length
            self._t_next = t0 + timedelta(seconds=header.cpi_length / self.sample_rate_hz)
            if header.frame_type == FrameType.CALIBRATION:
                try:
                    self.weights = calibration_weights(x)
                    self.calibrations += 1
                    log.info("KrakenSDR calibrated (frame %d)", header.cpi_index)
                except ValueError as err:
                    log.error("KrakenSDR calibration frame %d unusable: %s", header.cpi_index, err)
                self._discontinuity = True
                continue
            if header.frame_type != FrameType.DATA:
                self._discontinuity = True
                continue
            if self.weights is not None:
                x = (x * self.weights[:, None]).astype(np.complex64)
            self._hold(t0, x)
            gain_db = header.if_gains_tenth_db[0] / 10.0
            chunk = Chunk(
                first_sample=first,
                iq=np.ascontiguousarray(x[0]),
                gain_db=gain_db,
                cal_dbm_at_fullscale=nominal_cal_dbm_at_fullscale(gain_db),
                t0=t0,
                discontinuity=self._discontinuity,
            )
            self._discontinuity = False
            return chunk

    def set_gain(self, gain_db: float | None) -> bool:
        return False  # the DAQ sets the tuners' gains; this client only listens

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    # --- the array's channels ----------------------------------------------------------------
    def window(self, start: datetime, length_s: float) -> NDArray[np.complex64] | None:
        """Every calibrated channel from ``start`` for ``length_s`` (N × m), if still held and
        contiguous; None otherwise (or before the first calibration)."""
        if self.weights is None:
            return None
        fs = self.sample_rate_hz
        m = round(length_s * fs)
        parts: list[NDArray[np.complex64]] = []
        need_t = start
        got = 0
        for t0, x in self._held:
            end = t0 + timedelta(seconds=x.shape[1] / fs)
            if end <= need_t:
                continue
            offset = round((need_t - t0).total_seconds() * fs)
            if offset < 0:
                if parts and abs(offset) <= 1:
                    offset = 0  # rounding at the join of two frames
                else:
                    return None
            piece = x[:, offset : offset + m - got]
            parts.append(piece)
            got += piece.shape[1]
            need_t = end
            if got >= m:
                return np.concatenate(parts, axis=1)
        return None

    def _hold(self, t0: datetime, x: NDArray[np.complex64]) -> None:
        if self._discontinuity:
            self._held.clear()
        self._held.append((t0, x))
        while self._held and (t0 - self._held[0][0]).total_seconds() > HOLD_S:
            self._held.popleft()

    # --- frames ------------------------------------------------------------------------------
    def _frame_time(self, header: IqHeader) -> datetime:
        """Exact time from the sample count while frames follow one another. After a gap, the
        lost frames' length (as many frames of this length) when the header's millisecond time
        stamp agrees with it, else the time stamp."""
        expected = self._next_index
        self._next_index = header.cpi_index + 1
        if expected is None or header.cpi_index == expected:
            return self._t_next
        log.warning("KrakenSDR: frame %d after %d: frames lost", header.cpi_index, expected - 1)
        self._discontinuity = True
        stamped = datetime.fromtimestamp(header.time_stamp_ms / 1000.0, UTC)
        lost = (header.cpi_index - expected) * header.cpi_length / self.sample_rate_hz
        counted = self._t_next + timedelta(seconds=lost)
        if abs((counted - stamped).total_seconds()) <= STAMP_AGREES_S:
            return counted
        return stamped

    def _take_frame(self) -> tuple[IqHeader, NDArray[np.complex64]]:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        lost_since: float | None = None
        backoff = BACKOFF_MIN_S
        while True:
            if self.stop():
                raise StopRequestedError
            try:
                if self._sock is None:
                    self._sock = self._connect_once()
                    self.reconnects += 1
                    self._discontinuity = True
                    log.info("KrakenSDR %s:%d: connected again", self.host, self.port)
                else:
                    self._sock.sendall(NEXT_COMMAND)
                header, x = self._read_frame()
                self.frames_read += 1
                return header, x
            except (OSError, LinkLostError, HeaderError) as err:
                if isinstance(err, HeaderError):
                    self.bad_headers += 1
                log.error("KrakenSDR %s:%d: %s; reconnecting", self.host, self.port, err)
                self.close()
                now = time.monotonic()
                lost_since = now if lost_since is None else lost_since
                if self.give_up_after_s is not None and now - lost_since > self.give_up_after_s:
                    raise DeviceError(
                        f"KrakenSDR {self.host}:{self.port}: no stream for "
                        f"{self.give_up_after_s:.0f} s: {err}"
                    ) from err
                self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _connect_once(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
        sock.settimeout(STOP_POLL_S)
        sock.sendall(START_COMMAND)
        return sock

    def _read_frame(self) -> tuple[IqHeader, NDArray[np.complex64]]:
        header = IqHeader.unpack(self._recv_exact(HEADER_SIZE))
        if header.frame_type not in (FrameType.DATA, FrameType.CALIBRATION):
            size = header.payload_bytes if header.cpi_length else 0
            if size > MAX_PAYLOAD_BYTES:
                raise HeaderError(f"a {size}-byte payload is more than any frame holds")
            self._recv_exact(size)
            return header, np.zeros((header.active_ant_chs, 0), np.complex64)
        if header.payload_bytes > MAX_PAYLOAD_BYTES:
            raise HeaderError(
                f"a {header.payload_bytes}-byte payload is more than {MAX_PAYLOAD_BYTES} bytes"
            )
        if self.n_channels is not None and header.active_ant_chs != self.n_channels:
            raise DeviceError(
                f"KrakenSDR {self.host}:{self.port}: {header.active_ant_chs} channels in the "
                f"stream, the array has {self.n_channels}"
            )
        if self._rate_hz is not None and header.sampling_freq_hz != self._rate_hz:
            raise DeviceError(
                f"KrakenSDR {self.host}:{self.port}: the sample rate changed from "
                f"{self._rate_hz} to {header.sampling_freq_hz} S/s"
            )
        raw = self._recv_exact(header.payload_bytes)
        n, m = header.active_ant_chs, header.cpi_length
        if header.data_type == DataType.CF32:
            x = np.frombuffer(raw, dtype="<c8").reshape(n, m).astype(np.complex64)
        else:
            b = np.frombuffer(raw, dtype=np.uint8).astype(np.float32).reshape(n, m, 2)
            b = (b - np.float32(127.5)) / np.float32(127.5)
            x = (b[..., 0] + 1j * b[..., 1]).astype(np.complex64)
        if not np.isfinite(x.view(np.float32)).all():
            raise HeaderError("the payload holds NaN or infinite samples")
        return header, x

    def _recv_exact(self, n: int) -> bytes:
        assert self._sock is not None
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        quiet_since = time.monotonic()
        while got < n:
            if self.stop():
                raise StopRequestedError
            try:
                k = self._sock.recv_into(view[got:], n - got)
            except TimeoutError:
                if time.monotonic() - quiet_since > READ_TIMEOUT_S:
                    raise LinkLostError(f"no data for {READ_TIMEOUT_S:.0f} s") from None
                continue
            if k == 0:
                raise LinkLostError(f"the server closed the connection ({got} of {n} bytes)")
            got += k
            quiet_since = time.monotonic()
        return bytes(buf)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stop():
                raise StopRequestedError
            time.sleep(min(STOP_POLL_S, max(end - time.monotonic(), 0.0)))
