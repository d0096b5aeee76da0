"""The live GNSS/compass reader: real receivers' logs through a socket and a serial port, gpsd's
decoding as the truth; a silent, dropped and noisy stream; stale fixes; magnetic headings."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import subprocess
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.gnss_server import GnssServer
from receiver.gnss import GnssParser, GnssReader, GpsSource, parse_gps_source
from receiver.navigation import MAX_FIX_AGE_S, NavFix, NavTrack
from safetynet.angles import angle_diff_deg
from safetynet.errors import InputError
from safetynet.geodesy import LocalFrame
from safetynet.nmea import KNOT_MPS, LineFramer, sentence
from tests.conftest import NMEA_DIR, fuzz
from tests.receiver.test_io import gpsd_exact, gpsd_tpv, read_log
from tests.receiver.test_kraken_source import _world as site_world

T0 = datetime(2026, 11, 28, 15, 30, tzinfo=UTC).timestamp()
REAL_LINES = [  # a few real sentences, to be cut and spliced by the fuzzer
    (line + "\r\n").encode("latin-1")
    for line in read_log(NMEA_DIR / "hemi.log")[730:760] + read_log(NMEA_DIR / "bt451.log")[:40]
]


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def serve_once(data: bytes, chunk: int = 97) -> int:
    """A TCP server that sends ``data`` in odd-sized pieces to its first client, then holds the
    connection open; returns its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            for i in range(0, len(data), chunk):
                conn.sendall(data[i : i + chunk])
                time.sleep(0.0005)
            time.sleep(30.0)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


# The share of gpsd's fixes the track keeps: all but those before the log's first date, which
# have no time to be put at (the Garmin's first GGA; the Telit's one fix stamped 0.3 s before
# the one it follows, not a track's).
FIXES_KEPT = {"garmin25lp": 0.9}
FIXES_KEPT_DEFAULT = 0.99


def log_bytes(log: Path) -> bytes:
    return "".join(line + "\r\n" for line in read_log(log)).encode("latin-1")


def started(source: GpsSource, track: NavTrack, silent_s: float = 3.0) -> GnssReader:
    reader = GnssReader(source, GnssParser(track), silent_s=silent_s)
    reader.start()
    return reader


@pytest.mark.parametrize("log", sorted(NMEA_DIR.glob("*.log")), ids=lambda p: p.stem)
def test_real_logs_over_tcp_agree_with_gpsd(log: Path) -> None:
    """Each log sent as a device's TCP stream (lines cut anywhere): every position gpsd decodes
    is in our track at its time, to 1e-6°, and no position where gpsd has none."""
    data = log_bytes(log)
    history: list[NavFix] = []
    track = NavTrack(keep_s=math.inf, history=history)
    reader = started(GpsSource("tcp", "127.0.0.1", serve_once(data)), track)
    try:
        expected = sum(1 for line in read_log(log) if line.startswith("$"))
        parser = reader.parser
        assert wait_for(lambda: parser.lines >= 0.9 * expected and _quiet(parser), 20.0)
    finally:
        reader.stop()
    gpsd: dict[float, list[tuple[float, float]]] = {}  # by time of day (gpsd may re-date)
    gpsd_no_fix: set[float] = set()
    for record in gpsd_tpv(log):
        if "time" not in record:
            continue
        when = _time_of_day(gpsd_exact(record).timestamp())
        if "lat" in record and record.get("mode", 0) >= 2:
            gpsd.setdefault(when, []).append((record["lat"], record["lon"]))
        else:
            gpsd_no_fix.add(when)
    ours = [f for f in history if f.valid]
    for f in ours:  # every position we keep is the one gpsd decodes at that moment
        assert f.lat_deg is not None
        assert f.lon_deg is not None
        when = _time_of_day(f.utc_s)
        assert when in gpsd or when not in gpsd_no_fix, f  # none where gpsd says no fix
        assert all(abs(f.lat_deg - lat) <= 1e-6 and abs(f.lon_deg - lon) <= 1e-6
                   for lat, lon in gpsd.get(when, [])[-1:]), (f, gpsd.get(when))  # fmt: skip
        if track.restarts == 0:  # and a report at that very moment gets it
            pos = track.position_at(f.utc_s)
            assert pos is not None
            assert abs(pos.lat_deg - f.lat_deg) <= 1e-9
    kept = {_time_of_day(f.utc_s) for f in ours}
    print(
        f"{log.stem}: {len(kept & set(gpsd))} of gpsd's {len(gpsd)} fixes, "
        f"{reader.parser.no_fix} no-fix epochs, {track.restarts} restarts"
    )
    assert len(kept & set(gpsd)) >= FIXES_KEPT.get(log.stem, FIXES_KEPT_DEFAULT) * len(gpsd)


def _time_of_day(utc_s: float) -> float:
    return round(utc_s % 86_400.0, 2)


def _quiet(parser: GnssParser) -> bool:
    """Nothing new parsed for a moment (the whole log is in)."""
    before = parser.lines
    time.sleep(0.3)
    return before == parser.lines


def test_the_hemisphere_compass_log_gives_its_true_headings() -> None:
    """hemi.log: $GPHDT 274.07…274.12 once its solution is up; the track's heading at those
    moments is the compass's (an empty $GPHDT is no heading)."""
    log = NMEA_DIR / "hemi.log"
    track = NavTrack(keep_s=math.inf)
    parser = GnssParser(track)
    lines = read_log(log)
    last_utc = None
    for i, line in enumerate(lines):
        parser.feed(i * 0.01, line)
        if line.startswith("$GPHDT,2"):
            last_utc = parser.track.latest_utc_s
    assert parser.headings > 0
    assert last_utc is not None
    heading = track.heading_at(last_utc + 0.01)
    assert heading is not None
    assert heading.source == "compass"
    hdt = [float(line.split(",")[1]) for line in lines if line.startswith("$GPHDT,") and
           line.split(",")[1]]  # fmt: skip
    assert min(hdt) - 0.01 <= heading.heading_deg <= max(hdt) + 0.01


def test_real_log_through_a_serial_port(tmp_path: Path) -> None:
    """The u-blox log written to a pseudo-terminal read with pyserial at 9600 baud."""
    log = NMEA_DIR / "ublox-neo-m9n-nmea.log"
    master, slave = os.openpty()
    tty.setraw(slave)
    history: list[NavFix] = []
    track = NavTrack(keep_s=math.inf, history=history)
    reader = started(parse_gps_source(f"serial:{os.ttyname(slave)}", 9600), track)
    try:
        time.sleep(0.3)
        data = log_bytes(log)
        for i in range(0, len(data), 256):
            os.write(master, data[i : i + 256])
            time.sleep(0.002)
        assert wait_for(lambda: _quiet(reader.parser) and len(history) > 0, 10.0)
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)
    gpsd = {
        round(gpsd_exact(r).timestamp(), 2): (r["lat"], r["lon"])
        for r in gpsd_tpv(log) if "lat" in r and r.get("mode", 0) >= 2
    }  # fmt: skip
    matched = [f for f in history if f.valid and round(f.utc_s, 2) in gpsd]
    assert len(matched) >= 0.9 * len(gpsd)
    for f in matched:
        lat, _ = gpsd[round(f.utc_s, 2)]
        assert f.lat_deg is not None
        assert abs(f.lat_deg - lat) <= 1e-6


# --- the simulator's GNSS over TCP: faults ----------------------------------------------------


class FastClock:
    """Scenario seconds running ``rate`` times real time from the first look."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.t0: float | None = None

    def __call__(self) -> float:
        if self.t0 is None:
            self.t0 = time.monotonic()
        return (time.monotonic() - self.t0) * self.rate


def sim_gnss(**faults: Any) -> Iterator[GnssServer]:
    world = site_world(30.0)
    server = GnssServer(world, world.receivers[0], clock=FastClock(5.0), **faults)
    server.bind()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(2.0)


@pytest.fixture
def silent_then_dropped() -> Iterator[GnssServer]:
    yield from sim_gnss(silent=(6.0, 14.0), drop_at_s=20.0, bad_checksum_every=7,
                        garbage_every=5)  # fmt: skip


def test_a_silent_then_dropped_noisy_stream(silent_then_dropped: GnssServer) -> None:
    server = silent_then_dropped
    history: list[NavFix] = []
    track = NavTrack(keep_s=math.inf, history=history)
    reader = started(GpsSource("tcp", "127.0.0.1", server.port), track, silent_s=0.5)
    try:
        assert wait_for(lambda: server.finished, 20.0)
        time.sleep(0.5)
    finally:
        reader.stop()
        assert not reader._thread or not reader._thread.is_alive()
    assert reader.silences >= 1  # the silent span (1.6 s of wall time) was noticed
    assert reader.reconnects >= 2  # after it, and after the drop
    assert reader.parser.bad_lines > 0
    world = server.world
    rx = server.receiver
    seconds = {round(f.utc_s - T0) for f in history}
    assert not seconds & set(range(6, 14))  # nothing was sent then
    for span in (range(1, 6), range(15, 20), range(22, 29)):  # before, between, after faults
        assert len(seconds & set(span)) >= len(span) - 2, (span, seconds)
    for f in history:  # every fix that got through is the simulator's, to NMEA's precision
        assert f.valid
        assert f.lat_deg is not None
        assert f.lon_deg is not None
        e, n = world.frame.to_en(f.lat_deg, f.lon_deg)
        re, rn = rx.reported_position(f.utc_s - T0)
        assert math.hypot(e - re, n - rn) < 0.3
    assert track.position_at(T0 + 10.0) is None  # the silence: the last fix is 4 s old
    assert track.position_at(T0 + 5.0 + MAX_FIX_AGE_S + 0.5) is None
    assert track.position_at(T0 + 5.0 + MAX_FIX_AGE_S - 0.5) is not None


def test_a_source_nobody_serves_never_hangs() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there
    reader = started(GpsSource("tcp", "127.0.0.1", port), NavTrack())
    time.sleep(1.2)
    t = time.monotonic()
    reader.stop()
    assert time.monotonic() - t < 1.0
    assert reader.reconnects >= 1
    assert reader.parser.track.latest_utc_s is None


# --- the track's rules, in closed form ------------------------------------------------------

FRAME = LocalFrame(42.355, -71.06)


def fix_at(t: float, east_m: float, speed: float | None = 10.0, valid: bool = True) -> NavFix:
    lat, lon = FRAME.to_lat_lon(east_m, 0.0)
    return NavFix(T0 + t, valid, lat if valid else None, lon if valid else None, 5.0, speed,
                  90.0 if speed is not None else None)  # fmt: skip


def east_of(track: NavTrack, t: float) -> float | None:
    pos = track.position_at(T0 + t)
    return None if pos is None else FRAME.to_en(pos.lat_deg, pos.lon_deg)[0]


def test_interpolated_between_fixes_dead_reckoned_then_stale() -> None:
    track = NavTrack()
    for t in range(4):
        track.add_fix(fix_at(t, 10.0 * t))
    assert east_of(track, 1.25) == pytest.approx(12.5, abs=0.01)
    assert east_of(track, 4.5) == pytest.approx(45.0, abs=0.05)  # 1.5 s on at 10 m/s east
    assert east_of(track, 3.0 + MAX_FIX_AGE_S + 0.1) is None  # stale
    held = NavTrack()
    held.add_fix(fix_at(0, 0.0, speed=None))
    assert east_of(held, 1.5) == pytest.approx(0.0, abs=0.01)  # no speed: held


def test_no_fix_epochs_and_time_going_back() -> None:
    track = NavTrack()
    track.add_fix(fix_at(0, 0.0))
    track.add_fix(fix_at(1, 10.0))
    track.add_fix(fix_at(2, 0.0, valid=False))  # the receiver says it lost the fix
    assert east_of(track, 1.2) == pytest.approx(10.0 + 2.0, abs=0.05)  # the valid one nearer
    assert east_of(track, 1.8) is None  # the no-fix epoch is nearer
    assert east_of(track, 2.5) is None
    track.add_fix(fix_at(-100, 5.0))  # a second session, 100 s earlier: a new track
    assert track.restarts == 1
    assert east_of(track, 1.0) is None
    assert east_of(track, -100.0) == pytest.approx(5.0, abs=0.01)


def parsed(lines: list[tuple[float, str]], variation: float | None = None) -> GnssParser:
    parser = GnssParser(NavTrack(), variation_deg=variation)
    for arrival, body in lines:
        parser.feed(arrival, sentence(*body.split(",")))
    return parser


RMC = "GNRMC,153000.00,A,4221.3000,N,07103.6000,W,{kn},{cog},281126,{var},{ew},A"


def rmc(var: str = "", ew: str = "", kn: str = "0.0", cog: str = "") -> str:
    return RMC.format(var=var, ew=ew, kn=kn, cog=cog)


@pytest.mark.parametrize(
    ("lines", "option", "expected"),
    [
        ([rmc(), "HCHDG,100.0,,,14.5,W"], None, 85.5),  # its own variation, west
        ([rmc(), "HCHDG,100.0,1.0,E,3.0,E"], None, 104.0),  # deviation and variation
        ([rmc("14.5", "W"), "HCHDG,100.0,,,,"], None, 85.5),  # RMC's variation
        ([rmc(), "HCHDG,355.0,,,,"], 10.0, 5.0),  # the option's, across north
        ([rmc(), "HCHDG,100.0,,,,"], None, None),  # none: not used
        ([rmc(), "HEHDT,271.5,T"], None, 271.5),
    ],
)
def test_magnetic_headings_are_made_true(
    lines: list[str], option: float | None, expected: float | None
) -> None:
    parser = parsed([(0.0, lines[0]), (0.1, lines[1])], option)
    heading = parser.track.heading_at(T0 + 0.1)
    if expected is None:
        assert heading is None
        assert parser.hdg_without_variation == 1
    else:
        assert heading is not None
        assert abs(angle_diff_deg(heading.heading_deg, expected)) < 1e-6


def test_bad_lines_are_counted_and_change_nothing() -> None:
    good = sentence(*rmc(kn=f"{10.0 / KNOT_MPS:.2f}", cog="90.0").split(","))
    bad_checksum = good[:-4] + ("00" if good[-4:-2] != "00" else "11") + "\r\n"
    parser = GnssParser(NavTrack())
    for line in [bad_checksum, "$GNRMC,garbage*7F", "\x00\xff$$$", sentence("HCHDT", "400", "T"),
                 sentence("GNGGA", "153000.00", "4221.3000", "X", "07103.6000", "W", "1", "08",
                          "1.0", "10", "M", "-33", "M", "", "")]:  # fmt: skip
        parser.feed(0.0, line)
    assert parser.track.latest_utc_s is None
    assert parser.bad_lines >= 3
    parser.feed(0.0, good)
    pos = parser.track.position_at(T0 + 1.0)  # one second on at 10 m/s east
    assert pos is not None
    at_fix = LocalFrame(42 + 21.3 / 60, -(71 + 3.6 / 60))
    east, north = at_fix.to_en(pos.lat_deg, pos.lon_deg)
    assert east == pytest.approx(10.0, abs=0.05)
    assert north == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize(
    "text", ["tcp://host", "tcp://:2947", "tcp://h:99999", "udp://h:1", "serial:", "gps",
             "file:/no/such/log"],
)  # fmt: skip
def test_bad_gps_sources(text: str) -> None:
    with pytest.raises(InputError):
        parse_gps_source(text)


def test_bad_baud() -> None:
    with pytest.raises(InputError, match="--gps-baud"):
        parse_gps_source("serial:/dev/ttyUSB0", 1234)


@fuzz(300)
@given(st.lists(st.one_of(st.binary(max_size=120), st.sampled_from(REAL_LINES)), max_size=40))
def test_any_bytes_never_raise_and_never_place_a_bad_fix(chunks: list[bytes]) -> None:
    """Noise, cut and spliced real sentences: the parser takes anything; what it keeps is a
    checked sentence's (a latitude within ±90°, a longitude within ±180°)."""
    framer = LineFramer()
    history: list[NavFix] = []
    parser = GnssParser(NavTrack(history=history))
    for i, data in enumerate(chunks):
        for line in framer.feed(data):
            parser.feed(i * 0.1, line)
    for f in history:
        if f.valid:
            assert f.lat_deg is not None
            assert f.lon_deg is not None
            assert -90.0 <= f.lat_deg <= 90.0
            assert -180.0 <= f.lon_deg <= 180.0


def test_a_log_file_is_replayed_at_its_own_pace(tmp_path: Path) -> None:
    log = tmp_path / "drive.nmea"
    lines = []
    for k in range(3):
        hhmmss = f"1530{k:02d}.00"
        lines.append(sentence("GNRMC", hhmmss, "A", "4221.3000", "N", "07103.6000", "W", "0.0",
                              "", "281126", "", "", "A"))  # fmt: skip
        lines.append(sentence("HEHDT", f"{90 + k}.0", "T"))
    log.write_text("# a header comment\n" + "".join(lines), encoding="ascii")
    track = NavTrack()
    started_s = time.monotonic()
    reader = started(parse_gps_source(f"file:{log}"), track)
    assert reader.finished.wait(10.0)
    elapsed = time.monotonic() - started_s
    reader.stop()
    assert 1.8 <= elapsed < 5.0  # three epochs a second apart
    assert track.latest_utc_s == pytest.approx(T0 + 2.0)
    heading = track.heading_at(T0 + 2.0)
    assert heading is not None
    assert heading.heading_deg == pytest.approx(92.0, abs=0.2)


def test_gpsd_is_asked_for_its_sentences() -> None:
    """A gpsd: its banner, then nothing until the client's ?WATCH asks for NMEA."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    asked: list[bytes] = []

    def gpsd() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b'{"class":"VERSION","release":"3.25","proto_major":3}\r\n')
            conn.settimeout(5.0)
            asked.append(conn.recv(1024))
            if b"?WATCH=" in asked[0] and b'"nmea":true' in asked[0]:
                conn.sendall(b'{"class":"WATCH","enable":true,"nmea":true}\r\n')
                conn.sendall(log_bytes(NMEA_DIR / "bu353s4.log"))
            time.sleep(5.0)
        listener.close()

    threading.Thread(target=gpsd, daemon=True).start()
    port = listener.getsockname()[1]
    track = NavTrack(keep_s=math.inf)
    reader = started(parse_gps_source(f"gpsd://127.0.0.1:{port}"), track)
    try:
        assert wait_for(lambda: reader.parser.fixes >= 20, 5.0)
    finally:
        reader.stop()
    assert reader.parser.bad_lines == 0  # its JSON lines are not taken for broken sentences
    assert parse_gps_source("gpsd://localhost").port == 2947


def test_compass_headings_are_interpolated_across_north_and_not_far_from_a_reading() -> None:
    track = NavTrack()
    track.add_heading(T0, 350.0, magnetic=False)
    track.add_heading(T0 + 0.1, 10.0, magnetic=False)
    between = track.heading_at(T0 + 0.05)
    assert between is not None
    assert abs(angle_diff_deg(between.heading_deg, 0.0)) < 1e-6
    assert between.sigma_deg == track.hdt_sigma_deg
    assert track.heading_at(T0 + 0.1 + 0.6) is None  # the last reading is 0.6 s old


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gps", "udp://h:1"], "--gps"),
        (["--gps", "tcp://127.0.0.1:2947", "--lat-deg", "42", "--lon-deg", "-71"], "not both"),
        (["--gps", "serial:/dev/ttyUSB0", "--gps-baud", "1200"], "--gps-baud"),
        (["--gps", "tcp://127.0.0.1:2947", "--magnetic-variation-deg", "200"], "-180..180"),
        (["--gps", "tcp://127.0.0.1:2947", "--compass-sigma-deg", "0"], "0.05..45"),
    ],
)
def test_receive_refuses_bad_gps_options_before_opening_anything(
    args: list[str], message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "safetynet", "receive", "--source", "kraken://127.0.0.1:9", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert "KrakenSDR" not in result.stderr  # refused before the source was tried


def _pty_at(link: Path) -> tuple[int, int]:
    master, slave = os.openpty()
    tty.setraw(slave)
    link.unlink(missing_ok=True)
    link.symlink_to(os.ttyname(slave))
    return master, slave


def test_a_serial_gnss_unplugged_and_plugged_back(tmp_path: Path) -> None:
    """The device goes away (its port closes and vanishes) and comes back at the same name."""
    link = tmp_path / "ttyGNSS"

    def rmc_at(second: int) -> bytes:
        return sentence("GNRMC", f"1530{second:02d}.00", "A", "4221.3000", "N", "07103.6000",
                        "W", "0.0", "", "281126", "", "", "A").encode("ascii")  # fmt: skip

    master, slave = _pty_at(link)
    reader = GnssReader(parse_gps_source(f"serial:{link}"), GnssParser(NavTrack()), silent_s=0.5)
    reader.start()
    try:
        time.sleep(0.3)
        for second in (0, 1):
            os.write(master, rmc_at(second))
        assert wait_for(lambda: reader.parser.fixes == 2, 5.0)
        os.close(master)
        os.close(slave)
        link.unlink()
        time.sleep(1.5)  # unplugged: the reader tries again and again, without hanging
        master, slave = _pty_at(link)
        assert wait_for(lambda: reader.reconnects >= 2, 10.0)
        deadline = time.monotonic() + 10.0
        while reader.parser.fixes < 3 and time.monotonic() < deadline:
            os.write(master, rmc_at(5))  # until the reader has the new port open
            time.sleep(0.3)
        assert reader.parser.fixes >= 3
        assert reader.parser.track.latest_utc_s == pytest.approx(T0 + 5.0)
    finally:
        reader.stop()
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)
