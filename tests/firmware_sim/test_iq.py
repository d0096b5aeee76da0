"""The simulator's I/Q against the spec, read by the plain demodulator in tests/plain_demod.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_sim.propagation import free_space_loss_1m_db
from firmware_sim.recording import record
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from safetynet.reports import channel_center_hz
from safetynet.rtl import nominal_cal_dbm_at_fullscale
from tests.plain_demod import demodulate, read_cu8

ORIGIN = [42.30206, -71.05761]
M_PER_DEG_LAT = 111_080.0  # near 42° N; only to place points, the truth is computed by the world


def north_of(metres: float) -> list[float]:
    return [ORIGIN[0] + metres / M_PER_DEG_LAT, ORIGIN[1]]


def scenario(
    bracelets: list[dict[str, Any]],
    gain_db: float = 40.2,
    ppm: float = 0.0,
    duration_s: float = 4.2,
) -> World:
    data: dict[str, Any] = {
        "name": "test",
        "seed": 3,
        "start": "2026-11-28T14:00:00Z",
        "duration_s": duration_s,
        "origin": {"lat_deg": ORIGIN[0], "lon_deg": ORIGIN[1]},
        "bracelets": bracelets,
        "receivers": [
            {
                "id": "FIX-1",
                "kind": "fixed",
                "position": ORIGIN,
                "gps_sigma_m": 0.0,
                "frontend": {"sample_rate_hz": 1_024_000, "gain_db": gain_db, "ppm_error": ppm},
            }
        ],
    }
    return World(parse_scenario(data))


def stationary(bid: str, channel: int, metres: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": bid,
        "channel": channel,
        "walker": {"stationary": True, "start": north_of(metres)},
        **extra,
    }


@pytest.fixture(scope="module")
def four_bracelets(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, Path]:
    world = scenario(
        [
            stationary("3A7F", 19, 300, carrier_error_ppm=2.0, battery_pct=5.0),
            stationary("B00C", 21, 500, carrier_error_ppm=-2.4, test_mode=True, first_seq=30),
            stationary("7E57", 17, 200, strap_open_after_s=2.0, clock_error_ppm=90.0),
            stationary("0001", 24, 400, carrier_error_ppm=0.5),
        ],
        gain_db=20.7,  # strong signals: keep them well below full scale
        ppm=35.0,
        duration_s=12.5,
    )
    base = tmp_path_factory.mktemp("iq") / "four"
    record(world, "FIX-1", base, fmt="cu8")
    return world, base


def test_plain_demodulator_recovers_every_frame(four_bracelets: tuple[World, Path]) -> None:
    world, base = four_bracelets
    iq = read_cu8(base.with_name("four.cu8"))
    fe = world.receivers[0].frontend
    sent = world.frames()
    assert len(sent) >= 48
    for bracelet in world.bracelets:
        b = bracelet.bracelet
        offset = b.freq_rf_hz - fe.lo_hz
        got = demodulate(iq, fe.sample_rate_hz, offset)
        mine = [f for f in sent if f.bracelet_index == b.index]
        assert [(g.bracelet_id, g.status) for g in got] == [
            (f.bracelet_id, f.status_byte) for f in mine
        ]
        assert all(g.crc_ok for g in got)
        for g, f in zip(got, mine, strict=True):
            # On the sample clock: the dongle's 35 ppm makes 1 s of true time 1.000035 s of samples.
            assert g.start_s == pytest.approx(f.t_start_s * (1 + 35e-6), abs=0.2e-3)
            assert 0.028 <= g.on_air_s <= 0.030
            assert g.deviation_hz == pytest.approx(2000, abs=50)
            assert abs(g.centre_offset_hz) < 60  # carrier where the configured errors put it
        starts = np.array([g.start_s for g in got])
        period = np.diff(starts)
        assert np.all(np.abs(period - 1.0) <= 0.050 + 1e-4)  # two jitters of ±25 ms at most
        k = np.round(starts - starts[0])
        slope = np.polyfit(k, starts, 1)[0]
        assert slope == pytest.approx(1.0, abs=0.005)  # ±25 ms jitter over ~12 frames
        residual = starts - (starts[0] + k * slope)
        assert np.ptp(residual) <= 0.050 + 1e-3  # jitter inside ±25 ms
    statuses = {f.bracelet_id: f.status_byte for f in sent}
    assert statuses[0x3A7F] & 1 == 1  # low battery under 10 %
    assert statuses[0xB00C] & 4 == 4  # test mode
    assert any(f.status_byte & 2 for f in sent if f.bracelet_id == 0x7E57)  # strap opened at 2 s


def test_status_counter_wraps(four_bracelets: tuple[World, Path]) -> None:
    world, _ = four_bracelets
    seqs = [f.seq for f in world.frames() if f.bracelet_id == 0xB00C]
    assert seqs[:3] == [30, 31, 0]


def measured_dbm(iq: np.ndarray, fs: float, cal_dbm: float) -> tuple[float, bool]:
    """Mean power over the constant-envelope part of bursts minus the noise, in dBm."""
    power = np.abs(iq) ** 2
    win = int(fs * 0.001)
    smooth = np.convolve(power, np.ones(win) / win, mode="same")
    noise = float(np.median(smooth))
    on = smooth > noise + 0.5 * (smooth.max() - noise)
    # Trim 2 ms at each edge of every burst to stay inside the constant envelope.
    edges = np.flatnonzero(np.diff(on.astype(int)))
    bursts = [
        power[a + 1 + 2 * win : b + 1 - 2 * win]
        for a, b in zip(edges[0::2], edges[1::2], strict=False)
    ]
    signal = float(np.mean(np.concatenate(bursts))) - noise
    return 10 * math.log10(signal) + cal_dbm, bool(
        np.any(np.abs(iq.real) >= 0.999) or np.any(np.abs(iq.imag) >= 0.999)
    )


@pytest.mark.parametrize("metres", [300.0, 1000.0, 3000.0])
@pytest.mark.parametrize("gain_db", [20.7, 33.8, 44.5])
def test_power_equals_link_budget(metres: float, gain_db: float, tmp_path: Path) -> None:
    world = scenario([stationary("3A7F", 19, metres, eirp_dbm=-10.0)], gain_db=gain_db)
    base = tmp_path / "budget"
    record(world, "FIX-1", base, duration_s=2.2, fmt="cu8")
    truth = [json.loads(line) for line in base.with_name("budget.truth.jsonl").open()]
    distance = next(r for r in truth if r["kind"] == "tx")["north_m"]
    budget_dbm = -10.0 - (free_space_loss_1m_db(216.5e6) + 20 * math.log10(distance)) + 0.0  # omni
    cal = nominal_cal_dbm_at_fullscale(gain_db)
    iq = read_cu8(base.with_name("budget.cu8"))
    got, clipped = measured_dbm(iq, 1_024_000, cal)
    budget_dbfs = budget_dbm - cal
    assert clipped == (budget_dbfs > 0.0)
    if budget_dbfs < -1.0:  # a constant envelope at |z| < 1 is reproduced exactly
        assert got == pytest.approx(budget_dbm, abs=0.5)
    else:
        assert got < budget_dbm - 0.5  # clipping loses power


@pytest.mark.parametrize(
    ("metres", "gain_db", "must_clip"),
    [(3.0, 44.5, True), (30.0, 0.0, False), (40.0, 44.5, True), (300.0, 20.7, False)],
)
def test_clipping_where_the_budget_says(
    metres: float, gain_db: float, must_clip: bool, tmp_path: Path
) -> None:
    world = scenario([stationary("3A7F", 19, metres, eirp_dbm=-20.0)], gain_db=gain_db)
    loss_db = free_space_loss_1m_db(216.5e6) + 20 * math.log10(metres)
    budget_dbfs = -20.0 - loss_db - nominal_cal_dbm_at_fullscale(gain_db)
    assert (budget_dbfs > 0.0) == must_clip
    base = tmp_path / "clip"
    record(world, "FIX-1", base, duration_s=1.5, fmt="cu8")
    raw = np.fromfile(base.with_name("clip.cu8"), dtype=np.uint8)
    saturated = np.count_nonzero((raw == 0) | (raw == 255))
    assert (saturated > 100) == must_clip
    heard = [
        json.loads(line) for line in base.with_name("clip.truth.jsonl").open() if '"rx"' in line
    ]
    assert all(h["clipped"] == must_clip for h in heard)


def test_channel_offsets_in_truth(four_bracelets: tuple[World, Path]) -> None:
    _world, base = four_bracelets
    heard = [
        json.loads(line)
        for line in base.with_name("four.truth.jsonl").open()
        if '"kind":"rx"' in line
    ]
    assert heard
    for h in heard:
        # 35 ppm dongle error at 216.5 MHz ≈ −7.6 kHz, plus the bracelet's own ±2.5 ppm.
        expected = -35e-6 * 216.5e6
        assert h["channel_offset_hz"] == pytest.approx(expected, abs=600)
        assert h["freq_hz"] - h["channel_offset_hz"] == pytest.approx(
            channel_center_hz(h["channel"])
        )
