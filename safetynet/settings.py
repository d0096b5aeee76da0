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
``SAFETYNET_COT_URL``      where the live searches go as Cursor-on-Target (TAK): a TAK server's
                           streaming input ``tcp://host:8087`` or ``tls://host:8089``, or UDP
                           multicast SA ``udp://239.2.3.1:6969``; default none (no feed)
``SAFETYNET_COT_TLS_CERT``  for ``tls://``: the client certificate (PEM, or PKCS#12 ``.p12``)
``SAFETYNET_COT_TLS_KEY``  its private key (PEM; not needed in a ``.p12`` or a combined PEM)
``SAFETYNET_COT_TLS_PASSWORD``  the password of the key or the ``.p12``, if it has one
``SAFETYNET_COT_TLS_CA``   the CA that signed the TAK server's certificate (default: the
                           system's); the server's name is checked against it
``SAFETYNET_COT_PERSON``   what the TAK side sees of the person: ``none`` ("Missing person",
                           the default), ``name``, or ``name_and_photo`` (with a link to the
                           photo behind this server's login, at ``SAFETYNET_COT_LINK_URL``)
``SAFETYNET_COT_LINK_URL``  this server's address as TAK users reach it (``https://...``)
``SAFETYNET_COT_IN``       take TAK users' positions and range-and-bearing lines back (default
                           true; only of TAK users put on a team, see README)
=========================  ===================================================================
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from safetynet.errors import ConfigError

DEFAULT_SECRET = "change-me-this-is-not-a-secret"
COT_SCHEMES = ("tcp", "tls", "ssl", "udp")  # a TAK server's streaming input, or multicast SA


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
    metrics_token: SecretStr | None = None  # GET /metrics answers only to this bearer token
    # Several server processes: the shared broker (redis://...); on PostgreSQL alone, none.
    broker_url: str | None = None
    mqtt_url: str | None = None  # the MQTT ingest worker's broker and topics (ui/mqtt_ingest.py)
    trusted_proxies: str = ""  # comma-separated addresses or networks; none by default
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_hours: int = Field(default=12, ge=1, le=24)
    phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    time_zone: str | None = None
    distance_units: Literal["metric", "imperial"] = "metric"
    cot_url: str | None = None
    cot_tls_cert: Path | None = None
    cot_tls_key: Path | None = None
    cot_tls_password: SecretStr | None = None
    cot_tls_ca: Path | None = None
    cot_person: Literal["none", "name", "name_and_photo"] = "none"
    cot_link_url: str | None = None
    cot_in: bool = True

    @field_validator("cot_url")
    @classmethod
    def _cot_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in COT_SCHEMES:
            raise ValueError(
                f"SAFETYNET_COT_URL: {value!r} must start with tcp://, tls:// or udp:// "
                "(tcp://tak.example.org:8087, tls://tak.example.org:8089, udp://239.2.3.1:6969)"
            )
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or not 1 <= port <= 65535:
            raise ValueError(
                f"SAFETYNET_COT_URL: {value!r} needs a host and a port within 1..65535, such "
                "as tcp://tak.example.org:8087"
            )
        return value

    @field_validator("cot_link_url")
    @classmethod
    def _link_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname:
            raise ValueError(
                f"SAFETYNET_COT_LINK_URL: {value!r} must be this server's http(s):// address"
            )
        return value

    @model_validator(mode="after")
    def _cot_consistent(self) -> Settings:
        if (
            self.cot_url
            and urlsplit(self.cot_url).scheme in ("tls", "ssl")
            and not (self.cot_tls_cert)
        ):
            raise ValueError(
                "SAFETYNET_COT_URL: a tls:// TAK server needs SAFETYNET_COT_TLS_CERT, the client "
                "certificate it gave this server (PEM or .p12)"
            )
        for name, path in (
            ("SAFETYNET_COT_TLS_CERT", self.cot_tls_cert),
            ("SAFETYNET_COT_TLS_KEY", self.cot_tls_key),
            ("SAFETYNET_COT_TLS_CA", self.cot_tls_ca),
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{name}: no such file {str(path)!r}")
        if self.cot_person == "name_and_photo" and not self.cot_link_url:
            raise ValueError(
                "SAFETYNET_COT_PERSON: name_and_photo needs SAFETYNET_COT_LINK_URL, the address "
                "TAK users open this server at, for the photo's link"
            )
        return self

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
