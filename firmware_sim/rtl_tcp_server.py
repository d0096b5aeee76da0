"""An rtl_tcp server that streams a simulated receiver's I/Q over the standard protocol.

On connect it sends the 12-byte header (``RTL0``, tuner type R820T, the number of gain steps),
then cu8 samples, paced at real time (``speed`` = 1), faster (``speed`` > 1) or as fast as the
socket takes them (``speed`` = 0). It honours the 5-byte commands a client sends: frequency,
sample rate, gain mode, gain, frequency correction, AGC mode and gain by index; the rest are
acknowledged in the log and have no effect on a simulated dongle. Like rtl_tcp it serves one
client at a time; the simulated time runs on across reconnections. The ground truth of every
frame streamed is written to ``truth`` (JSON Lines) when given.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import IO

from firmware_sim.iq import IqStream, heard_record
from firmware_sim.serving import ServesClients
from firmware_sim.truth import write_record
from firmware_sim.world import ReceiverSim, World
from safetynet.rtl import (
    COMMAND_SIZE,
    R820T_GAINS_DB,
    Command,
    TunerType,
    pack_header,
    signed32,
    unpack_command,
)

log = logging.getLogger(__name__)

CHUNK_S = 0.02


@dataclass
class RtlTcpServer(ServesClients):
    world: World
    receiver: ReceiverSim
    host: str = "127.0.0.1"
    port: int = 1234
    speed: float = 1.0
    truth: IO[str] | None = None
    drop_after_s: float | None = None  # close the connection after this much stream time
    commands_seen: list[tuple[int, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sock: socket.socket | None = None
    client_kind = "rtl_tcp"

    def __post_init__(self) -> None:
        self.stream = IqStream(self.world, self.receiver)
        self._manual_gain_db: float | None = self.receiver.frontend.gain_db

    @property
    def finished(self) -> bool:
        return self.stream.t_next_s >= self.world.duration_s

    def describe(self) -> str:
        return f"rtl_tcp server for {self.receiver.receiver_id}"

    def _serve_client(self, conn: socket.socket) -> None:
        conn.settimeout(None)  # blocking sends: a slow client slows the stream, as on a dongle
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(pack_header(TunerType.R820T, len(R820T_GAINS_DB)))
        gone = threading.Event()
        reader = threading.Thread(target=self._read_commands, args=(conn, gone), daemon=True)
        reader.start()
        wall0 = time.monotonic()
        stream_t0 = self.stream.t_next_s
        try:
            while not self._stop.is_set() and not gone.is_set() and not self.finished:
                with self._lock:
                    fe = self.receiver.frontend
                    n = int(fe.sample_rate_hz * CHUNK_S)
                    cu8, _, heard = self.stream.read(n)
                    if self.truth is not None:
                        for h in heard:
                            write_record(
                                self.truth,
                                heard_record(
                                    self.world, self.receiver, h, fe.sample_rate_hz, fe.center_hz
                                ),
                            )
                conn.sendall(cu8.tobytes())
                elapsed_stream = self.stream.t_next_s - stream_t0
                if self.drop_after_s is not None and elapsed_stream >= self.drop_after_s:
                    log.info("dropping the connection after %.1f s as asked", elapsed_stream)
                    self.drop_after_s = None
                    break
                if self.speed > 0:
                    delay = wall0 + elapsed_stream / self.speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
        except OSError:  # the client went away
            pass
        finally:
            gone.set()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _read_commands(self, conn: socket.socket, gone: threading.Event) -> None:
        buf = b""
        while not gone.is_set():
            try:
                ready, _, _ = select.select([conn], [], [], 0.2)
                if not ready:
                    continue
                data = conn.recv(64)
            except (OSError, ValueError):
                break
            if not data:
                break
            buf += data
            while len(buf) >= COMMAND_SIZE:
                code, argument = unpack_command(buf[:COMMAND_SIZE])
                buf = buf[COMMAND_SIZE:]
                self.apply(code, argument)
        gone.set()

    def apply(self, code: int, argument: int) -> None:
        """Apply one rtl_tcp command to the simulated dongle."""
        self.commands_seen.append((code, argument))
        fe = self.receiver.frontend
        with self._lock:
            try:
                command = Command(code)
            except ValueError:
                log.warning("unknown rtl_tcp command 0x%02x (%d) ignored", code, argument)
                return
            if command is Command.SET_FREQUENCY:
                fe.center_hz = float(argument)
            elif command is Command.SET_SAMPLE_RATE:
                try:
                    fe.set_sample_rate(argument)
                except ValueError as err:
                    log.warning("rtl_tcp: %s; keeping %d S/s", err, fe.sample_rate_hz)
            elif command is Command.SET_GAIN_MODE:
                fe.set_gain(
                    None if argument == 0 else (self._manual_gain_db or fe.effective_gain_db)
                )
            elif command is Command.SET_GAIN:
                self._manual_gain_db = signed32(argument) / 10.0
                fe.set_gain(self._manual_gain_db)
            elif command is Command.SET_GAIN_BY_INDEX:
                index = min(max(argument, 0), len(R820T_GAINS_DB) - 1)
                self._manual_gain_db = R820T_GAINS_DB[index]
                fe.set_gain(self._manual_gain_db)
            elif command is Command.SET_FREQ_CORRECTION:
                fe.ppm_correction = signed32(argument)
            elif command is Command.SET_AGC_MODE:
                fe.digital_agc = bool(argument)
            log.info("rtl_tcp %s(%d)", command.name, signed32(argument))
