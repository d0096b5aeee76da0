"""Guidance from the probability map against a plain expanding square, over many seeded searches.

For each scenario (suburban and dense-city, dementia walker), ``N`` searches with different
walker seeds are run twice — teams following the map's guidance, and teams running expanding
squares from the last known point — and the script prints, side by side, the median and 90th
percentile of the time to first detection, to a fix within 50 m and to find (searches not
finished within the time limit count at the limit), and the log score of the truth under the
map and under a Gaussian around the Kalman fix alone. Plots the time to find of both strategies
(bench/out/time_to_find_<DELAY>min.png).

    python bench/probmap_search.py [N] [--delay-minutes 45] [--max-minutes 90]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from common import OUT, REPO, Progress

from firmware_sim.scenario import load_scenario
from ui.search_sim import SearchResult, run_search

SCENARIOS = ("quiet-suburb.toml", "dense-city.toml")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50)
    parser.add_argument("--delay-minutes", type=float, default=45.0)
    parser.add_argument("--max-minutes", type=float, default=90.0)
    args = parser.parse_args()
    limit = args.max_minutes * 60
    results: dict[str, dict[str, list[SearchResult]]] = {}
    progress = Progress("searches", len(SCENARIOS) * args.n * 2)
    done = 0
    t0 = time.perf_counter()
    for name in SCENARIOS:
        scenario = load_scenario(REPO / "scenarios" / name)
        results[name] = {"guided": [], "square": []}
        for seed in range(args.n):
            for strategy in ("guided", "square"):
                results[name][strategy].append(
                    run_search(
                        scenario,
                        strategy,
                        1000 + seed,
                        limit,
                        "dementia",  # type: ignore[arg-type]
                        args.delay_minutes * 60,
                    )
                )
                done += 1
                progress.update(done)
    print(
        f"{args.n} searches per scenario and strategy, teams start {args.delay_minutes:.0f} min "
        f"after last seen, limit {args.max_minutes:.0f} min ({time.perf_counter() - t0:.0f} s)"
    )
    summary = {}
    for name, by in results.items():
        print(f"\n{name}")
        head = f"{'guided median':>14s} {'p90':>6s}   {'square median':>14s} {'p90':>6s}"
        print(f"  {'minutes':24s} {head}")
        row = {}
        for label, key in (
            ("first detection", "first_detection_s"),
            ("fix within 50 m", "fix_within_50m_s"),
            ("found", "found_s"),
        ):
            cells = []
            for strategy in ("guided", "square"):
                values = [
                    (getattr(r, key) if getattr(r, key) is not None else limit) / 60
                    for r in by[strategy]
                ]
                cells.append((statistics.median(values), pct(values, 90)))
                row[f"{strategy}_{key}_median_min"] = cells[-1][0]
            print(
                f"  {label:24s} {cells[0][0]:14.1f} {cells[0][1]:6.1f}   "
                f"{cells[1][0]:14.1f} {cells[1][1]:6.1f}"
            )
        found = {s: sum(r.found_s is not None for r in by[s]) for s in by}
        print(
            f"  found within the limit: guided {found['guided']}/{args.n}, "
            f"square {found['square']}/{args.n}"
        )
        scored = [r for s in by for r in by[s] if r.log_score_map is not None]
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
        for strategy, colour in (("guided", "tab:red"), ("square", "tab:blue")):
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
