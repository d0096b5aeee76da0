"""The uplink through an outage: backoff that grows, is not cut short by new reports, and is reset
by the server's recovery; against a real HTTP server that answers 503 while it is down."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from receiver.uplink import BACKOFF_MAX_S, BACKOFF_MIN_S, Outbox, Uplink
from tests.receiver.test_sweep_uplink import IngestStub, pulse

SPEED_UP = 60.0  # the outage runs this much faster than real time: 3 minutes in 3 s
OUTAGE_S = 180.0
REPORT_EVERY_S = 1.0  # a receiver that hears a bracelet queues about a report a second


class Outage(IngestStub):
    """The ingest stub, answering 503 to every post while ``down``."""

    down: ClassVar[bool] = True
    refused: ClassVar[int] = 0

    def do_POST(self) -> None:  # noqa: N802 (the http.server handler's name)
        if type(self).down:
            type(self).refused += 1
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_POST()


def fast_uplink(outbox: Outbox, url: str) -> Uplink:
    """The uplink with its backoff on the sped-up clock of these tests."""
    return Uplink(
        outbox, url, "T", timeout_s=2,
        backoff_min_s=BACKOFF_MIN_S / SPEED_UP, backoff_max_s=BACKOFF_MAX_S / SPEED_UP,
    )  # fmt: skip


def test_a_three_minute_outage_costs_about_a_dozen_attempts(tmp_path: Path) -> None:
    Outage.stored, Outage.max_items, Outage.down, Outage.refused = {}, 1000, True, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Outage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    outbox = Outbox(tmp_path / "queue.sqlite")
    url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/reports"
    uplink = fast_uplink(outbox, url)
    sender = threading.Thread(target=uplink.run, daemon=True)
    sender.start()
    n = int(OUTAGE_S / REPORT_EVERY_S)
    start = time.monotonic()
    for i in range(n):  # every new report tells the uplink, as the receiver does
        outbox.put(pulse(float(i), 19, "3A7F").model_copy(update={"seq": outbox.next_seq()}))
        uplink.notify()
        time.sleep(max(start + (i + 1) * REPORT_EVERY_S / SPEED_UP - time.monotonic(), 0))
    refused_in_outage = Outage.refused
    Outage.down = False  # the server is back: within one backoff (at most 60 s) all goes
    deadline = time.monotonic() + 2 * BACKOFF_MAX_S / SPEED_UP + 2
    while outbox.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    uplink.stop()
    sender.join(5)
    server.shutdown()
    server.server_close()
    # 1 + 2 + 4 + … + 32 s, then every 60 s: about nine tries in 180 s, twelve at most with the
    # jitter drawing every wait as short as it can (half of the backoff).
    assert 5 <= refused_in_outage <= 12, refused_in_outage
    assert outbox.pending() == 0
    assert sorted(seq for _, seq in Outage.stored) == list(range(n))  # none lost, none twice
    # Success reset the backoff: a new outage is tried again within the first (short) backoff.
    Outage.down, Outage.refused = True, 0
    server = ThreadingHTTPServer(server.server_address, Outage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uplink = fast_uplink(outbox, url)
    sender = threading.Thread(target=uplink.run, daemon=True)
    sender.start()
    outbox.put(pulse(999.0, 19, "3A7F").model_copy(update={"seq": outbox.next_seq()}))
    uplink.notify()
    time.sleep(4 * BACKOFF_MIN_S / SPEED_UP + 0.2)
    uplink.stop()
    sender.join(5)
    server.shutdown()
    server.server_close()
    outbox.close()
    assert Outage.refused >= 2
