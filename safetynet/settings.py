"""Settings of a SafetyNet deployment, from the environment (prefix ``SAFETYNET_``).

Core code never reads the environment: it takes explicit arguments. The command line and the
server call :func:`get_settings`, which tests can replace through :func:`override_settings`.

=========================  ===================================================================
``SAFETYNET_DATA_DIR``     folder for the database, queues, recordings; default
                           ``$XDG_DATA_HOME/safetynet`` or ``~/.local/share/safetynet``
``SAFETYNET_DATABASE_URL`` SQLAlchemy URL; default SQLite in the data folder
``SAFETYNET_HOST``         server address (default 127.0.0.1)
``SAFETYNET_PORT``         server port (default 8080)
``SAFETYNET_SECRET_KEY``   signs sessions and CSRF tokens; the server refuses the default
                           outside demo mode
``SAFETYNET_TILE_URL``     base map tile URL template; default OpenStreetMap's; empty: no
                           tiles (vector layers on a plain background)
``SAFETYNET_TILES_FILE``   an offline MBTiles file the server serves as the base map
``SAFETYNET_INGEST_REQUESTS_PER_S``  posts per second one sender may make before a 429
``SAFETYNET_TRUSTED_PROXIES``  addresses or CIDR networks of the reverse proxies whose
                           ``X-Forwarded-For`` is believed, comma-separated; default none
``SAFETYNET_SESSION_IDLE_MINUTES``  a login session left unused this long ends (default 30)
``SAFETYNET_SESSION_HOURS``  a login session ends this long after the login, used or not
                           (default 12, one long shift)
``SAFETYNET_PHONE_REGION`` the country a phone number without a country code is read in
                           (ISO 3166 code); default ``US``
``SAFETYNET_TIME_ZONE``    the agency's time zone (IANA name, ``America/New_York``) times are
                           entered and shown in; default the server machine's own
``SAFETYNET_DISTANCE_UNITS``  ``metric`` (metres, km, hectares; the default) or ``imperial``
                           (feet, miles, acres): how the pages say distances and areas
=========================  ===================================================================
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from safetynet.errors import ConfigError

DEFAULT_SECRET = "change-me-this-is-not-a-secret"


def default_data_dir() -> Path:
    """A data folder a user without root can write: XDG data home, or ~/.local/share."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "safetynet"


class Settings(BaseSettings):
    """One deployment's settings."""

    model_config = SettingsConfigDict(env_prefix="SAFETYNET_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    demo: bool = False
    tile_url: str | None = None
    tile_attribution: str = ""
    tiles_file: Path | None = None
    features_file: Path | None = None  # GeoJSON of water, roads, buildings, parks, woods
    ingest_requests_per_s: int = Field(default=20, ge=1)
    trusted_proxies: str = ""  # comma-separated addresses or networks; none by default
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_hours: int = Field(default=12, ge=1, le=24)
    phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    time_zone: str | None = None
    distance_units: Literal["metric", "imperial"] = "metric"

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            ZoneInfo(value.strip())
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(
                f"SAFETYNET_TIME_ZONE: {value!r} is not a time zone name; use one such as "
                "America/New_York or Europe/London"
            ) from None
        return value.strip()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'safetynet.db'}"

    def check_secrets(self) -> None:
        """Fail closed: outside demo mode the default secret is refused."""
        if not self.demo and self.secret_key.get_secret_value() == DEFAULT_SECRET:
            raise ConfigError(
                "SAFETYNET_SECRET_KEY is the built-in default; set a long random secret "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if not self.demo and len(self.secret_key.get_secret_value()) < 32:
            raise ConfigError("SAFETYNET_SECRET_KEY must be at least 32 characters")


_override: Settings | None = None


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    try:
        return Settings()
    except ValidationError as err:  # say which variable is wrong, in words
        problems = []
        for e in err.errors():
            name = "SAFETYNET_" + "_".join(str(part) for part in e["loc"]).upper()
            message = e["msg"].removeprefix("Value error, ")
            problems.append(message if message.startswith(name) else f"{name}: {message}")
        raise ConfigError("; ".join(problems)) from None


def get_settings() -> Settings:
    """The settings in force: an override set by a test, or the environment's."""
    return _override if _override is not None else _from_environment()


def override_settings(settings: Settings | None) -> None:
    """Use ``settings`` instead of the environment's (``None`` restores the environment)."""
    global _override  # noqa: PLW0603 - a single process-wide override is the point
    _override = settings
    _from_environment.cache_clear()
