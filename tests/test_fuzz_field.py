"""Fuzzing the field side's readers of outside input: the SNHH-1 serial reader, SigMF metadata
and simulator scenario files. Each either reads its input or refuses it with the project's
``InputError`` (the documented refusal, naming what was wrong); any other exception is a crash.

Inputs are drawn from the formats themselves — sentences built from spec/handheld-serial.md's
fields with their values mutated, SigMF globals and captures with wrong types, scenario tables
with values of every JSON type — plus plain noise. Counts are fixed per test (below) so that a
run's total is known; see also tests/ui/test_fuzz.py for the server's share.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import tempfile
import tomllib
from functools import reduce
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.scenario import load_scenario, parse_scenario
from receiver.files import open_sigmf
from receiver.handheld import SnhhParser
from safetynet.errors import InputError
from tests.conftest import fuzz

SNHH_EXAMPLES = 800
SNHH_MUTATED_STREAMS = 4000
SIGMF_EXAMPLES = 600
SCENARIO_EXAMPLES = 600
NOISE_FILES = 200


def _checksum(body: str) -> str:
    return f"{reduce(lambda a, c: a ^ ord(c), body, 0):02X}"


# --- SNHH-1 ---------------------------------------------------------------------------------------
NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", "-", ".", "1e999", "nan", "inf", "-0", "00", "9" * 400, "0x1F"]),
)
FIELD = st.one_of(NUMBER_TEXT, st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                                       max_size=12))  # fmt: skip
TIME_TEXT = st.one_of(
    st.builds(
        lambda h, m, s: f"{h:02d}{m:02d}{s:06.3f}",
        st.integers(0, 30),
        st.integers(0, 70),
        st.floats(0, 70),
    ),
    FIELD,
)
DATE_TEXT = st.one_of(
    st.builds(
        lambda d, m, y: f"{d:02d}{m:02d}{y:02d}",
        st.integers(0, 40),
        st.integers(0, 14),
        st.integers(0, 99),
    ),
    FIELD,
)


@st.composite
def snhh_line(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["GNRMC", "GPGGA", "HCHDT", "GNZDA", "PSNID", "PSNPD", "PSNST",
                                 "XXABC", "noise"]))  # fmt: skip
    if kind == "noise":
        return draw(st.text(max_size=300))
    if kind == "GNRMC":
        fields = [draw(TIME_TEXT), draw(st.sampled_from(["A", "V", "", "X"])), draw(FIELD),
                  draw(st.sampled_from(["N", "S", ""])), draw(FIELD),
                  draw(st.sampled_from(["E", "W", ""])), draw(FIELD), draw(FIELD),
                  draw(DATE_TEXT), "", "", "A"]  # fmt: skip
    elif kind == "GPGGA":
        fields = [draw(TIME_TEXT), draw(FIELD), "N", draw(FIELD), "W", draw(FIELD), draw(FIELD),
                  draw(FIELD), draw(FIELD), "M", draw(FIELD), "M", "", ""]  # fmt: skip
    elif kind == "HCHDT":
        fields = [draw(FIELD), "T"]
    elif kind == "GNZDA":
        fields = [draw(TIME_TEXT), draw(FIELD), draw(FIELD), draw(FIELD), "", ""]
    elif kind == "PSNID":
        fields = [draw(FIELD), draw(FIELD), draw(st.sampled_from(["yagi3", "omni", "", "dish"]))]
    elif kind == "PSNPD":
        fields = [draw(TIME_TEXT), draw(FIELD), draw(FIELD),
                  draw(st.sampled_from(["3A7F", "", "0000", "FFFF", "zz"])),
                  draw(st.sampled_from(["29", "", "FF", "G1"])), draw(FIELD), draw(FIELD),
                  draw(FIELD)]  # fmt: skip
    elif kind == "PSNST":
        fields = [draw(TIME_TEXT), draw(FIELD), draw(FIELD), draw(st.sampled_from(["0", "1", "2"]))]
    else:
        fields = [draw(FIELD) for _ in range(draw(st.integers(0, 5)))]
    body = ",".join([kind, *fields])
    checksum = draw(st.one_of(st.just(_checksum(body)), st.sampled_from(["00", "", "ZZ"])))
    end = draw(st.sampled_from(["\r\n", "\n", "", "\r"]))
    return f"${body}*{checksum}{end}"


@fuzz(SNHH_EXAMPLES)
@given(
    st.lists(snhh_line(), min_size=1, max_size=6),
    st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=1, max_size=6),
)
def test_snhh1_reader_survives_any_stream(lines: list[str], arrivals: list[float]) -> None:
    parser = SnhhParser(receiver_id="HH-07")
    for i, line in enumerate(lines):
        arrival_s = arrivals[i % len(arrivals)]  # arrival times jump back and forth too
        for report in parser.feed(arrival_s, line):
            assert getattr(report, "receiver_id", None) == "HH-07"
    parser.flush()
    assert parser.waiting == 0  # nothing is left stuck at the end of a stream


# The spec's example session, and the kinds of damage a serial line suffers.
SPEC_SESSION = [
    "$PSNID,HH-07,1.4.2,yagi3*54",
    "$GNRMC,140305.00,A,4218.1234,N,07103.4567,W,0.4,131.0,281126,,,A*56",
    "$GNGGA,140305.00,4218.1234,N,07103.4567,W,1,09,0.9,12.0,M,-33.0,M,,*73",
    "$HCHDT,131.5,T*2F",
    "$PSNPD,140305.123,19,216462612,3A7F,29,-97.4,18.2,28.0*4C",
    "$PSNST,140310.000,3.91,18.5,0*64",
]
SUBSTITUTES = ["", "9" * 40, "-1", "1e308", "nan", "999999", "000000", "991231", "050180",
               "235959.999", "240000", "A", "V", "\x00", "$", "*", ",,,,"]  # fmt: skip


def _damage(rng: random.Random, line: str) -> str:
    """One of: a field replaced (checksum fixed, so the parser sees it), bytes flipped, the line
    cut short, two lines run together, or nothing."""
    choice = rng.randrange(5)
    if choice == 0 and "*" in line:
        body = line[1 : line.index("*")].split(",")
        body[rng.randrange(1, len(body)) if len(body) > 1 else 0] = rng.choice(SUBSTITUTES)
        text = ",".join(body)
        return f"${text}*{_checksum(text)}"
    if choice == 1:
        chars = list(line)
        for _ in range(rng.randint(1, 3)):
            chars[rng.randrange(len(chars))] = chr(rng.randrange(0, 256))
        return "".join(chars)
    if choice == 2:
        return line[: rng.randrange(len(line))]
    if choice == 3:
        return line + rng.choice(SPEC_SESSION)
    return line


def test_snhh1_reader_survives_damaged_sessions() -> None:
    rng = random.Random(16)  # seeded: the same streams every run
    for _ in range(SNHH_MUTATED_STREAMS):
        parser = SnhhParser(receiver_id="HH-07")
        arrival_s = rng.uniform(0, 1e9)
        for _ in range(rng.randint(1, 3)):
            for line in SPEC_SESSION:
                parser.feed(arrival_s, _damage(rng, line) + rng.choice(["\r\n", "\n", ""]))
                arrival_s += rng.choice([0.1, 1.0, -3600.0, 86400.0])
        parser.flush()
        assert parser.waiting == 0


# --- SigMF ----------------------------------------------------------------------------------------
ANY_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**20), 10**20),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip


def _maybe(value: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(value), ANY_JSON)


@st.composite
def sigmf_meta(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(ANY_JSON)
    global_: dict[str, Any] = {
        "core:datatype": draw(_maybe("cu8")),
        "core:sample_rate": draw(_maybe(2.4e6)),
        "core:version": draw(_maybe("1.0.0")),
    }
    if draw(st.booleans()):
        global_["sntx:cal_dbm_at_fullscale"] = draw(_maybe(-30.0))
    if draw(st.booleans()):
        global_["sntx:gain_db"] = draw(_maybe(28.0))
    capture: dict[str, Any] = {"core:sample_start": draw(_maybe(0))}
    if draw(st.booleans()):
        capture["core:frequency"] = draw(_maybe(216.5e6))
    if draw(st.booleans()):
        capture["core:datetime"] = draw(_maybe("2026-11-28T14:03:05Z"))
    if draw(st.booleans()):
        capture["core:geolocation"] = draw(
            _maybe({"type": "Point", "coordinates": [-71.05, 42.3, 12.0]})
        )
    return {"global": global_, "captures": draw(_maybe([capture])), "annotations": []}


@fuzz(SIGMF_EXAMPLES)
@given(sigmf_meta(), st.binary(max_size=64))
def test_sigmf_metadata_is_read_or_refused(meta: Any, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        meta_path = Path(folder) / "rec.sigmf-meta"
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
        (Path(folder) / "rec.sigmf-data").write_bytes(data)
        try:
            source = open_sigmf(meta_path)
        except InputError:
            return
        try:
            assert source.sample_rate_hz > 0
            assert math.isfinite(source.center_hz)
        finally:
            source.close()


# --- scenarios ------------------------------------------------------------------------------------
EXAMPLE_SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.toml"))


def _mutate(data: Any, path: list[Any], value: Any) -> Any:
    """``data`` with the value at ``path`` (keys and indexes, as far as they reach) replaced."""
    if not path or not isinstance(data, dict | list) or not data:
        return value
    if isinstance(data, dict):
        key = sorted(data)[path[0] % len(data)]
        return {**data, key: _mutate(data[key], path[1:], value)}
    index = path[0] % len(data)
    return [*data[:index], _mutate(data[index], path[1:], value), *data[index + 1 :]]


@fuzz(SCENARIO_EXAMPLES)
@given(
    st.sampled_from(EXAMPLE_SCENARIOS),
    st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=5), min_size=1, max_size=3),
    st.lists(ANY_JSON, min_size=1, max_size=3),
)
def test_scenarios_are_read_or_refused(
    example: Path, paths: list[list[int]], values: list[Any]
) -> None:
    data: Any = tomllib.loads(example.read_text(encoding="utf-8"))
    for path, value in zip(paths, values, strict=False):
        data = _mutate(data, path, value)
    if not isinstance(data, dict):
        data = {"scenario": data}
    with contextlib.suppress(InputError):  # refused, naming the field: fine
        parse_scenario(data, example.parent, source=example.name)


@fuzz(NOISE_FILES)
@given(st.binary(max_size=400))
def test_scenario_files_of_noise_are_refused(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "noise.toml"
        path.write_bytes(content)
        with contextlib.suppress(InputError):
            load_scenario(path)
