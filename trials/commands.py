"""``safetynet sim search``: a whole simulated search, from the field to the person found.

Registered under ``safetynet sim`` through the ``safetynet.sim_commands`` entry point, so that
``firmware_sim`` (a lower room) never imports this one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safetynet.errors import ScenarioError


def add_parser(sub: Any, scenario_args: Callable[..., None]) -> None:
    p = sub.add_parser(
        "search",
        help="a whole simulated search: detection, fix, found (fast)",
        description="Run a whole simulated search — walker, teams, receivers, "
        "locator and probability map — and print the time to first detection, to "
        "a fix within 50 m and to find. The teams follow the map's guidance "
        "(guided), an expanding square from the last known point (square), or head "
        "straight for the person from the start (oracle: what no strategy can beat).",
    )
    scenario_args(p, receiver=False)
    p.add_argument("--strategy", choices=["guided", "square", "oracle", "both"], default="both")
    p.add_argument("--seed", type=int, default=None, help="walker seed (default: the scenario's)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="give up after this long")
    p.add_argument("--category", choices=["dementia", "autism"], default="dementia")
    p.add_argument(
        "--delay-minutes",
        type=float,
        default=45.0,
        help="from last seen to the teams listening (default 45)",
    )
    p.add_argument(
        "--alert",
        type=home_alert,
        default=None,
        metavar="home:N",
        help="a home station's wander alert instead of the call: the search starts N minutes "
        "after the person leaves the home station's range (N from 1 to 240)",
    )
    p.add_argument(
        "--fleet",
        action="store_true",
        help="the scenario's fleet (its [[fleet]]: cruisers, fire stations, roof sites) listens "
        "before the search opens; the last time it heard the person is the map's evidence",
    )
    p.add_argument(
        "--array-cruisers",
        action="store_true",
        help="every cruiser carries a KrakenSDR (a 5-element circle on its roof) and reports an "
        "array bearing for the pulses it hears, at most one per 2 s",
    )
    p.add_argument(
        "--features",
        type=Path,
        default=None,
        help="GeoJSON of map features (water, road, building, park, woods) for the prior",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(handler=run)


def home_alert(text: str) -> float:
    """``home:N``: the minutes of a home station's wander alert."""
    kind, _, minutes = text.partition(":")
    try:
        value = float(minutes)
    except ValueError:
        value = -1.0
    if kind != "home" or not 1.0 <= value <= 240.0:
        raise argparse.ArgumentTypeError(
            f"write the alert as home:N, N the minutes unheard from 1 to 240 (such as home:5); "
            f"got {text!r}"
        )
    return value


def _fleet_said(scenario: Any, seen: Any, delay_s: float) -> str:
    """The fleet's last sighting in words, as the server shows a sealed one when a search
    opens: ``fleet: last heard by CAR-5 31.8 min after last seen, 1.0 km south-east of the
    last known point``."""
    from safetynet.angles import compass_word
    from safetynet.geodesy import LocalFrame, inverse

    if seen is None:
        return f"fleet: the person was not heard in the {delay_s / 60:.1f} min before the search"
    frame = LocalFrame(scenario.origin.lat_deg, scenario.origin.lon_deg)
    lat, lon = frame.to_lat_lon(seen.east_m, seen.north_m)
    leg = inverse(scenario.origin.lat_deg, scenario.origin.lon_deg, lat, lon)
    where = f"{leg.distance_m / 1000:.1f} km {compass_word(leg.azimuth1_deg)}"
    return (f"fleet: last heard by {seen.receiver_id} {seen.t_s / 60:.1f} min after last seen, "
            f"{where} of the last known point")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import json

    from firmware_sim.scenario import load_scenario
    from trials.search import describe, run_search

    if not 1.0 <= args.max_minutes <= 24 * 60:
        raise ScenarioError(f"--max-minutes must be within 1..1440, got {args.max_minutes}")
    scenario = load_scenario(args.scenario)
    seed = scenario.seed if args.seed is None else args.seed
    strategies: list[Any] = ["guided", "square"] if args.strategy == "both" else [args.strategy]
    minutes = args.max_minutes * 60
    delay = args.delay_minutes * 60
    if args.alert is not None:
        from trials.search import home_alert_delay_s, home_station_range_m

        range_m = home_station_range_m(scenario)
        delay = home_alert_delay_s(scenario, seed, args.alert, range_m)
        if not args.json:
            print(f"home alert: the person left the home station's range ({range_m:.0f} m) "
                  f"{delay / 60 - args.alert:.1f} min after last seen; the search starts "
                  f"{args.alert:g} min later, {delay / 60:.1f} min after last seen")  # fmt: skip
    sightings = None
    if args.fleet:
        from trials.search import fleet_sightings, last_sighting

        if not scenario.fleet:
            raise ScenarioError(f"{args.scenario}: --fleet needs a [[fleet]] in the scenario")
        sightings = fleet_sightings(scenario, seed, delay)
        if not args.json:
            print(_fleet_said(scenario, last_sighting(sightings, delay), delay))
    features = None
    if args.features is not None:
        from locator.features import load_geojson

        features = load_geojson(args.features)
    results = [
        run_search(
            scenario,
            s,
            seed,
            minutes,
            args.category,
            delay,
            features,
            sightings,
            array_cruisers=args.array_cruisers,
        )
        for s in strategies
    ]
    if args.json:
        out = {r.strategy: r.to_obj() for r in results}
        print(json.dumps(out if len(results) > 1 else results[0].to_obj()))
    else:
        for r in results:
            print(describe(r))
    return 0
