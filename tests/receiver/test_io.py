"""Receiver transports: rtl_tcp over a socket (with a drop), USB through pyrtlsdr, serial."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_sim.handheld import Faults, HandheldEmulator
from firmware_sim.iq import IqStream
from firmware_sim.rtl_tcp_server import RtlTcpServer
from receiver.handheld import HandheldReader, SnhhParser
from receiver.sdr import ReceiverConfig, SdrReceiver
from receiver.sources import open_source
from safetynet.angles import angle_diff_deg
from safetynet.reports import Pulse, Status
from safetynet.rtl import R820T_GAINS_DB
from tests.conftest import NMEA_DIR
from tests.firmware_sim.test_iq import scenario, stationary


def serve(world: Any, **kw: Any) -> RtlTcpServer:
    rx = world.receivers[0]
    rx.frontend.set_sample_rate(2_400_000)
    server = RtlTcpServer(world, rx, port=0, **kw)
    server.bind()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_rtl_tcp_client_against_simulator_with_a_drop() -> None:
    world = scenario([stationary("3A7F", 19, 800)], gain_db=33.8, ppm=20.0, duration_s=9.0)
    server = serve(world, speed=0, drop_after_s=3.0)
    source = open_source(f"rtltcp://127.0.0.1:{server.port}?gain=33.8&ppm=20")
    assert source.live
    receiver = SdrReceiver(source, ReceiverConfig(receiver_id="CAR-1"))
    pulses: list[Pulse] = []
    # Until the client itself has read to half a second from the end: the server renders
    # ahead of a slow client by what the sockets hold (a second or more under load), so its
    # own position said the stream was over while frames still waited, unread, in the buffers.
    read_s = 0.0
    while read_s < world.duration_s - 0.5:
        chunk = source.read(240_000)
        assert chunk is not None
        assert chunk.cu8 is not None
        read_s = (chunk.first_sample + chunk.cu8.size // 2) / source.sample_rate_hz
        pulses += [r for r in receiver.process(chunk) if isinstance(r, Pulse)]
    server.stop()
    assert source.reconnects == 1  # type: ignore[attr-defined]
    assert world.receivers[0].frontend.ppm_correction == 20
    assert world.receivers[0].frontend.gain_db == 33.8
    ids = [p.bracelet_id for p in pulses]
    assert ids.count("3A7F") >= 6
    assert set(ids) <= {"3A7F", None}
    assert ids.count(None) <= 1  # a frame cut by the drop is heard but not read


class FakeLibRtlSdr:
    """Stands in for librtlsdr's C functions only, as pyrtlsdr's own tests do; the samples come
    from the simulator."""

    def __init__(self, stream: IqStream) -> None:
        self.stream = stream
        self.fc, self.rs, self.ppm, self.gain, self.mode = 0, 0, 0, 0, 0
        self.gains = [round(g * 10) for g in R820T_GAINS_DB]

    def __getattr__(self, name: str) -> Any:
        """Library calls with nothing to simulate (dithering, bias tee, GPIO...) succeed."""
        if name.startswith("rtlsdr_"):
            return lambda *args: 0
        raise AttributeError(name)

    def rtlsdr_open(self, *args: Any) -> int:
        return 0

    def rtlsdr_close(self, *args: Any) -> int:
        return 0

    def rtlsdr_reset_buffer(self, *args: Any) -> int:
        return 0

    def rtlsdr_set_center_freq(self, dev: Any, fc: int) -> int:
        self.fc = fc
        self.stream.receiver.frontend.center_hz = float(fc)
        return 0

    def rtlsdr_get_center_freq(self, *args: Any) -> int:
        return self.fc

    def rtlsdr_set_freq_correction(self, dev: Any, ppm: int) -> int:
        self.ppm = ppm
        self.stream.receiver.frontend.ppm_correction = ppm
        return 0

    def rtlsdr_get_freq_correction(self, *args: Any) -> int:
        return self.ppm

    def rtlsdr_set_sample_rate(self, dev: Any, rs: int) -> int:
        self.rs = rs
        self.stream.receiver.frontend.set_sample_rate(rs)
        return 0

    def rtlsdr_get_sample_rate(self, *args: Any) -> int:
        return self.rs

    def rtlsdr_set_tuner_gain_mode(self, dev: Any, mode: int) -> int:
        self.mode = mode
        return 0

    def rtlsdr_set_tuner_gain(self, dev: Any, gain: int) -> int:
        self.gain = gain
        self.stream.receiver.frontend.set_gain(gain / 10.0)
        return 0

    def rtlsdr_get_tuner_gain(self, *args: Any) -> int:
        return self.gain

    def rtlsdr_get_tuner_gains(self, dev: Any, buf: Any) -> int:
        if buf is not None:
            for i, g in enumerate(self.gains):
                buf[i] = g
        return len(self.gains)

    def rtlsdr_set_agc_mode(self, *args: Any) -> int:
        return 0

    def rtlsdr_set_testmode(self, *args: Any) -> int:
        return 0

    def rtlsdr_set_and_get_tuner_bandwidth(self, *args: Any) -> int:
        return 0

    def rtlsdr_set_tuner_bandwidth(self, *args: Any) -> int:
        return 0

    def rtlsdr_get_tuner_type(self, *args: Any) -> int:
        return 5

    def rtlsdr_read_sync(self, dev: Any, buf: Any, num_bytes: int, num_read: Any) -> int:
        cu8, _, _ = self.stream.read(num_bytes // 2)
        for i, b in enumerate(cu8.tobytes()):
            buf[i] = b
        num_read._obj.value = num_bytes
        return 0


def test_usb_source_through_pyrtlsdr(monkeypatch: pytest.MonkeyPatch) -> None:
    import rtlsdr.rtlsdr as rtlsdr_module  # the dev extra installs pyrtlsdr[lib]

    world = scenario([stationary("3A7F", 19, 800)], gain_db=33.8, duration_s=3.5)
    fake = FakeLibRtlSdr(IqStream(world, world.receivers[0]))
    monkeypatch.setattr(rtlsdr_module, "librtlsdr", fake)
    source = open_source("rtlsdr://0?gain=33.8&ppm=7")
    assert fake.rs == 2_400_000
    assert fake.fc == 216_500_000
    assert fake.ppm == 7
    assert fake.gain == 338
    receiver = SdrReceiver(source, ReceiverConfig(receiver_id="USB-1"))
    pulses: list[Pulse] = []
    for _ in range(30):
        chunk = source.read(102_400)  # small reads: the stand-in copies byte by byte
        assert chunk is not None
        pulses += [r for r in receiver.process(chunk) if isinstance(r, Pulse)]
    read_s = 30 * 102_400 / 2_400_000
    sent = [f for f in world.frames() if f.t_start_s < read_s - 0.1]  # complete and detected
    assert [p.bracelet_id for p in pulses] == ["3A7F"] * len(sent)
    assert source.set_gain(20.0)
    assert fake.gain == 197  # the nearest step the tuner offers (19.7 dB)
    source.close()


@pytest.mark.hardware
def test_real_dongle_reads_samples() -> None:
    """Runs only with a dongle plugged in (pytest -m hardware)."""
    rtlsdr = pytest.importorskip("rtlsdr")
    try:
        count = rtlsdr.librtlsdr.rtlsdr_get_device_count()
    except Exception as err:  # no library or no USB access
        pytest.skip(f"no RTL-SDR available: {err}")
    if not count:
        pytest.skip("no RTL-SDR plugged in")
    source = open_source("rtlsdr://0?gain=30")
    chunk = source.read(240_000)
    assert chunk is not None
    assert chunk.cu8 is not None
    assert chunk.cu8.size == 480_000
    source.close()


# --- SNHH-1 handheld ----------------------------------------------------------------------------


def read_log(path: Path) -> list[str]:
    return [
        line for line in path.read_text(encoding="latin-1").splitlines() if not line.startswith("#")
    ]


def gpsd_tpv(log: Path) -> list[dict[str, Any]]:
    """The TPV records gpsd's regression test expects (the .chk interleaves the input lines)."""
    records = []
    for line in log.with_suffix(".log.chk").read_text(encoding="latin-1").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("class") == "TPV":
                records.append(record)
    return records


def with_pulses(lines: list[str]) -> tuple[list[str], list[str]]:
    """The log with a unit's pulse sentence after every timed RMC or GGA, stamped with its time
    (as an SNHH-1 unit interleaves its own with the GNSS receiver's); and those time fields.
    The k-th pulse is on 216,400,000 + k Hz, to tell them apart."""
    from safetynet.nmea import sentence

    out: list[str] = []
    stamps: list[str] = []
    for line in lines:
        out.append(line)
        fields = line.split("*")[0].split(",")
        if fields[0][3:] in ("RMC", "GGA") and len(fields) > 1 and fields[1]:
            out.append(sentence("PSNPD", fields[1], "19", str(216_400_000 + len(stamps)), "3A7F",
                                "29", "-97.4", "18.2", "28.0"))  # fmt: skip
            stamps.append(fields[1])
    return out, stamps


def gpsd_exact(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["time"].replace("Z", "+00:00"))


def gpsd_time(record: dict[str, Any]) -> datetime:
    return gpsd_exact(record).replace(microsecond=0)


@pytest.mark.parametrize("log", sorted(NMEA_DIR.glob("*.log")), ids=lambda p: p.stem)
def test_real_gnss_logs_agree_with_gpsd(log: Path) -> None:
    parser = SnhhParser(keep_fixes=True)
    lines, stamps = with_pulses(read_log(log))
    out = []
    for i, line in enumerate(lines):
        out += parser.feed(i * 0.01, line)  # any sentence we do not use is ignored, not an error
    out += parser.feed(len(lines) * 0.01 + 3.0, "")  # the port idles for a few seconds
    ours: dict[datetime, list[tuple[float, float]]] = {}
    for f in parser.fixes:
        if f.valid and f.time is not None and f.lat_deg is not None and f.lon_deg is not None:
            ours.setdefault(f.time.replace(microsecond=0), []).append((f.lat_deg, f.lon_deg))
    checked = 0
    no_fix: set[datetime] = set()
    for record in gpsd_tpv(log):
        if "time" not in record:
            continue
        when = gpsd_time(record)
        if record.get("mode", 0) < 2 or "lat" not in record:
            no_fix.add(when)
            continue
        candidates = ours.get(when, [])
        assert any(
            abs(lat - record["lat"]) <= 1e-6 and abs(lon - record["lon"]) <= 1e-6
            for lat, lon in candidates
        ), (when, record["lat"], record["lon"], candidates)
        checked += 1
    with_fix = {gpsd_time(r) for r in gpsd_tpv(log) if "time" in r and r.get("mode", 0) >= 2}
    assert not (no_fix - with_fix) & set(ours)  # no position in a second gpsd has none for
    assert checked > 0 or not any("lat" in r for r in gpsd_tpv(log))
    # Every pulse is out (none left waiting for a heading, even where time jumps back; only those
    # heard before the unit ever gave a date are dropped), and each in a second gpsd gives a time
    # for is on gpsd's date and at one of its positions.
    by_index = {r.freq_hz - 216_400_000: r for r in out if isinstance(r, Pulse)}
    assert parser.waiting == 0
    assert len(by_index) + parser.undated_dropped == len(stamps)
    gpsd_by_time_of_day: dict[str, list[dict[str, Any]]] = {}
    for record in gpsd_tpv(log):
        if "time" in record:
            gpsd_by_time_of_day.setdefault(gpsd_time(record).strftime("%H%M%S"), []).append(record)
    dated = 0
    for index, stamp in enumerate(stamps):
        records = gpsd_by_time_of_day.get(stamp[:6], [])
        if not records:
            continue
        pulse = by_index[index]
        assert pulse.t.replace(microsecond=0) in {gpsd_time(r) for r in records}, (stamp, pulse.t)
        dated += 1
        at_pulse = [  # gpsd's positions at the pulse's very moment (its time, to the ms)
            r for r in records if "lat" in r and abs(gpsd_exact(r) - pulse.t).total_seconds() < 1e-3
        ]
        if at_pulse and pulse.lat_deg is not None and pulse.lon_deg is not None:
            assert any(
                abs(pulse.lat_deg - r["lat"]) <= 1e-6 and abs(pulse.lon_deg - r["lon"]) <= 1e-6
                for r in at_pulse
            ), (stamp, pulse.lat_deg, pulse.lon_deg)
    assert dated > 0 or not gpsd_by_time_of_day


def test_heading_is_interpolated_across_north() -> None:
    parser = SnhhParser()
    lines = [
        (0.00, "$GNRMC,140305.00,A,4218.1234,N,07103.4567,W,0.4,131.0,281126,,,A"),
        (0.10, "$HCHDT,350.0,T"),
        (0.20, "$PSNPD,140305.150,19,216462612,3A7F,29,-97.4,18.2,28.0"),
        (0.20, "$HCHDT,10.0,T"),
    ]
    from safetynet.nmea import sentence

    out = []
    for t, body in lines:
        out += parser.feed(t, sentence(*body[1:].split(",")))
    out += parser.flush()
    pulse = next(r for r in out if isinstance(r, Pulse))
    assert pulse.heading_deg is not None
    assert abs(angle_diff_deg(pulse.heading_deg, 0.0)) < 0.5  # halfway from 350° to 10°: north


def test_handheld_over_a_pty_with_noise_and_an_unplug(tmp_path: Path) -> None:
    world = scenario([stationary("3A7F", 19, 300)], duration_s=24.0)
    world.receivers[0].pattern = __import__("safetynet.antennas", fromlist=["YAGI3"]).YAGI3
    link = tmp_path / "ttyHH"
    faults = Faults(
        line_noise_per_s=1.0, bad_checksum_fraction=0.05, unplug_at_s=10.0, replug_after_s=2.0
    )
    unit = HandheldEmulator(world, world.receivers[0], faults)
    stop = threading.Event()
    emitter = threading.Thread(target=unit.run_on_pty, args=(link, 4.0, stop), daemon=True)
    reader = HandheldReader(
        str(link), SnhhParser(receiver_id="HH-07"), retry_s=0.05, stop=stop.is_set
    )
    reports: list[Any] = []
    collector = threading.Thread(target=lambda: reports.extend(reader.reports()), daemon=True)
    collector.start()
    emitter.start()
    emitter.join(20)
    time.sleep(0.3)
    stop.set()
    collector.join(5)
    pulses = [r for r in reports if isinstance(r, Pulse)]
    statuses = [r for r in reports if isinstance(r, Status)]
    assert reader.reconnects >= 1
    assert reader.parser.bad_lines > 0
    assert statuses
    # (the first two seconds pass while the reader finds the port and the first fix arrives)
    sent_before = [f for f in world.frames() if 2.0 < f.t_start_s < 9.5]
    sent_after = [f for f in world.frames() if f.t_start_s > 13.0]
    got = {round((p.t - world.start).total_seconds(), 2) for p in pulses}
    # What was heard before the unplug is kept and the pulses flow again after the replug; the
    # injected line noise and bad checksums cost a few lines.
    assert sum(round(f.t_start_s, 2) in got for f in sent_before) >= len(sent_before) - 3
    assert sum(round(f.t_start_s, 2) in got for f in sent_after) >= len(sent_after) - 3
    with_heading = [p for p in pulses if p.heading_deg is not None]
    assert len(with_heading) >= len(pulses) - 3
    for p in with_heading:  # the unit's compass, interpolated at the pulse
        t = (p.t - world.start).total_seconds()
        true = world.receivers[0].pose.heading_deg(t)
        assert p.heading_deg is not None
        assert abs(angle_diff_deg(p.heading_deg, true)) < 12.0
    assert np.all([p.lat_deg is not None for p in pulses])
