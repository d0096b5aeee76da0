"""``safetynet sim search --alert home:N``: the search starts N minutes after the simulated
person leaves the home station's range (checked against the walker's own truth), and the
option is refused, saying how to write it, when it is not ``home:N`` with N from 1 to 240."""

from __future__ import annotations

import argparse
import contextlib
import io
import math

import pytest

from firmware_sim.scenario import load_scenario
from firmware_sim.world import World
from safetynet.cli import main
from tests.conftest import REPO
from trials.commands import home_alert
from trials.search import STEP_S, home_alert_delay_s, left_home_s

SUBURB = REPO / "scenarios" / "quiet-suburb.toml"


def test_the_alert_comes_n_minutes_after_the_person_leaves_the_stations_range() -> None:
    scenario = load_scenario(SUBURB)
    range_m = 300.0
    left = left_home_s(scenario, 4, range_m)
    assert left is not None
    person = World(scenario.model_copy(update={"seed": 4, "duration_s": left + 60})).bracelets[0]
    assert math.hypot(*person.position(left)) > range_m  # the truth: out of range then
    assert math.hypot(*person.position(left - STEP_S)) <= range_m  # and not a step before
    assert home_alert_delay_s(scenario, 4, 5, range_m) == left + 300.0
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["sim", "search", "--scenario", str(SUBURB), "--alert", "home:5",
                     "--strategy", "guided", "--max-minutes", "20", "--seed", "4"])  # fmt: skip
    assert code == 0
    said = buffer.getvalue()
    assert "home alert: the person left the home station's range" in said
    assert "the search starts 5 min later" in said


@pytest.mark.parametrize("text", ["home:0", "home:241", "car:5", "home:", "home:five", "5"])
def test_an_alert_not_written_home_n_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="home:N"):
        home_alert(text)
    assert home_alert("home:5") == 5.0
