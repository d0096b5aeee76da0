"""The simulated array: element phases from geometry, Heimdall's header layout, 8 bits, noise."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from firmware_sim.array import ArrayStream, ArrayTuners, quantise_cu8
from firmware_sim.scenario import parse_scenario
from firmware_sim.world import World
from safetynet.arrays import SPEED_OF_LIGHT_MPS, ArrayGeometry
from safetynet.heimdall import SYNC_WORD, FrameType, HeaderError, IqHeader

# The firmware's own header as a C compiler lays it out natively (x86-64, little-endian): the
# format of its struct, with '@' alignment, an independent statement of the same layout.
NATIVE = "@II16sIIIQQQIQIIQIII" + "I" * 32 + "IIII" + "I" * 192 + "I"


def test_header_matches_the_firmwares_native_layout() -> None:
    assert struct.calcsize(NATIVE) == 1024
    header = IqHeader(
        frame_type=FrameType.CALIBRATION, unit_id=3, active_ant_chs=5,
        rf_center_freq_hz=216_500_000, adc_sampling_freq_hz=2_400_000, sampling_freq_hz=300_000,
        cpi_length=32768, time_stamp_ms=1_795_000_000_123, daq_block_index=7, cpi_index=8,
        ext_integration_cntr=9, if_gains_tenth_db=[402, 397, 0, 0, 1] + [0] * 27,
        noise_source_state=1,
    )  # fmt: skip
    raw = header.pack()
    assert raw[:4] == bytes.fromhex("5ab9f72b")  # 0x2BF7B95A, little-endian
    v = struct.unpack(NATIVE, raw)
    assert v[0] == SYNC_WORD
    assert v[1] == 3
    assert v[2].rstrip(b"\0") == b"KrakenSDR"
    assert (v[3], v[4], v[6], v[7], v[8], v[9]) == (3, 5, 216_500_000, 2_400_000, 300_000, 32768)
    assert (v[10], v[11], v[12], v[13]) == (1_795_000_000_123, 7, 8, 9)
    assert (v[14], v[15]) == (3, 32)
    assert list(v[17:22]) == [402, 397, 0, 0, 1]
    assert v[52] == 1
    assert v[-1] == 7
    assert IqHeader.unpack(raw) == header


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, 0xDEADBEEF, "sync word"),
        (4, 9, "frame_type"),
        (28, 0, "active_ant_chs"),
        (64, 1 << 30, "cpi_length"),
        (96, 7, "data_type"),
        (100, 16, "sample_bit_depth"),
    ],
)
def test_impossible_headers_are_refused_by_name(offset: int, value: int, message: str) -> None:
    raw = bytearray(IqHeader(rf_center_freq_hz=216_500_000, sampling_freq_hz=300_000,
                             cpi_length=1024).pack())  # fmt: skip
    raw[offset : offset + 4] = struct.pack("<I", value)
    with pytest.raises(HeaderError, match=message):
        IqHeader.unpack(bytes(raw))


def test_steering_is_the_path_difference_to_a_far_source() -> None:
    """Phase of each element against the centre = k·(range to centre − range to element)."""
    for geometry in (ArrayGeometry.circular(), ArrayGeometry.linear()):
        for beta in (0.0, 37.0, 90.0, 200.0, 333.0):
            far = 1e7
            src = np.array([far * math.sin(math.radians(beta)), far * math.cos(math.radians(beta))])
            k = 2 * math.pi * 216.5e6 / SPEED_OF_LIGHT_MPS
            ranges = np.hypot(src[0] - geometry.right_m, src[1] - geometry.forward_m)
            expected = np.exp(1j * k * (far - ranges))
            assert np.allclose(geometry.steering(beta, 216.5e6), expected, atol=1e-4)


def test_uca_spacing_is_under_half_a_wavelength_across_the_band() -> None:
    g = ArrayGeometry.circular()
    spacing = math.hypot(g.right_m[1] - g.right_m[0], g.forward_m[1] - g.forward_m[0])
    assert spacing < 0.5 * SPEED_OF_LIGHT_MPS / 217e6


def test_quantisation_is_eight_bits_per_tuner() -> None:
    z = (np.random.default_rng(1).normal(0, 0.5, (3, 1000)) * (1 + 1j)).astype(np.complex64)
    q = quantise_cu8(z).view(np.float32)
    codes = q * 127.5 + 127.5
    assert np.allclose(codes, np.rint(codes), atol=1e-3)
    assert codes.min() >= 0
    assert codes.max() <= 255


def _world() -> World:
    return World(parse_scenario({
        "name": "t", "seed": 5, "start": "2026-11-28T15:30:00Z", "duration_s": 10,
        "origin": {"lat_deg": 42.355, "lon_deg": -71.06}, "propagation": {"exponent": 2.0},
        "bracelets": [{"id": "B00C", "channel": 21, "eirp_dbm": -10,
                       "walker": {"stationary": True, "start": [42.362, -71.052]}}],
        "receivers": [{"id": "KR-1", "kind": "fixed", "position": [42.355, -71.06],
                       "heading_deg": 60.0}],
    }))  # fmt: skip


def test_elements_see_the_direction_and_the_tuners_offsets() -> None:
    """A strong pulse's element-to-element phases are the steering vector of the true
    direction times each tuner's own phase (both known to the simulator only)."""
    world = _world()
    rx = world.receivers[0]
    geometry = ArrayGeometry.circular()
    tuners = ArrayTuners.draw(5, np.random.default_rng(3))
    stream = ArrayStream(world, rx, geometry, tuners)
    frame = world.frames(1.0, 3.0)[0]
    x, links = stream.render(frame.t_start_s + 0.002, 3000)
    assert links == [] or links[0].frame is frame
    e, n = world.bracelets[0].position(frame.t_start_s)
    rx_e, rx_n = rx.pose.position(frame.t_start_s)
    true_relative = math.degrees(math.atan2(e - rx_e, n - rx_n)) - 60.0
    r = x.astype(complex) @ x.astype(complex).conj().T
    v = np.linalg.eigh(r)[1][:, -1]
    expected = geometry.steering(true_relative, frame.freq_rf_hz) * tuners.complex_gains
    match = abs(np.vdot(expected, v)) / np.linalg.norm(expected)
    assert match > 0.995


def test_calibration_frames_carry_the_common_noise_source_only() -> None:
    world = _world()
    tuners = ArrayTuners.draw(5, np.random.default_rng(4))
    stream = ArrayStream(world, world.receivers[0], ArrayGeometry.circular(), tuners)
    x, links = stream.read(20_000, calibration=True)
    assert links == []
    r = x.astype(complex) @ x.astype(complex).conj().T / x.shape[1]
    eig = np.linalg.eigvalsh(r)
    assert eig[-1] > 50 * eig[-2]  # one common source, 20 dB over each tuner's own noise
