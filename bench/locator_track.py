"""Tracking on searches it was never tuned on: the working tree, the last release, Stone Soup.

Generates ``--cases`` searches (trials/generate.py: suburbs, dense cities, open parks; random
last known points, walkers, teams, routes, propagation and reflectors; ``--seed`` picks them),
simulates each one's reports (firmware_sim.report_mode) and runs four trackers on the SAME
reports, side by side:

- ``current``: ``safetynet locate`` of this working tree, as it is when the bench runs;
- ``release``: ``safetynet locate`` of the last release (commit ``RELEASE_COMMIT``), its
  ``locator`` and ``safetynet`` extracted by ``git archive`` into a temporary folder and run in
  a child process with that folder first on its path — no code of it is copied into the repo;
- ``ss-ukf`` and ``ss-pf``: reference trackers on Stone Soup's unscented Kalman and particle
  filters over the bearings (bench/track_refs.py).

Both ``locate`` trees get the reports as JSON Lines through the subcommand's own parser and
handler (bench/track_locate.py), exactly as on the command line.

**What is measured** (all distances in metres in the local frame of the last known point):

- *The live fix*: what the dispatcher's map shows at time t is the latest fix at or before t
  (sample and hold). It is sampled every ``GRID_S`` from a tracker's first fix to the search's
  end, so a tracker is judged at the same moments whether it emits one fix a minute or one a
  second. Error, coverage, walking/stopped and lag figures are over these samples.
- *95 % coverage*: the truth lies inside the fix's 95 % ellipse, ``eᵀ P⁻¹ e ≤ χ²₂(0.95)`` with
  ``e`` = estimate − truth and ``P`` the fix's east/north covariance in m².
- *Walking / stopped*: by the simulator's truth (walking: moving and over 0.1 m/s).
- *Along-track error*: ``e · v̂`` with ``v̂`` the walker's true direction of travel, over
  walking samples; negative means the fix trails behind him. The lag figure is its median;
  beside it, the same over the samples whose 95 % ellipse is under ``HELD_MAJOR_M`` (the track
  holds him: the lag of the motion model, not of evidence that does not yet place him).
- *Time to first fix*: from the first team's arrival (the first receiver's start) to the first
  fix.
- *Worst search*: the lowest coverage of any search with at least ``MIN_WORST_SAMPLES`` samples.
- *Fixes beyond 3 × their ellipse*: the issue's check, on the fixes as emitted, counted after
  the first ``EARLY_S`` of the tracker's first fix in that search: a fix is beyond k × its own
  95 % ellipse when its error exceeds k times the ellipse's extent in the error's direction,
  i.e. when ``sqrt(eᵀ P⁻¹ e / χ²₂(0.95)) > k``.
- *Per emitted fix*: coverage and median error over the fixes as emitted (the way the issue's
  first figures were taken), beside the live-fix figures.
- *Cache*: each case's reports are kept in bench/out/track_cache/ under a digest of its
  scenario and of the simulator's source (firmware_sim, trials/generate.py, the shared report
  types, angles and geodesy, and the direction finding that makes the array cruisers'
  bearings), so a second run only re-runs the trackers; a change to that source simulates
  afresh.
- *Demo*: ui/demo_scenario.toml through the same four trackers: the live fix's error at 5 and
  15 minutes after each tracker's first fix.

Run: python bench/locator_track.py [--cases 105] [--seed 1] [--kinds suburb city park]
[--jobs 2]; writes its plot to bench/out/locator_track.png.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from common import OUT, REPO
from numpy.typing import NDArray

RELEASE_COMMIT = "dac1a92"
TRACKERS = ("current", "current-no-prior", "release", "ss-ukf", "ss-pf")
# The working tree's tracker is run twice: with the search's last known point and last-seen
# time (as the server runs it: the lost-person prior weighs a track's first particles), and
# without (radio evidence alone, as the release and the Stone Soup references are run).
TREE_OF = {"current": "current", "current-no-prior": "current", "release": "release"}
GRID_S = 10.0
SETTLED_S = 600.0  # the "settled" figures: from this long after the first team's arrival
EARLY_S = 120.0
HELD_MAJOR_M = 150.0
BEYOND_K = 3.0
MIN_WORST_SAMPLES = 6
WALKING_MIN_MPS = 0.1
CHI2_2DOF_95 = 5.991464547107979
DEMO = REPO / "ui" / "demo_scenario.toml"
DEMO_AT_S = (300.0, 900.0)
MAX_JOBS = 2
PLOT_MINUTES = 40

# --- the two `safetynet locate` trees ---------------------------------------------------------


def extract_release(commit: str, dest: Path) -> Path:
    """The release's ``locator`` and ``safetynet`` packages, extracted into ``dest``."""
    try:
        blob = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit, "locator", "safetynet"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
    except subprocess.CalledProcessError as err:
        sys.exit(f"locator_track: cannot extract release {commit}: {err.stderr.decode().strip()}")
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return dest


class LocateProcess:
    """A child process running one tree's ``safetynet locate`` on request (track_locate.py)."""

    def __init__(self, tree: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
        self.tree = tree
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("track_locate.py"))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, cwd=tree,
        )  # fmt: skip
        hello = json.loads(self._read())
        where = Path(hello["locator"]).resolve()
        if where.parent != tree.resolve():
            raise RuntimeError(f"locate child imported locator from {where}, not from {tree}")

    def _read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the locate child of {self.tree} stopped")
        return line

    def run(self, reports: Path, fixes: Path, extra: Sequence[str] = ()) -> dict[str, Any]:
        """``safetynet locate --input reports [extra...]`` into ``fixes``."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{reports}\t{fixes}\t{json.dumps(list(extra))}\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._read())
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# --- one search -------------------------------------------------------------------------------


@dataclass
class TrackerResult:
    """One tracker on one search: the live fix on the grid, and the fixes as emitted."""

    error: str | None = None
    cpu_s: float = 0.0
    t_first_s: float | None = None  # since the first team's arrival
    grid_t_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # since 1st fix
    grid_err_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    grid_inside: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    grid_walking: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    grid_along_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    grid_major_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    fix_t_s: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    fix_err_m: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    fix_inside: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, bool))
    fix_ratio: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    demo_err_m: tuple[float | None, ...] = ()


@dataclass
class CaseResult:
    kind: str
    name: str
    n_reports: int
    n_bearings: int
    sim_s: float
    trackers: dict[str, TrackerResult]


Fixes = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]  # t, en, cov


def normalised_distance(err: NDArray[np.float64], cov: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sqrt(eᵀ P⁻¹ e / χ²₂(0.95))`` per row: the error in units of its own 95 % ellipse."""
    cov = (cov + np.swapaxes(cov, 1, 2)) / 2.0 + np.eye(2) * 1e-6
    m2 = np.einsum("ni,nij,nj->n", err, np.linalg.inv(cov), err)
    return np.asarray(np.sqrt(np.maximum(m2, 0.0) / CHI2_2DOF_95), dtype=float)


def evaluate(fixes: Fixes, truth: Any, t_arrival_s: float, t_end_s: float) -> TrackerResult:
    """Score one tracker's fixes (times in s since the scenario's start) against the truth."""
    t, en, cov = fixes
    res = TrackerResult()
    if t.size == 0:
        return res
    order = np.argsort(t, kind="stable")
    t, en, cov = t[order], en[order], cov[order]
    t0 = float(t[0])
    res.t_first_s = t0 - t_arrival_s
    true_en = truth.position_en(t).T
    err = en - true_en
    res.fix_t_s = t - t0
    res.fix_err_m = np.hypot(err[:, 0], err[:, 1])
    res.fix_ratio = normalised_distance(err, cov)
    res.fix_inside = res.fix_ratio <= 1.0
    grid = np.arange(t0, t_end_s + 1e-9, GRID_S)
    live = np.searchsorted(t, grid, side="right") - 1
    g_err = en[live] - truth.position_en(grid).T
    res.grid_t_s = grid - t0
    res.grid_err_m = np.hypot(g_err[:, 0], g_err[:, 1])
    res.grid_inside = normalised_distance(g_err, cov[live]) <= 1.0
    sym = (cov[live] + np.swapaxes(cov[live], 1, 2)) / 2.0
    res.grid_major_m = np.sqrt(CHI2_2DOF_95 * np.maximum(np.linalg.eigvalsh(sym)[:, -1], 0.0))
    walking = np.zeros(grid.size, dtype=bool)
    along = np.full(grid.size, np.nan)
    for i, tg in enumerate(grid):
        v = truth.velocity_enu_mps(float(tg))
        speed = float(np.hypot(v[0], v[1]))
        if truth.is_moving(float(tg)) and speed >= WALKING_MIN_MPS:
            walking[i] = True
            along[i] = float(g_err[i] @ v) / speed
    res.grid_walking, res.grid_along_m = walking, along
    return res


def _fixes_from_lines(path: Path, world: Any, bracelet_id: str) -> Fixes:
    """The fix reports of a ``locate`` run (any track of this search's bracelet or channel)."""
    ts, ens, covs = [], [], []
    start = world.start.timestamp()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        fix = json.loads(line)
        if fix.get("kind") != "fix" or fix.get("bracelet_id") not in (bracelet_id, None):
            continue
        ts.append(datetime.fromisoformat(fix["t"]).timestamp() - start)
        ens.append(world.frame.to_en(fix["lat_deg"], fix["lon_deg"]))
        covs.append(fix["cov_enu_m2"])
    return (
        np.array(ts, dtype=float),
        np.array(ens, dtype=float).reshape(-1, 2),
        np.array(covs, dtype=float).reshape(-1, 2, 2),
    )


def _reference_fixes(name: str, reports: Sequence[Any], world: Any, seed: int) -> Fixes:
    from track_refs import BearingIn, ParticleReference, UkfReference, run_reference

    from safetynet.reports import Bearing

    start = world.start.timestamp()
    bearings = [
        BearingIn(r.t.timestamp() - start, *world.frame.to_en(r.lat_deg, r.lon_deg),
                  r.bearing_deg, r.sigma_deg)
        for r in reports if isinstance(r, Bearing)
    ]  # fmt: skip
    tracker = UkfReference() if name == "ss-ukf" else ParticleReference(seed)
    out = run_reference(tracker, bearings, world.duration_s)
    return (
        np.array([f[0] for f in out], dtype=float),
        np.array([[f[1], f[2]] for f in out], dtype=float).reshape(-1, 2),
        np.array([f[3] for f in out], dtype=float).reshape(-1, 2, 2),
    )


_STATE: dict[str, Any] = {}
CACHE = OUT / "track_cache"
SIMULATOR_SOURCES = (
    "firmware_sim/*.py", "trials/generate.py", "safetynet/reports.py", "safetynet/antennas.py",
    "safetynet/angles.py", "safetynet/geodesy.py", "safetynet/report_lines.py",
    # the array cruisers' bearings are the receiver's direction finding on simulated IQ
    "trials/array_cruisers.py", "safetynet/arrays.py", "receiver/doa.py",
    "receiver/array_bearings.py", "receiver/drive_consistency.py",
)  # fmt: skip


def source_digest() -> str:
    """A digest of the source the cached reports depend on (simulator, report types, cases)."""
    h = hashlib.sha256()
    for pattern in SIMULATOR_SOURCES:
        for path in sorted(REPO.glob(pattern)):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _init_worker(tmp: str, trees: dict[str, str]) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    _STATE["tmp"] = Path(tmp)
    _STATE["trees"] = {k: Path(v) for k, v in trees.items()}
    _STATE["procs"] = {}
    _STATE["source_digest"] = source_digest()
    import multiprocessing.util

    def close() -> None:
        for proc in _STATE["procs"].values():
            proc.close()

    multiprocessing.util.Finalize(None, close, exitpriority=10)


def _locate(name: str) -> LocateProcess:
    procs: dict[str, LocateProcess] = _STATE["procs"]
    if name not in procs:
        procs[name] = LocateProcess(_STATE["trees"][name])
    return procs[name]


def run_task(task: tuple[str, int, str, int, tuple[str, ...]]) -> CaseResult:
    """Simulate one search (or the demo) and run every tracker on its reports."""
    from firmware_sim.scenario import load_scenario
    from firmware_sim.world import World
    from safetynet.report_lines import read_reports, write_report
    from safetynet.reports import Bearing
    from trials.generate import (
        SearchCase,
        generate_case,
        simulate_case,
        truth_of,
        with_array_cruisers,
    )

    what, seed, kind, index, trackers = task
    t_sim = time.perf_counter()
    if what == "demo":
        case = SearchCase("demo", seed, 0, "demo", load_scenario(DEMO))
    else:
        case = with_array_cruisers(generate_case(seed, kind, index), _STATE["array_cruisers"])
    # The reports of a case are kept between runs, under a digest of the scenario and of the
    # simulator's source: the same case from the same code gives the same reports.
    digest = hashlib.sha256(
        (_STATE["source_digest"] + case.scenario.model_dump_json()).encode()
    ).hexdigest()[:16]
    reports_path = CACHE / f"{case.kind}-{seed}-{index}-{digest}.reports.jsonl"
    if reports_path.exists():
        world = World(case.scenario)
        truth = truth_of(world)
        loaded, _ = read_reports(reports_path)
        reports: list[Any] = loaded
    else:
        world, reports, truth = simulate_case(case)
        partial = reports_path.with_suffix(f".{os.getpid()}.part")
        with partial.open("w", encoding="utf-8") as stream:
            for r in reports:
                write_report(stream, r)
        partial.replace(reports_path)
    sim_s = time.perf_counter() - t_sim
    t_arrival = min((r.start_s for r in case.scenario.receivers), default=0.0)
    tmp: Path = _STATE["tmp"]
    stem = f"{case.kind}-{seed}-{index}"
    results: dict[str, TrackerResult] = {}
    for name in trackers:
        try:
            if name in TREE_OF:
                fixes_path = tmp / f"{stem}.{name}.fixes.jsonl"
                extra: list[str] = []
                if name == "current":
                    origin = case.scenario.origin
                    extra = ["--last-known", f"{origin.lat_deg},{origin.lon_deg}",
                             "--last-seen", case.scenario.start.isoformat()]  # fmt: skip
                answer = _locate(TREE_OF[name]).run(reports_path, fixes_path, extra)
                if "error" in answer:
                    results[name] = TrackerResult(error=answer["error"])
                    continue
                fixes = _fixes_from_lines(fixes_path, world, truth.bracelet_id)
                fixes_path.unlink()
                cpu_s = float(answer["cpu_s"])
            else:
                start = time.process_time()
                fixes = _reference_fixes(name, reports, world, seed * 1000 + index)
                cpu_s = time.process_time() - start
        except Exception as err:  # one tracker failing on one search is a result, not a crash
            results[name] = TrackerResult(error=f"{type(err).__name__}: {err}")
            continue
        res = evaluate(fixes, truth, t_arrival, world.duration_s)
        res.cpu_s = cpu_s
        if what == "demo":
            res.demo_err_m = tuple(_live_error_at(res, s) for s in DEMO_AT_S)
        results[name] = res
    n_bearings = sum(isinstance(r, Bearing) for r in reports)
    return CaseResult(case.kind, case.name, len(reports), n_bearings, sim_s, results)


def _live_error_at(res: TrackerResult, after_first_s: float) -> float | None:
    i = int(np.searchsorted(res.grid_t_s, after_first_s - 1e-6))
    return float(res.grid_err_m[i]) if i < res.grid_t_s.size else None


# --- the figures ------------------------------------------------------------------------------


def _pct(values: NDArray[np.float64], q: float) -> str:
    values = values[np.isfinite(values)]
    return f"{np.percentile(values, q):.0f}" if values.size else "–"


def summary_rows(cases: list[CaseResult], trackers: Sequence[str]) -> list[tuple[str, list[str]]]:
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, [fn([c.trackers[t] for c in cases if t in c.trackers], t)
                             for t in trackers]))  # fmt: skip

    def ok(rs: list[TrackerResult]) -> list[TrackerResult]:
        return [r for r in rs if r.error is None and r.t_first_s is not None]

    def cat(rs: list[TrackerResult], attr: str) -> NDArray[Any]:
        parts = [getattr(r, attr) for r in ok(rs)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def coverage(rs: list[TrackerResult], _: str) -> str:
        inside = cat(rs, "grid_inside")
        return f"{inside.mean():.2f}" if inside.size else "–"

    def worst(rs: list[TrackerResult], t: str) -> str:
        best: tuple[float, str] | None = None
        for c in cases:
            r = c.trackers.get(t)
            if r is None or r.error or r.grid_inside.size < MIN_WORST_SAMPLES:
                continue
            cov = float(r.grid_inside.mean())
            if best is None or cov < best[0]:
                best = (cov, c.name.split(" (")[0])
        return f"{best[0]:.2f} {best[1]}" if best else "–"

    def err(mask_attr: str | None, q: float) -> Any:
        def fn(rs: list[TrackerResult], _: str) -> str:
            e = cat(rs, "grid_err_m")
            if mask_attr == "walking":
                e = e[cat(rs, "grid_walking").astype(bool)]
            elif mask_attr == "stopped":
                e = e[~cat(rs, "grid_walking").astype(bool)]
            return _pct(e, q)

        return fn

    def along(rs: list[TrackerResult], _: str) -> str:
        a = cat(rs, "grid_along_m")
        a = a[np.isfinite(a)]
        return f"{np.median(a):+.0f}" if a.size else "–"

    def along_held(rs: list[TrackerResult], _: str) -> str:
        # While the track is held (its 95 % ellipse under HELD_MAJOR_M): the lag of the motion
        # model itself, apart from the phases when the evidence does not place him at all.
        a, major = cat(rs, "grid_along_m"), cat(rs, "grid_major_m")
        a = a[np.isfinite(a) & (major < HELD_MAJOR_M)]
        return f"{np.median(a):+.0f} ({a.size})" if a.size else "–"

    def first(rs: list[TrackerResult], _: str) -> str:
        t = np.array([r.t_first_s for r in ok(rs)], dtype=float)
        return f"{np.median(t) / 60:.1f} / {np.percentile(t, 90) / 60:.1f}" if t.size else "–"

    def found(rs: list[TrackerResult], _: str) -> str:
        failed = sum(r.error is not None for r in rs)
        text = f"{len(ok(rs))}/{len(rs)}"
        return text + (f" ({failed} failed)" if failed else "")

    def beyond(rs: list[TrackerResult], _: str) -> str:
        n = searches = late = 0
        for r in ok(rs):
            mask = r.fix_t_s >= EARLY_S
            k = int(np.count_nonzero(r.fix_ratio[mask] > BEYOND_K))
            n, late, searches = n + k, late + int(mask.sum()), searches + (k > 0)
        return f"{n} in {searches} of {late}"

    def per_fix(rs: list[TrackerResult], _: str) -> str:
        inside, e = cat(rs, "fix_inside"), cat(rs, "fix_err_m")
        return f"{inside.mean():.2f} / {np.median(e):.0f}" if e.size else "–"

    def settled(rs: list[TrackerResult], _: str) -> str:
        # The same moments for every tracker: from SETTLED_S after the first team's arrival
        # (a tracker that fixes early is not judged on its early fixes alone).
        inside, e = [], []
        for r in ok(rs):
            late = r.grid_t_s + float(r.t_first_s or 0.0) >= SETTLED_S
            inside.append(r.grid_inside[late])
            e.append(r.grid_err_m[late])
        i, m = (np.concatenate(x) if x else np.zeros(0) for x in (inside, e))
        return f"{i.mean():.2f} / {np.median(m):.0f}" if m.size else "–"

    def cpu(rs: list[TrackerResult], _: str) -> str:
        return f"{sum(r.cpu_s for r in rs):.1f}"

    row("searches with a fix", found)
    row("95 % ellipse coverage", coverage)
    row("  worst search", worst)
    row("median error (m)", err(None, 50))
    row("90th percentile error (m)", err(None, 90))
    row("median error walking (m)", err("walking", 50))
    row("median error stopped (m)", err("stopped", 50))
    row("along-track, median walking (m, − behind)", along)
    row(f"  while held (ellipse < {HELD_MAJOR_M:.0f} m; samples)", along_held)
    row("time to first fix, median / 90 % (min)", first)
    row(f"fixes > {BEYOND_K:.0f}× own 95 % ellipse after {EARLY_S / 60:.0f} min", beyond)
    row("per emitted fix: coverage / median (m)", per_fix)
    row(f"from {SETTLED_S / 60:.0f} min after arrival: coverage / median (m)", settled)
    row("CPU (s)", cpu)
    return rows


def format_table(title: str, cases: list[CaseResult], trackers: Sequence[str]) -> str:
    rows = summary_rows(cases, trackers)
    width = max(len(label) for label, _ in rows) + 2
    cols = [max(len(t), *(len(v[i]) for _, v in rows)) + 2 for i, t in enumerate(trackers)]
    lines = [title, " " * width + "".join(t.rjust(w) for t, w in zip(trackers, cols, strict=True))]
    for label, values in rows:
        lines.append(
            label.ljust(width) + "".join(v.rjust(w) for v, w in zip(values, cols, strict=True))
        )
    return "\n".join(lines)


def plot(cases: list[CaseResult], trackers: Sequence[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.arange(0, PLOT_MINUTES + 1)
    fig, (ax_e, ax_c) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for t in trackers:
        rs = [c.trackers[t] for c in cases if t in c.trackers and c.trackers[t].error is None]
        if not rs:
            continue
        minutes = np.concatenate([r.grid_t_s for r in rs]) / 60.0
        err = np.concatenate([r.grid_err_m for r in rs])
        inside = np.concatenate([r.grid_inside for r in rs])
        which = np.digitize(minutes, edges) - 1
        med, p90, cov, mid = [], [], [], []
        for b in range(edges.size - 1):
            sel = which == b
            if np.count_nonzero(sel) < 10:
                continue
            mid.append(edges[b] + 0.5)
            med.append(np.median(err[sel]))
            p90.append(np.percentile(err[sel], 90))
            cov.append(inside[sel].mean())
        (line,) = ax_e.plot(mid, med, label=f"{t} median")
        ax_e.plot(mid, p90, ls="--", color=line.get_color(), lw=0.8, label=f"{t} 90 %")
        ax_c.plot(mid, cov, color=line.get_color(), label=t)
    ax_e.set_yscale("log")
    ax_e.set_ylabel("live fix error (m)")
    ax_e.grid(alpha=0.3, which="both")
    ax_e.legend(fontsize=7, ncol=2)
    ax_c.axhspan(0.90, 0.98, color="green", alpha=0.1, label="goal 0.90–0.98")
    ax_c.set_ylim(0, 1)
    ax_c.set_ylabel("95 % ellipse coverage")
    ax_c.set_xlabel("minutes since the tracker's first fix")
    ax_c.grid(alpha=0.3)
    ax_c.legend(fontsize=7)
    ax_e.set_title(f"{len(cases)} generated searches: the live fix against the truth")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- the command ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    from trials.generate import KINDS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=105, help="number of searches (default 105)")
    p.add_argument("--seed", type=int, default=1, help="which searches (default 1)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--jobs", type=int, default=MAX_JOBS, help=f"worker processes, 1..{MAX_JOBS}")
    p.add_argument("--trackers", nargs="+", choices=TRACKERS, default=list(TRACKERS))
    p.add_argument("--no-demo", action="store_true", help="skip the demo scenario")
    p.add_argument("--array-cruisers", type=int, default=0, metavar="N",
                   help="add N KrakenSDR cruisers to every generated search "
                   "(trials.generate.with_array_cruisers; default 0)")  # fmt: skip
    args = p.parse_args(argv)
    if not 1 <= args.jobs <= MAX_JOBS:
        p.error(f"--jobs must be within 1..{MAX_JOBS} (the machine has two cores), got {args.jobs}")
    if args.cases < 1:
        p.error(f"--cases must be at least 1, got {args.cases}")
    if not 0 <= args.seed < 2**63:
        p.error(f"--seed must be within 0..2**63-1, got {args.seed}")
    if len(set(args.kinds)) != len(args.kinds):
        p.error(f"--kinds must not repeat, got {args.kinds}")
    return args


def _brief(name: str, r: TrackerResult) -> str:
    if r.error is not None:
        return f"{name} error"
    if not r.grid_err_m.size:
        return f"{name} no fix"
    return f"{name} {np.median(r.grid_err_m):.0f} m {r.grid_inside.mean():.2f}"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    trackers = tuple(args.trackers)
    kinds = tuple(args.kinds)
    tasks: list[tuple[str, int, str, int, tuple[str, ...]]] = [
        ("case", args.seed, kinds[i % len(kinds)], i // len(kinds), trackers)
        for i in range(args.cases)
    ]
    if not args.no_demo:
        tasks.insert(0, ("demo", 0, "demo", 0, trackers))
    tmp = Path(tempfile.mkdtemp(prefix="locator-track-"))
    try:
        trees = {"current": str(REPO)}
        if "release" in trackers:
            release = extract_release(RELEASE_COMMIT, tmp / "release")
            trees["release"] = str(release)
        work = tmp / "work"
        work.mkdir()
        CACHE.mkdir(parents=True, exist_ok=True)
        results: list[CaseResult] = []
        started = time.perf_counter()
        _STATE["array_cruisers"] = args.array_cruisers  # the forked workers inherit it
        ctx = get_context("fork")
        with ctx.Pool(args.jobs, initializer=_init_worker, initargs=(str(work), trees)) as pool:
            for done, res in enumerate(pool.imap_unordered(run_task, tasks), start=1):
                results.append(res)
                brief = "  ".join(_brief(t, r) for t, r in res.trackers.items())
                elapsed = time.perf_counter() - started
                print(f"[{done}/{len(tasks)} {elapsed:4.0f} s] {res.name}: {brief}",
                      file=sys.stderr, flush=True)  # fmt: skip
            pool.close()
            pool.join()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    demo = [r for r in results if r.kind == "demo"]
    cases = sorted((r for r in results if r.kind != "demo"), key=lambda r: r.name)
    print(
        f"locator_track: {len(cases)} generated searches (seed {args.seed}, kinds "
        f"{' '.join(kinds)}); release = {RELEASE_COMMIT}; live fix sampled every {GRID_S:.0f} s"
    )
    print(format_table("\npooled", cases, trackers))
    for kind in kinds:
        subset = [c for c in cases if c.kind == kind]
        print(format_table(f"\n{kind} ({len(subset)} searches)", subset, trackers))
    for name in trackers:
        failures = [(c.name, c.trackers[name].error) for c in cases if c.trackers[name].error]
        if failures:
            print(f"\n{name} failed on {len(failures)} searches; first: {failures[0][0]}:")
            print(failures[0][1])
    if demo:
        d = demo[0]
        at_min = " and ".join(f"{s / 60:.0f}" for s in DEMO_AT_S)
        print(f"\ndemo ({d.name}): live fix error at {at_min} min after the first fix")
        for t in trackers:
            r = d.trackers[t]
            if r.error:
                print(f"  {t:8s} failed")
                continue
            at = ", ".join("–" if e is None else f"{e:.0f} m" for e in r.demo_err_m)
            first = "no fix" if r.t_first_s is None else f"first fix at {r.t_first_s / 60:.1f} min"
            cov = f"{r.grid_inside.mean():.2f}" if r.grid_inside.size else "–"
            print(f"  {t:8s} {at}   ({first}; coverage {cov})")
    OUT.mkdir(parents=True, exist_ok=True)
    plot(cases, trackers, OUT / "locator_track.png")
    sim_s = sum(c.sim_s for c in results)
    print(f"\nplot: {OUT / 'locator_track.png'}; simulating or loading reports {sim_s:.0f} s, "
          f"whole run {time.perf_counter() - started:.0f} s on {args.jobs} workers")  # fmt: skip


if __name__ == "__main__":
    main()
