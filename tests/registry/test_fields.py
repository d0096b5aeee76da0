"""The record's field checks: messages in a family's words, every problem at once, phone numbers
in one format, photo sizes that read true."""

from __future__ import annotations

from datetime import date, timedelta

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.fields import (
    MAX_PHOTO_BYTES,
    FormCheck,
    RegistryInputError,
    caregivers,
    check_photo,
    display_phone,
    normalise_phone,
    places,
    size_mb,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("n_bytes", "shown"),
    [
        (int(5.2 * 1024 * 1024), "5.2 MB"),
        (MAX_PHOTO_BYTES, "2 MB"),
        (MAX_PHOTO_BYTES + 1, "2.1 MB"),  # just over the limit never reads as the limit
        (3 * 1024 * 1024, "3 MB"),
    ],
)
def test_sizes_read_as_a_person_reads_them(n_bytes: int, shown: str) -> None:
    assert size_mb(n_bytes) == shown


def test_a_large_photo_says_its_size_and_the_limit() -> None:
    with pytest.raises(RegistryInputError) as err:
        check_photo(PNG + b"\x00" * int(5.2 * 1024 * 1024 - len(PNG)))
    assert str(err.value).startswith("The photo is 5.2 MB; it can be at most 2 MB.")
    # The page reads only the first 2 MB + 1 byte of an upload; it passes the real size.
    with pytest.raises(RegistryInputError, match=r"The photo is 5\.2 MB"):
        check_photo(PNG + b"\x00" * MAX_PHOTO_BYTES, size_bytes=int(5.2 * 1024 * 1024))
    with pytest.raises(RegistryInputError, match="JPEG or PNG"):
        check_photo(b"GIF89a" + b"\x00" * 20)
    assert check_photo(PNG + b"\x00" * (MAX_PHOTO_BYTES - len(PNG))) == "image/png"


def test_every_problem_at_once_in_words_a_family_uses() -> None:
    check = FormCheck({"first_name": "  ", "last_name": "B" * 500,
                       "date_of_birth": (date.today() + timedelta(days=365)).isoformat(),
                       "height_cm": 400, "verbal": "yes"})  # fmt: skip
    check.text("first_name", required=True)
    check.text("last_name", required=True)
    check.date("date_of_birth", required=True)
    check.height_cm()
    check.flag("verbal", True)
    with pytest.raises(RegistryInputError) as err:
        check.done()
    assert err.value.errors == {
        "first_name": "First name is required.",
        "last_name": "Last name is 500 characters long; it can be at most 100.",
        "date_of_birth": "Date of birth can't be in the future "
        f"({(date.today() + timedelta(days=365)).isoformat()}).",
        "height_cm": "Height must be a whole number of centimetres between 40 and 250; “400” is "
        "not.",
        "verbal": "Speaks must be yes or no (true or false).",
    }
    assert "First name is required." in str(err.value)
    assert "first_name" not in str(err.value)  # no field keys in what people read


@pytest.mark.parametrize("text", ["1944-13-01", "01/05/1944", "yesterday"])
def test_dates_that_are_not_dates(text: str) -> None:
    check = FormCheck({"date_of_birth": text})
    assert check.date("date_of_birth") is None
    assert check.errors["date_of_birth"].startswith(
        "Date of birth must be a date written year-month-day, such as 1944-05-01"
    )


def test_caregivers_phones_name_the_caregiver_and_are_stored_in_one_format() -> None:
    check = FormCheck({})
    rows = caregivers(
        [
            {"name": "Ann Brown", "phone": "(617) 555-0101", "available_24_7": True},
            {"name": "Tom Brown", "phone": "call ann"},
            {"name": "Joe", "phone": "12"},
            {"name": "", "phone": "+44 20 7946 0958"},
            {"name": "Sue", "phone": ""},
        ],
        "US",
        check,
    )
    assert rows[0]["phone"] == "+16175550101"
    assert check.errors["caregivers.1.phone"].startswith(
        "The phone number for Tom Brown (caregiver 2) doesn't look like a phone number: “call ann”."
    )
    assert "Joe (caregiver 3)" in check.errors["caregivers.2.phone"]
    assert check.errors["caregivers.3.name"] == "Caregiver 4's name is required."
    assert rows[3]["phone"] == "+442079460958"
    assert check.errors["caregivers.4.phone"] == "A phone number is needed for Sue (caregiver 5)."
    assert "caregivers.0.phone" not in check.errors


@pytest.mark.parametrize(
    ("raw", "region", "stored"),
    [
        ("617-555-0199", "US", "+16175550199"),
        ("+1 617 555 0123 ext 4", "US", "+16175550123 ext. 4"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+33 1 42 68 53 00", "US", "+33142685300"),
    ],
)
def test_phone_numbers_in_e164(raw: str, region: str, stored: str) -> None:
    assert normalise_phone(raw, region) == stored


@given(st.integers(min_value=200, max_value=999), st.integers(min_value=2_000_000,
       max_value=9_999_999))  # fmt: skip
def test_phone_round_trip(area: int, local: int) -> None:
    """A valid US number, however it was written, is stored once and reads back the same."""
    number = phonenumbers.parse(f"+1{area}{local}")
    stored = normalise_phone(f"({area}) {str(local)[:3]}-{str(local)[3:]}", "US")
    if not phonenumbers.is_valid_number(number):
        assert stored is None
        return
    assert stored == f"+1{area}{local}"
    assert normalise_phone(display_phone(stored), "US") == stored


def test_places_need_a_position_when_often_visited() -> None:
    check = FormCheck({})
    rows = places(
        [
            {"kind": "frequented", "label": "Dunkin' on Main St", "lat_deg": 42.36,
             "lon_deg": -71.06},
            {"kind": "frequented", "label": "the pond"},
            {"kind": "previous_address", "label": "12 Elm St, Quincy"},
            {"kind": "found_before", "label": "bus depot", "lat_deg": 95, "lon_deg": 0},
            {"kind": "school", "label": "x", "lat_deg": 1, "lon_deg": 1},
        ],
        check,
    )  # fmt: skip
    assert rows[0]["lat_deg"] == 42.36
    assert rows[2]["lat_deg"] is None  # an address without a position is taken
    assert check.errors["places.1.lat_deg"] == (
        "Place often visited “the pond” needs a position: pick it on the map."
    )
    assert "latitude within -90..90" in check.errors["places.3.lat_deg"]
    assert "must be one of" in check.errors["places.4.kind"]
    assert set(check.errors) == {"places.1.lat_deg", "places.3.lat_deg", "places.4.kind"}
