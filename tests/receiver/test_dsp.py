"""The SDR receiver against independent truth: the conformance vector and simulated I/Q."""

from __future__ import annotations

import json
import math
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from firmware_sim.recording import record
from receiver.demod import baseband, noise_per_sample, tone_filters
from receiver.sdr import ReceiverConfig, SdrReceiver
from receiver.sources import open_source
from safetynet.reports import Pulse, Status
from tests.conftest import VECTORS_DIR
from tests.firmware_sim.test_iq import scenario, stationary


def run(url: str, **config: object) -> list[Pulse | Status]:
    receiver = SdrReceiver(open_source(url), ReceiverConfig(**config))  # type: ignore[arg-type]
    return [r for r in receiver.run() if isinstance(r, Pulse | Status)]


def test_conformance_vector_decodes_exactly() -> None:
    truth = [json.loads(line) for line in (VECTORS_DIR / "sntx1-a.truth.jsonl").open()]
    pulses = [r for r in run(f"sigmf:{VECTORS_DIR / 'sntx1-a.sigmf-meta'}") if isinstance(r, Pulse)]
    assert len(pulses) == len(truth)
    for pulse, frame in zip(pulses, truth, strict=True):
        assert pulse.bracelet_id == frame["id"]
        assert pulse.status is not None
        assert pulse.status.byte == frame["status"]["byte"]
        assert pulse.channel == frame["channel"]
        t_true = datetime.fromisoformat(frame["t_start"].replace("Z", "+00:00"))
        assert abs((pulse.t - t_true).total_seconds()) < 1e-4
        assert pulse.freq_hz == pytest.approx(frame["freq_hz"], abs=20)
        assert pulse.rssi_dbm == pytest.approx(frame["power_dbm"], abs=0.5)
        assert pulse.snr_db == pytest.approx(frame["snr10k_db"], abs=0.5)
        assert (pulse.lat_deg, pulse.lon_deg) == (
            42.30206,
            -71.05761,
        )  # the recording's geolocation


def simulated(
    tmp_path: Path, bracelets: list[dict[str, Any]], **kw: Any
) -> tuple[list[Pulse], list[dict[str, Any]], list[Status]]:
    world = scenario(bracelets, **kw)
    base = tmp_path / "rec"
    record(world, "FIX-1", base, fmt="sigmf")
    reports = run(f"sigmf:{base}.sigmf-meta", receiver_id="FIX-1")
    truth = [json.loads(line) for line in base.with_name("rec.truth.jsonl").open()]
    heard = [t for t in truth if t["kind"] == "rx"]
    return (
        [r for r in reports if isinstance(r, Pulse)],
        heard,
        [r for r in reports if isinstance(r, Status)],
    )


def test_simulated_recording_matches_truth(tmp_path: Path) -> None:
    pulses, heard, statuses = simulated(
        tmp_path,
        [
            stationary("3A7F", 19, 2000, carrier_error_ppm=2.2, battery_pct=5.0),
            stationary("B00C", 21, 4000, carrier_error_ppm=-1.4, test_mode=True),
            stationary("7E57", 3, 1500),
            stationary("0042", 38, 3000, carrier_error_ppm=0.7),
        ],
        gain_db=40.2,
        ppm=-52.0,
        duration_s=8.5,
    )
    decoded = [p for p in pulses if p.bracelet_id is not None]
    assert len(decoded) == len(heard)
    # Strong signals through an 8-bit converter make weak spurs; none may pass for a bracelet.
    assert all(p.snr_db < 3 for p in pulses if p.bracelet_id is None)
    assert len(pulses) - len(decoded) <= 2
    for pulse, frame in zip(
        sorted(decoded, key=lambda p: p.t),
        sorted(heard, key=lambda h: h["t_start_rx_s"]),
        strict=True,
    ):
        assert pulse.bracelet_id == frame["bracelet_id"]
        assert pulse.status is not None
        assert pulse.status.byte == frame["status_byte"]
        assert pulse.channel == frame["channel"]  # despite a dongle 52 ppm (11 kHz) off
        assert pulse.rssi_dbm == pytest.approx(frame["power_dbm"], abs=1.0)
        assert pulse.freq_hz == pytest.approx(frame["freq_hz"], abs=100)
    # The dongle's own error, from the decoded frames (bracelets within ±2.5 ppm).
    assert statuses[-1].lo_error_ppm == pytest.approx(-52.0, abs=2.5)


def test_collision_is_not_misdecoded(tmp_path: Path) -> None:
    """Two bracelets on one channel: every ID reported is one that was sent."""
    pulses, heard, _ = simulated(
        tmp_path,
        [stationary("3A7F", 19, 800), stationary("B00C", 19, 900, carrier_error_ppm=1.0)],
        duration_s=30.0,
    )
    sent = {h["bracelet_id"] for h in heard}
    decoded = [p.bracelet_id for p in pulses if p.bracelet_id is not None]
    assert set(decoded) <= sent
    assert set(decoded) == sent  # both are told apart when they do not overlap
    starts = sorted((h["t_start_rx_s"], h["bracelet_id"]) for h in heard)
    overlapping = [a for a, b in pairwise(starts) if b[0] - a[0] < 0.03]
    assert len(pulses) >= len(heard) - 2 * len(overlapping)


def test_clipping_steps_the_gain_down_and_rssi_stays_calibrated(tmp_path: Path) -> None:
    """A bracelet close by at high gain clips; through rtl_tcp the receiver steps the gain down."""
    import threading

    from firmware_sim.rtl_tcp_server import RtlTcpServer

    world = scenario([stationary("3A7F", 19, 30)], gain_db=49.6, duration_s=12.0)
    rx = world.receivers[0]
    rx.frontend.set_sample_rate(2_400_000)
    server = RtlTcpServer(world, rx, port=0, speed=0)
    server.bind()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = open_source(f"rtltcp://127.0.0.1:{server.port}?gain=49.6")
    receiver = SdrReceiver(source, ReceiverConfig(receiver_id="CAR-1"))
    reports: list[object] = []
    while world.duration_s - server.stream.t_next_s > 1.0:
        chunk = source.read(240_000)
        assert chunk is not None
        reports += receiver.process(chunk)
    server.stop()
    source.close()
    statuses = [r for r in reports if isinstance(r, Status)]
    assert any(s.clipping for s in statuses)
    assert rx.frontend.gain_db is not None
    assert rx.frontend.gain_db < 49.6 - 9  # stepped down
    pulses = [r for r in reports if isinstance(r, Pulse)]
    late = [p for p in pulses if (p.t - pulses[0].t).total_seconds() > 4]
    assert late
    true_dbm = -10.0 - (20 * math.log10(4 * math.pi * 216.46e6 / 299_792_458) + 20 * math.log10(30))
    assert np.median([p.rssi_dbm for p in late]) == pytest.approx(true_dbm, abs=1.5)
    assert all(p.gain_db is not None and p.gain_db < 49.6 for p in late)


@pytest.mark.parametrize("use_fftw", [True, False])
def test_channelizer_bins_are_the_blocks_dft(use_fftw: bool) -> None:
    """Both transforms (FFTW, and scipy.fft without pyFFTW) give each 1 ms block's DFT at the
    band's bins, for a full batch and a short one (the end of a recording), cu8 and complex."""
    from receiver.channelize import Band, Channelizer
    from tests.conftest import IN_CI

    band = Band(2.4e6, 216.5e6)
    channelizer = Channelizer(band, use_fftw=use_fftw)
    if use_fftw and channelizer.transform.backend != "FFTW":
        message = "pyFFTW is not installed (the dev and sdr extras bring it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    n = band.n_fft
    cols = (np.arange(band.n_bins) + band.first_offset_bin) % n
    rng = np.random.default_rng(5)
    for n_blocks in (Channelizer.BATCH + 12, 8):
        cu8 = rng.integers(0, 256, 2 * n * n_blocks, dtype=np.uint8)
        iq = (cu8[0::2] - 127.5 + 1j * (cu8[1::2] - 127.5)) / 127.5
        truth = np.fft.fft(iq.reshape(n_blocks, n), axis=1)[:, cols]
        power = np.abs(truth) ** 2
        power[:, band.dc_index] = 0.0
        scale = 1.0 / n**2
        for blocks in (
            channelizer.from_cu8(cu8, 0),
            channelizer.from_iq(iq.astype(np.complex64), 0),
        ):
            assert blocks.n_blocks == n_blocks
            assert blocks.power * blocks.scale == pytest.approx(power * scale, rel=1e-4, abs=1e-9)
            live = np.arange(band.n_bins) != band.dc_index  # cu8's 127.5 offset lands in DC
            amplitude = blocks.spectrum[:, live] * math.sqrt(blocks.scale)
            assert amplitude == pytest.approx(truth[:, live] * math.sqrt(scale), abs=1e-5)
        assert channelizer.from_cu8(cu8, 0).saturated == np.count_nonzero(cu8 == 255)


def test_sigmf_complex_types_read_alike(tmp_path: Path) -> None:
    """ci16_le and cf32_le recordings of the same I/Q give the same pulses as the cu8 one."""
    import shutil

    meta = json.loads((VECTORS_DIR / "sntx1-a.sigmf-meta").read_text())
    raw = np.fromfile(VECTORS_DIR / "sntx1-a.sigmf-data", dtype=np.uint8).astype(np.float32)
    z = (raw - 127.5) / 127.5
    for datatype, data in (
        ("ci16_le", np.round(z * 32767).astype("<i2")),
        ("cf32_le", z.astype("<f4")),
    ):
        meta["global"]["core:datatype"] = datatype
        base = tmp_path / datatype
        base.with_suffix(".sigmf-meta").write_text(json.dumps(meta))
        data.tofile(base.with_suffix(".sigmf-data"))
        pulses = [r for r in run(f"sigmf:{base}.sigmf-meta") if isinstance(r, Pulse)]
        assert [p.bracelet_id for p in pulses] == ["3A7F", "B00C", "3A7F", "B00C", "3A7F"]
        assert pulses[0].rssi_dbm == pytest.approx(-108.0, abs=0.5)
    shutil.rmtree(tmp_path)


def test_bad_sources_are_refused(tmp_path: Path) -> None:
    from safetynet.errors import InputError

    with pytest.raises(InputError, match="fs="):
        open_source(f"cu8:{tmp_path / 'x.cu8'}")
    with pytest.raises(InputError, match="unknown source"):
        open_source("http://example")
    with pytest.raises(InputError, match="cannot read SigMF"):
        open_source(f"sigmf:{tmp_path / 'missing.sigmf-meta'}")


@pytest.mark.parametrize(
    ("missing", "dc_column"), [(0, None), (0, 20), (5, None), (13, 20), (16, None)]
)
def test_bit_filter_noise_as_the_filters_hear_it(missing: int, dc_column: int | None) -> None:
    """The noise a frame's bit filters hear, with bins past the band's edge (``missing`` of the
    32) and the DC bin zeroed, against the filters' output power measured on white noise: within
    3 % (counting the bins held, as before, was 37 % short with 13 missing)."""
    rng = np.random.default_rng(missing)
    shape = (6000, 32)
    sub = np.empty(shape, np.complex128)
    sub.real, sub.imag = rng.standard_normal(shape), rng.standard_normal(shape)
    sub /= math.sqrt(2)
    sub[:, :missing] = 0
    if dc_column is not None:
        sub[:, dc_column] = 0
    b1, b0 = tone_filters(baseband(sub))
    measured = (np.mean(np.abs(b1) ** 2) + np.mean(np.abs(b0) ** 2)) / 2 / 16  # per sample
    assert noise_per_sample(sub, np.ones(17)) == pytest.approx(measured, rel=0.03)
