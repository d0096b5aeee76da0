"""A handheld search receiver (SNHH-1) emulated on a pseudo-terminal.

:class:`HandheldEmulator` turns one handheld receiver of a :class:`~firmware_sim.world.World`
into the lines its unit would print: ``$PSNID`` at power-up and every 10 s, ``$GNRMC`` and
``$GNGGA`` at 1 Hz, ``$HCHDT`` at 10 Hz, ``$PSNPD`` for each frame its detector hears and
``$PSNST`` every 5 s. The unit's own detector hears a frame when its SNR in 10 kHz reaches
``detect_snr_db`` and reads the ID when it reaches ``decode_snr_db``; it reports the RSSI with
``rssi_noise_db`` of measurement noise, and its heading with the receiver's compass error.

Faults on request: bytes of line noise, corrupted checksums, a GPS outage, and an unplug and
replug (the pseudo-terminal is closed and a new one opened; a stable symlink — like
``/dev/serial/by-id`` — points at whichever is current).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_sim.bracelet import TxFrame
from firmware_sim.world import ReceiverSim, World
from safetynet.angles import wrap_360
from safetynet.nmea import lat_field, lon_field, sentence
from safetynet.reports import channel_center_hz
from safetynet.rtl import nominal_cal_dbm_at_fullscale

log = logging.getLogger(__name__)

FIRMWARE = "1.4.2"


@dataclass(frozen=True)
class Faults:
    line_noise_per_s: float = 0.0  # bursts of random bytes per second
    bad_checksum_fraction: float = 0.0
    gps_outage_s: tuple[float, float] | None = None
    unplug_at_s: float | None = None
    replug_after_s: float = 2.0


@dataclass
class HandheldEmulator:
    world: World
    receiver: ReceiverSim
    faults: Faults = Faults()
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.world.seed, 7, self.receiver.index])

    def _utc(self, t_s: float) -> tuple[str, str]:
        moment = self.world.time_of(t_s)
        hhmmss = moment.strftime("%H%M%S") + f".{moment.microsecond // 1000:03d}"
        return hhmmss, moment.strftime("%d%m%y")

    def _has_fix(self, t_s: float) -> bool:
        outage = self.faults.gps_outage_s
        return not (outage and outage[0] <= t_s < outage[1])

    def events(self) -> Iterator[tuple[float, str]]:
        """(time, line) pairs in time order, for the whole scenario."""
        items: list[tuple[float, int, str]] = []
        rx = self.receiver
        unit_id = rx.receiver_id[:16]
        antenna = rx.pattern.name
        duration = self.world.duration_s
        for t10 in range(0, int(duration) + 1, 10):
            items.append((float(t10), 0, sentence("PSNID", unit_id, FIRMWARE, antenna)))
        for second in range(int(duration) + 1):
            items.extend((second + 0.001, 1, line) for line in self._position_lines(float(second)))
        for tenth in range(int(duration * 10) + 1):
            t = tenth / 10.0
            heading = wrap_360(rx.pose.heading_deg(t) + rx.errors.compass())
            items.append((t + 0.002, 2, sentence("HCHDT", f"{heading:.1f}", "T")))
        # The unit's ADC clips when a frame arrives above its full scale at the unit's gain.
        fullscale_dbm = nominal_cal_dbm_at_fullscale(rx.unit.gain_db)
        clip_times = [
            f.t_start_s
            for f in self.world.frames()
            if self.world.link(f, rx).power_dbm > fullscale_dbm
        ]
        for t5 in range(5, int(duration) + 1, 5):
            clip = "1" if any(t5 - 5 <= t < t5 for t in clip_times) else "0"
            items.append(
                (float(t5) + 0.003, 3, sentence("PSNST", self._utc(t5)[0], "3.91", "18.5", clip))
            )
        for frame in self.world.frames():
            line = self._pulse_line(frame)
            if line is not None:
                items.append((frame.t_start_s + 0.030, 4, line))  # printed when the frame ends
        items.sort(key=lambda item: (item[0], item[1]))
        for t, _, line in items:
            yield t, self._damage(line)

    def _position_lines(self, t_s: float) -> list[str]:
        hhmmss, ddmmyy = self._utc(t_s)
        hhmmss = hhmmss[:6] + ".00"
        if not self._has_fix(t_s):
            return [
                sentence("GNRMC", hhmmss, "V", "", "", "", "", "", "", ddmmyy, "", "", "N"),
                sentence(
                    "GNGGA", hhmmss, "", "", "", "", "0", "00", "99.9", "", "M", "", "M", "", ""
                ),
            ]
        lat, lon = self.world.frame.to_lat_lon(*self.receiver.reported_position(t_s))
        lat_f, ns = lat_field(lat)
        lon_f, ew = lon_field(lon)
        return [
            sentence("GNRMC", hhmmss, "A", lat_f, ns, lon_f, ew, "0.4", "0.0", ddmmyy, "", "", "A"),
            sentence(
                "GNGGA",
                hhmmss,
                lat_f,
                ns,
                lon_f,
                ew,
                "1",
                "09",
                "0.9",
                "12.0",
                "M",
                "-33.0",
                "M",
                "",
                "",
            ),
        ]

    def _pulse_line(self, frame: TxFrame) -> str | None:
        rx = self.receiver
        link = self.world.link(frame, rx)
        noise_dbm_hz = rx.frontend.noise_dbm_per_hz
        snr_db = link.power_dbm - noise_dbm_hz - 40.0
        if snr_db < rx.unit.detect_snr_db:
            return None
        rssi = link.power_dbm + float(self.rng.normal(0, rx.unit.rssi_noise_db))
        snr = snr_db + float(self.rng.normal(0, rx.unit.rssi_noise_db))
        decoded = snr_db >= rx.unit.decode_snr_db
        freq = round(
            channel_center_hz(frame.channel) + (frame.freq_rf_hz - channel_center_hz(frame.channel))
        )
        return sentence(
            "PSNPD",
            self._utc(frame.t_start_s)[0],
            str(frame.channel),
            str(freq),
            f"{frame.bracelet_id:04X}" if decoded else "",
            f"{frame.status_byte:02X}" if decoded else "",
            f"{rssi:.1f}",
            f"{snr:.1f}",
            f"{rx.unit.gain_db:.1f}",
        )

    def _damage(self, line: str) -> str:
        if (
            self.faults.bad_checksum_fraction
            and self.rng.random() < self.faults.bad_checksum_fraction
        ):
            body, tail = line[:-5], line[-5:]
            line = body + ("0" if tail[1] != "0" else "1") + tail[2:]
        if self.faults.line_noise_per_s and self.rng.random() < self.faults.line_noise_per_s / 12.0:
            noise = bytes(self.rng.integers(0, 256, int(self.rng.integers(1, 20)))).decode(
                "latin-1"
            )
            line = (
                noise + line if self.rng.random() < 0.5 else line[: len(line) // 2] + noise + "\r\n"
            )
        return line

    # --- on a pseudo-terminal -------------------------------------------------------------------
    def run_on_pty(
        self, link_path: Path, speed: float = 1.0, stop: threading.Event | None = None
    ) -> None:
        """Write the lines to a pseudo-terminal reachable at ``link_path`` (a symlink), paced."""
        stop = stop or threading.Event()
        master, slave = _open_pty(link_path)
        wall0 = time.monotonic()
        unplugged = False
        try:
            for t, line in self.events():
                if stop.is_set():
                    break
                if speed > 0:
                    delay = wall0 + t / speed - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                faults = self.faults
                if faults.unplug_at_s is not None and not unplugged and t >= faults.unplug_at_s:
                    unplugged = True
                    log.info("handheld %s unplugged", self.receiver.receiver_id)
                    _close(master, slave)
                    link_path.unlink(missing_ok=True)
                    if stop.wait(
                        faults.replug_after_s / max(speed, 1e-9)
                        if speed > 0
                        else faults.replug_after_s
                    ):
                        return
                    master, slave = _open_pty(link_path)
                    log.info("handheld %s plugged back in", self.receiver.receiver_id)
                    continue  # what happened while unplugged is lost, as on a real unit
                with contextlib.suppress(OSError):
                    os.write(master, line.encode("latin-1"))
        finally:
            _close(master, slave)
            link_path.unlink(missing_ok=True)


def _open_pty(link_path: Path) -> tuple[int, int]:
    """A new pseudo-terminal pair; ``link_path`` points at its slave side.

    The emulator keeps the slave open too, so that the line stays up between a reader's opens
    (as a USB device does), and writes to the master without blocking: when nobody reads and the
    buffer is full, lines are dropped, as a CDC-ACM device drops them.
    """
    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    tmp = link_path.with_name(link_path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.ttyname(slave))
    tmp.replace(link_path)
    return master, slave


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
