"""The SDR receiver at the edges: the last frame of a recording, and a strong frame's ghosts.

Both against the simulator's truth (``rec.truth.jsonl``: every frame the receiver got, its start
and channel).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from firmware_sim.recording import record
from receiver.sdr import ReceiverConfig, SdrReceiver
from receiver.sources import open_source
from safetynet.reports import Pulse
from safetynet.sntx import ON_AIR_S
from tests.firmware_sim.test_iq import scenario, stationary

FS_HZ = 1_024_000  # the recordings' rate (the scenario's front end)
MATCH_S = 1e-3


def recorded(
    tmp_path: Path, bracelets: list[dict[str, Any]], **kw: Any
) -> tuple[Any, Path, list[dict[str, Any]]]:
    world = scenario(bracelets, **kw)
    base = tmp_path / "rec"
    record(world, "FIX-1", base, fmt="sigmf")
    truth = [json.loads(line) for line in base.with_name("rec.truth.jsonl").open()]
    meta = json.loads(base.with_suffix(".sigmf-meta").read_text())
    assert meta["global"]["core:sample_rate"] == FS_HZ
    return world, base, [t for t in truth if t["kind"] == "rx"]


def pulses_of(url: str) -> list[Pulse]:
    receiver = SdrReceiver(open_source(url), ReceiverConfig(receiver_id="FIX-1"))
    return [r for r in receiver.run() if isinstance(r, Pulse)]


def test_the_last_frame_of_a_recording_is_reported(tmp_path: Path) -> None:
    world, base, heard = recorded(tmp_path, [stationary("3A7F", 19, 800)], duration_s=4.2)
    last = max(heard, key=lambda h: h["t_start_rx_s"])
    data = base.with_suffix(".sigmf-data").read_bytes()
    for tail_s in (ON_AIR_S + 0.002, ON_AIR_S + 0.010, 0.045):  # the file ends just after it
        end = round((last["t_start_rx_s"] + tail_s) * FS_HZ)
        cut = tmp_path / f"cut-{tail_s:.3f}.cu8"
        cut.write_bytes(data[: 2 * end])
        t0 = quote(world.start.isoformat())
        pulses = pulses_of(f"cu8:{cut}?fs={FS_HZ}&fc=216500000&t0={t0}")
        assert len(pulses) == len(heard), tail_s
        for pulse, frame in zip(
            pulses, sorted(heard, key=lambda h: h["t_start_rx_s"]), strict=True
        ):
            assert pulse.bracelet_id == frame["bracelet_id"]
            assert pulse.channel == frame["channel"]
            true_t = world.start + timedelta(seconds=frame["t_start_rx_s"])
            assert abs((pulse.t - true_t).total_seconds()) < MATCH_S


def test_a_strong_frame_leaves_no_ghosts_and_weak_neighbours_are_heard(tmp_path: Path) -> None:
    # A bracelet 250 m off drives the converter into clipping at this gain (as a searcher close
    # in hears it before turning the gain down); weak bracelets on the channels either side.
    world, base, heard = recorded(
        tmp_path,
        [
            stationary("3A7F", 19, 250, carrier_error_ppm=2.0),
            stationary("B00C", 20, 2500, carrier_error_ppm=-1.0),
            stationary("7E57", 22, 3000, carrier_error_ppm=0.5),
        ],
        gain_db=40.2,
        duration_s=20.0,
    )
    strong = [h for h in heard if h["bracelet_id"] == "3A7F"]
    assert all(h["clipped"] for h in strong)
    pulses = pulses_of(f"sigmf:{base}.sigmf-meta")

    def at(h: dict[str, Any]) -> list[Pulse]:
        t = world.start + timedelta(seconds=h["t_start_rx_s"])
        return [p for p in pulses if abs((p.t - t).total_seconds()) < ON_AIR_S]

    for h in strong:  # at a strong frame's moment: nothing on a channel truth has nothing on
        channels_in_truth = {
            g["channel"] for g in heard if abs(g["t_start_rx_s"] - h["t_start_rx_s"]) < ON_AIR_S
        }
        ghosts = [(p.channel, p.rssi_dbm) for p in at(h) if p.channel not in channels_in_truth]
        assert not ghosts, (h["t_start_rx_s"], ghosts)
        assert [p.bracelet_id for p in at(h) if p.channel == 19] == ["3A7F"]
    weak = [h for h in heard if h["bracelet_id"] != "3A7F"]
    apart = [
        h for h in weak
        if all(abs(h["t_start_rx_s"] - s["t_start_rx_s"]) > ON_AIR_S for s in strong)
    ]  # fmt: skip
    assert len(apart) >= len(weak) - 2
    for h in apart:  # every weak frame on a neighbour that does not overlap the strong one
        assert [p.bracelet_id for p in at(h) if p.channel == h["channel"]] == [h["bracelet_id"]]
