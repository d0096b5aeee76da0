"""``safetynet receive``: a sample source or a handheld unit in, JSON Lines reports out."""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from safetynet.errors import InputError
from safetynet.reports import Pulse, Report

log = logging.getLogger(__name__)

STOP_DRAIN_S = 3.0  # on SIGTERM, the queue gets this long (at most) to empty before the exit
UPLINK_JOIN_S = 1.0  # ... after the uplink's own thread has had this long to finish its request

HELP = """\
Listen to a source and write the reports of spec/reports.md as JSON Lines: a pulse for every
frame heard (decoded or not), status every 5 s, and — when pulses carry the heading of a
directional antenna — a bearing for every sweep through the circle.

sources:
  sigmf:PATH.sigmf-meta                      a SigMF recording (cu8, ci16_le, cf32_le)
  cu8:PATH?fs=2400000&fc=216500000[&gain=G]  raw RTL-SDR bytes
  rtltcp://HOST:PORT[?gain=auto&ppm=0]       an rtl_tcp server (reconnects when it drops)
  rtlsdr://0[?gain=auto&ppm=0]               a USB dongle (pip install 'safetynet[sdr]')
  kraken://HOST:5000[?channels=5]            a KrakenSDR's DAQ stream: pulses on channel 0 and
                                             an array bearing per pulse (--gps on a vehicle,
                                             --array-heading-deg at a fixed site)
  serial:/dev/ttyACM0                        an SNHH-1 handheld unit (survives unplugging)

On the move, --gps gives every report the position of a GNSS receiver at its moment
(gpsd://HOST, tcp://HOST:PORT such as a phone app's NMEA stream, serial:/dev/ttyUSB0 at
--gps-baud, or file:LOG replayed), and an array's bearings its heading: a GNSS compass
($HDT) or a magnetic one ($HDG, made true by the variation it, RMC or
--magnetic-variation-deg gives) or, without one, the GPS course while moving. A fix more than
2 s from a report is stale: the report goes without a position and gives no bearing.

A file source runs as fast as the CPU allows and stops at its end; live sources run until
Ctrl-C or SIGTERM (which stops it within a few seconds in any state, a reconnecting rtl_tcp
link included). With --uplink, reports are also queued on disk and sent to the server; nothing
is lost while the link is down, and --uplink-drain waits (up to N s; 3 s at most after SIGTERM)
for the queue to empty at the end; what is left stays on disk for the next run. An
mqtt://HOST:PORT/TOPIC uplink (pip install 'safetynet[mqtt]') publishes the same queue to the
receiver's own topic on an MQTT broker with QoS 1; the broker login is the URL's user (or
--receiver-id) with --token as its password.

examples:
  safetynet receive --source sigmf:rec.sigmf-meta
  safetynet receive --source rtltcp://127.0.0.1:1234 --receiver-id CAR-3 --out car3.jsonl
  safetynet receive --source kraken://127.0.0.1:5000 --gps tcp://127.0.0.1:2947 --receiver-id CAR-1
  safetynet receive --source serial:/dev/ttyACM0 \\
      --uplink http://dispatch:8080/api/v1/reports --token T
  safetynet receive --source rtltcp://127.0.0.1:1234 --receiver-id CAR-3 \\
      --uplink mqtt://broker:1883/safetynet/reports/CAR-3 --token T
"""


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "receive", help="hear bracelets: a radio or handheld unit in, reports out",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--source", required=True, help="where samples or lines come from (see above)")
    p.add_argument("--receiver-id", help="this receiver's id (default: the unit's, or SDR-1)")
    p.add_argument(
        "--lat-deg", type=float, help="fixed position, latitude (overrides the source's)"
    )
    p.add_argument("--lon-deg", type=float, help="fixed position, longitude")
    p.add_argument("--alt-m", type=float, default=0.0, help="fixed position, height (m, ellipsoid)")
    p.add_argument("--antenna", choices=["omni", "yagi3"], default="omni", help="SDR antenna")
    p.add_argument(
        "--array",
        choices=["uca", "ula"],
        default="uca",
        help="a KrakenSDR's antennas: a 5-element circle of 0.45 m radius, element 0 "
        "forward and clockwise (uca), or a line, 0.69 m apart, left to right (ula)",
    )
    p.add_argument(
        "--array-heading-deg",
        type=float,
        default=None,
        help="the array's forward direction (compass) at a fixed site; without it "
        "(or a heading from the unit) no array bearing is made",
    )
    p.add_argument(
        "--array-heading-sigma-deg",
        type=float,
        default=2.0,
        help="one sigma of that heading (default 2)",
    )
    p.add_argument(
        "--array-every",
        type=float,
        default=2.0,
        metavar="S",
        help="at most one array bearing per bracelet every S seconds, the best of "
        "them (0: one per pulse; default 2)",
    )
    p.add_argument(
        "--gps", metavar="SOURCE",
        help="live GNSS/compass NMEA: gpsd://HOST, tcp://HOST:PORT, serial:DEVICE or file:LOG",
    )  # fmt: skip
    p.add_argument("--gps-baud", type=int, default=9600, help="serial GNSS speed (default 9600)")
    p.add_argument(
        "--magnetic-variation-deg", type=float, default=None,
        help="east positive: makes $HDG true when neither it nor RMC says the variation",
    )  # fmt: skip
    p.add_argument(
        "--compass-sigma-deg", type=float, default=None,
        help="one sigma of the compass (default 0.5 for $HDT, 3 for $HDG)",
    )  # fmt: skip
    p.add_argument("--out", default="-", help="JSON Lines file, or - for stdout (default)")
    p.add_argument("--uplink", help="the server's ingest URL (…/api/v1/reports), or an "
                   "MQTT broker and this receiver's topic (mqtt://HOST:PORT/TOPIC)")  # fmt: skip
    p.add_argument("--token", help="receiver token for the uplink (MQTT: the broker password)")
    p.add_argument("--queue", type=Path, help="uplink queue file (default: in the data folder)")
    p.add_argument("--uplink-drain", type=float, default=30.0, metavar="S",
                   help="at the end, wait up to S seconds for the queue to empty")  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.lat_deg is None) != (args.lon_deg is None):
        raise InputError("give both --lat-deg and --lon-deg, or neither")
    reader = _gnss(args) if args.gps else None  # its options checked before anything opens
    mqtt_target = _mqtt_target(args) if args.uplink else None
    if args.uplink and not args.token and mqtt_target is None:
        raise InputError("--uplink needs --token (the receiver token from the server)")
    from receiver.attribution import SweepCollector

    outbox = None
    uplink: Any = None
    sender: threading.Thread | None = None
    if args.uplink:
        from receiver.uplink import Outbox, Uplink
        from safetynet.settings import get_settings

        queue = (
            args.queue
            or get_settings().data_dir / "uplink" / f"{args.receiver_id or 'receiver'}.sqlite"
        )
        outbox = Outbox(queue)
        if mqtt_target is not None:
            from receiver.mqtt_uplink import MqttUplink

            client_id = f"safetynet-rx-{mqtt_target.username}"
            uplink = MqttUplink(outbox, mqtt_target, client_id)
        else:
            uplink = Uplink(outbox, args.uplink, args.token)
        sender = threading.Thread(target=uplink.run, name="uplink", daemon=True)
        sender.start()
    next_seq: Callable[[], int] = outbox.next_seq if outbox else itertools.count().__next__
    stop = threading.Event()
    # The handler only sets a flag that every loop looks at (no lock is taken in it).
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sweeps = SweepCollector(next_seq)
    out: IO[str] = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for report in _reports(args, next_seq, stop, reader):
            _emit(report, out, outbox, uplink)
            if isinstance(report, Pulse):
                for bearing in sweeps.add(report):
                    _emit(bearing, out, outbox, uplink)
        for bearing in sweeps.flush():
            _emit(bearing, out, outbox, uplink)
    except KeyboardInterrupt:
        log.info("stopped")
    finally:
        if out is not sys.stdout:
            out.close()
        if uplink is not None and outbox is not None:
            uplink.stop()
            if sender is not None:
                sender.join(UPLINK_JOIN_S)
            drain_s = min(args.uplink_drain, STOP_DRAIN_S) if stop.is_set() else args.uplink_drain
            if not uplink.drain(drain_s):
                print(f"safetynet: {outbox.pending()} reports still queued in {outbox.path}; "
                      "they will be sent on the next run", file=sys.stderr)  # fmt: skip
            if mqtt_target is not None:
                uplink.close()
            outbox.close()
    return 0


def _mqtt_target(args: argparse.Namespace) -> Any:
    """The broker and topic of an ``mqtt://`` uplink, with its login (None: an HTTP uplink)."""
    from dataclasses import replace

    from safetynet.errors import ConfigError
    from safetynet.mqtt import is_mqtt, parse_mqtt_url

    if not is_mqtt(args.uplink):
        return None
    try:
        target = parse_mqtt_url(args.uplink, "--uplink")
    except ConfigError as err:
        raise InputError(str(err)) from err
    if any(c in target.topic for c in "+#"):
        raise InputError(f"--uplink: a receiver publishes to its own topic, not a filter "
                         f"({target.topic!r})")  # fmt: skip
    username = target.username or args.receiver_id
    if not username:
        raise InputError("--uplink mqtt://…: give the broker login as mqtt://USER@HOST/TOPIC "
                         "or --receiver-id")  # fmt: skip
    password = target.password if target.password is not None else args.token
    if not password:
        raise InputError("--uplink mqtt://…: --token (the broker password) is needed")
    return replace(target, username=username, password=password)


def _emit(report: Report, out: IO[str], outbox: Any, uplink: Any) -> None:
    from safetynet.report_lines import write_report

    write_report(out, report)
    out.flush()
    if outbox is not None:
        outbox.put(report)
        uplink.notify()


def _array_receiver(
    args: argparse.Namespace, source: Any, receiver: Any, next_seq: Callable[[], int]
) -> Any:
    """The SDR receiver on the array's reference channel, with a bearing for its pulses."""
    from receiver.array_bearings import ArrayBearings, ArrayDirectionFinder, ArrayReceiver
    from safetynet.arrays import ArrayGeometry

    geometry = ArrayGeometry.named(args.array, source.n_channels)
    fixed = _fixed_heading(args)
    if fixed is None and not args.gps:
        log.warning("no --gps or --array-heading-deg: pulses only, no array bearings")
    if args.array_every < 0:
        raise InputError(f"--array-every must be 0 or more seconds, got {args.array_every}")
    finder = ArrayDirectionFinder(geometry, source.sample_rate_hz, source.center_hz)
    bearings = ArrayBearings(receiver.config.receiver_id, next_seq, args.array_every)
    return ArrayReceiver(receiver, source, finder, lambda _t: fixed, bearings)


def _fixed_heading(args: argparse.Namespace) -> Any:
    """The array's heading at a fixed site (``--array-heading-deg``), or None."""
    from receiver.array_bearings import HeadingFix
    from safetynet.angles import wrap_360

    if args.array_heading_deg is None:
        return None
    if not 0.1 <= args.array_heading_sigma_deg <= 45:
        raise InputError("--array-heading-sigma-deg must be within 0.1..45")
    return HeadingFix(wrap_360(args.array_heading_deg), args.array_heading_sigma_deg, "fixed")


def _gnss(args: argparse.Namespace) -> Any:
    """The ``--gps`` reader and its track (not started), the options checked."""
    from receiver.gnss import GnssParser, GnssReader, parse_gps_source
    from receiver.navigation import HDG_SIGMA_DEG, HDT_SIGMA_DEG, NavTrack

    if args.lat_deg is not None:
        raise InputError("give --gps or a fixed --lat-deg/--lon-deg, not both")
    if args.source.startswith("serial:"):
        raise InputError("--gps is for radio sources: a handheld unit sends its own fixes")
    variation = args.magnetic_variation_deg
    if variation is not None and not -180.0 <= variation <= 180.0:
        raise InputError(f"--magnetic-variation-deg must be within -180..180, got {variation}")
    sigma = args.compass_sigma_deg
    if sigma is not None and not 0.05 <= sigma <= 45.0:
        raise InputError(f"--compass-sigma-deg must be within 0.05..45, got {sigma}")
    source = parse_gps_source(args.gps, args.gps_baud)
    track = NavTrack(hdt_sigma_deg=sigma or HDT_SIGMA_DEG, hdg_sigma_deg=sigma or HDG_SIGMA_DEG)
    return GnssReader(source, GnssParser(track, variation_deg=variation))


def _reports(
    args: argparse.Namespace, next_seq: Callable[[], int], stop: threading.Event, reader: Any
) -> Iterator[Report]:
    if args.source.startswith("serial:"):
        from receiver.handheld import HandheldReader, SnhhParser

        parser = SnhhParser(receiver_id=args.receiver_id, next_seq=next_seq)
        yield from HandheldReader(
            args.source.removeprefix("serial:"), parser, stop=stop.is_set
        ).reports()
        return
    from receiver.sdr import ReceiverConfig, SdrReceiver
    from receiver.sources import open_source

    source = open_source(args.source, stop=stop.is_set)
    position = None if args.lat_deg is None else (args.lat_deg, args.lon_deg, args.alt_m)
    config = ReceiverConfig(
        receiver_id=args.receiver_id or "SDR-1", position=position, antenna=args.antenna
    )
    receiver = SdrReceiver(source, config, next_seq)
    runner: Any = receiver
    from receiver.kraken import KrakenSource

    if isinstance(source, KrakenSource):
        runner = _array_receiver(args, source, receiver, next_seq)
    if reader is not None:
        from receiver.navigation import NavigatedRun

        fixed = _fixed_heading(args)
        array = runner if isinstance(source, KrakenSource) else None
        heading = None if fixed is None else (lambda _t: fixed)
        runner = NavigatedRun(receiver, reader.parser.track, array, heading)
        reader.start()
    try:
        for report in runner.run(stop=stop.is_set):
            yield report
            if stop.is_set() and reader is None:  # (a navigated run gives its held reports)
                break
    finally:
        source.close()
        log.info("heard %d frames (%d collisions, %d images dropped)", receiver.frames_heard,
                 receiver.collisions, receiver.images_dropped)  # fmt: skip
        if reader is not None:
            reader.stop()
            p = reader.parser
            log.info("GNSS: %d fixes, %d no-fix epochs, %d headings, %d bad lines, %d reconnects, "
                     "%d reports without a position", p.fixes, p.no_fix, p.headings, p.bad_lines,
                     reader.reconnects, runner.no_position)  # fmt: skip
            if runner.array is not None:
                b = runner.array.bearings
                log.info("array: %d pulses, %d bearings; %d weak, %d flagged, %d without a "
                         "heading or position, %d held back by the drive check", b.pulses,
                         b.emitted, b.weak, b.flagged, b.no_heading, b.inconsistent)  # fmt: skip
