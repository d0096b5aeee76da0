"""The enrollment record's fields: their names in a family's words, their limits, their checks.

A form is checked whole: :class:`FormCheck` gathers every problem (keyed by the field's path,
``"first_name"``, ``"caregivers.1.phone"``, ``"places.0.lat_deg"``) and raises one
:class:`RegistryInputError` that carries them all, so a page can put each message beside its
field and a family fixes everything at once instead of one refusal at a time. Messages name the
field as the form does ("First name is required"), never by its key.

Phone numbers are checked with ``phonenumbers`` (the numbering plans of every country) and stored
in one format, E.164 (``+16175550101``, an extension after `` ext. ``); a number written without
a country code is read in the deployment's region (``US`` unless told otherwise).
"""

from __future__ import annotations

import base64
import math
from datetime import date
from typing import Any

import phonenumbers

from safetynet.errors import InputError

DEFAULT_PHONE_REGION = "US"
PHOTO_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png"}
MAX_PHOTO_BYTES = 2 * 1024 * 1024
_MB = 1024 * 1024
OLDEST_BIRTH_YEAR = 1900
HEIGHT_RANGE_CM = (40, 250)

# What a family reads for each field of the record.
LABELS = {
    "first_name": "First name", "last_name": "Last name", "nickname": "Nickname",
    "date_of_birth": "Date of birth", "height_cm": "Height", "build": "Build", "hair": "Hair",
    "eyes": "Eyes", "glasses": "Glasses", "scars_marks": "Scars and marks",
    "description": "General description", "usual_clothing": "Usual clothing",
    "language": "Language", "verbal": "Speaks", "useful_phrases": "Useful phrases",
    "diagnoses": "Diagnoses", "medications": "Medications", "triggers": "Triggers",
    "approach_and_calm": "How to approach and calm", "mobility_aids": "Mobility aids",
    "photo": "Photo", "caregivers": "Caregivers", "places": "Places",
    "consent_home_alerts": "Consent to home-station alerts",
    "consent_fleet_sightings": "Consent to sightings by the fleet's receivers",
    "consent_given_by": "Consent given by",
}  # fmt: skip
# The consents in the record (the client's or their guardian's, and who gave them).
CONSENT_FIELDS = ("consent_home_alerts", "consent_fleet_sightings", "consent_given_by")
# The longest text each field takes (the database column's width, or a page's worth for notes).
SHORT_TEXT = 100
LONG_TEXT = 4000
MAX_LENGTHS = {
    **dict.fromkeys(("first_name", "last_name", "nickname", "build", "hair", "eyes",
                     "language"), SHORT_TEXT),
    **dict.fromkeys(("scars_marks", "useful_phrases", "description", "usual_clothing",
                     "diagnoses", "medications", "triggers", "approach_and_calm",
                     "mobility_aids"), LONG_TEXT),
    "consent_given_by": 200, "caregiver_name": 200, "caregiver_relation": 100,
    "place_label": 200, "place_notes": 2000,
}  # fmt: skip
PLACE_KIND_LABELS = {
    "frequented": "Place often visited",
    "previous_address": "Previous address",
    "found_before": "Where found before",
}


class RegistryInputError(InputError):
    """Input the registry refuses; nothing was written.

    ``errors`` maps each refused field's path to its message (empty when the message concerns
    no single field); the message is all of them, one sentence each."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})

    @classmethod
    def of(cls, errors: dict[str, str]) -> RegistryInputError:
        return cls(" ".join(errors.values()), errors)


def label(field: str) -> str:
    return LABELS.get(field, field.replace("_", " ").capitalize())


def size_mb(n_bytes: int) -> str:
    """A size as a person reads it, rounded up to 0.1 MB so an oversize never reads as the limit."""
    return f"{math.ceil(n_bytes / _MB * 10) / 10:.1f}".removesuffix(".0") + " MB"


def check_photo(photo: bytes, size_bytes: int | None = None) -> str:
    """The photo's MIME type; only JPEG and PNG up to 2 MB are taken.

    ``size_bytes`` is the upload's full size when only its first bytes were read."""
    size = max(len(photo), size_bytes or 0)
    if size > MAX_PHOTO_BYTES:
        raise RegistryInputError.of(
            {"photo": f"The photo is {size_mb(size)}; it can be at most {size_mb(MAX_PHOTO_BYTES)}."
             " A phone's camera can save a smaller picture, or crop this one."}
        )  # fmt: skip
    for magic, mime in PHOTO_TYPES.items():
        if photo.startswith(magic):
            return mime
    raise RegistryInputError.of(
        {"photo": "The photo must be a JPEG or PNG picture; this file is neither."}
    )


def normalise_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> str | None:
    """``raw`` in E.164 (with `` ext. N`` when it has an extension), or None if not a number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return f"{e164} ext. {number.extension}" if number.extension else e164


def display_phone(stored: str) -> str:
    """A stored number as people dial it (``+1 617-555-0101``); unparseable text as it is."""
    try:
        number = phonenumbers.parse(stored.replace(" ext. ", " ext "), None)
    except phonenumbers.NumberParseException:
        return stored
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


class FormCheck:
    """Checks the fields of one form, gathering every problem before anything is written."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(self.prefix + field, message)

    def done(self) -> None:
        """Raise the gathered problems, if any."""
        if self.errors:
            raise RegistryInputError.of(self.errors)

    def text(
        self, field: str, required: bool = False, max_len: int | None = None,
        name: str | None = None,
    ) -> str | None:  # fmt: skip
        """Trimmed text, or None when left empty (``name``: the field as the message says it)."""
        name = name or label(field)
        limit = max_len or MAX_LENGTHS.get(field, SHORT_TEXT)
        value = self.data.get(field)
        if value is not None and not isinstance(value, str):
            self.fail(field, f"{name} must be written as text.")
            return None
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{name} is required.")
            return None
        if len(value) > limit:
            self.fail(field, f"{name} is {len(value)} characters long; it can be at most {limit}.")
            return None
        return value

    def date(self, field: str, required: bool = False, past: bool = True) -> date | None:
        name = label(field)
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(field, f"{name} is required.")
            return None
        parsed: Any = value
        if isinstance(value, str):
            try:
                parsed = date.fromisoformat(value.strip())
            except ValueError:
                parsed = None
        if not isinstance(parsed, date):
            self.fail(field, f"{name} must be a date written year-month-day, such as 1944-05-01; "
                             f"“{value}” is not.")  # fmt: skip
            return None
        if past and parsed > date.today():
            self.fail(field, f"{name} can't be in the future ({parsed.isoformat()}).")
            return None
        if field == "date_of_birth" and parsed.year < OLDEST_BIRTH_YEAR:
            self.fail(field, f"{name} is before {OLDEST_BIRTH_YEAR} ({parsed.isoformat()}); "
                             "please check the year.")  # fmt: skip
            return None
        return parsed

    def flag(self, field: str, default: bool) -> bool:
        value = self.data.get(field, default)
        if not isinstance(value, bool):
            self.fail(field, f"{label(field)} must be yes or no (true or false).")
            return default
        return value

    def height_cm(self, field: str = "height_cm") -> int | None:
        value = self.data.get(field)
        if value is None:
            return None
        low, high = HEIGHT_RANGE_CM
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(field, f"Height must be a whole number of centimetres between {low} and "
                             f"{high}; “{value}” is not.")  # fmt: skip
            return None
        return value

    def photo_base64(self, field: str = "photo_base64") -> tuple[bytes, str] | None:
        value = self.data.get(field)
        if value is None:
            return None
        try:
            photo = base64.b64decode(value, validate=True)
        except (ValueError, TypeError):
            self.fail("photo", "The photo could not be read (it is not valid base64).")
            return None
        try:
            return photo, check_photo(photo)
        except RegistryInputError as err:
            self.errors.update(err.errors)
            return None

    def phone(self, field: str, whose: str, region: str) -> str | None:
        raw = self.data.get(field)
        if not isinstance(raw, str) or not raw.strip():
            self.fail(field, f"A phone number is needed for {whose}.")
            return None
        if len(raw) > 40:
            self.fail(field, f"The phone number for {whose} is {len(raw)} characters long; it can "
                             "be at most 40.")  # fmt: skip
            return None
        number = normalise_phone(raw, region)
        if number is None:
            self.fail(
                field,
                f"The phone number for {whose} doesn't look like a phone number: "
                f"“{raw.strip()}”. Write it with its area code, such as "
                f"{_example(region)}, or start with + and the country code.",
            )
            return None
        return number


def _example(region: str) -> str:
    example = phonenumbers.example_number_for_type(
        region, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
    )
    if example is None:
        return "+1 617 555 0101"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)


def caregivers(value: Any, region: str, check: FormCheck) -> list[dict[str, Any]]:
    """The caregivers' rows checked (name, relation, phone in E.164, 24/7), in priority order."""
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail("caregivers", "Caregivers must be a list of people.")
        return []
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            check.fail(f"caregivers.{i}", f"Caregiver {i + 1} must be a name with a phone number.")
            continue
        c = FormCheck(row, prefix=f"caregivers.{i}.")
        name = c.text("name", required=True, max_len=MAX_LENGTHS["caregiver_name"],
                      name=f"Caregiver {i + 1}'s name")  # fmt: skip
        whose = f"{name} (caregiver {i + 1})" if name else f"caregiver {i + 1}"
        relation = c.text("relation", max_len=MAX_LENGTHS["caregiver_relation"],
                          name=f"How {name or f'caregiver {i + 1}'} is related")  # fmt: skip
        phone = c.phone("phone", whose, region)
        available = c.flag("available_24_7", False)
        check.errors.update(c.errors)
        out.append({"name": name, "relation": relation, "phone": phone,
                    "available_24_7": available, "priority": i + 1})  # fmt: skip
    return out


def places(value: Any, check: FormCheck) -> list[dict[str, Any]]:
    """The places rows checked: kind, label, position (required for a place often visited)."""
    if value is None:
        return []
    if not isinstance(value, list):
        check.fail("places", "Places must be a list.")
        return []
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, dict):
            check.fail(f"places.{i}", f"Place {i + 1} must have a name and a position.")
            continue
        c = FormCheck(row, prefix=f"places.{i}.")
        kind = row.get("kind", "frequented")
        if kind not in PLACE_KIND_LABELS:
            c.fail("kind", f"Place {i + 1} must be one of: "
                           f"{', '.join(PLACE_KIND_LABELS.values()).lower()}.")  # fmt: skip
            kind = "frequented"
        what = PLACE_KIND_LABELS[kind]
        name = c.text("label", required=True, max_len=MAX_LENGTHS["place_label"],
                      name=f"{what} {i + 1}: its name or address")  # fmt: skip
        notes = c.text("notes", max_len=MAX_LENGTHS["place_notes"], name=f"{what} {i + 1}'s notes")
        lat, lon = row.get("lat_deg"), row.get("lon_deg")
        position: tuple[float, float] | None = None
        if lat is None and lon is None:
            if kind == "frequented":
                c.fail("lat_deg", f"{what} “{name or i + 1}” needs a position: pick it on the map.")
        elif (
            isinstance(lat, bool) or isinstance(lon, bool)
            or not isinstance(lat, int | float) or not isinstance(lon, int | float)
            or not (-90 <= lat <= 90 and -180 <= lon <= 180)
        ):  # fmt: skip
            c.fail(
                "lat_deg",
                f"{what} “{name or i + 1}”: the position must be a latitude within "
                f"-90..90 and a longitude within -180..180, got {lat}, {lon}.",
            )
        else:
            position = (float(lat), float(lon))
        check.errors.update(c.errors)
        out.append({"kind": kind, "label": name, "notes": notes,
                    "lat_deg": None if position is None else position[0],
                    "lon_deg": None if position is None else position[1]})  # fmt: skip
    return out
