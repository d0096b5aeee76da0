"""Sweep bearings on simulated sweeps: error against the Cramér–Rao bound, and honest sigmas.

A bracelet stands still; handheld searchers 150–1500 m away turn their Yagis (360° in 5–15 s,
with hand wobble) while the simulator draws every frame's power through path loss, shadowing,
Rician fading (K = 6 dB) and the antenna's pattern, and the unit measures RSSI with 0.5 dB of
noise and heading with its compass error. Each sweep's pulses go to
:func:`receiver.sweep.fit_sweep`. For each sweep the bound is taken at the true bearing with the
spread of that sweep's own RSSI about the true pattern (what the fit cannot know).

Prints RMS error / RMS bound and the spread of error / reported sigma; writes
bench/out/sweep_error.png. Run: python bench/sweep_bearing.py [SWEEPS]
"""

from __future__ import annotations

import sys

import numpy as np
from common import ORIGIN, OUT, Progress, north_of

from firmware_sim.field import SweepParams, handheld_track
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from receiver.sweep import crlb_sweep_deg, fit_sweep
from safetynet.angles import angle_diff_deg, bearing_of_enu, wrap_360
from safetynet.antennas import YAGI3


def main() -> None:
    n_sweeps = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    rng = np.random.default_rng(7)
    errors, bounds, z, compass_free = [], [], [], []
    progress = Progress("sweeps", n_sweeps)
    done = 0
    attempt = 0
    while done < n_sweeps:
        attempt += 1
        distance = float(rng.uniform(150, 1500))
        world = World(parse_scenario({
            "name": "sweep", "seed": attempt, "start": "2026-11-28T14:00:00Z", "duration_s": 40,
            "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]},
            "propagation": {"exponent": 2.7, "shadowing_sigma_db": 4.0, "rician_k_db": 6.0},
            "bracelets": [{"id": "3A7F", "channel": 19, "walker": {"stationary": True}}],
            "receivers": [{"id": "HH-1", "kind": "handheld", "route": [north_of(distance)],
                           "compass_bias_sd_deg": 2.0, "compass_noise_deg": 1.5}],
        }))  # fmt: skip
        rx = world.receivers[0]
        rx.pose = handheld_track(
            np.array([[0.0, distance]]), 0.0, 40.0, np.random.default_rng(attempt),
            SweepParams(walk_s=(1.0, 2.0), sweep_s=(8.0, 15.0), point_s=(1.0, 2.0)),
        )  # fmt: skip
        headings, rssi, truths = [], [], []
        for frame in world.frames(0.0, 40.0):
            t = frame.t_start_s + 0.014
            if not rx.pose.is_sweeping(t):
                continue
            link = world.link(frame, rx)
            snr = link.power_dbm - rx.frontend.noise_dbm_per_hz - 40
            if snr < rx.unit.detect_snr_db:
                continue
            headings.append(wrap_360(link.heading_deg + rx.errors.compass()))
            rssi.append(link.power_dbm + float(rng.normal(0, 0.5)))
            truths.append(link.heading_deg)
        if len(headings) < 8:
            continue
        h = np.array(headings[:16])
        r = np.array(rssi[:16])
        fit = fit_sweep(h, r, YAGI3, compass_sigma_deg=2.5)
        if fit.bearing_deg is None or fit.sigma_deg is None:
            continue
        tx = world.bracelets[0].position(0.0)
        rx_e, rx_n = rx.pose.position(0.0)
        truth = bearing_of_enu(tx[0] - rx_e, tx[1] - rx_n)
        residual = r - YAGI3.gain_dbi(truth - h)
        spread = float(np.std(residual - residual.mean(), ddof=2))
        error = float(angle_diff_deg(fit.bearing_deg, truth))
        errors.append(error)
        bounds.append(float(np.hypot(crlb_sweep_deg(YAGI3, truth, h, spread), 2.5)))
        compass_free.append(crlb_sweep_deg(YAGI3, truth, h, spread))
        z.append(error / fit.sigma_deg)
        done += 1
        progress.update(done)
    errors_a, bounds_a, z_a = np.array(errors), np.array(bounds), np.array(z)
    rms, bound = float(np.sqrt(np.mean(errors_a**2))), float(np.sqrt(np.mean(bounds_a**2)))
    print(f"{done} simulated sweeps, 150-1500 m, Rician K = 6 dB, shadowing 4 dB, compass 2.5 deg")
    print(
        f"   RMS bearing error {rms:.2f} deg; RMS bound (fit + compass) {bound:.2f} deg; "
        f"ratio {rms / bound:.2f} (goal <= 1.25)"
    )
    print(f"   pattern-fit bound alone {float(np.sqrt(np.mean(np.square(compass_free)))):.2f} deg")
    print(
        f"   error / reported sigma: standard deviation {np.std(z_a):.2f} (goal 0.8-1.25); "
        f"within 2 sigma: {np.mean(np.abs(z_a) < 2):.0%}"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    OUT.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(z_a, bins=40, range=(-5, 5), density=True, alpha=0.7, label="error / reported sigma")
    xs = np.linspace(-5, 5, 200)
    ax.plot(xs, np.exp(-(xs**2) / 2) / np.sqrt(2 * np.pi), label="standard normal")
    ax.set_xlabel("normalised bearing error")
    ax.legend()
    ax.set_title("Sweep bearings: honest sigmas")
    fig.tight_layout()
    fig.savefig(OUT / "sweep_error.png", dpi=120)
    print(f"   plot: {OUT / 'sweep_error.png'}")


if __name__ == "__main__":
    main()
