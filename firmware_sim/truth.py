"""Ground truth as JSON Lines, written beside every simulator output.

Records (``kind``):

- ``tx``: every transmitted frame — time of the first bit (``t``, UTC; ``t_start_s`` since the
  scenario's start), bracelet ID, channel, status byte, carrier on the air, EIRP, and the
  wearer's true position;
- ``rx``: what one receiver got of one frame — power at the antenna port, C/N0, SNR in 10 kHz,
  frequency as heard, start sample, gain, clipping, and the receiver's true position and heading;
- ``pose``: every receiver once a second — true position and heading, and the position and
  heading it reports (with its GPS and compass errors).
"""

from __future__ import annotations

import json
from typing import IO, Any

from firmware_sim.bracelet import TxFrame
from firmware_sim.world import ReceiverSim, World
from safetynet.angles import wrap_360
from safetynet.reports import format_time


def tx_record(world: World, frame: TxFrame) -> dict[str, Any]:
    east, north = world.bracelets[frame.bracelet_index].position(frame.t_start_s + 0.014)
    lat, lon = world.frame.to_lat_lon(east, north)
    return {
        "kind": "tx",
        "t": format_time(world.time_of(frame.t_start_s)),
        "t_start_s": round(frame.t_start_s, 9),
        "bracelet_id": f"{frame.bracelet_id:04X}",
        "channel": frame.channel,
        "status_byte": frame.status_byte,
        "seq": frame.seq,
        "freq_rf_hz": round(frame.freq_rf_hz, 3),
        "eirp_dbm": frame.eirp_dbm,
        "lat_deg": round(lat, 8),
        "lon_deg": round(lon, 8),
        "east_m": round(east, 3),
        "north_m": round(north, 3),
        "moving": world.bracelets[frame.bracelet_index].track.is_moving(frame.t_start_s),
    }


def pose_record(
    world: World, receiver: ReceiverSim, t_s: float, compass_deg: float
) -> dict[str, Any]:
    east, north = receiver.pose.position(t_s)
    lat, lon = world.frame.to_lat_lon(east, north)
    rep_e, rep_n = receiver.reported_position(t_s)
    rep_lat, rep_lon = world.frame.to_lat_lon(rep_e, rep_n)
    heading = receiver.pose.heading_deg(t_s)
    return {
        "kind": "pose",
        "t": format_time(world.time_of(t_s)),
        "t_s": round(t_s, 3),
        "receiver_id": receiver.receiver_id,
        "lat_deg": round(lat, 8),
        "lon_deg": round(lon, 8),
        "east_m": round(east, 3),
        "north_m": round(north, 3),
        "heading_deg": round(heading, 3),
        "reported_lat_deg": round(rep_lat, 8),
        "reported_lon_deg": round(rep_lon, 8),
        "reported_heading_deg": round(wrap_360(heading + compass_deg), 3),
        "sweeping": receiver.pose.is_sweeping(t_s),
    }


def write_record(stream: IO[str], record: dict[str, Any]) -> None:
    stream.write(json.dumps(record, separators=(",", ":")))
    stream.write("\n")


def write_world_truth(stream: IO[str], world: World) -> None:
    """The ``tx`` records of every frame and the ``pose`` records of every receiver."""
    for frame in world.frames():
        write_record(stream, tx_record(world, frame))
    for receiver in world.receivers:
        for second in range(int(world.duration_s) + 1):
            write_record(
                stream, pose_record(world, receiver, float(second), receiver.errors.compass())
            )
