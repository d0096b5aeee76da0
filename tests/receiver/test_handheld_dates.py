"""The handheld reader's dates: the two-digit-year pivot, midnight, time that jumps back."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from receiver.handheld import SnhhParser
from safetynet.nmea import rmc_date, sentence
from safetynet.reports import Pulse


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("050180", date(1980, 1, 5)),  # a cold start's GPS epoch, as the receiver says it
        ("220899", date(1999, 8, 22)),  # after the April 2019 week rollover
        ("311279", date(2079, 12, 31)),
        ("281126", date(2026, 11, 28)),
        ("010100", date(2000, 1, 1)),
        ("2208-1", None),  # corrupt
        ("310226", None),  # no 31 February
        ("", None),
    ],
)
def test_two_digit_years_by_the_pivot(field: str, expected: date | None) -> None:
    assert rmc_date(field) == expected


def feed(parser: SnhhParser, lines: list[tuple[float, str]]) -> list[Pulse]:
    out = []
    for arrival_s, body in lines:
        out += parser.feed(arrival_s, sentence(*body.split(",")))
    out += parser.feed(lines[-1][0] + 5.0, "")
    return [r for r in out if isinstance(r, Pulse)]


def rmc(hhmmss: str, ddmmyy: str) -> str:
    return f"GNRMC,{hhmmss},A,4218.1234,N,07103.4567,W,0.4,131.0,{ddmmyy},,,A"


def pulse(hhmmss: str) -> str:
    return f"PSNPD,{hhmmss},19,216462612,3A7F,29,-97.4,18.2,28.0"


def test_a_day_is_added_only_at_a_real_midnight_crossing() -> None:
    parser = SnhhParser()
    pulses = feed(parser, [
        (0.0, rmc("235959.00", "281126")),
        (0.5, pulse("235959.500")),
        (1.0, pulse("000000.300")),  # past midnight, before the RMC that brings the new date
        (1.1, rmc("000000.00", "291126")),
        (1.2, pulse("235959.900")),  # stamped before midnight, read after the new date
        (2.0, rmc("000001.00", "291126")),
        (2.5, pulse("000001.500")),
    ])  # fmt: skip
    assert [p.t for p in pulses] == [
        datetime(2026, 11, 28, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 11, 29, 0, 0, 0, 300_000, tzinfo=UTC),
        datetime(2026, 11, 28, 23, 59, 59, 900_000, tzinfo=UTC),
        datetime(2026, 11, 29, 0, 0, 1, 500_000, tzinfo=UTC),
    ]


def test_a_cold_start_date_then_the_real_one_adds_no_day() -> None:
    parser = SnhhParser()
    pulses = feed(parser, [
        (0.0, rmc("235950.00", "050180")),
        (1.0, pulse("081433.200")),  # the clock jumps: not a midnight crossing
        (1.1, rmc("081434.00", "230808")),
        (2.0, pulse("081435.000")),
        (3.0, rmc("081436.00", "230808")),
        (3.5, pulse("081436.500")),
    ])  # fmt: skip
    assert [p.t for p in pulses] == [
        datetime(1980, 1, 5, 8, 14, 33, 200_000, tzinfo=UTC),  # as the unit said it
        datetime(2008, 8, 23, 8, 14, 35, tzinfo=UTC),
        datetime(2008, 8, 23, 8, 14, 36, 500_000, tzinfo=UTC),
    ]


def test_pulses_waiting_for_a_heading_are_released_when_time_goes_back() -> None:
    parser = SnhhParser()
    out = []
    for arrival_s, body in [
        (0.0, rmc("152508.00", "091209")),
        (0.1, "HCHDT,10.0,T"),
        (0.2, pulse("152508.300")),  # waits for the next heading
        (0.3, rmc("143306.00", "091209")),  # a second session: 52 minutes back
    ]:
        out += parser.feed(arrival_s, sentence(*body.split(",")))
    assert parser.waiting == 0
    assert [p.t for p in out if isinstance(p, Pulse)] == [
        datetime(2009, 12, 9, 15, 25, 8, 300_000, tzinfo=UTC)
    ]


def test_a_pulse_before_the_first_date_waits_for_it() -> None:
    parser = SnhhParser()
    pulses = feed(parser, [
        (0.0, "GPRMC,,V,,,,,,,,,,N"),
        (0.2, pulse("000231.099")),
        (0.4, "GPRMC,000231.42,A,4829.0005,N,00022.0016,E,0.16,212.28,220899,,,A"),
    ])  # fmt: skip
    assert [p.t for p in pulses] == [datetime(1999, 8, 22, 0, 2, 31, 99_000, tzinfo=UTC)]
    assert parser.undated_dropped == 0
