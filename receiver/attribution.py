"""Attributing undecoded pulses to a bracelet, and gathering pulses into sweeps.

**Cadence** (spec §6): a bracelet on a channel sends a frame every second with ±25 ms of jitter,
so an undecoded pulse on that channel an whole number of seconds (±60 ms, plus the bracelet's
±100 ppm clock over the gap) after one of its decoded frames is most likely that bracelet's.
When two bracelets on the channel fit, the pulse stays unattributed. The pulse report itself
keeps ``bracelet_id`` null, as reports.md requires for an undecoded frame; attribution is used
to gather pulses per bracelet for bearings.

**Sweeps**: pulses of one bracelet at one receiver while the antenna turns; a sweep closes when
its headings have turned through a full circle, when the receiver moves on (no turning for a
while), or when there is a long gap; :class:`SweepCollector` fits each closed sweep
(:func:`receiver.sweep.fit_sweep`) and makes a ``bearing`` report, or says why it could not.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from receiver.sweep import COMPASS_SIGMA_DEG, SweepFit, fit_sweep
from safetynet.angles import angle_diff_deg
from safetynet.antennas import PATTERNS
from safetynet.reports import SIGMA_DEG_RANGE, Bearing, Pulse

log = logging.getLogger(__name__)

CADENCE_TOLERANCE_S = 0.060
CADENCE_MEMORY_S = 120.0
BRACELET_CLOCK_TOLERANCE = 100e-6  # ±100 ppm: how far a bracelet's one-second period may drift
SWEEP_MAX_GAP_S = 6.0
SWEEP_MAX_S = 40.0
FULL_TURN_DEG = 330.0


@dataclass
class CadenceTracker:
    """Remembers decoded frames per channel and attributes undecoded ones by cadence."""

    _decoded: dict[int, deque[tuple[float, str]]] = field(
        default_factory=lambda: defaultdict(deque)
    )

    def observe(self, pulse: Pulse) -> str | None:
        """The bracelet this pulse belongs to (its own ID when decoded), or None."""
        t = pulse.t.timestamp()
        history = self._decoded[pulse.channel]
        while history and history[0][0] < t - CADENCE_MEMORY_S:
            history.popleft()
        if pulse.bracelet_id is not None:
            history.append((t, pulse.bracelet_id))
            return pulse.bracelet_id
        fits = set()
        for t_dec, bracelet in history:
            gap = t - t_dec
            k = round(gap)
            if k == 0:
                continue
            tolerance = CADENCE_TOLERANCE_S + BRACELET_CLOCK_TOLERANCE * abs(gap)
            if abs(gap - k) <= tolerance:
                fits.add(bracelet)
        return fits.pop() if len(fits) == 1 else None


@dataclass
class _Sweep:
    pulses: list[Pulse] = field(default_factory=list)
    unwrapped_deg: list[float] = field(default_factory=list)


@dataclass
class SweepCollector:
    """Turns a stream of pulses (with headings) into bearing reports."""

    next_seq: Callable[[], int]
    compass_sigma_deg: float = COMPASS_SIGMA_DEG
    cadence: CadenceTracker = field(default_factory=CadenceTracker)
    fits: list[tuple[str, SweepFit]] = field(default_factory=list)  # every fit, for the record
    _open: dict[tuple[str, str], _Sweep] = field(default_factory=dict)

    def add(self, pulse: Pulse) -> list[Bearing]:
        bracelet = self.cadence.observe(pulse)
        if (
            bracelet is None
            or pulse.heading_deg is None
            or pulse.lat_deg is None
            or pulse.antenna == "omni"
        ):
            return []
        key = (pulse.receiver_id, bracelet)
        sweep = self._open.get(key)
        out: list[Bearing] = []
        if sweep is not None:
            last = sweep.pulses[-1]
            if (pulse.t - last.t).total_seconds() > SWEEP_MAX_GAP_S or (
                pulse.t - sweep.pulses[0].t
            ).total_seconds() > SWEEP_MAX_S:
                out += self._close(key)
                sweep = None
        if sweep is None:
            sweep = self._open[key] = _Sweep()
        previous = sweep.unwrapped_deg[-1] if sweep.unwrapped_deg else pulse.heading_deg
        sweep.pulses.append(pulse)
        sweep.unwrapped_deg.append(
            previous + float(angle_diff_deg(pulse.heading_deg, previous % 360.0))
        )
        turned = max(sweep.unwrapped_deg) - min(sweep.unwrapped_deg)
        if turned >= FULL_TURN_DEG:
            out += self._close(key)
        return out

    def flush(self) -> list[Bearing]:
        out: list[Bearing] = []
        for key in list(self._open):
            out += self._close(key)
        return out

    def _close(self, key: tuple[str, str]) -> list[Bearing]:
        sweep = self._open.pop(key)
        pulses = sweep.pulses
        pattern = PATTERNS[pulses[0].antenna]
        fit = fit_sweep(
            [p.heading_deg or 0.0 for p in pulses], [p.rssi_dbm for p in pulses], pattern,
            self.compass_sigma_deg,
        )  # fmt: skip
        self.fits.append((key[1], fit))
        if fit.bearing_deg is None or fit.sigma_deg is None:
            log.info("no bearing from %s's sweep of %s: %s", key[0], key[1], fit.reason)
            return []
        if fit.quality != "good":
            log.info(
                "sweep of %s by %s: %s (sigma widened to %.0f°)",
                key[1],
                key[0],
                fit.quality,
                fit.sigma_deg,
            )
        lats = np.array([p.lat_deg for p in pulses if p.lat_deg is not None])
        lons = np.array([p.lon_deg for p in pulses if p.lon_deg is not None])
        sigma_deg = round(max(fit.sigma_deg, SIGMA_DEG_RANGE[0]), 2)
        return [
            Bearing(
                receiver_id=key[0], seq=self.next_seq(), t=pulses[-1].t, bracelet_id=key[1],
                channel=pulses[-1].channel,
                lat_deg=float(np.mean(lats)), lon_deg=float(np.mean(lons)),
                bearing_deg=fit.bearing_deg, sigma_deg=sigma_deg,
                method="sweep", n_pulses=fit.n_pulses,
            )
        ]  # fmt: skip
