"""The registry's tables.

Health information about vulnerable people lives here: the fields a role may read are marked in
``CLINICAL_FIELDS`` (dispatcher, clinician and admin only) and ``CO_RESPONSE`` tables (clinician
and admin only). Records are never deleted outright: ``deleted_at`` marks a soft delete, kept
for the retention period. Editable records carry a ``version`` column: SQLAlchemy's optimistic
locking refuses an update made from a stale copy, so two people editing one record never
silently overwrite each other. The search event log is append-only.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in time, stored as UTC and read back aware.

    SQLite keeps no offset: a ``DateTime(timezone=True)`` bound with a local time
    (``07:04-05:00``) would be stored as ``07:04`` and read back as 07:04 UTC, five hours off.
    Every time is turned into UTC before it is stored; a naive time is taken as UTC (the
    registry's own convention), and what comes back naive (SQLite) is UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class Role(enum.StrEnum):
    ADMIN = "admin"
    PROGRAM_STAFF = "program_staff"
    DISPATCHER = "dispatcher"
    SEARCHER = "searcher"
    CLINICIAN = "clinician"
    FAMILY = "family"


class BraceletStatus(enum.StrEnum):
    STOCK = "stock"
    ASSIGNED = "assigned"
    RETIRED = "retired"


class SearchStatus(enum.StrEnum):
    ACTIVE = "active"
    FOUND = "found"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class PlaceKind(enum.StrEnum):
    FREQUENTED = "frequented"
    PREVIOUS_ADDRESS = "previous_address"
    FOUND_BEFORE = "found_before"


class EncounterKind(enum.StrEnum):
    RESPONSE_911 = "911-response"
    FOLLOW_UP = "follow-up"


class NotifyScope(enum.StrEnum):
    """Whom a notification target reaches, and with what."""

    PROGRAM = "program"  # the program itself: batteries due and daily tests missed, every client
    SEARCH = "search"  # someone the program names for searches: search opened, person found
    FAMILY_MAIL = "family_mail"  # the mail account families' e-mail goes out through


class NoticeStatus(enum.StrEnum):
    SENDING = "sending"  # claimed: being sent now (or the sender stopped mid-way: not resent)
    SENT = "sent"
    PENDING = "pending"  # tried and refused or unanswered: tried again from ``next_try_at``
    FAILED = "failed"  # given up after the last try; the next day's run may try again


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, validate_strings=True, length=20,
                values_callable=lambda e: [m.value for m in e])  # fmt: skip


class Versioned:
    """Optimistic locking: an update from a stale copy raises ``StaleDataError``."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805 - SQLAlchemy's directive
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


class Client(Versioned, Base):
    __tablename__ = "client"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    # physical description
    height_cm: Mapped[int | None] = mapped_column(Integer)
    build: Mapped[str | None] = mapped_column(String(100))
    hair: Mapped[str | None] = mapped_column(String(100))
    eyes: Mapped[str | None] = mapped_column(String(100))
    glasses: Mapped[bool] = mapped_column(Boolean, default=False)
    scars_marks: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)  # how they look and act, in a sentence
    usual_clothing: Mapped[str | None] = mapped_column(Text)
    photo: Mapped[bytes | None] = mapped_column(LargeBinary)
    photo_type: Mapped[str | None] = mapped_column(String(20))
    # language and communication
    language: Mapped[str | None] = mapped_column(String(100))
    verbal: Mapped[bool] = mapped_column(Boolean, default=True)
    useful_phrases: Mapped[str | None] = mapped_column(Text)
    # clinical (dispatcher, clinician, admin only; every read audited)
    diagnoses: Mapped[str | None] = mapped_column(Text)
    medications: Mapped[str | None] = mapped_column(Text)
    triggers: Mapped[str | None] = mapped_column(Text)
    approach_and_calm: Mapped[str | None] = mapped_column(Text)
    mobility_aids: Mapped[str | None] = mapped_column(Text)
    # consent, the client's or their guardian's: without it nothing of either kind is stored
    consent_home_alerts: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_fleet_sightings: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_given_by: Mapped[str | None] = mapped_column(String(200))  # "the client", a guardian
    consent_recorded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    caregivers: Mapped[list[Caregiver]] = relationship(
        back_populates="client", cascade="all, delete-orphan"
    )
    places: Mapped[list[Place]] = relationship(
        back_populates="client", cascade="all, delete-orphan"
    )
    enrollments: Mapped[list[Enrollment]] = relationship(
        back_populates="client", cascade="all, delete-orphan"
    )


CLINICAL_FIELDS = ("diagnoses", "medications", "triggers", "approach_and_calm", "mobility_aids")


class Caregiver(Base):
    __tablename__ = "caregiver"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    relation: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(40))
    available_24_7: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=1)

    client: Mapped[Client] = relationship(back_populates="caregivers")


class Place(Base):
    __tablename__ = "place"
    __table_args__ = (
        CheckConstraint("lat_deg BETWEEN -90 AND 90", name="place_lat"),
        CheckConstraint("lon_deg BETWEEN -180 AND 180", name="place_lon"),
        # A position is both coordinates or neither; a place often visited always has one.
        CheckConstraint("(lat_deg IS NULL) = (lon_deg IS NULL)", name="place_position_whole"),
        CheckConstraint(
            "kind <> 'frequented' OR lat_deg IS NOT NULL", name="place_frequented_position"
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    kind: Mapped[PlaceKind] = mapped_column(_enum(PlaceKind, "place_kind"))
    label: Mapped[str] = mapped_column(String(200))  # a name or an address
    lat_deg: Mapped[float | None] = mapped_column(Float)
    lon_deg: Mapped[float | None] = mapped_column(Float)
    notes: Mapped[str | None] = mapped_column(Text)

    client: Mapped[Client] = relationship(back_populates="places")


class Enrollment(Base):
    __tablename__ = "enrollment"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    diagnosis_confirmed: Mapped[bool] = mapped_column(Boolean)
    history_of_wandering: Mapped[bool] = mapped_column(Boolean)
    caregiver_24_7: Mapped[bool] = mapped_column(Boolean)
    funding_source: Mapped[str | None] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)

    client: Mapped[Client] = relationship(back_populates="enrollments")


class Bracelet(Versioned, Base):
    __tablename__ = "bracelet"
    __table_args__ = (
        CheckConstraint("bracelet_id BETWEEN 1 AND 65534", name="bracelet_id_range"),
        CheckConstraint("channel BETWEEN 1 AND 40", name="bracelet_channel"),
        CheckConstraint("battery_interval_days > 0", name="bracelet_battery_interval"),
        # Worn means worn by someone; in stock or retired means by no one.
        CheckConstraint(
            "(status = 'assigned') = (client_id IS NOT NULL)", name="bracelet_worn_by_client"
        ),
        # One bracelet on a client at a time (a bracelet has one client by its single column).
        Index(
            "one_bracelet_per_client",
            "client_id",
            unique=True,
            sqlite_where=text("status = 'assigned'"),
            postgresql_where=text("status = 'assigned'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bracelet_id: Mapped[int] = mapped_column(Integer, unique=True)  # the 16-bit ID on the air
    channel: Mapped[int] = mapped_column(Integer)
    status: Mapped[BraceletStatus] = mapped_column(_enum(BraceletStatus, "bracelet_status"))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("client.id"), index=True)
    battery_installed_on: Mapped[date | None] = mapped_column(Date)
    battery_interval_days: Mapped[int] = mapped_column(Integer, default=180)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class BatteryChange(Base):
    __tablename__ = "battery_change"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bracelet_pk: Mapped[str] = mapped_column(ForeignKey("bracelet.id"), index=True)
    changed_on: Mapped[date] = mapped_column(Date)
    changed_by: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))


class DailyTest(Base):
    __tablename__ = "daily_test"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    bracelet_pk: Mapped[str] = mapped_column(ForeignKey("bracelet.id"), index=True)
    tested_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    tested_by: Mapped[str] = mapped_column(String(200))
    passed: Mapped[bool] = mapped_column(Boolean)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    # logged by a home station that heard the bracelet: how strong, and its status byte
    rssi_dbm: Mapped[float | None] = mapped_column(Float)
    status_byte: Mapped[int | None] = mapped_column(Integer)


class HomeAlertKind(enum.StrEnum):
    WANDER = "wander"  # the home station keeps reporting but no longer hears the bracelet
    STATION_SILENT = "station_silent"  # the home station itself stopped reporting


class HomeStation(Base):
    """A receiver at a client's home listening for their bracelet (only with the client's
    consent to home-station alerts). ``wander_after_min`` None: the default chosen from the
    station's measured reception. The quiet window is in the agency's time zone; it may run
    past midnight (``quiet_from`` later than ``quiet_until``)."""

    __tablename__ = "home_station"
    __table_args__ = (
        CheckConstraint("lat_deg BETWEEN -90 AND 90", name="home_station_lat"),
        CheckConstraint("lon_deg BETWEEN -180 AND 180", name="home_station_lon"),
        CheckConstraint("wander_after_min BETWEEN 1 AND 240", name="home_station_minutes"),
        CheckConstraint("(quiet_from IS NULL) = (quiet_until IS NULL)", name="home_station_quiet"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), unique=True)
    receiver_id: Mapped[str] = mapped_column(String(64), unique=True)
    lat_deg: Mapped[float] = mapped_column(Float)  # the home: a search's last known point
    lon_deg: Mapped[float] = mapped_column(Float)
    wander_after_min: Mapped[int | None] = mapped_column(Integer)
    # the default from the station's measured reception, and when it was last measured
    measured_after_min: Mapped[int | None] = mapped_column(Integer)
    measured_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    quiet_from: Mapped[time | None] = mapped_column(Time)
    quiet_until: Mapped[time | None] = mapped_column(Time)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class HomeAlert(Base):
    """A wander alert or a station-silent notice, open until the bracelet (or the station) is
    heard again; one open alert of each kind per client."""

    __tablename__ = "home_alert"
    __table_args__ = (
        Index(
            "one_open_home_alert",
            "client_id",
            "kind",
            unique=True,
            sqlite_where=text("cleared_at IS NULL"),
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    receiver_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[HomeAlertKind] = mapped_column(_enum(HomeAlertKind, "home_alert_kind"))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_heard_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # bracelet or station
    cleared_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    search_id: Mapped[str | None] = mapped_column(ForeignKey("search.id"))


class Search(Versioned, Base):
    __tablename__ = "search"
    __table_args__ = (
        # One active search per client.
        Index(
            "one_active_search_per_client",
            "client_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint("last_known_lat_deg BETWEEN -90 AND 90", name="search_lat"),
        CheckConstraint("last_known_lon_deg BETWEEN -180 AND 180", name="search_lon"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_known_lat_deg: Mapped[float] = mapped_column(Float)
    last_known_lon_deg: Mapped[float] = mapped_column(Float)
    last_known_at: Mapped[datetime] = mapped_column(UtcDateTime())
    clothing: Mapped[str | None] = mapped_column(Text)
    status: Mapped[SearchStatus] = mapped_column(_enum(SearchStatus, "search_status"))
    found_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    found_lat_deg: Mapped[float | None] = mapped_column(Float)
    found_lon_deg: Mapped[float | None] = mapped_column(Float)
    found_condition: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class SearchTeam(Base):
    __tablename__ = "search_team"
    __table_args__ = (UniqueConstraint("search_id", "name", name="search_team_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    search_id: Mapped[str] = mapped_column(ForeignKey("search.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    receiver_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    member_user_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # searchers on it


class SearchEvent(Base):
    """The append-only log of a search: reports, fixes, notes, assignments."""

    __tablename__ = "search_event"
    __table_args__ = (Index("search_event_by_time", "search_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    search_id: Mapped[str] = mapped_column(ForeignKey("search.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    kind: Mapped[str] = mapped_column(String(20))  # report, fix, note, assignment
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))


class MissingPersonLink(Base):
    __tablename__ = "missing_person_link"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    search_id: Mapped[str] = mapped_column(ForeignKey("search.id"), index=True)
    agency: Mapped[str] = mapped_column(String(200))
    report_number: Mapped[str] = mapped_column(String(100))
    ncic_category: Mapped[str] = mapped_column(String(50))  # e.g. Disability, Endangered
    entered_in_ncic: Mapped[bool] = mapped_column(Boolean, default=False)


class CoResponseLink(Base):
    """A mental-health co-response encounter linked to a client (clinician and admin only)."""

    __tablename__ = "co_response_link"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)
    search_id: Mapped[str | None] = mapped_column(ForeignKey("search.id"), index=True)
    encounter_on: Mapped[date] = mapped_column(Date)
    kind: Mapped[EncounterKind] = mapped_column(_enum(EncounterKind, "encounter_kind"))
    clinician: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str | None] = mapped_column(Text)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class FamilyLink(Base):
    """Which clients a family member may see and edit."""

    __tablename__ = "family_link"
    __table_args__ = (UniqueConstraint("user_id", "client_id", name="family_link_once"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"), index=True)


class AuditEntry(Base):
    """Who read or changed what, when and why (every read of clinical or co-response detail)."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("audit_by_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))
    action: Mapped[str] = mapped_column(String(20))  # read, create, update, delete, export
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(Text)


class ReceiverToken(Base):
    """A field receiver's credential for the ingest API; only its SHA-256 is stored."""

    __tablename__ = "receiver_token"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    receiver_id: Mapped[str] = mapped_column(String(64), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class StoredReport(Base):
    """A field report as ingested, once per ``(receiver_id, seq)`` (the idempotency key).

    The locator's state of every search is rebuilt from these rows when the server restarts."""

    __tablename__ = "report"
    __table_args__ = (
        UniqueConstraint("receiver_id", "seq", name="report_once"),
        Index("report_by_bracelet", "bracelet_id", "t"),
        Index("report_by_channel", "channel", "t"),
        Index("report_by_time", "t"),
        Index("report_by_receiver", "receiver_id", "t"),  # a home station's last hearing
        Index("report_by_receiver_arrival", "receiver_id", "received_at"),  # its last report
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    receiver_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(10))
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    bracelet_id: Mapped[str | None] = mapped_column(String(4))
    channel: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)  # the report's JSON text, as the spec writes it
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    user_id: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))


class LoginSession(Base):
    """A login's session, held by the server: the cookie carries a random token and only its
    SHA-256 is kept here. It ends at logout (``ended_at``), when the user's password changes
    (``password_mark`` no longer matches), after an idle time or a shift's length."""

    __tablename__ = "login_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    password_mark: Mapped[str] = mapped_column(String(64))  # SHA-256 of the hash at login
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class NotifyTarget(Base):
    """Where the program's notices go: an Apprise URL (e-mail, an SMS gateway, a chat webhook)
    and who it reaches, in words. The URL may hold a password or a token: it is never shown
    back whole (:func:`registry.notify.masked`)."""

    __tablename__ = "notify_target"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scope: Mapped[NotifyScope] = mapped_column(_enum(NotifyScope, "notify_scope"))
    label: Mapped[str] = mapped_column(String(200))  # "Program office", "Sgt. Dana Ruiz"
    url: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str | None] = mapped_column(ForeignKey("app_user.id"))


class NoticeSent(Base):
    """The log of notices sent, one row per notice, recipient and day (the agency's).

    The row is written before the notice goes out (``sending``), and the partial unique index
    ``notice_once_a_day`` allows one row that is not ``failed`` per day, notice and recipient:
    a notice reaches a recipient once a day and never twice, even when two runs overlap. One
    that could not be delivered is kept ``pending``, with its message (``body``), how many
    times it was tried (``attempts``) and when it is tried next (``next_try_at``), and retried
    with a growing wait by cron (:func:`registry.notify.retry_pending`); after the last try it
    is ``failed`` and its message forgotten."""

    __tablename__ = "notice_sent"
    __table_args__ = (
        Index(
            "notice_once_a_day",
            "day",
            "notice_key",
            "recipient_key",
            unique=True,
            sqlite_where=text("status <> 'failed'"),
            postgresql_where=text("status <> 'failed'"),
        ),
        Index("notice_sent_by_time", "at"),
        Index("notice_sent_to_retry", "status", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date)
    notice_key: Mapped[str] = mapped_column(String(100))  # battery:3A7F, search-found:<id>
    recipient_key: Mapped[str] = mapped_column(String(100))  # target:<id>, family:<user id>
    recipient: Mapped[str] = mapped_column(String(400))  # as the page shows it, secrets masked
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[NoticeStatus] = mapped_column(_enum(NoticeStatus, "notice_status"))
    error: Mapped[str | None] = mapped_column(Text)  # why it failed, secrets masked
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime())  # while pending
    body: Mapped[str | None] = mapped_column(Text)  # the message, kept only while pending


class FleetSighting(Base):
    """A bracelet heard by one of the fleet's receivers (a cruiser's roof station, a fire
    station, a fixed roof site) while no search was open for its wearer, kept only with the
    client's consent to fleet sightings and sealed: read by no one while no search is open for
    the client, shown with an audit entry to dispatchers, clinicians and admins when one opens,
    and erased after the retention period (:mod:`registry.sightings`)."""

    __tablename__ = "fleet_sighting"
    __table_args__ = (
        Index("fleet_sighting_by_client", "client_id", "t"),
        Index("fleet_sighting_by_time", "t"),
        UniqueConstraint("receiver_id", "seq", name="fleet_sighting_once"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("client.id"))
    receiver_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)  # the report's, to erase it with the sighting
    t: Mapped[datetime] = mapped_column(UtcDateTime())
    lat_deg: Mapped[float | None] = mapped_column(Float)  # where the receiver was
    lon_deg: Mapped[float | None] = mapped_column(Float)
    rssi_dbm: Mapped[float] = mapped_column(Float)


class LiveEvent(Base):
    """One change of a search (or a message between server processes) in the outbox through
    which several server processes on one PostgreSQL fan out (:mod:`ui.outbox`): ids grow in
    commit order, rows older than a few minutes are purged. Unused on SQLite (one process)."""

    __tablename__ = "live_event"
    __table_args__ = (
        Index("live_event_by_time", "at"),
        Index("live_event_by_channel", "channel", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    channel: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)  # the message, JSON
    at: Mapped[datetime] = mapped_column(UtcDateTime())
