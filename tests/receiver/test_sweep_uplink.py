"""Sweep bearings against the Cramér–Rao bound, cadence attribution, and the uplink."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from receiver.attribution import CadenceTracker, SweepCollector
from receiver.sweep import crlb_sweep_deg, fit_sweep
from receiver.uplink import Outbox, Uplink
from safetynet.angles import angle_diff_deg
from safetynet.antennas import YAGI3
from safetynet.reports import Pulse, PulseStatus, parse_report

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def synthetic_sweeps(
    n: int, sigma_db: float, seed: int
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        theta = rng.uniform(0, 360)
        count = int(rng.integers(8, 16))
        headings = (rng.uniform(0, 360) + np.sort(rng.uniform(0, 360, count))) % 360
        rssi = -95 + YAGI3.gain_dbi(theta - headings) + rng.normal(0, sigma_db, count)
        out.append((theta, headings, rssi))
    return out


def test_sweep_bearing_reaches_the_bound_with_honest_sigma() -> None:
    errors, bounds, z = [], [], []
    for theta, headings, rssi in synthetic_sweeps(400, 1.5, seed=4):
        fit = fit_sweep(headings, rssi, YAGI3, compass_sigma_deg=0.0)
        if fit.bearing_deg is None or fit.sigma_deg is None:
            continue
        error = float(angle_diff_deg(fit.bearing_deg, theta))
        errors.append(error)
        bounds.append(crlb_sweep_deg(YAGI3, theta, headings, 1.5))  # at the truth, not the fit
        z.append(error / fit.sigma_deg)
    rms = float(np.sqrt(np.mean(np.square(errors))))
    bound = float(np.sqrt(np.mean(np.square(bounds))))
    assert len(errors) > 300
    assert rms <= 1.25 * bound
    assert 0.8 <= float(np.std(z)) <= 1.25


def test_sweep_refuses_a_partial_turn_and_says_why() -> None:
    fit = fit_sweep(np.linspace(0, 90, 10), np.full(10, -90.0), YAGI3)
    assert fit.bearing_deg is None
    assert "gap" in fit.reason
    fit = fit_sweep(np.array([0.0, 120.0, 240.0]), np.full(3, -90.0), YAGI3)
    assert fit.bearing_deg is None
    assert "pulses" in fit.reason


def test_two_lobes_are_flagged_and_widened() -> None:
    headings = np.arange(0.0, 360.0, 20.0)
    # A direct path from 40° and a reflection as strong from 220°.
    power = 10 ** (YAGI3.gain_dbi(40 - headings) / 10) + 10 ** (YAGI3.gain_dbi(220 - headings) / 10)
    fit = fit_sweep(headings, 10 * np.log10(power) - 90, YAGI3)
    assert fit.quality == "two_lobes"
    assert fit.sigma_deg is not None
    assert fit.sigma_deg >= 60


PULSE_STATUS = PulseStatus(seq=0, test=False, strap_open=False, low_battery=False)


def pulse(
    t_s: float,
    channel: int,
    bracelet: str | None,
    heading: float | None = None,
    rssi: float = -90.0,
) -> Pulse:
    return Pulse(
        receiver_id="HH-1", seq=int(t_s * 10), t=T0 + timedelta(seconds=t_s), channel=channel,
        freq_hz=216_462_500, bracelet_id=bracelet,
        status=PULSE_STATUS if bracelet else None, rssi_dbm=rssi, snr_db=10.0,
        lat_deg=42.3, lon_deg=-71.0, heading_deg=heading, antenna="yagi3",
    )  # fmt: skip


def test_cadence_attributes_undecoded_pulses() -> None:
    tracker = CadenceTracker()
    assert tracker.observe(pulse(0.0, 19, "3A7F")) == "3A7F"
    assert tracker.observe(pulse(3.02, 19, None)) == "3A7F"  # three seconds on, within jitter
    assert tracker.observe(pulse(3.5, 19, None)) is None  # off the cadence
    assert tracker.observe(pulse(4.0, 20, None)) is None  # another channel
    assert tracker.observe(pulse(0.48, 19, "B00C")) == "B00C"
    assert tracker.observe(pulse(6.0, 19, None)) == "3A7F"
    assert tracker.observe(pulse(6.49, 19, None)) == "B00C"
    assert tracker.observe(pulse(10.24, 19, None)) is None  # both could be: left alone


def test_sweep_collector_makes_a_bearing_from_a_turn() -> None:
    counter = iter(range(1000))
    collector = SweepCollector(lambda: next(counter))
    rng = np.random.default_rng(2)
    bearings = []
    for k in range(14):
        heading = (100 + k * 26.0) % 360
        rssi = -95 + YAGI3.gain_dbi(250 - heading) + rng.normal(0, 1.0)
        bracelet = "3A7F" if k % 3 == 0 else None  # most pulses too weak to decode
        bearings += collector.add(pulse(k * 1.0, 19, bracelet, heading, rssi))
    bearings += collector.flush()
    assert len(bearings) == 1
    b = bearings[0]
    assert b.bracelet_id == "3A7F"
    assert b.method == "sweep"
    assert abs(angle_diff_deg(b.bearing_deg, 250.0)) < 3 * b.sigma_deg


# --- uplink -------------------------------------------------------------------------------------


class IngestStub(BaseHTTPRequestHandler):
    """A real HTTP server with the ingest API's semantics: stores by (receiver_id, seq)."""

    stored: ClassVar[dict[tuple[str, int], dict[str, Any]]] = {}
    posts = 0
    max_items = 1000

    def do_POST(self) -> None:
        type(self).posts += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.headers.get("Authorization") != "Bearer T":
            self._answer(401, {"detail": "bad token"})
            return
        if len(body) > self.max_items:
            self._answer(413, {"detail": "too many"})
            return
        accepted = duplicates = 0
        rejected = []
        for i, item in enumerate(body):
            if item.get("rssi_dbm", 0) > 0:
                rejected.append({"index": i, "field": "rssi_dbm", "message": "too strong"})
                continue
            key = (item["receiver_id"], item["seq"])
            if key in self.stored:
                duplicates += 1
            else:
                self.stored[key] = item
                accepted += 1
        self._answer(200, {"accepted": accepted, "duplicates": duplicates, "rejected": rejected})

    def _answer(self, code: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def start_stub(port: int = 0) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), IngestStub)
    server.allow_reuse_address = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_uplink_survives_a_server_that_goes_away_and_a_restart(tmp_path: Path) -> None:
    IngestStub.stored, IngestStub.max_items = {}, 40
    server = start_stub()
    port = server.server_address[1]
    url = f"http://127.0.0.1:{port}/api/v1/reports"
    outbox = Outbox(tmp_path / "queue.sqlite")
    uplink = Uplink(outbox, url, "T", timeout_s=2)
    for i in range(50):
        p = pulse(float(i), 19, "3A7F")
        outbox.put(p.model_copy(update={"seq": outbox.next_seq()}))
    assert uplink.drain(10)  # 50 > 40: the 413 halves the batch and it goes through
    server.shutdown()
    server.server_close()
    for i in range(50, 80):  # the server is away: these wait on disk
        outbox.put(pulse(float(i), 19, "3A7F").model_copy(update={"seq": outbox.next_seq()}))
    assert uplink.send_once() < 0
    assert outbox.pending() == 30
    outbox.close()
    # The receiver restarts: a new outbox on the same file keeps the queue and the counter.
    outbox = Outbox(tmp_path / "queue.sqlite")
    assert outbox.pending() == 30
    assert outbox.next_seq() == 80
    bad = pulse(99.0, 19, "3A7F").model_copy(update={"seq": 80, "rssi_dbm": 5.0})
    outbox.put(bad)
    server = ThreadingHTTPServer(("127.0.0.1", port), IngestStub)  # back on the same port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uplink = Uplink(outbox, url, "T", timeout_s=2)
    assert uplink.drain(10)
    server.shutdown()
    server.server_close()
    assert sorted(seq for _, seq in IngestStub.stored) == list(range(80))  # none lost, none twice
    dead = [json.loads(line) for line in outbox.dead_letter_path.open()]
    assert len(dead) == 1
    assert dead[0]["rejected"]["field"] == "rssi_dbm"
    report = parse_report(dead[0]["report"])
    assert isinstance(report, Pulse)
    assert report.seq == 80


def test_uplink_keeps_everything_when_the_token_is_refused(tmp_path: Path) -> None:
    IngestStub.stored, IngestStub.max_items = {}, 1000
    server = start_stub()
    url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/reports"
    outbox = Outbox(tmp_path / "q.sqlite")
    outbox.put(pulse(1.0, 19, "3A7F"))
    wait = Uplink(outbox, url, "WRONG", timeout_s=2).send_once()
    server.shutdown()
    server.server_close()
    assert wait >= 30
    assert outbox.pending() == 1
    assert not IngestStub.stored


@pytest.mark.parametrize("retry_after", ["2", "soon"])
def test_uplink_honours_retry_after(tmp_path: Path, retry_after: str) -> None:
    class Busy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(429)
            self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outbox = Outbox(tmp_path / "q.sqlite")
    outbox.put(pulse(1.0, 19, "3A7F"))
    wait = Uplink(outbox, f"http://127.0.0.1:{server.server_address[1]}/", "T").send_once()
    server.shutdown()
    server.server_close()
    assert wait == (2.0 if retry_after == "2" else 5.0)
    assert outbox.pending() == 1
