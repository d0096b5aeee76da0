"""The whole simulated search against the field and the simulator's truth: the simulated suburb
hears as far as searchers report, no strategy beats heading straight for the person, and
``safetynet sim search`` prints its figures."""

from __future__ import annotations

import contextlib
import io
import json

from firmware_sim.scenario import load_scenario
from safetynet.cli import main
from tests.conftest import REPO
from trials.search import detection_range_m, run_search


def test_sim_search_prints_its_figures_as_json() -> None:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(
            [
                "sim",
                "search",
                "--scenario",
                str(REPO / "scenarios" / "quiet-suburb.toml"),
                "--json",
                "--max-minutes",
                "30",
                "--seed",
                "4",
            ]
        )
    assert code == 0
    figures = json.loads(buffer.getvalue())
    assert set(figures) == {"guided", "square"}
    for result in figures.values():
        assert result["seed"] == 4
        assert result["first_detection_s"] is not None
        # Found means a team stood within 25 m of the simulated person: checked against truth.
        assert result["found_s"] is None or result["found_s"] <= 30 * 60


def test_the_simulated_suburb_hears_as_far_as_the_field_says() -> None:
    suburb = load_scenario(REPO / "scenarios" / "quiet-suburb.toml")
    # DOMAIN.md: about a mile on foot, a quarter of a mile from a moving vehicle.
    assert 1300.0 <= detection_range_m(suburb, vehicle=False) <= 1900.0
    assert 300.0 <= detection_range_m(suburb, vehicle=True) <= 600.0


def test_no_search_beats_the_oracle_that_heads_straight_for_the_person() -> None:
    city = load_scenario(REPO / "scenarios" / "dense-city.toml")
    for seed in (1, 2):
        oracle = run_search(city, "oracle", seed, max_s=1800.0)
        square = run_search(city, "square", seed, max_s=1800.0)
        assert oracle.found_s is not None
        assert oracle.found_s <= (square.found_s if square.found_s is not None else 1800.0)
