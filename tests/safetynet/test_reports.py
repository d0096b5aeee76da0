"""Report types: the spec's examples, round trips, and one test per validation rule."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from safetynet.errors import ReportError
from safetynet.report_lines import BadLineError, ReportReader, write_report
from safetynet.reports import (
    Bearing,
    Ellipse95,
    Fix,
    Pulse,
    PulseStatus,
    Silence,
    Status,
    channel_center_hz,
    parse_report,
    report_to_json,
    report_to_obj,
)
from tests.conftest import SPEC_DIR


def spec_examples() -> list[str]:
    text = (SPEC_DIR / "reports.md").read_text(encoding="utf-8")
    return re.findall(r"```json\n(.*?)```", text, re.S)


def example(kind: str) -> dict[str, Any]:
    for block in spec_examples():
        obj: dict[str, Any] = json.loads(block)
        if obj["kind"] == kind:
            return obj
    raise AssertionError(kind)


def test_spec_has_all_five_examples() -> None:
    kinds = [json.loads(block)["kind"] for block in spec_examples()]
    assert sorted(kinds) == ["bearing", "fix", "pulse", "silence", "status"]


@pytest.mark.parametrize("block", spec_examples(), ids=lambda b: json.loads(b)["kind"])
def test_spec_example_round_trips_identically(block: str) -> None:
    original = json.loads(block)
    report = parse_report(block)
    assert report_to_obj(report) == original
    # Same values, same order, same number spelling: the canonical text equals the example's.
    assert report_to_json(report) == json.dumps(original, separators=(",", ":"))
    assert parse_report(report_to_json(report)) == report


def test_status_byte_matches_spec() -> None:
    status = PulseStatus(seq=5, test=False, strap_open=False, low_battery=True)
    assert status.byte == 0x29
    assert PulseStatus.from_byte(0xFC) == PulseStatus(
        seq=31, test=True, strap_open=False, low_battery=False
    )


def test_channel_centres_follow_spec() -> None:
    assert channel_center_hz(1) == 216_012_500
    assert channel_center_hz(19) == 216_462_500
    assert channel_center_hz(40) == 216_987_500


# --- one test per validation rule: the message names the field, the value and what is valid ----


def refused(obj: dict[str, Any]) -> ReportError:
    with pytest.raises(ReportError) as info:
        parse_report(obj)
    return info.value


def test_unknown_field_is_refused() -> None:
    err = refused({**example("pulse"), "colour": "red"})
    assert err.field == "colour"
    assert "unknown field" in str(err)
    assert "rssi_dbm" in str(err)  # lists what is valid


@pytest.mark.parametrize(("field", "value"), [("lat_deg", 142.0), ("lat_deg", -90.5)])
def test_latitude_out_of_range(field: str, value: float) -> None:
    err = refused({**example("bearing"), field: value})
    assert err.field == "lat_deg"
    assert str(value) in str(err)
    assert "-90, 90" in str(err)


@pytest.mark.parametrize("value", [180.5, -181.0])
def test_longitude_out_of_range(value: float) -> None:
    err = refused({**example("silence"), "lon_deg": value})
    assert err.field == "lon_deg"
    assert str(value) in str(err)
    assert "-180, 180" in str(err)


@pytest.mark.parametrize("value", [360.0, -0.5, 400.0])
def test_bearing_outside_0_360(value: float) -> None:
    err = refused({**example("bearing"), "bearing_deg": value})
    assert err.field == "bearing_deg"
    assert str(value) in str(err)
    assert "[0, 360)" in str(err)


def test_heading_outside_0_360() -> None:
    err = refused({**example("pulse"), "heading_deg": 360.0})
    assert err.field == "heading_deg"
    assert "[0, 360)" in str(err)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_infinite_number(value: float) -> None:
    err = refused({**example("pulse"), "rssi_dbm": value})
    assert err.field == "rssi_dbm"
    assert "finite" in str(err)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_json_text(token: str) -> None:
    text = json.dumps(example("pulse")).replace("-97.4", token)
    with pytest.raises(ReportError) as info:
        parse_report(text)
    assert token in str(info.value)


def test_nan_in_covariance() -> None:
    fix = example("fix")
    fix["cov_enu_m2"] = [[float("nan"), 0.0], [0.0, 1.0]]
    err = refused(fix)
    assert err.field.startswith("cov_enu_m2")
    assert "finite" in str(err)


@pytest.mark.parametrize("value", ["3A7", "3A7FF", "XYZW", "", "0000", "FFFF"])
def test_bracelet_id_not_4_hex_digits(value: str) -> None:
    err = refused({**example("pulse"), "bracelet_id": value})
    assert err.field == "bracelet_id"
    assert repr(value) in str(err) or value in str(err)
    assert "4 hex digits" in str(err) or "reserved" in str(err)


def test_lower_case_bracelet_id_is_normalised() -> None:
    report = parse_report({**example("pulse"), "bracelet_id": "3a7f"})
    assert isinstance(report, Pulse)
    assert report.bracelet_id == "3A7F"


@pytest.mark.parametrize("value", ["2026-11-28T14:03:05.123", "2026-11-28 14:03:05"])
def test_time_without_zone(value: str) -> None:
    err = refused({**example("pulse"), "t": value})
    assert err.field == "t"
    assert value in str(err)
    assert "zone" in str(err)


def test_time_with_offset_is_converted_to_utc() -> None:
    report = parse_report({**example("pulse"), "t": "2026-11-28T09:03:05.123-05:00"})
    assert report.t == datetime(2026, 11, 28, 14, 3, 5, 123000, tzinfo=UTC)
    assert report_to_obj(report)["t"] == "2026-11-28T14:03:05.123Z"


def test_garbage_time() -> None:
    err = refused({**example("pulse"), "t": "yesterday"})
    assert err.field == "t"
    assert "RFC 3339" in str(err)


def test_negative_seq() -> None:
    err = refused({**example("status"), "seq": -1})
    assert err.field == "seq"
    assert "-1" in str(err)
    assert ">= 0" in str(err)


@pytest.mark.parametrize("value", [0, 41, -3])
def test_channel_outside_1_40(value: int) -> None:
    err = refused({**example("pulse"), "channel": value})
    assert err.field == "channel"
    assert str(value) in str(err)
    assert "[1, 40]" in str(err)


def test_status_seq_outside_5_bits() -> None:
    pulse = example("pulse")
    pulse["status"] = {**pulse["status"], "seq": 32}
    err = refused(pulse)
    assert err.field == "status.seq"
    assert "[0, 31]" in str(err)


def test_unknown_kind() -> None:
    err = refused({**example("pulse"), "kind": "beep"})
    assert err.field == "kind"
    assert "pulse, bearing" in str(err)


def test_missing_field() -> None:
    obj = example("bearing")
    del obj["sigma_deg"]
    err = refused(obj)
    assert err.field == "sigma_deg"
    assert "missing" in str(err)


@pytest.mark.parametrize(("field", "value"), [("seq", "12"), ("seq", True), ("rssi_dbm", "-97")])
def test_wrong_json_types_are_not_coerced(field: str, value: object) -> None:
    err = refused({**example("pulse"), field: value})
    assert err.field == field


def test_bad_method() -> None:
    err = refused({**example("bearing"), "method": "guess"})
    assert err.field == "method"
    assert "sweep" in str(err)


def test_zero_window_silence() -> None:
    err = refused({**example("silence"), "window_s": 0.0})
    assert err.field == "window_s"
    assert "> 0" in str(err)


def test_covariance_must_be_symmetric_psd() -> None:
    fix = example("fix")
    err = refused({**fix, "cov_enu_m2": [[1.0, 5.0], [5.0, 1.0]]})
    assert err.field == "cov_enu_m2"
    assert "positive semi-definite" in str(err)
    err = refused({**fix, "cov_enu_m2": [[1.0, 0.5], [0.2, 1.0]]})
    assert "symmetric" in str(err)


def test_ellipse_minor_above_major() -> None:
    with pytest.raises(ValueError, match="semi_minor_m"):
        Ellipse95(semi_major_m=1.0, semi_minor_m=2.0, orientation_deg=0.0)


# --- JSON Lines ---------------------------------------------------------------------------------


def test_jsonl_round_trip_and_bad_lines() -> None:
    good = [parse_report(block) for block in spec_examples()]
    out = io.StringIO()
    for report in good:
        write_report(out, report)
    lines = out.getvalue().splitlines()
    lines.insert(2, '{"kind": "pulse", "seq": 1}')
    lines.insert(4, "not json")
    lines.insert(5, "")
    text = "\n".join(lines) + "\n"

    reader = ReportReader(io.StringIO(text), on_error="skip")
    assert list(reader) == good
    assert [bad.line_no for bad in reader.skipped] == [3, 5]
    assert "line 3" in str(reader.skipped[0])

    with pytest.raises(BadLineError) as info:
        list(ReportReader(io.StringIO(text), on_error="stop"))
    assert info.value.line_no == 3
    assert info.value.error.field == "receiver_id"


# --- property tests: every kind round-trips -----------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
receiver_ids = st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True)
bracelet_ids = st.integers(1, 0xFFFE).map(lambda n: f"{n:04X}")
lats = st.floats(-90, 90)
lons = st.floats(-180, 180)
bearings = st.floats(0, 360, exclude_max=True)
channels = st.integers(1, 40)
seqs = st.integers(0, 2**63 - 1)
statuses = st.builds(
    PulseStatus,
    seq=st.integers(0, 31),
    test=st.booleans(),
    strap_open=st.booleans(),
    low_battery=st.booleans(),
)

pulses = st.builds(
    Pulse,
    receiver_id=receiver_ids,
    seq=seqs,
    t=times,
    channel=channels,
    freq_hz=st.integers(215_000_000, 218_000_000),
    bracelet_id=st.none() | bracelet_ids,
    status=st.none() | statuses,
    rssi_dbm=st.floats(-200, 30),
    snr_db=st.floats(-50, 120),
    gain_db=st.none() | st.floats(0, 50),
    lat_deg=st.none() | lats,
    lon_deg=st.none() | lons,
    alt_m=st.none() | st.floats(-100, 5000),
    heading_deg=st.none() | bearings,
    antenna=st.sampled_from(["yagi3", "omni"]),
)
bearing_reports = st.builds(
    Bearing,
    receiver_id=receiver_ids,
    seq=seqs,
    t=times,
    bracelet_id=st.none() | bracelet_ids,
    channel=channels,
    lat_deg=lats,
    lon_deg=lons,
    bearing_deg=bearings,
    sigma_deg=st.floats(0.1, 90),
    method=st.sampled_from(["sweep", "array", "manual"]),
    n_pulses=st.integers(0, 10_000),
)
silences = st.builds(
    Silence,
    receiver_id=receiver_ids,
    seq=seqs,
    t=times,
    channel=channels,
    lat_deg=lats,
    lon_deg=lons,
    window_s=st.floats(0.001, 3600),
    noise_dbm=st.none() | st.floats(-200, 30),
    antenna=st.sampled_from(["yagi3", "omni"]),
)
status_reports = st.builds(
    Status,
    receiver_id=receiver_ids,
    seq=seqs,
    t=times,
    lat_deg=st.none() | lats,
    lon_deg=st.none() | lons,
    gps_fix=st.booleans(),
    gain_db=st.none() | st.floats(0, 50),
    noise_dbm=st.none() | st.floats(-200, 30),
    clipping=st.booleans(),
    battery_v=st.none() | st.floats(0, 60),
    lo_error_ppm=st.none() | st.floats(-1000, 1000),
)


@st.composite
def fixes(draw: st.DrawFn) -> Fix:
    a = draw(st.floats(0, 1e6))
    b = draw(st.floats(0, 1e6))
    rho = draw(st.floats(-0.99, 0.99))
    cross = rho * (a * b) ** 0.5
    major = draw(st.floats(0, 1e4))
    return Fix(
        bracelet_id=draw(st.none() | bracelet_ids),
        t=draw(times),
        lat_deg=draw(lats),
        lon_deg=draw(lons),
        cov_enu_m2=[[a, cross], [cross, b]],
        ellipse95=Ellipse95(
            semi_major_m=major,
            semi_minor_m=draw(st.floats(0, 1)) * major,
            orientation_deg=draw(st.floats(0, 180, exclude_max=True)),
        ),
        velocity_enu_mps=draw(st.none() | st.lists(st.floats(-5, 5), min_size=2, max_size=2)),
        n_bearings=draw(st.integers(0, 1000)),
        n_pulses=draw(st.integers(0, 10**6)),
        method=draw(st.sampled_from(["batch", "ekf", "imm"])),
    )


@given(st.one_of(pulses, bearing_reports, silences, status_reports, fixes()))
def test_every_kind_round_trips(report: Pulse | Bearing | Silence | Status | Fix) -> None:
    text = report_to_json(report)
    again = parse_report(text)
    assert again == report  # times are written to the microsecond, all a datetime holds
    assert report_to_json(again) == text


@given(times)
def test_time_text_keeps_microseconds(moment: datetime) -> None:
    pulse = parse_report({**example("pulse"), "t": moment.isoformat()})
    assert pulse.t == moment
    assert abs(parse_report(report_to_json(pulse)).t - moment) < timedelta(microseconds=1)
