"""False wander alerts in a week of a person at home: how often a home station stops hearing a
bracelet that never left, at the default minutes the registry chooses and at fixed settings.

A house (rooms at their distances from the station, walls and floors between) and a person who
spends the whole week in it: awake from 07:00 to 22:30, moving from room to room (dwell times
drawn per room; a shower once a day, the bracelet in water), asleep the rest, turning over now and
then (lying on the wrist). Each second the bracelet sends a frame; it is heard when its power at
the station's antenna — EIRP, the log-distance loss of :mod:`firmware_sim.propagation`, the walls,
the body's shadow for the posture of the moment, and the fading (redrawn every frame while the
person moves, frozen while they lie still) — clears the station's decoding threshold (an indoor
noise floor and the SNR a frame needs).

For each seed, week 1 is the station's measured reception: the registry chooses the default
wander minutes from its gaps (:func:`registry.home_stations.default_wander_after_min`); week 2,
drawn afresh, is checked once a minute as ``safetynet registry home-check`` does, and every gap
that outlasts the minutes at a check is a false alert (one per gap: it stays open until the
bracelet is heard; :func:`registry.home_stations.alerts_in`). Printed without a quiet window and
with the family's night window (22:30–07:00; the default then measured outside it too), and at
fixed settings of 3, 5 and 10 minutes.

    python bench/home_false_alerts.py [SEEDS]
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import numpy as np
from common import REPO  # noqa: F401 - puts the repository on the path

from firmware_sim.propagation import PropagationParams
from registry.home_stations import (
    FALSE_ALERTS_PER_WEEK,
    alerts_in,
    default_wander_after_min,
    quiet_at,
)

WEEK_S = 7 * 24 * 3600
EIRP_DBM = -10.0  # a worn bracelet's nominal EIRP (spec/air-interface.md)
INDOOR_EXPONENT = 3.0  # log-distance exponent indoors
WALL_LOSS_DB = 6.0  # an interior wall
FLOOR_LOSS_DB = 15.0  # a floor between storeys
NOISE_DBM = -105.0  # in the 10 kHz reference band: indoor electrical noise, above thermal
DECODE_SNR_DB = 10.0  # a frame's ID decodes above this
THRESHOLD_DBM = NOISE_DBM + DECODE_SNR_DB
SHOWER_LOSS_DB = 35.0  # the wrist under running water
WAKE, SLEEP = time(7, 0), time(22, 30)
QUIET = (time(22, 30), time(7, 0))
START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # a Monday, midnight


@dataclass(frozen=True)
class Room:
    name: str
    distance_m: float  # from the station's antenna
    walls: int
    floors: int
    weight: float  # share of the waking moves that go here
    dwell_min: float  # mean stay


# The station sits on a shelf in the living room.
ROOMS = (
    Room("living room", 3.0, 0, 0, 0.34, 25.0),
    Room("kitchen", 7.0, 1, 0, 0.25, 15.0),
    Room("hall", 5.0, 1, 0, 0.08, 2.0),
    Room("bathroom", 9.0, 2, 1, 0.10, 6.0),
    Room("bedroom", 10.0, 2, 1, 0.10, 10.0),
    Room("basement laundry", 8.0, 1, 1, 0.05, 12.0),
    Room("porch", 8.0, 2, 0, 0.08, 10.0),
)
BEDROOM = next(r for r in ROOMS if r.name == "bedroom")
BATHROOM = next(r for r in ROOMS if r.name == "bathroom")
# The body's shadow by posture: (loss dB, probability); awake postures change every minute or
# so, asleep every 25 minutes on average (lying on the wrist is the worst).
AWAKE_BODY = ((0.0, 0.4), (6.0, 0.3), (12.0, 0.2), (20.0, 0.1))
ASLEEP_BODY = ((3.0, 0.4), (10.0, 0.3), (20.0, 0.2), (30.0, 0.1))
TURN_OVER_MIN = 25.0


def room_mean_dbm(room: Room, params: PropagationParams) -> float:
    """The mean power of a frame from ``room`` at the antenna, before body and fading."""
    loss = float(params.path_loss_db(room.distance_m))
    return EIRP_DBM - loss - room.walls * WALL_LOSS_DB - room.floors * FLOOR_LOSS_DB


def rayleigh_db(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rayleigh fading in dB (mean power 0 dB), ``n`` draws."""
    power = rng.exponential(1.0, n)
    return 10.0 * np.log10(np.maximum(power, 1e-12))


def _draw(rng: np.random.Generator, table: tuple[tuple[float, float], ...]) -> float:
    losses, weights = zip(*table, strict=True)
    return float(rng.choice(losses, p=np.array(weights) / sum(weights)))


def week_heard(rng: np.random.Generator, params: PropagationParams) -> np.ndarray:
    """The seconds of one week (from :data:`START`) at which the station heard a frame."""
    power = np.empty(WEEK_S)
    weights = np.array([r.weight for r in ROOMS])
    weights /= weights.sum()
    t = 0
    while t < WEEK_S:
        now = START + timedelta(seconds=t)
        local = now.time()
        asleep = local >= SLEEP or local < WAKE
        if asleep:
            wake_at = datetime.combine(now.date() + timedelta(days=local >= SLEEP), WAKE, UTC)
            length = int(min(rng.exponential(TURN_OVER_MIN * 60), (wake_at - now).total_seconds()))
            if rng.random() < 0.03:  # up for the bathroom
                room, length, body = BATHROOM, int(rng.exponential(5 * 60)), _draw(rng, AWAKE_BODY)
            else:
                room, body = BEDROOM, _draw(rng, ASLEEP_BODY)
            length = max(length, 1)
            end = min(t + length, WEEK_S)
            # Lying still: the fading is frozen for the posture, with a dB or two of drift.
            frozen = rayleigh_db(rng, 1)[0]
            drift = rng.normal(0.0, 1.5, end - t)
            power[t:end] = room_mean_dbm(room, params) - body + frozen + drift
            t = end
            continue
        sleep_at = datetime.combine(now.date(), SLEEP, UTC)
        room = ROOMS[int(rng.choice(len(ROOMS), p=weights))]
        length = max(1, int(min(rng.exponential(room.dwell_min * 60),
                                (sleep_at - now).total_seconds())))  # fmt: skip
        end = min(t + length, WEEK_S)
        second = t
        while second < end:  # a posture about every minute, the fading redrawn every frame
            step = min(end, second + max(1, int(rng.exponential(60.0))))
            body = _draw(rng, AWAKE_BODY)
            power[second:step] = (room_mean_dbm(room, params) - body
                                  + rayleigh_db(rng, step - second))  # fmt: skip
            second = step
        t = end
    # A shower a day, in the bathroom, mid-morning: the wrist under water.
    for day in range(7):
        shower = day * 86400 + 9 * 3600 + int(rng.uniform(0, 3600))
        length = int(rng.uniform(8, 15) * 60)
        power[shower : shower + length] = (
            room_mean_dbm(BATHROOM, params) - SHOWER_LOSS_DB + rayleigh_db(rng, length)
        )
    return np.flatnonzero(power >= THRESHOLD_DBM).astype(float)


def false_alerts(heard_s: np.ndarray, minutes: int, quiet: tuple[time, time] | None) -> int:
    """The alerts ``safetynet registry home-check`` would raise over the week, once a minute."""
    times = (START.timestamp() + heard_s).tolist()
    return alerts_in(times, minutes, None if quiet is None else quiet_at(*quiet, UTC))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="?", type=int, default=20)
    args = parser.parse_args()
    params = PropagationParams(exponent=INDOOR_EXPONENT)
    print(f"house: {len(ROOMS)} rooms; frames heard above {THRESHOLD_DBM:.0f} dBm at the "
          f"station (noise {NOISE_DBM:.0f} dBm in 10 kHz, {DECODE_SNR_DB:.0f} dB SNR to "
          "decode)")  # fmt: skip
    for room in ROOMS:
        print(f"  {room.name:<17} mean {room_mean_dbm(room, params):6.1f} dBm before body "
              "and fading")  # fmt: skip
    rows: list[dict[str, float]] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        measured = (START.timestamp() + week_heard(rng, params)).tolist()
        chosen = default_wander_after_min(measured)
        chosen_quiet = default_wander_after_min(measured, quiet_at(*QUIET, UTC))
        checked = week_heard(rng, params)
        heard_share = len(checked) / WEEK_S
        longest_min = float(np.diff(checked).max()) / 60.0
        rows.append({
            "seed": seed, "chosen": chosen, "chosen_quiet": chosen_quiet, "heard": heard_share,
            "longest_min": longest_min, "default": false_alerts(checked, chosen, None),
            "default_quiet": false_alerts(checked, chosen_quiet, QUIET),
            **{f"n{n}": false_alerts(checked, n, None) for n in (3, 5, 10)},
            **{f"n{n}_quiet": false_alerts(checked, n, QUIET) for n in (3, 5, 10)},
        })  # fmt: skip
        r = rows[-1]
        print(f"seed {seed:>3}: {r['heard']:.1%} of frames heard, longest gap {longest_min:5.1f} "
              f"min; default {chosen} min -> {r['default']} false alert(s); with the night "
              f"window {chosen_quiet} min -> {r['default_quiet']}")  # fmt: skip

    def summary(key: str) -> str:
        values = [r[key] for r in rows]
        return (f"mean {statistics.mean(values):5.2f}/week, max {max(values)}, "
                f"weeks with none {sum(v == 0 for v in values)}/{len(values)}")  # fmt: skip

    print(f"\nfalse wander alerts per week over {len(rows)} simulated weeks at home (the "
          f"default aims below {FALSE_ALERTS_PER_WEEK}/week on the measured week):")  # fmt: skip
    for key, what in (("chosen", "no quiet window"), ("chosen_quiet", "night window")):
        picked = [r[key] for r in rows]
        print(f"  default minutes chosen ({what}): median {statistics.median(picked)}, "
              f"from {min(picked)} to {max(picked)}")  # fmt: skip
    print(f"  default, no quiet window:        {summary('default')}")
    print(f"  default, night window 22:30-07:00: {summary('default_quiet')}")
    for n in (3, 5, 10):
        print(f"  fixed {n:>2} min, no quiet window:   {summary(f'n{n}')}")
        print(f"  fixed {n:>2} min, night window:      {summary(f'n{n}_quiet')}")


if __name__ == "__main__":
    main()
