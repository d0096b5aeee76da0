"""``safetynet sim``: a scenario as I/Q, an rtl_tcp stream, a handheld unit, or reports."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from safetynet.errors import ScenarioError

log = logging.getLogger(__name__)

SIM_HELP = """\
Simulate the field of a scenario file (see scenarios/*.toml): bracelets on walking people,
radio propagation, and receivers with their front ends. Every output writes its ground truth
(JSON Lines: every transmitted frame, every receiver's true position, heading and received
power) beside it.

examples:
  safetynet sim reports --scenario scenarios/quiet-suburb.toml --out reports.jsonl
  safetynet sim iq --scenario scenarios/quiet-suburb.toml --receiver CAR-3 --out car3 --duration 30
  safetynet sim rtl-tcp --scenario scenarios/quiet-suburb.toml --receiver CAR-3 --port 1234
  safetynet sim kraken --scenario scenarios/dense-city.toml --receiver CAR-1 --array --port 5000
  safetynet sim kraken --scenario scenarios/open-park.toml --receiver CAR-1 --array --gps-port 2947
  safetynet sim handheld --scenario scenarios/quiet-suburb.toml --receiver HH-07 --link ./ttyHH07
"""


def add_parser(subparsers: Any) -> None:
    from safetynet.cli import existing_file

    sim = subparsers.add_parser(
        "sim", help="simulate bracelets, walkers, radio and receivers", description=SIM_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = sim.add_subparsers(dest="sim_command", metavar="OUTPUT", required=True)

    def scenario_args(p: argparse.ArgumentParser, receiver: bool = True) -> None:
        p.add_argument("--scenario", type=existing_file, required=True, help="scenario TOML file")
        if receiver:
            p.add_argument("--receiver", required=True, help="receiver id in the scenario")

    p = sub.add_parser("iq", help="render one receiver's I/Q to a SigMF recording or raw cu8")
    scenario_args(p)
    p.add_argument("--out", type=Path, required=True, help="output base name (BASE.sigmf-data ...)")
    p.add_argument("--format", choices=["sigmf", "cu8"], default="sigmf")
    p.add_argument("--duration", type=float, help="seconds (default: the scenario's)")
    p.set_defaults(handler=run_iq)

    p = sub.add_parser("rtl-tcp", help="serve one receiver's I/Q over the rtl_tcp protocol")
    scenario_args(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1234)
    p.add_argument(
        "--speed", type=float, default=1.0, help="times real time; 0 = as fast as possible"
    )
    p.add_argument("--truth", type=Path, help="write the truth of streamed frames here")
    p.set_defaults(handler=run_rtl_tcp)

    p = sub.add_parser(
        "kraken", help="serve one receiver as a KrakenSDR's DAQ stream (Heimdall IQ frames)"
    )
    scenario_args(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--speed", type=float, default=1.0, help="times real time; 0 = as fast as asked")
    p.add_argument(
        "--array", action="store_true",
        help="give the receiver the default array (a 5-element circle) if its scenario has none",
    )  # fmt: skip
    p.add_argument("--cal-every", type=float, default=60.0, metavar="S",
                   help="a calibration frame every S seconds of stream (default 60)")  # fmt: skip
    p.add_argument(
        "--gps-port", type=int, default=None, metavar="PORT",
        help="also serve the vehicle's GNSS (RMC, GGA at 1 Hz, a compass at 10 Hz) as NMEA over "
        "TCP on PORT (0: any free one), in step with the DAQ stream",
    )  # fmt: skip
    p.add_argument(
        "--compass", choices=["hdg", "hdt", "none"], default="hdg",
        help="the GNSS stream's compass: magnetic ($HCHDG, with the scenario's compass errors; "
        "the default), a GNSS compass ($HCHDT), or none (the receiver takes the course)",
    )  # fmt: skip
    p.set_defaults(handler=run_kraken)

    p = sub.add_parser("handheld", help="emulate a handheld unit (SNHH-1) on a pseudo-terminal")
    scenario_args(p)
    p.add_argument("--link", type=Path, required=True, help="symlink to create to the serial port")
    p.add_argument("--speed", type=float, default=1.0, help="times real time")
    p.add_argument("--line-noise", type=float, default=0.0, help="bursts of noise per second")
    p.add_argument("--bad-checksums", type=float, default=0.0, help="fraction of lines corrupted")
    p.add_argument("--unplug-at", type=float, help="unplug the unit at this scenario time (s)")
    p.add_argument("--replug-after", type=float, default=2.0, help="seconds until plugged back")
    p.set_defaults(handler=run_handheld)

    p = sub.add_parser("reports", help="write the reports of every receiver directly (fast)")
    scenario_args(p, receiver=False)
    p.add_argument("--out", default="-", help="JSON Lines file, or - for stdout")
    p.add_argument("--truth", type=Path, help="truth file (default: OUT.truth.jsonl)")
    p.set_defaults(handler=run_reports)

    # Other rooms add their own simulations (``sim search`` from trials/) through the
    # ``safetynet.sim_commands`` entry points, so this package never imports them.
    for entry in entry_points(group="safetynet.sim_commands"):
        try:
            add = entry.load()
        except ImportError as err:  # that room is not installed
            log.debug("sim %s unavailable: %s", entry.name, err)
            continue
        add(sub, scenario_args)


def _world(args: argparse.Namespace) -> Any:
    from firmware_sim.scenario import load_scenario
    from firmware_sim.world import World

    world = World(load_scenario(args.scenario))
    if getattr(args, "receiver", None) is not None:
        ids = [r.receiver_id for r in world.receivers]
        if args.receiver not in ids:
            raise ScenarioError(
                f"no receiver {args.receiver!r} in {args.scenario}; receivers: {', '.join(ids)}"
            )
    return world


def _receiver(world: Any, receiver_id: str) -> Any:
    return next(r for r in world.receivers if r.receiver_id == receiver_id)


def run_iq(args: argparse.Namespace) -> int:
    from firmware_sim.recording import record

    world = _world(args)
    path = record(world, args.receiver, args.out, args.duration, args.format, progress=True)
    print(f"wrote {path} and {args.out}.truth.jsonl")
    return 0


def run_rtl_tcp(args: argparse.Namespace) -> int:
    from firmware_sim.rtl_tcp_server import RtlTcpServer

    world = _world(args)
    truth = args.truth.open("w") if args.truth else None
    server = RtlTcpServer(
        world, _receiver(world, args.receiver), args.host, args.port, args.speed, truth
    )
    port = server.bind()
    print(f"rtl_tcp serving {args.receiver} on {args.host}:{port} (Ctrl-C stops)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve_forever()
    finally:
        if truth is not None:
            truth.close()
    return 0


def run_kraken(args: argparse.Namespace) -> int:
    from firmware_sim.array import array_stream
    from firmware_sim.daq_server import DaqServer
    from firmware_sim.scenario import ArraySpec

    world = _world(args)
    receiver = _receiver(world, args.receiver)
    spec = next(r for r in world.scenario.receivers if r.id == args.receiver)
    array = spec.array or (ArraySpec() if args.array else None)
    if array is None:
        raise ScenarioError(
            f"receiver {args.receiver} has no array in {args.scenario}; add [receivers.array] "
            "or pass --array"
        )
    if not args.cal_every > 0:
        raise ScenarioError(f"--cal-every must be more than 0 s, got {args.cal_every}")
    server = DaqServer(
        array_stream(world, receiver, array), args.host, args.port, speed=args.speed,
        cal_every_s=args.cal_every,
    )  # fmt: skip
    gnss = None
    if args.gps_port is not None:
        from firmware_sim.gnss_server import GnssServer

        if not 0 <= args.gps_port <= 65535:
            raise ScenarioError(f"--gps-port must be within 0..65535, got {args.gps_port}")
        stream = server.stream
        compass = "" if args.compass == "none" else args.compass
        gnss = GnssServer(world, receiver, args.host, args.gps_port, compass=compass,
                          clock=lambda: stream.t_next_s)  # fmt: skip
        gps_port = gnss.bind()
        threading.Thread(target=gnss.serve_forever, name="gnss", daemon=True).start()
        print(f"GNSS NMEA of {args.receiver} on tcp://{args.host}:{gps_port}", flush=True)
    port = server.bind()
    print(f"KrakenSDR DAQ serving {args.receiver} on {args.host}:{port} (Ctrl-C stops)", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.serve_forever()
    finally:
        if gnss is not None:
            gnss.stop()
    return 0


def run_handheld(args: argparse.Namespace) -> int:
    from firmware_sim.handheld import Faults, HandheldEmulator

    world = _world(args)
    faults = Faults(
        line_noise_per_s=args.line_noise, bad_checksum_fraction=args.bad_checksums,
        unplug_at_s=args.unplug_at, replug_after_s=args.replug_after,
    )  # fmt: skip
    unit = HandheldEmulator(world, _receiver(world, args.receiver), faults)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"handheld {args.receiver} on {args.link} (Ctrl-C stops)", flush=True)
    try:
        unit.run_on_pty(args.link, args.speed, stop)
    except KeyboardInterrupt:
        stop.set()
    return 0


def run_reports(args: argparse.Namespace) -> int:
    from firmware_sim.report_mode import simulate_reports
    from firmware_sim.truth import write_world_truth
    from safetynet.report_lines import write_report

    world = _world(args)
    reports = simulate_reports(world)
    truth_path = args.truth or (Path(f"{args.out}.truth.jsonl") if args.out != "-" else None)
    if args.out == "-":
        for report in reports:
            write_report(sys.stdout, report)
    else:
        with open(args.out, "w", encoding="utf-8") as out:
            for report in reports:
                write_report(out, report)
    if truth_path is not None:
        with truth_path.open("w", encoding="utf-8") as truth:
            write_world_truth(truth, world)
    print(
        f"{len(reports)} reports" + (f"; truth in {truth_path}" if truth_path else ""),
        file=sys.stderr,
    )
    return 0
