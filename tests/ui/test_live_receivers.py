"""A receiver in a search's live state: where it last said it was, and when it said so.

The team page falls back to its own handheld's GPS when the phone's location is off, and tells
the searcher how old that position is: a status report without a position (a handheld that lost
its GPS) must not make an old position look new.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from registry.searches import LiveSetup
from safetynet.reports import Status, parse_report
from tests.ui_support import ORIGIN
from ui.live import SearchState

START = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def _status(seq: int, seconds: float, where: tuple[float, float] | None) -> Status:
    report = {"kind": "status", "receiver_id": "HH-07", "seq": seq,
              "t": (START + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
              "gps_fix": where is not None, "clipping": False}  # fmt: skip
    if where is not None:
        report |= {"lat_deg": where[0], "lon_deg": where[1]}
    out = parse_report(report)
    assert isinstance(out, Status)
    return out


def test_a_report_without_a_position_keeps_the_time_of_the_last_one_with_it() -> None:
    setup = LiveSetup("s", "3A7F", 19, ORIGIN[0], ORIGIN[1], START, START, "dementia",
                      {"HH-07": "Team 1"})  # fmt: skip
    state = SearchState.start(setup)
    state.take([_status(1, 10.0, (42.3031, -71.0571))])
    state.take([_status(2, 70.0, None)])  # the GPS lost its fix a minute later
    (view,) = (r for r in state.snapshot()["receivers"] if r["receiver_id"] == "HH-07")
    assert view["team"] == "Team 1"
    assert (view["lat_deg"], view["lon_deg"]) == (42.3031, -71.0571)
    assert view["gps_fix"] is False
    assert datetime.fromisoformat(view["position_t"]) == START + timedelta(seconds=10)
    assert datetime.fromisoformat(view["last_report_t"]) == START + timedelta(seconds=70)
    state.take([_status(3, 95.0, (42.3035, -71.0575))])  # and found it again
    (view,) = (r for r in state.snapshot()["receivers"] if r["receiver_id"] == "HH-07")
    assert datetime.fromisoformat(view["position_t"]) == START + timedelta(seconds=95)
    assert view["gps_fix"] is True
