"""Guidance from the probability map against a plain expanding square, over many seeded searches.

For each scenario (suburban and dense-city, dementia walker), ``N`` searches with different
walker seeds are run three times — teams following the map's guidance, teams running expanding
squares from the last known point, and teams heading straight for the person from the start
(the oracle: the least time any strategy could take with these teams) — and the script prints,
side by side, the median and 90th percentile of the time to first detection, to a fix within
50 m and to find (searches not finished within the time limit count at the limit), the share
of the possible cut that guidance makes, and the log score of the truth under the map and
under a Gaussian around the Kalman fix alone. Plots the time to find of both strategies
(bench/out/time_to_find_<DELAY>min.png).

Also prints each scenario's 50 % detection range on foot and by car (the radio the searches
run on, against the field's "about a mile on foot, a quarter of a mile from a moving vehicle").

    python bench/probmap_search.py [N] [--delay-minutes 45] [--max-minutes 90] [--jobs 2]

With ``--alert-minutes 5``, it prints instead the guided search in three conditions side by
side, over the same seeds: started by the call (``--delay-minutes`` after last seen), started by
a home station's wander alert 5 minutes after the person leaves its range (``safetynet sim
search --alert home:5``), and started by the call with the fleet's sightings (the scenario's
``[[fleet]]``, listening all shift before the search opens: ``safetynet sim search --fleet``) as
the map's evidence — the median and 90th percentile of the time to find from the start and from
last seen, and how many searches the fleet had heard the person before. Plots the time to find
after last seen (bench/out/time_to_find_start.png).

    python bench/probmap_search.py [N] --alert-minutes 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from common import OUT, REPO, Progress

from firmware_sim.scenario import load_scenario
from trials.search import (
    SearchResult,
    detection_range_m,
    fleet_sightings,
    home_alert_delay_s,
    home_station_range_m,
    run_search,
)

SCENARIOS = ("quiet-suburb.toml", "dense-city.toml", "open-park.toml")  # suburb, city, park
CONDITIONS = ("call", "home alert", "fleet sightings")
STRATEGIES = ("guided", "square", "oracle")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def started_search(
    name: str, condition: str, seed: int, delay_s: float, limit_s: float
) -> SearchResult:
    """One guided search of scenario ``name`` started ``delay_s`` after last seen; with the
    fleet's sightings until then as the map's evidence when ``condition`` is the fleet's."""
    scenario = load_scenario(REPO / "scenarios" / name)
    seen = fleet_sightings(scenario, seed, delay_s) if condition == "fleet sightings" else None
    return run_search(scenario, "guided", seed, limit_s, "dementia", delay_s, sightings=seen)


def compare_home_alert(args: argparse.Namespace) -> None:
    """The guided search started by the call (``--delay-minutes`` after last seen), by a home
    station's wander alert (``--alert-minutes`` after the person leaves the station's range),
    and by the call with the fleet's sightings as evidence, over the same seeds: the time to
    find from the search's start and from last seen, median and 90th percentile."""
    limit = args.max_minutes * 60
    scenarios = args.scenario or list(SCENARIOS)
    delays: dict[tuple[str, int], float] = {}
    for name in scenarios:
        scenario = load_scenario(REPO / "scenarios" / name)
        range_m = home_station_range_m(scenario)
        for seed in range(args.n):
            delays[(name, seed)] = home_alert_delay_s(scenario, 1000 + seed, args.alert_minutes,
                                                      range_m)  # fmt: skip
        fleet = ", ".join(f"{f.id} ({f.kind})" for f in scenario.fleet) or "none"
        print(f"{name}: home station range {range_m:.0f} m; the fleet: {fleet}")
    call = dict.fromkeys(delays, args.delay_minutes * 60)
    conditions = {"call": call, "home alert": delays, "fleet sightings": call}
    t0 = time.perf_counter()
    progress = Progress("searches", len(scenarios) * args.n * len(conditions))
    results: dict[tuple[str, str], list[tuple[float, SearchResult]]] = {}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            (name, condition, seed): (delay_of[(name, seed)], pool.submit(
                started_search, name, condition, 1000 + seed, delay_of[(name, seed)], limit))
            for name in scenarios for seed in range(args.n)
            for condition, delay_of in conditions.items()
        }  # fmt: skip
        for done, ((name, condition, _), (delay, future)) in enumerate(futures.items(), 1):
            results.setdefault((name, condition), []).append((delay, future.result()))
            progress.update(done)
    took_s = time.perf_counter() - t0
    print(f"\n{args.n} guided searches per scenario and condition, the same seeds; the call "
          f"{args.delay_minutes:.0f} min after last seen, the home alert {args.alert_minutes:g} "
          f"min after the person leaves the home station's range, the fleet's sightings with "
          f"the call; limit {args.max_minutes:.0f} min ({took_s:.0f} s)")  # fmt: skip
    summary: dict[str, dict[str, float]] = {}
    for name in scenarios:
        print(f"\n{name}")
        print(f"  {'minutes':42s} {'median':>7s} {'p90':>7s} {'worst':>7s}")
        for condition in conditions:
            rows = results[(name, condition)]
            starts = [d / 60 for d, _ in rows]
            finds = [(r.found_s if r.found_s is not None else limit) / 60 for _, r in rows]
            since = [d + f for d, f in zip(starts, finds, strict=True)]
            found = sum(r.found_s is not None for _, r in rows)
            for label, values in ((f"{condition}: search starts after", starts),
                                  (f"{condition}: found after the start", finds),
                                  (f"{condition}: found after last seen", since)):  # fmt: skip
                print(f"  {label:42s} {statistics.median(values):7.1f} {pct(values, 90):7.1f} "
                      f"{max(values):7.1f}")  # fmt: skip
            print(f"  {condition}: found within the limit {found}/{args.n}")
            if condition == "fleet sightings":
                ages = [d / 60 - r.sighting_s / 60 for d, r in rows if r.sighting_s is not None]
                age = f", the last {statistics.median(ages):.1f} min before the call (median)"
                print(f"  fleet sightings: heard before the call in {len(ages)}/{args.n}"
                      + (age if ages else ""))  # fmt: skip
            summary[f"{name} {condition}"] = {
                "found_after_start_median_min": statistics.median(finds),
                "found_after_start_p90_min": pct(finds, 90),
                "found_after_last_seen_median_min": statistics.median(since),
                "found_after_last_seen_p90_min": pct(since, 90),
            }
    OUT.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(scenarios), figsize=(5 * len(scenarios), 4))
    for ax, name in zip(np.atleast_1d(axes), scenarios, strict=True):
        for condition, colour in zip(conditions, ("tab:blue", "tab:green", "tab:red"),
                                     strict=True):  # fmt: skip
            values = sorted(d / 60 + (r.found_s if r.found_s is not None else limit) / 60
                            for d, r in results[(name, condition)])  # fmt: skip
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    color=colour, label=condition)  # fmt: skip
        ax.set_title(name)
        ax.set_xlabel("found after last seen (min)")
        ax.set_ylabel("share of searches")
        ax.legend()
    fig.tight_layout()
    plot = OUT / "time_to_find_start.png"
    fig.savefig(plot, dpi=110)
    print(f"\nplot: {plot}")
    print(json.dumps(summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50)
    parser.add_argument("--delay-minutes", type=float, default=45.0)
    parser.add_argument("--max-minutes", type=float, default=90.0)
    parser.add_argument("--jobs", type=int, default=2, help="searches run side by side")
    parser.add_argument("--scenario", action="append", help="only these (file names)")
    parser.add_argument(
        "--alert-minutes", type=float, default=None,
        help="compare the guided search started by the call with one started by a home "
        "station's wander alert this many minutes after the person leaves its range",
    )  # fmt: skip
    args = parser.parse_args()
    if args.alert_minutes is not None:
        compare_home_alert(args)
        return
    limit = args.max_minutes * 60
    results: dict[str, dict[str, list[SearchResult]]] = {}
    t0 = time.perf_counter()
    scenarios = args.scenario or list(SCENARIOS)
    progress = Progress("searches", len(scenarios) * args.n * len(STRATEGIES))
    for name in scenarios:
        scenario = load_scenario(REPO / "scenarios" / name)
        print(
            f"{name}: 50 % detection range {detection_range_m(scenario, False):.0f} m on foot, "
            f"{detection_range_m(scenario, True):.0f} m by car"
        )
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {
            (name, strategy, seed): pool.submit(
                run_search,
                load_scenario(REPO / "scenarios" / name),
                strategy,  # type: ignore[arg-type]
                1000 + seed,
                limit,
                "dementia",
                args.delay_minutes * 60,
            )
            for name in scenarios
            for seed in range(args.n)
            for strategy in STRATEGIES
        }
        for done, ((name, strategy, _), future) in enumerate(futures.items(), 1):
            results.setdefault(name, {s: [] for s in STRATEGIES})[strategy].append(future.result())
            progress.update(done)
    print(
        f"{args.n} searches per scenario and strategy, teams start {args.delay_minutes:.0f} min "
        f"after last seen, limit {args.max_minutes:.0f} min ({time.perf_counter() - t0:.0f} s)"
    )
    summary = {}
    for name, by in results.items():
        print(f"\n{name}")
        head = "".join(f"{s + ' median':>15s} {'p90':>6s} " for s in STRATEGIES)
        print(f"  {'minutes':18s} {head}")
        row = {}
        medians: dict[str, float] = {}
        for label, key in (
            ("first detection", "first_detection_s"),
            ("fix within 50 m", "fix_within_50m_s"),
            ("found", "found_s"),
        ):
            line = f"  {label:18s} "
            for strategy in STRATEGIES:
                values = [
                    (getattr(r, key) if getattr(r, key) is not None else limit) / 60
                    for r in by[strategy]
                ]
                median = statistics.median(values)
                line += f"{median:15.1f} {pct(values, 90):6.1f} "
                row[f"{strategy}_{key}_median_min"] = median
                medians[f"{strategy}_{key}"] = median
            print(line)
        found = {s: sum(r.found_s is not None for r in by[s]) for s in by}
        print(
            "  found within the limit: " + ", ".join(f"{s} {found[s]}/{args.n}" for s in STRATEGIES)
        )
        guided, square, oracle = (medians[f"{s}_found_s"] for s in STRATEGIES)
        cut = 1 - guided / square
        possible = 1 - oracle / square
        print(
            f"  guidance cuts the median time to find by {cut:.0%}; heading straight for the "
            f"person from the start would cut it by {possible:.0%}"
        )
        row["cut"], row["possible_cut"] = cut, possible
        scored = [r for s in ("guided", "square") for r in by[s] if r.log_score_map is not None]
        if scored:
            m = statistics.mean(r.log_score_map for r in scored if r.log_score_map is not None)
            k = statistics.mean(
                r.log_score_kalman for r in scored if r.log_score_kalman is not None
            )
            print(
                f"  log10 density of the truth (per m², mean over {len(scored)} searches, each "
                f"minute with a fix): map {m:.2f}, Gaussian around the Kalman fix {k:.2f}"
            )
            row["log_score_map"], row["log_score_kalman"] = m, k
        summary[name] = row
    OUT.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(11, 4))
    for ax, (name, by) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for strategy, colour in (
            ("guided", "tab:red"),
            ("square", "tab:blue"),
            ("oracle", "tab:gray"),
        ):
            values = sorted(
                (r.found_s if r.found_s is not None else limit) / 60 for r in by[strategy]
            )
            ax.step(
                values,
                np.arange(1, len(values) + 1) / len(values),
                where="post",
                color=colour,
                label=strategy,
            )
        ax.set_title(name)
        ax.set_xlabel("time to find (min)")
        ax.set_ylabel("share of searches")
        ax.legend()
    fig.tight_layout()
    plot = OUT / f"time_to_find_{args.delay_minutes:.0f}min.png"
    fig.savefig(plot, dpi=110)
    print(f"\nplot: {plot}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
