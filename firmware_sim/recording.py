"""Recordings: a receiver's I/Q to a SigMF pair (cu8, geolocation, sntx calibration) or raw cu8.

The SigMF metadata follows spec §7–8: ``core:datatype`` cu8, ``core:sample_rate``,
``core:frequency`` and ``core:datetime`` in the capture segment, ``core:geolocation`` (GeoJSON
point [lon, lat, alt]) of the receiver at the start, and the ``sntx`` extension's
``sntx:cal_dbm_at_fullscale`` and ``sntx:gain_db``. Truth goes to ``<base>.truth.jsonl``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sigmf import SigMFFile

from firmware_sim.iq import IqStream, heard_record
from firmware_sim.truth import write_record, write_world_truth
from firmware_sim.world import World
from safetynet.errors import ScenarioError
from safetynet.reports import format_time

log = logging.getLogger(__name__)

CHUNK_S = 0.1


def record(
    world: World,
    receiver_id: str,
    base: Path,
    duration_s: float | None = None,
    fmt: str = "sigmf",
    progress: bool = False,
) -> Path:
    """Render ``receiver_id``'s I/Q to ``base.sigmf-data``/``.sigmf-meta`` or ``base.cu8``.

    Returns the data file's path; the truth is written to ``base.truth.jsonl``.
    """
    receiver = next((r for r in world.receivers if r.receiver_id == receiver_id), None)
    if receiver is None:
        known = ", ".join(r.receiver_id for r in world.receivers) or "none"
        raise ScenarioError(f"no receiver {receiver_id!r} in the scenario (receivers: {known})")
    duration = world.duration_s if duration_s is None else min(duration_s, world.duration_s)
    fe = receiver.frontend
    stream = IqStream(world, receiver)
    data_path = base.with_name(base.name + (".sigmf-data" if fmt == "sigmf" else ".cu8"))
    data_path.parent.mkdir(parents=True, exist_ok=True)
    chunk = int(fe.sample_rate_hz * CHUNK_S)
    n_total = int(duration * fe.sample_rate_hz)
    done = 0
    with (
        data_path.open("wb") as data,
        base.with_name(base.name + ".truth.jsonl").open("w") as truth,
    ):
        write_world_truth(truth, world)
        while done < n_total:
            n = min(chunk, n_total - done)
            cu8, _, heard = stream.read(n)
            data.write(cu8.tobytes())
            for h in heard:
                write_record(
                    truth, heard_record(world, receiver, h, fe.sample_rate_hz, fe.center_hz)
                )
            done += n
            if progress and done % (chunk * 50) == 0:
                log.warning("rendered %.0f of %.0f s", done / fe.sample_rate_hz, duration)
    if fmt == "sigmf":
        _write_meta(world, receiver_id, data_path)
    return data_path


def _write_meta(world: World, receiver_id: str, data_path: Path) -> None:
    receiver = next(r for r in world.receivers if r.receiver_id == receiver_id)
    fe = receiver.frontend
    lat, lon = world.frame.to_lat_lon(*receiver.pose.position(0.0))
    point = {"type": "Point", "coordinates": [lon, lat, 0.0]}
    meta = SigMFFile(
        data_file=str(data_path),
        global_info={
            "core:datatype": "cu8",
            "core:sample_rate": float(fe.sample_rate_hz),
            "core:version": "1.0.0",
            "core:description": f"SafetyNet simulator: {world.scenario.name}, {receiver_id}",
            "core:extensions": [{"name": "sntx", "version": "1.0.0", "optional": True}],
            "core:geolocation": point,
            "core:recorder": "safetynet firmware_sim",
            "sntx:cal_dbm_at_fullscale": round(fe.cal_dbm_at_fullscale, 3),
            "sntx:gain_db": fe.effective_gain_db,
        },
    )
    meta.add_capture(
        0,
        metadata={
            "core:frequency": float(fe.center_hz),
            "core:datetime": format_time(world.start).replace(".000Z", ".000000Z"),
            "core:geolocation": point,
        },
    )
    meta.tofile(str(data_path.with_suffix(".sigmf-meta")))
