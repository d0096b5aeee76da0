"""A simulated vehicle's GNSS receiver (and GNSS compass) as an NMEA 0183 stream over TCP.

What a car's GNSS puts on gpsd's raw port or a phone app's NMEA server: ``$GNRMC`` and
``$GNGGA`` at 1 Hz — the receiver's reported position (the true track plus its GPS error,
:meth:`~firmware_sim.world.ReceiverSim.reported_position`), speed and course over ground from
the true track, the scenario's date — and a compass at 10 Hz with the receiver's compass error
(its bias and noise): ``compass="hdt"`` a GNSS compass's true heading (``$HCHDT``), ``"hdg"``
a magnetic compass's (``$HCHDG``, magnetic = true − ``variation_deg``, the variation in the
sentence), ``""`` none (the receiver then takes the course). Times are the scenario's
(:meth:`~firmware_sim.world.World.time_of`), the same clock as the DAQ server's time stamps.

Pacing: a sentence for scenario time ``t`` is sent once ``clock()`` has reached it: the DAQ
stream's time (``lambda: daq.stream.t_next_s``) keeps the two servers in step at any speed;
the default is real time from the first client's connection. One client at a time
(:func:`~firmware_sim.serving.serve_clients`); the scenario time runs on across reconnections.

Faults for the receiver's tests: ``silent`` (no byte in that span of scenario time, the
connection kept open), ``drop_at_s`` (the connection closed once at that time),
``no_fix`` (RMC ``V`` and GGA quality 0 in that span), ``bad_checksum_every`` (every n-th
sentence with a wrong checksum) and ``garbage_every`` (bytes of noise before every n-th).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from firmware_sim.serving import ServesClients
from firmware_sim.world import ReceiverSim, World
from safetynet.angles import bearing_of_enu, wrap_360
from safetynet.nmea import KNOT_MPS, lat_field, lon_field, sentence

log = logging.getLogger(__name__)

FIX_EVERY_S = 1.0
COMPASS_EVERY_S = 0.1
SEND_POLL_S = 0.02
VELOCITY_SPAN_S = 0.5  # the true velocity from the track over this span either side


@dataclass
class GnssServer(ServesClients):
    world: World
    receiver: ReceiverSim
    host: str = "127.0.0.1"
    port: int = 0
    compass: str = "hdt"  # "hdt", "hdg" or "" (none)
    variation_deg: float = -14.5  # magnetic variation, east positive (Boston's: 14.5° W)
    clock: Callable[[], float] | None = None  # scenario seconds now; None: real time
    silent: tuple[float, float] | None = None
    drop_at_s: float | None = None
    no_fix: tuple[float, float] | None = None
    bad_checksum_every: int = 0
    garbage_every: int = 0
    sentences_sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _sock: socket.socket | None = None
    _next_s: float = 0.0  # the scenario time of the next sentence to send
    _wall0: float | None = None

    client_kind = "GNSS"

    @property
    def finished(self) -> bool:
        return self._next_s > self.world.duration_s

    def describe(self) -> str:
        return f"GNSS NMEA for {self.receiver.receiver_id}"

    def now_s(self) -> float:
        if self.clock is not None:
            return self.clock()
        if self._wall0 is None:
            self._wall0 = time.monotonic()
        return time.monotonic() - self._wall0

    # --- sentences ----------------------------------------------------------------------------
    def sentences_at(self, t_s: float) -> list[str]:
        """What the unit sends at scenario time ``t_s`` (a multiple of the compass period)."""
        tick = round(t_s / COMPASS_EVERY_S)
        out: list[str] = []
        if tick % round(FIX_EVERY_S / COMPASS_EVERY_S) == 0:
            out += self._fix_sentences(t_s)
        if self.compass:
            true = self.receiver.pose.heading_deg(t_s)
            heading = wrap_360(true + self.receiver.errors.compass())
            if self.compass == "hdt":
                out.append(sentence("HCHDT", f"{heading:.2f}", "T"))
            else:
                magnetic = wrap_360(heading - self.variation_deg) % 360.0
                ew = "E" if self.variation_deg >= 0 else "W"
                out.append(sentence("HCHDG", f"{magnetic:.1f}", "", "",
                                    f"{abs(self.variation_deg):.1f}", ew))  # fmt: skip
        return out

    def _fix_sentences(self, t_s: float) -> list[str]:
        moment = self.world.time_of(t_s)
        hhmmss = moment.strftime("%H%M%S") + f".{moment.microsecond // 10_000:02d}"
        ddmmyy = moment.strftime("%d%m%y")
        if self.no_fix is not None and self.no_fix[0] <= t_s < self.no_fix[1]:
            return [
                sentence("GNRMC", hhmmss, "V", "", "", "", "", "", "", ddmmyy, "", "", "N"),
                sentence("GNGGA", hhmmss, "", "", "", "", "0", "00", "99.9", "", "M", "", "M",
                         "", ""),
            ]  # fmt: skip
        lat, lon = self.world.frame.to_lat_lon(*self.receiver.reported_position(t_s))
        lat_f, ns = lat_field(lat)
        lon_f, ew = lon_field(lon)
        speed_mps, course_deg = self.true_velocity(t_s)
        alt = self.receiver.altitude_m
        return [
            sentence("GNRMC", hhmmss, "A", lat_f, ns, lon_f, ew, f"{speed_mps / KNOT_MPS:.2f}",
                     f"{course_deg:.1f}", ddmmyy, "", "", "A"),
            sentence("GNGGA", hhmmss, lat_f, ns, lon_f, ew, "1", "12", "0.8",
                     f"{alt + 33.0:.1f}", "M", "-33.0", "M", "", ""),
        ]  # fmt: skip

    def true_velocity(self, t_s: float) -> tuple[float, float]:
        """(speed m/s, course deg) of the true track around ``t_s``."""
        a = self.receiver.pose.position(max(t_s - VELOCITY_SPAN_S, 0.0))
        b = self.receiver.pose.position(t_s + VELOCITY_SPAN_S)
        span = t_s + VELOCITY_SPAN_S - max(t_s - VELOCITY_SPAN_S, 0.0)
        de, dn = b[0] - a[0], b[1] - a[1]
        speed = math.hypot(de, dn) / span
        course = float(bearing_of_enu(de, dn)) if speed > 0.05 else 0.0
        return speed, course

    def _lines(self) -> Iterator[tuple[float, bytes]]:
        """(scenario time, bytes) of every sentence from ``_next_s`` on, faults applied."""
        rng = np.random.default_rng([self.world.seed, 12, self.receiver.index])
        while True:
            t = self._next_s
            for line in self.sentences_at(t):
                self.sentences_sent += 1
                n = self.sentences_sent
                text = line
                if self.bad_checksum_every and n % self.bad_checksum_every == 0:
                    text = line[:-4] + ("00" if line[-4:-2] != "00" else "11") + "\r\n"
                data = text.encode("ascii")
                if self.garbage_every and n % self.garbage_every == 0:
                    data = bytes(rng.integers(0, 256, int(rng.integers(3, 40)))) + data
                yield t, data
            self._next_s = round((t + COMPASS_EVERY_S) / COMPASS_EVERY_S) * COMPASS_EVERY_S

    # --- serving ------------------------------------------------------------------------------
    def _serve_client(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        lines = self._lines()
        held: tuple[float, bytes] | None = None
        try:
            while not self._stop.is_set() and not self.finished:
                held = held or next(lines)
                t, data = held
                if t > self.now_s():
                    time.sleep(SEND_POLL_S)
                    continue
                held = None
                if self.drop_at_s is not None and t >= self.drop_at_s:
                    self.drop_at_s = None
                    log.info("GNSS: dropping the connection at %.1f s as asked", t)
                    return
                if self.silent is not None and self.silent[0] <= t < self.silent[1]:
                    continue
                conn.sendall(data)
        except OSError:  # the client went away
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
