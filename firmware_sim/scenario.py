"""Scenario files: a whole simulated search in one human-editable TOML file.

See ``scenarios/*.toml`` for worked examples. Positions are ``[lat_deg, lon_deg]`` pairs
(latitude first); times are RFC 3339 (TOML datetimes); every number carries its unit in its
name. :func:`load_scenario` validates the file and raises
:class:`~safetynet.errors.ScenarioError` naming the offending key.
"""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from safetynet.errors import ScenarioError
from safetynet.reports import Antenna

LatLon = Annotated[list[float], Field(min_length=2, max_length=2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(_Strict):
    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)


class ReflectorSpec(_Strict):
    position: LatLon
    loss_db: float = Field(default=6.0, ge=0)
    radius_m: float = Field(default=150.0, gt=0)


class ObstacleSpec(_Strict):
    polygon: list[LatLon] = Field(min_length=3)
    loss_db: float = Field(default=20.0, ge=0)


class PropagationSpec(_Strict):
    ref_loss_db: float | None = Field(default=None, ge=0, le=80)
    exponent: float = Field(default=2.0, ge=1.5, le=6.0)
    shadowing_sigma_db: float = Field(default=0.0, ge=0, le=20)
    decorrelation_m: float = Field(default=50.0, gt=0)
    rician_k_db: float | None = Field(default=None, ge=-40, le=40)
    body_loss_db: float = Field(default=0.0, ge=0, le=30)
    indoor_loss_db: float = Field(default=10.0, ge=0, le=40)
    reflectors: list[ReflectorSpec] = []
    obstacles: list[ObstacleSpec] = []


class DestinationSpec(_Strict):
    name: str
    position: LatLon


class WalkerSpec(_Strict):
    start: LatLon | None = None  # default: the origin (the last known point)
    heading_deg: float | None = Field(default=None, ge=0, lt=360)
    stopped_s: float = Field(default=0.0, ge=0)
    speed_mean_mps: float = Field(default=0.9, gt=0, le=1.5)
    destinations: list[DestinationSpec] = []
    area: str | None = None  # GeoJSON file, relative to the scenario file
    indoor: bool = False
    stationary: bool = False


class BraceletSpec(_Strict):
    id: str = Field(pattern=r"^[0-9A-Fa-f]{4}$")
    channel: int = Field(ge=1, le=40)
    eirp_dbm: float = Field(default=-10.0, ge=-20, le=0)
    carrier_error_ppm: float = Field(default=0.0, ge=-2.5, le=2.5)
    clock_error_ppm: float = Field(default=0.0, ge=-100, le=100)
    battery_pct: float = Field(default=80.0, ge=0, le=100)
    battery_days: float = Field(default=180.0, gt=0)
    strap_open_after_s: float | None = Field(default=None, ge=0)
    test_mode: bool = False
    first_seq: int = Field(default=0, ge=0, le=31)
    walker: WalkerSpec = WalkerSpec()

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.upper() in ("0000", "FFFF"):
            raise ValueError(f"bracelet ID {value} is reserved by SNTX-1; use 0001..FFFE")
        return value.upper()


class FrontEndSpec(_Strict):
    sample_rate_hz: Literal[1_024_000, 2_048_000, 2_400_000] = 2_400_000
    center_hz: float = Field(default=216_500_000, ge=24e6, le=1766e6)
    gain_db: float | Literal["auto"] = 40.2
    ppm_error: float = Field(default=0.0, ge=-100, le=100)
    noise_figure_db: float = Field(default=4.0, ge=0, le=20)
    cal_error_db: float = Field(default=0.0, ge=-10, le=10)


class UnitSpec(_Strict):
    """A handheld unit's own detector (SNHH-1 emulation)."""

    detect_snr_db: float = Field(default=-3.0, ge=-20, le=40)
    decode_snr_db: float = Field(default=6.0, ge=-20, le=40)
    rssi_noise_db: float = Field(default=0.5, ge=0, le=10)
    gain_db: float = Field(default=28.0, ge=0, le=50)


class ArraySpec(_Strict):
    """A coherent direction-finding array (a KrakenSDR) instead of one antenna."""

    kind: Literal["uca", "ula"] = "uca"  # circle of 0.45 m radius, or a line λ/2 apart
    elements: int = Field(default=5, ge=2, le=16)
    gain_sd_db: float = Field(default=1.0, ge=0, le=6)  # the tuners' gain spread
    center_hz: float | None = Field(default=None, ge=216e6, le=217e6)  # None: by the bracelets


class ReceiverSpec(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$")
    kind: Literal["handheld", "vehicle", "aircraft", "fixed"]
    antenna: Antenna = "omni"  # unless given: yagi3 for handhelds, else omni
    route: list[LatLon] = []
    position: LatLon | None = None  # fixed stations
    heading_deg: float = Field(default=0.0, ge=0, lt=360)
    altitude_m: float = Field(default=0.0, ge=0, le=3000)  # above ground; aircraft
    speed_mps: float | None = Field(default=None, gt=0, le=80)
    loop: bool = False
    start_s: float = Field(default=0.0, ge=0)
    gps_sigma_m: float = Field(default=3.0, ge=0, le=100)
    compass_bias_sd_deg: float = Field(default=2.0, ge=0, le=45)
    compass_noise_deg: float = Field(default=1.5, ge=0, le=45)
    sweep_s: tuple[float, float] = (5.0, 15.0)
    walk_s: tuple[float, float] = (30.0, 90.0)
    frontend: FrontEndSpec = FrontEndSpec()
    unit: UnitSpec = UnitSpec()
    array: ArraySpec | None = None  # vehicles and fixed sites only

    @model_validator(mode="before")
    @classmethod
    def _default_antenna(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("antenna") is None:
            return {**data, "antenna": "yagi3" if data.get("kind") == "handheld" else "omni"}
        return data


class FleetSpec(_Strict):
    """One of the fleet's receivers, listening all shift for every enrolled bracelet (not one of
    the search's teams): a cruiser's roof station driving its patrol, or a fixed site — a fire
    station's mast, a roof — at its position. Omni antennas; their pulses heard while no search
    is open are the fleet's sightings."""

    id: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$")
    kind: Literal["cruiser", "fire-station", "roof"]
    route: list[LatLon] = []  # a cruiser's patrol, driven from the scenario's start
    position: LatLon | None = None  # a fixed site
    speed_mps: float = Field(default=8.0, gt=0, le=40)
    loop: bool = True


class Scenario(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    start: datetime
    duration_s: float = Field(gt=0, le=6 * 3600)
    origin: Origin
    propagation: PropagationSpec = PropagationSpec()
    bracelets: list[BraceletSpec] = Field(min_length=1)
    receivers: list[ReceiverSpec] = []
    fleet: list[FleetSpec] = []
    base_dir: Path = Path(".")

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("start must carry a time zone, e.g. 2026-11-28T14:00:00Z")
        return value.astimezone(UTC)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(f"{path}: cannot read: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise ScenarioError(f"{path}: not a text file in UTF-8 (byte {err.start})") from err
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(f"{path}: not valid TOML: {err}") from err
    return parse_scenario(data, path.parent, source=str(path))


def parse_scenario(
    data: dict[str, object], base_dir: Path = Path("."), source: str = "scenario"
) -> Scenario:
    try:
        scenario = Scenario.model_validate({**data, "base_dir": base_dir})
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(
            f"{source}: {where}: {first['msg']} (got {first.get('input')!r})"
        ) from err
    ids = [r.id for r in scenario.receivers] + [f.id for f in scenario.fleet]
    if len(set(ids)) != len(ids):
        raise ScenarioError(
            f"{source}: receivers: receiver ids (the teams' and the fleet's) must be unique, "
            f"got {ids}"
        )
    for f in scenario.fleet:
        if f.kind == "cruiser" and not f.route:
            raise ScenarioError(f"{source}: fleet {f.id}: a cruiser needs a route (its patrol)")
        if f.kind != "cruiser" and f.position is None:
            raise ScenarioError(f"{source}: fleet {f.id}: a {f.kind} needs a position")
    for r in scenario.receivers:
        if r.kind == "fixed" and r.position is None:
            raise ScenarioError(f"{source}: receiver {r.id}: a fixed station needs a position")
        if r.array is not None and r.kind not in ("vehicle", "fixed"):
            raise ScenarioError(
                f"{source}: receiver {r.id}: an array goes on a vehicle or a fixed site, "
                f"not a {r.kind}"
            )
        if r.array is not None and r.array.kind == "uca" and r.array.elements < 3:
            raise ScenarioError(f"{source}: receiver {r.id}: a circular array needs 3 elements")
        if r.kind != "fixed" and len(r.route) < 1:
            raise ScenarioError(f"{source}: receiver {r.id}: a {r.kind} needs a route")
    return scenario
