"""What a field report says about where the person is: its likelihood over the grid's cells.

Each function gives the likelihood of one report at every cell centre (local east/north metres);
the probability map multiplies it in and renormalises (Bayes' rule on each cell):

- a **bearing**: a wedge, Gaussian in angle with the bearing's sigma, with a floor for
  reflections (``REFLECTION_FLOOR`` of the mass may lie anywhere: a bounce off a building gives a
  consistently wrong bearing that no sigma covers);
- **signal strength** of a heard pulse: the log-distance path-loss likelihood of the RSSI at
  each cell's distance (shadowing and the unknown EIRP make it broad);
- a **silence** (listened, heard nothing): the chance the receiver would have missed the
  bracelet from each cell, ``1 − P_detect(distance)`` from the link budget for that receiver's
  antenna and noise — negative information.

Reports from one receiver that meet the same shadowing say little more than the first:
:class:`EvidenceGate` decides which count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from locator.link import LISTEN_PULSES, LinkBudget
from safetynet.angles import bearing_of_enu, wrap_180
from safetynet.reports import Pulse, Silence

FloatGrid = NDArray[np.float64]

REFLECTION_FLOOR = 0.1
MIN_BEARING_SIGMA_DEG = 0.5  # a bearing is never taken as sharper than this
EIRP_SPREAD_DB = 3.0  # bracelets' EIRP spread, beside the shadowing, in a pulse's strength
# One pulse per receiver per this many seconds counts as signal-strength evidence: pulses heard
# from nearby spots share their shadowing, and counting each would make the map overconfident.
STRENGTH_EVERY_S = 60.0
# Silences likewise: a receiver listening again where it listened before meets the same
# shadowing, and its silence says little more. One counts when the receiver has moved this far
# (about twice the shadowing's decorrelation distance) from its last counted silence, or when
# this long has passed (the person moves).
SILENCE_SPACING_M = 100.0
SILENCE_EVERY_S = 300.0


def bearing_likelihood(
    east_m: FloatGrid,
    north_m: FloatGrid,
    from_east_m: float,
    from_north_m: float,
    bearing_deg: float,
    sigma_deg: float,
) -> FloatGrid:
    """A bearing taken at (``from_east_m``, ``from_north_m``): a wedge with a floor for
    reflections, per radian of the cell's direction."""
    azimuth_deg = bearing_of_enu(east_m - from_east_m, north_m - from_north_m)
    diff = np.radians(wrap_180(azimuth_deg - bearing_deg))
    sigma = math.radians(max(sigma_deg, MIN_BEARING_SIGMA_DEG))
    wedge = np.exp(-0.5 * (diff / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    out: FloatGrid = (1 - REFLECTION_FLOOR) * wedge + REFLECTION_FLOOR / (2 * math.pi)
    return out


def silence_likelihood(
    east_m: FloatGrid,
    north_m: FloatGrid,
    from_east_m: float,
    from_north_m: float,
    link: LinkBudget,
    gain_dbi: float,
    noise_dbm: float | None = None,
    pulses: int = LISTEN_PULSES,
) -> FloatGrid:
    """Listened for ``pulses`` pulses at (``from_east_m``, ``from_north_m``) and heard nothing:
    the chance of missing the bracelet from each cell."""
    d = np.hypot(east_m - from_east_m, north_m - from_north_m)
    out: FloatGrid = 1.0 - link.p_detect(d, gain_dbi, noise_dbm, pulses)
    return out


def strength_likelihood(
    east_m: FloatGrid,
    north_m: FloatGrid,
    from_east_m: float,
    from_north_m: float,
    link: LinkBudget,
    rssi_dbm: float,
    gain_dbi: float,
) -> FloatGrid:
    """A pulse heard at ``rssi_dbm`` at (``from_east_m``, ``from_north_m``): the path-loss
    likelihood at each cell's distance (unnormalised)."""
    d = np.hypot(east_m - from_east_m, north_m - from_north_m)
    sigma = math.hypot(link.shadowing_db, EIRP_SPREAD_DB)  # shadowing, and the EIRP's spread
    z = (rssi_dbm - link.mean_rssi_dbm(d, gain_dbi)) / sigma
    out: FloatGrid = np.exp(-0.5 * z**2)
    return out


@dataclass
class EvidenceGate:
    """Which pulses and silences count as evidence, per receiver: one pulse's strength every
    ``STRENGTH_EVERY_S``; a silence once the receiver has moved ``SILENCE_SPACING_M`` from its
    last counted one or ``SILENCE_EVERY_S`` has passed. Bearings always count."""

    _last_strength_s: dict[str, float] = field(default_factory=dict)
    _last_silence: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def pulse_counts(self, pulse: Pulse) -> bool:
        """Whether ``pulse``'s strength counts (and, if it does, note it)."""
        t_s = pulse.t.timestamp()
        last_s = self._last_strength_s.get(pulse.receiver_id)
        if last_s is not None and 0 <= t_s - last_s < STRENGTH_EVERY_S:
            return False
        self._last_strength_s[pulse.receiver_id] = t_s
        return True

    def silence_counts(self, silence: Silence, east_m: float, north_m: float) -> bool:
        """Whether ``silence``, heard at (``east_m``, ``north_m``), counts (and if so, note it)."""
        t_s = silence.t.timestamp()
        last = self._last_silence.get(silence.receiver_id)
        if last is not None:
            t_last_s, e_last_m, n_last_m = last
            moved_m = math.hypot(east_m - e_last_m, north_m - n_last_m)
            if moved_m < SILENCE_SPACING_M and 0 <= t_s - t_last_s < SILENCE_EVERY_S:
                return False
        self._last_silence[silence.receiver_id] = (t_s, east_m, north_m)
        return True
