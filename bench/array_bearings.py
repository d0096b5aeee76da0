"""Array bearings on simulated drives: error against the Cramér–Rao bound, honest sigmas,
multipath flags by environment, bearings per minute.

Each case is a cruiser with a KrakenSDR (a 5-element circle of 0.45 m radius) driving a loop
around a walking bracelet for ``DRIVE_S`` seconds, in the propagation of one of the scenario
files (open park, quiet suburb, dense city with its reflectors and buildings), the seed, route
(a rectangle 2×(100–600) m across, turned at random) and speed (6–12 m/s) drawn per case. For
every pulse it hears (SNR ≥ −3 dB in 10 kHz, its fading included), the simulator renders the
pulse's window on every element (paths and reflections, the tuners' random gains and phases,
noise, 8 bits); the receiver's code removes the offsets with a calibration frame and estimates
the direction (:mod:`trials.array_cruisers`, :mod:`receiver.doa`); the heading is the GPS
course (GPS error 3 m, τ = 60 s), or the compass (2° bias, 1.5° noise) when turning.
The pulse's time and carrier come from the simulator, not the detector (its start times are
within tens of µs, a fraction of a percent of the 29 ms window).

Each drive's pulses then go through the drive check as the receiver runs it
(:mod:`receiver.drive_consistency`: the last minute's bearings must agree on one position,
flagged pulses counted against it; a consistent bearing's sigma carries the window's excess
scatter).

Prints, per SNR bin: pulses, RMS error of the array-frame direction against the direct path
(true heading) and the RMS of the bound at each pulse's measured SNR, their ratio (open park
and suburb: single paths); the spread of compass-bearing error / reported sigma for the
bearings that would be sent, without and with the drive check, pooled and per drive (median
and worst drive); the pulses whose power came mostly by reflections (the simulator's truth:
the direct path blocked or faded), how many the per-pulse test flagged, how many the drive
check held back and how many were sent; the pulses held back where reflections do not dominate
(false flags: in the park and suburb, all of them); the multipath flag rate by environment
(and, in the city, among pulses where paths compete: a reflection within 6 dB of the direct
path that frame, 30° or more away from it); bearings per minute per cruiser as sent (thinned
to one per 2 s) and before thinning. Writes bench/out/array_error.png.

Run: python bench/array_bearings.py [CASES_PER_ENVIRONMENT] [DRIVE_S] [FIRST_SEED]
(30 drives of 120 s from seed 1000 by default; another FIRST_SEED checks on unseen drives.)
"""

from __future__ import annotations

import itertools
import math
import sys
import tomllib
from typing import Any

import numpy as np
from common import OUT, REPO, Progress

from firmware_sim.scenario import ArraySpec, parse_scenario
from firmware_sim.world import World
from receiver.array_bearings import CAL_SIGMA_DEG, MIN_ESN0_DB, THIN_S
from receiver.drive_consistency import DriveBearing, DriveConsistency, Judgement
from safetynet.angles import angle_diff_deg
from safetynet.geodesy import LocalFrame
from trials.array_cruisers import ArrayPulse, drive

ENVIRONMENTS = {
    "open park": ("open-park.toml", (200.0, 600.0)),
    "quiet suburb": ("quiet-suburb.toml", (150.0, 500.0)),
    "dense city": ("dense-city.toml", (100.0, 300.0)),
}
SNR_BINS_DB = (-3.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)
DRIVE_S = 120.0


def case_world(file: str, half_side_m: tuple[float, float], seed: int, drive_s: float) -> World:
    base = tomllib.loads((REPO / "scenarios" / file).read_text(encoding="utf-8"))
    rng = np.random.default_rng([seed, 4242])
    frame = LocalFrame(base["origin"]["lat_deg"], base["origin"]["lon_deg"])
    a, b = rng.uniform(*half_side_m, size=2)
    turn = rng.uniform(0, np.pi / 2)
    c, s = math.cos(turn), math.sin(turn)
    centre = rng.uniform(-0.3, 0.3, size=2) * (a, b)
    corners = [(-a, -b), (a, -b), (a, b), (-a, b)]
    route = [
        list(frame.to_lat_lon(centre[0] + x * c - y * s, centre[1] + x * s + y * c))
        for x, y in corners
    ]
    data: dict[str, Any] = {
        **base,
        "seed": seed,
        "duration_s": drive_s,
        "bracelets": base["bracelets"][:1],
        "receivers": [
            {
                "id": "CAR-A", "kind": "vehicle", "route": route, "loop": True,
                "speed_mps": round(float(rng.uniform(6.0, 12.0)), 1),
                "array": {"kind": "uca", "elements": 5},
            }
        ],
    }  # fmt: skip
    return World(parse_scenario(data, REPO / "scenarios"))


def bearings_sent(pulses: list[ArrayPulse], thin_s: float, judged: dict[int, Judgement]) -> int:
    """How many bearings the thinning would send (best per bracelet per window)."""
    sent, window_start = 0, None
    for i, p in enumerate(pulses):
        if not usable(p) or not judged[i].send:
            continue
        if window_start is None or p.t_s - window_start >= thin_s:
            sent += 1
            window_start = p.t_s
        if thin_s <= 0:
            window_start = None
    return sent


def competing(p: ArrayPulse) -> bool:
    """A reflection within 6 dB of the direct path this frame, from 30° or more away."""
    off = p.strongest_reflection_off_deg
    return (
        p.rival_db is not None and off is not None and abs(p.rival_db) <= 6.0 and abs(off) >= 30.0
    )


def dominant_reflection(p: ArrayPulse) -> bool:
    """Reflections carry most of this frame's power: the direct path blocked or faded."""
    return p.reflected_share > 0.5


def judge_drive(pulses: list[ArrayPulse]) -> dict[int, Judgement]:
    """The drive check's verdict on every usable pulse of one drive (by index), fed as
    :class:`~receiver.array_bearings.ArrayBearings` feeds it: flagged pulses counted, the
    others judged with their GPS position, compass bearing and sigma."""
    check = DriveConsistency()
    out = {}
    for i, p in enumerate(pulses):
        e = p.estimate
        if e is None or e.esn0_db < MIN_ESN0_DB:
            continue
        if e.multipath:
            check.flagged(p.t_s)
            continue
        if p.heading is None:
            continue
        measured = (e.relative_bearing_deg + p.heading.heading_deg) % 360.0
        out[i] = check.check(DriveBearing(p.t_s, p.rx_east_m, p.rx_north_m, measured, _sigma(p)))
    return out


def usable(p: ArrayPulse) -> bool:
    e = p.estimate
    return e is not None and e.esn0_db >= MIN_ESN0_DB and not e.multipath and p.heading is not None


def main() -> None:
    n_cases = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    drive_s = float(sys.argv[2]) if len(sys.argv) > 2 else DRIVE_S
    seed_base = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    spec = ArraySpec()
    drives: dict[str, list[list[ArrayPulse]]] = {}
    judged: dict[str, list[dict[int, Judgement]]] = {}
    minutes: dict[str, float] = {}
    progress = Progress("drives", n_cases * len(ENVIRONMENTS))
    done = 0
    for env, (file, sides) in ENVIRONMENTS.items():
        drives[env], judged[env] = [], []
        minutes[env] = 0.0
        for seed in range(n_cases):
            world = case_world(file, sides, seed_base + seed, drive_s)
            pulses = drive(world, world.receivers[0], spec)
            drives[env].append(pulses)
            judged[env].append(judge_drive(pulses))
            minutes[env] += drive_s / 60.0
            done += 1
            progress.update(done)
    results = {env: [p for d in ds for p in d] for env, ds in drives.items()}
    sent = dict.fromkeys(results, 0)
    every = dict.fromkeys(results, 0)
    for env, env_drives in drives.items():  # per drive, so windows do not join across drives
        for pulses, verdicts in zip(env_drives, judged[env], strict=True):
            sent[env] += bearings_sent(pulses, THIN_S, verdicts)
            every[env] += bearings_sent(pulses, 0.0, verdicts)

    print(
        f"\n{n_cases} drives of {drive_s:.0f} s per environment (seeds {seed_base}–"
        f"{seed_base + n_cases - 1}), 5-element circle r = 0.45 m"
    )
    print("\narray-frame error against the Cramér–Rao bound (open park and suburb: one path)")
    print(f"{'SNR 10 kHz':>12} {'pulses':>7} {'RMS err':>9} {'RMS CRB':>9} {'ratio':>6} "
          f"{'worst':>7}")  # fmt: skip
    single = [p for env in ("open park", "quiet suburb") for p in results[env] if p.estimate]
    curve = []
    for lo, hi in itertools.pairwise(SNR_BINS_DB):
        sel = [p for p in single if lo <= p.snr10k_db < hi and p.estimate is not None]
        if len(sel) < 5:
            continue
        err = np.array([_rel_err(p) for p in sel])
        crb = np.array([p.estimate.crb_sigma_deg for p in sel if p.estimate is not None])
        rms, rcrb = float(np.sqrt(np.mean(err**2))), float(np.sqrt(np.mean(crb**2)))
        curve.append((lo, hi, rms, rcrb))
        print(f"{lo:5.0f}..{hi:3.0f} dB {len(sel):7d} {rms:8.3f}° {rcrb:8.3f}° "
              f"{rms / rcrb:6.2f} {np.abs(err).max():6.2f}°")  # fmt: skip
    high = [p for p in single if p.snr10k_db >= 10.0 and p.estimate is not None]
    if high:
        err = np.array([_rel_err(p) for p in high])
        crb = np.array([p.estimate.crb_sigma_deg for p in high if p.estimate is not None])
        print(f"  SNR ≥ 10 dB: RMS error / RMS bound = "
              f"{np.sqrt(np.mean(err**2)) / np.sqrt(np.mean(crb**2)):.3f} "
              f"over {len(high)} pulses")  # fmt: skip

    _honesty(drives, judged)

    print("\nmultipath flags (pulses over the weak-pulse floor)")
    print(f"{'environment':>14} {'pulses':>7} {'flagged':>8} {'where paths compete':>25} "
          f"{'RMS err flagged':>16} {'unflagged':>10}")  # fmt: skip
    for env, pulses in results.items():
        strong = [p for p in pulses if p.estimate is not None and p.estimate.esn0_db >= MIN_ESN0_DB]
        if not strong:
            continue
        flagged = [p for p in strong if p.estimate is not None and p.estimate.multipath]
        refl = [p for p in strong if competing(p)]
        refl_flag = [p for p in refl if p.estimate is not None and p.estimate.multipath]
        rate_refl = (
            f"{len(refl_flag)}/{len(refl)} = {len(refl_flag) / len(refl):.0%}" if refl else "none"
        )
        unflagged = [p for p in strong if p not in flagged]
        rms_flag = _rms([_rel_err(p) for p in flagged])
        rms_ok = _rms([_rel_err(p) for p in unflagged])
        print(f"{env:>14} {len(strong):7d} {len(flagged) / len(strong):8.1%} {rate_refl:>25} "
              f"{rms_flag:>16} {rms_ok:>10}")  # fmt: skip

    print("\nbearings per minute per cruiser")
    print(f"{'environment':>14} {'heard/min':>10} {'sent (1 per 2 s)':>17} {'one per pulse':>14}")
    for env, pulses in results.items():
        print(f"{env:>14} {len(pulses) / minutes[env]:10.1f} {sent[env] / minutes[env]:17.1f} "
              f"{every[env] / minutes[env]:14.1f}")  # fmt: skip
    _plot(single, curve)


def _honesty(
    drives: dict[str, list[list[ArrayPulse]]], judged: dict[str, list[dict[int, Judgement]]]
) -> None:
    """Error / reported sigma of the bearings that would be sent, before and after the drive
    check, pooled and per drive; and what became of the dominant-reflection pulses."""
    print(
        "\ncompass bearing error / reported sigma, bearings that would be sent (per pulse,"
        " before thinning)"
    )
    print(f"{'environment':>14} {'check':>6} {'bearings':>9} {'std':>6} {'drive std med':>14} "
          f"{'worst':>6} {'median |z|':>11} {'RMS err':>8} {'median σ':>9}")  # fmt: skip
    for env, env_drives in drives.items():
        for with_check in (False, True):
            z_all: list[float] = []
            err_all: list[float] = []
            sig_all: list[float] = []
            per_drive: list[float] = []
            for pulses, verdicts in zip(env_drives, judged[env], strict=True):
                z = []
                for i, p in enumerate(pulses):
                    if not usable(p) or (with_check and not verdicts[i].send):
                        continue
                    sigma = verdicts[i].sigma_deg if with_check else _sigma(p)
                    err = _bearing_err(p)
                    z.append(err / sigma)
                    err_all.append(err)
                    sig_all.append(sigma)
                z_all.extend(z)
                if len(z) >= 5:
                    per_drive.append(float(np.std(z)))
            if not z_all:
                continue
            za = np.array(z_all)
            print(f"{env:>14} {'on' if with_check else 'off':>6} {za.size:9d} {np.std(za):6.2f} "
                  f"{np.median(per_drive):14.2f} {max(per_drive):6.2f} "
                  f"{np.median(np.abs(za)):11.2f} {_rms(err_all):>8} "
                  f"{np.median(sig_all):8.2f}°")  # fmt: skip

    print(
        "\nwhere reflections carry most of the frame's power (the direct path blocked or faded),"
        " pulses over the weak-pulse floor"
    )
    print(f"{'environment':>14} {'pulses':>7} {'flagged per pulse':>18} {'by the drive':>13} "
          f"{'sent':>5} {'share kept back':>16} {'RMS err sent':>13}")  # fmt: skip
    for env, env_drives in drives.items():
        n = flagged = held = 0
        sent_err: list[float] = []
        for pulses, verdicts in zip(env_drives, judged[env], strict=True):
            for i, p in enumerate(pulses):
                e = p.estimate
                if e is None or e.esn0_db < MIN_ESN0_DB or not dominant_reflection(p):
                    continue
                n += 1
                if e.multipath:
                    flagged += 1
                elif i in verdicts and not verdicts[i].send:
                    held += 1
                elif i in verdicts:
                    sent_err.append(_bearing_err(p))
        if n:
            print(f"{env:>14} {n:7d} {flagged:18d} {held:13d} {len(sent_err):5d} "
                  f"{(flagged + held) / n:16.1%} {_rms(sent_err):>13}")  # fmt: skip
        else:
            print(f"{env:>14} {n:7d} {'-':>18} {'-':>13} {'-':>5} {'-':>16} {'-':>13}")

    print("\nkept back where reflections do not dominate (false flags), pulses over the floor")
    print(f"{'environment':>14} {'pulses':>7} {'flagged per pulse':>18} {'by the drive':>13}")
    for env, env_drives in drives.items():
        n = flagged = held = 0
        for pulses, verdicts in zip(env_drives, judged[env], strict=True):
            for i, p in enumerate(pulses):
                e = p.estimate
                if e is None or e.esn0_db < MIN_ESN0_DB or dominant_reflection(p):
                    continue
                n += 1
                flagged += bool(e.multipath)
                held += bool(i in verdicts and not verdicts[i].send)
        if n:
            print(f"{env:>14} {n:7d} {flagged / n:18.2%} {held / n:13.2%}")


def _rms(values: list[float]) -> str:
    return f"{math.sqrt(float(np.mean(np.square(values)))):.1f}°" if values else "-"


def _rel_err(p: ArrayPulse) -> float:
    assert p.estimate is not None
    return float(angle_diff_deg(p.estimate.relative_bearing_deg, p.true_relative_deg))


def _bearing_err(p: ArrayPulse) -> float:
    assert p.estimate is not None
    assert p.heading is not None
    measured = p.estimate.relative_bearing_deg + p.heading.heading_deg
    return float(angle_diff_deg(measured, p.true_bearing_deg))


def _sigma(p: ArrayPulse) -> float:
    assert p.estimate is not None
    assert p.heading is not None
    return math.sqrt(p.estimate.crb_sigma_deg**2 + p.heading.sigma_deg**2 + CAL_SIGMA_DEG**2)


def _plot(single: list[ArrayPulse], curve: list[tuple[float, float, float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5))
    snr = np.array([p.snr10k_db for p in single])
    err = np.abs(np.array([_rel_err(p) for p in single]))
    crb = np.array([p.estimate.crb_sigma_deg for p in single if p.estimate is not None])
    ax.scatter(snr, np.maximum(err, 1e-3), s=3, alpha=0.3, label="|error| per pulse")
    order = np.argsort(snr)
    ax.plot(snr[order], crb[order], color="k", lw=1, label="Cramér–Rao bound (measured SNR)")
    if curve:
        mid = [(lo + min(hi, 40.0)) / 2 for lo, hi, _, _ in curve]
        ax.plot(mid, [c[2] for c in curve], "o-", color="C3", label="RMS error per bin")
        ax.plot(mid, [c[3] for c in curve], "s--", color="C2", label="RMS bound per bin")
    ax.set_yscale("log")
    ax.set_xlabel("pulse SNR in 10 kHz (dB)")
    ax.set_ylabel("array-frame bearing error (deg)")
    ax.set_title("KrakenSDR-style 5-element circle (r = 0.45 m): error vs SNR")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = OUT / "array_error.png"
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
