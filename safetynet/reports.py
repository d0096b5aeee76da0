"""The report types of spec/reports.md and their JSON form — the one place that defines them.

Five kinds flow from the field to dispatch: :class:`Pulse` (one heard frame), :class:`Bearing`
(a direction with its one-sigma uncertainty), :class:`Silence` (listened here, heard nothing),
:class:`Status` (receiver health) and :class:`Fix` (the locator's estimate). Every model is
frozen, refuses unknown fields, and carries the unit of every quantity in the field's name.

Parsing goes through :func:`parse_report` (a JSON text or an already decoded object); a report
that breaks a rule raises :class:`~safetynet.errors.ReportError` whose ``field`` names the
offending field and whose message says the value and what is valid. :func:`report_to_json` gives
the canonical compact JSON text; :func:`report_to_obj` the JSON-ready ``dict``.

Times are timezone-aware UTC ``datetime`` objects in Python and RFC 3339 strings ending in ``Z``
in JSON, written with milliseconds, or microseconds when the time has sub-millisecond digits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    Strict,
    ValidationError,
    model_validator,
)

from safetynet.errors import ReportError

N_CHANNELS = 40
CHANNEL_1_HZ = 216_012_500
CHANNEL_SPACING_HZ = 25_000

# The valid range (inclusive) of each field of spec/reports.md: the one place that states them.
LAT_DEG_RANGE = (-90.0, 90.0)
LON_DEG_RANGE = (-180.0, 180.0)
ALT_M_RANGE = (-1000.0, 20000.0)
BEARING_DEG_RANGE = (0.0, 360.0)  # the upper end open
FREQ_HZ_RANGE = (215_000_000, 218_000_000)
POWER_DBM_RANGE = (-200.0, 30.0)  # rssi_dbm, noise_dbm
SNR_DB_RANGE = (-50.0, 120.0)
GAIN_DB_RANGE = (-20.0, 100.0)
SIGMA_DEG_RANGE = (0.1, 90.0)
WINDOW_S_RANGE = (0.0, 3600.0)  # the lower end open
BATTERY_V_RANGE = (0.0, 60.0)
LO_ERROR_PPM_RANGE = (-1000.0, 1000.0)
ORIENTATION_DEG_RANGE = (0.0, 180.0)  # the upper end open
STATUS_SEQ_RANGE = (0, 31)

_BRACELET_ID_RE = re.compile(r"^[0-9A-Fa-f]{4}$")
_RECEIVER_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHOD_RE = re.compile(r"^[a-z0-9_-]{1,32}$")


def channel_center_hz(channel: int) -> int:
    """Nominal centre frequency of SNTX-1 channel ``channel`` (1..40), in Hz."""
    if not 1 <= channel <= N_CHANNELS:
        raise ValueError(f"channel must be within 1..{N_CHANNELS}, got {channel!r}")
    return CHANNEL_1_HZ + (channel - 1) * CHANNEL_SPACING_HZ


# --- field validators: each raises ValueError with "must ..., got ..." --------------------------


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return value


def _between(lo: float, hi: float, *, hi_open: bool = False, unit: str = "") -> AfterValidator:
    bracket = ")" if hi_open else "]"
    suffix = f" {unit}" if unit else ""

    def check(value: float) -> float:
        _finite(value)
        if value < lo or (value >= hi if hi_open else value > hi):
            raise ValueError(f"must be within [{lo:g}, {hi:g}{bracket}{suffix}, got {value!r}")
        return value

    return AfterValidator(check)


def _at_least(lo: float, *, strict: bool = False, unit: str = "") -> AfterValidator:
    suffix = f" {unit}" if unit else ""

    def check(value: float) -> float:
        _finite(value)
        if value < lo or (strict and value == lo):
            relation = ">" if strict else ">="
            raise ValueError(f"must be {relation} {lo:g}{suffix}, got {value!r}")
        return value

    return AfterValidator(check)


def _bracelet_id(value: str) -> str:
    if not _BRACELET_ID_RE.match(value):
        raise ValueError(f"must be 4 hex digits such as '3A7F', got {value!r}")
    value = value.upper()
    if value in ("0000", "FFFF"):
        raise ValueError(f"{value} is reserved by SNTX-1 and never issued; valid IDs: 0001..FFFE")
    return value


def _receiver_id(value: str) -> str:
    if not _RECEIVER_ID_RE.match(value):
        raise ValueError(
            f"must be 1-64 characters of letters, digits, '.', '_', '-', got {value!r}"
        )
    return value


def _method_name(value: str) -> str:
    if not _METHOD_RE.match(value):
        raise ValueError(f"must be 1-32 characters of a-z, 0-9, '_', '-', got {value!r}")
    return value


def parse_time(value: object) -> datetime:
    """An RFC 3339 time with its zone (text or datetime) as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"must be an RFC 3339 time such as '2026-11-28T14:03:05.123Z', got {value!r}"
            ) from None
    else:
        raise ValueError(f"must be an RFC 3339 time string, got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"must carry a time zone (end in 'Z' for UTC), got {value!r}")
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z``: milliseconds, or microseconds when they are not whole ms."""
    moment = moment.astimezone(UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond % 1000 == 0:
        return f"{base}.{moment.microsecond // 1000:03d}Z"
    return f"{base}.{moment.microsecond:06d}Z"


Time = Annotated[datetime, BeforeValidator(parse_time), PlainSerializer(format_time)]
Float = Annotated[float, Strict(), AfterValidator(_finite)]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
LatDeg = Annotated[float, Strict(), _between(*LAT_DEG_RANGE, unit="degrees")]
LonDeg = Annotated[float, Strict(), _between(*LON_DEG_RANGE, unit="degrees")]
AltM = Annotated[float, Strict(), _between(*ALT_M_RANGE, unit="m")]
BearingDeg = Annotated[float, Strict(), _between(*BEARING_DEG_RANGE, hi_open=True, unit="degrees")]
Channel = Annotated[int, Strict(), _between(1, N_CHANNELS)]
Seq = Annotated[int, Strict(), _at_least(0)]
Count = Annotated[int, Strict(), _at_least(0)]
BraceletId = Annotated[str, Strict(), AfterValidator(_bracelet_id)]
ReceiverId = Annotated[str, Strict(), AfterValidator(_receiver_id)]
Antenna = Literal["yagi3", "omni"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PulseStatus(_Model):
    """The decoded status byte of an SNTX-1 frame."""

    seq: Annotated[int, Strict(), _between(*STATUS_SEQ_RANGE)]
    test: Bool
    strap_open: Bool
    low_battery: Bool

    @property
    def byte(self) -> int:
        """The status byte on the air: ``seq·8 + test·4 + strap_open·2 + low_battery``."""
        return self.seq * 8 + self.test * 4 + self.strap_open * 2 + self.low_battery

    @classmethod
    def from_byte(cls, byte: int) -> PulseStatus:
        return cls(
            seq=byte >> 3,
            test=bool(byte & 4),
            strap_open=bool(byte & 2),
            low_battery=bool(byte & 1),
        )


class Pulse(_Model):
    """One heard frame (decoded or not)."""

    kind: Literal["pulse"] = "pulse"
    receiver_id: ReceiverId
    seq: Seq
    t: Time
    channel: Channel
    freq_hz: Annotated[int, Strict(), _between(*FREQ_HZ_RANGE, unit="Hz")]
    bracelet_id: BraceletId | None = None
    status: PulseStatus | None = None
    rssi_dbm: Annotated[float, Strict(), _between(*POWER_DBM_RANGE, unit="dBm")]
    snr_db: Annotated[float, Strict(), _between(*SNR_DB_RANGE, unit="dB")]
    gain_db: Annotated[float, Strict(), _between(*GAIN_DB_RANGE, unit="dB")] | None = None
    lat_deg: LatDeg | None = None
    lon_deg: LonDeg | None = None
    alt_m: AltM | None = None
    heading_deg: BearingDeg | None = None
    antenna: Antenna = "omni"


class Bearing(_Model):
    """A direction from a receiver to a bracelet, with its one-sigma uncertainty."""

    kind: Literal["bearing"] = "bearing"
    receiver_id: ReceiverId
    seq: Seq
    t: Time
    bracelet_id: BraceletId | None = None
    channel: Channel
    lat_deg: LatDeg
    lon_deg: LonDeg
    bearing_deg: BearingDeg
    sigma_deg: Annotated[float, Strict(), _between(*SIGMA_DEG_RANGE, unit="degrees")]
    method: Literal["sweep", "array", "manual"]
    n_pulses: Count = 0


class Silence(_Model):
    """Listened at this position for ``window_s`` before ``t`` and heard nothing on ``channel``."""

    kind: Literal["silence"] = "silence"
    receiver_id: ReceiverId
    seq: Seq
    t: Time
    channel: Channel
    lat_deg: LatDeg
    lon_deg: LonDeg
    window_s: Annotated[
        float,
        Strict(),
        _at_least(WINDOW_S_RANGE[0], strict=True, unit="s"),
        _between(*WINDOW_S_RANGE, unit="s"),
    ]
    noise_dbm: Annotated[float, Strict(), _between(*POWER_DBM_RANGE, unit="dBm")] | None = None
    antenna: Antenna = "omni"


class Status(_Model):
    """Receiver health."""

    kind: Literal["status"] = "status"
    receiver_id: ReceiverId
    seq: Seq
    t: Time
    lat_deg: LatDeg | None = None
    lon_deg: LonDeg | None = None
    gps_fix: Bool
    gain_db: Annotated[float, Strict(), _between(*GAIN_DB_RANGE, unit="dB")] | None = None
    noise_dbm: Annotated[float, Strict(), _between(*POWER_DBM_RANGE, unit="dBm")] | None = None
    clipping: Bool
    battery_v: Annotated[float, Strict(), _between(*BATTERY_V_RANGE, unit="V")] | None = None
    lo_error_ppm: Annotated[float, Strict(), _between(*LO_ERROR_PPM_RANGE, unit="ppm")] | None = (
        None
    )


class Ellipse95(_Model):
    """The 95 % confidence ellipse, in metres; orientation is the major axis's bearing."""

    semi_major_m: Annotated[float, Strict(), _at_least(0.0, unit="m")]
    semi_minor_m: Annotated[float, Strict(), _at_least(0.0, unit="m")]
    orientation_deg: Annotated[
        float, Strict(), _between(*ORIENTATION_DEG_RANGE, hi_open=True, unit="degrees")
    ]

    @model_validator(mode="after")
    def _minor_not_above_major(self) -> Ellipse95:
        if self.semi_minor_m > self.semi_major_m:
            raise ValueError(
                f"semi_minor_m must be <= semi_major_m ({self.semi_major_m!r}), "
                f"got {self.semi_minor_m!r}"
            )
        return self


def _covariance(value: list[list[float]]) -> list[list[float]]:
    if len(value) != 2 or any(len(row) != 2 for row in value):
        raise ValueError(f"must be a 2x2 matrix [[ee, en], [ne, nn]] in m², got {value!r}")
    (ee, en), (ne, nn) = value
    if not math.isclose(en, ne, rel_tol=1e-6, abs_tol=1e-6):
        raise ValueError(f"must be symmetric (en == ne), got {value!r}")
    if ee < 0 or nn < 0 or ee * nn - en * ne < -1e-9 * max(1.0, ee * nn):
        raise ValueError(f"must be positive semi-definite, got {value!r}")
    return value


class Fix(_Model):
    """The locator's estimate of where a bracelet is, with covariance in a local ENU frame."""

    kind: Literal["fix"] = "fix"
    bracelet_id: BraceletId | None
    t: Time
    lat_deg: LatDeg
    lon_deg: LonDeg
    cov_enu_m2: Annotated[list[list[Float]], AfterValidator(_covariance)]
    ellipse95: Ellipse95
    velocity_enu_mps: Annotated[list[Float], AfterValidator(lambda v: _length(v, 2))] | None = None
    n_bearings: Count
    n_pulses: Count
    method: Annotated[str, Strict(), AfterValidator(_method_name)]


def _length(value: list[float], n: int) -> list[float]:
    if len(value) != n:
        raise ValueError(f"must have {n} elements, got {len(value)}")
    return value


Report: TypeAlias = Pulse | Bearing | Silence | Status | Fix
FieldReport: TypeAlias = Pulse | Bearing | Silence | Status

REPORT_TYPES: dict[str, type[Pulse] | type[Bearing] | type[Silence] | type[Status] | type[Fix]] = {
    "pulse": Pulse,
    "bearing": Bearing,
    "silence": Silence,
    "status": Status,
    "fix": Fix,
}


def parse_report(source: str | bytes | Mapping[str, Any]) -> Report:
    """Parse one report from JSON text or a decoded JSON object.

    Raises :class:`ReportError` naming the first offending field.
    """
    if isinstance(source, str | bytes):
        try:
            obj = json.loads(source, parse_constant=_refuse_constant)
        except ReportError:
            raise
        except ValueError as err:
            raise ReportError("(json)", None, f"not valid JSON: {err}") from err
    else:
        obj = source
    if not isinstance(obj, Mapping):
        raise ReportError("(report)", obj, "a report must be a JSON object")
    kind = obj.get("kind")
    model = REPORT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        valid = ", ".join(REPORT_TYPES)
        raise ReportError("kind", kind, f"must be one of {valid}, got {kind!r}")
    try:
        return model.model_validate(obj)
    except ValidationError as err:
        raise _report_error(model, err) from None


def _refuse_constant(name: str) -> float:
    raise ReportError("(json)", name, f"NaN and Infinity are not valid JSON numbers, got {name}")


def _report_error(model: type[BaseModel], err: ValidationError) -> ReportError:
    first = err.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "(report)"
    value = first.get("input")
    kind = model.model_fields["kind"].default
    if first["type"] == "extra_forbidden":
        valid = ", ".join(model.model_fields)
        message = f"unknown field {field!r} in a {kind} report; valid fields: {valid}"
    elif first["type"] == "missing":
        message = f"required field of a {kind} report is missing"
    elif first["type"] == "value_error":
        message = str(first["ctx"]["error"])
    elif first["type"] == "literal_error":
        message = f"must be one of {first['ctx']['expected']}, got {value!r}"
    else:
        message = f"{first['msg'].lower()}, got {value!r}"
    return ReportError(field, value, message)


def report_to_obj(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready dict, fields in spec order."""
    return report.model_dump(mode="json")


def report_to_json(report: Report) -> str:
    """Canonical compact JSON text of one report (no trailing newline)."""
    return json.dumps(
        report_to_obj(report), separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
