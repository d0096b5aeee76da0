"""Store-and-forward uplink: reports go to disk first, then to the server when it can take them.

:class:`Outbox` is a small SQLite file (WAL): the receiver's ``seq`` counter, which survives
restarts, and the queue of reports not yet acknowledged. :class:`Uplink` posts batches to the
ingest API (``POST /api/v1/reports``, spec/reports.md) with the receiver's bearer token and acts
on the answer:

- ``200``: the batch is done — accepted and duplicate reports leave the queue; reports the
  server rejected go to ``dead-letter.jsonl`` beside the queue (with the server's reason) and
  are never resent;
- ``413``: the batch was too large; it is halved and sent again;
- ``429``: wait ``Retry-After`` seconds;
- ``401``: the token is refused — nothing is dropped; the uplink waits and tries again, loudly;
- ``5xx`` or no connection: exponential backoff (1 s doubling to 60 s, with jitter).

Delivery is at least once; the server stores each ``(receiver_id, seq)`` once, so a batch resent
after a lost answer is harmless. Nothing leaves the queue before the server has answered for it.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetynet.reports import FieldReport, report_to_json

log = logging.getLogger(__name__)

MAX_BATCH = 1000
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
UNAUTHORISED_WAIT_S = 60.0


class Outbox:
    """The on-disk queue and ``seq`` counter of one receiver."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dead_letter_path = path.with_name("dead-letter.jsonl")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "receiver_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, "
            "UNIQUE (receiver_id, seq))"
        )
        self._db.execute("INSERT OR IGNORE INTO state VALUES ('seq', 0)")

    def next_seq(self) -> int:
        """The next ``seq``, durably: a restarted receiver never reuses one."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            (value,) = self._db.execute("SELECT value FROM state WHERE key = 'seq'").fetchone()
            self._db.execute("UPDATE state SET value = ? WHERE key = 'seq'", (value + 1,))
            self._db.execute("COMMIT")
            return int(value)

    def put(self, report: FieldReport) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO queue (receiver_id, seq, body) VALUES (?, ?, ?)",
                (report.receiver_id, report.seq, report_to_json(report)),
            )

    def batch(self, limit: int) -> list[tuple[int, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM queue ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(int(i), str(b)) for i, b in rows]

    def ack(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM queue WHERE id = ?", [(i,) for i in ids])

    def dead_letter(self, body: str, reason: dict[str, Any]) -> None:
        with self.dead_letter_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"report": json.loads(body), "rejected": reason}) + "\n")

    def pending(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()


@dataclass
class Uplink:
    outbox: Outbox
    url: str
    token: str
    timeout_s: float = 10.0
    max_batch: int = MAX_BATCH
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)

    def notify(self) -> None:
        """New reports are waiting: send without waiting out the idle poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def send_once(self) -> float:
        """Send one batch; returns how long to wait before the next attempt (0: at once)."""
        batch = self.outbox.batch(self.max_batch)
        if not batch:
            return 1.0
        body = ("[" + ",".join(b for _, b in batch) + "]").encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            return self._http_error(err, len(batch))
        except (urllib.error.URLError, OSError, ValueError) as err:
            log.warning(
                "uplink to %s failed: %s; %d reports wait", self.url, err, self.outbox.pending()
            )
            return -1.0
        for item in answer.get("rejected", []):
            index = int(item.get("index", -1))
            if 0 <= index < len(batch):
                self.outbox.dead_letter(batch[index][1], item)
                self.rejected += 1
                log.error(
                    "the server rejected a report (%s: %s); kept in %s",
                    item.get("field"), item.get("message"), self.outbox.dead_letter_path,
                )  # fmt: skip
        self.outbox.ack([i for i, _ in batch])
        self.sent += int(answer.get("accepted", 0))
        self.duplicates += int(answer.get("duplicates", 0))
        self.max_batch = min(self.max_batch * 2, MAX_BATCH)
        return 0.0 if len(batch) == self.max_batch else 0.05

    def _http_error(self, err: urllib.error.HTTPError, size: int) -> float:
        if err.code == 413 and size > 1:
            self.max_batch = max(size // 2, 1)
            log.warning(
                "the server found %d reports too many; sending %d at a time", size, self.max_batch
            )
            return 0.0
        if err.code == 429:
            retry = err.headers.get("Retry-After", "5")
            try:
                return max(float(retry), 0.1)
            except ValueError:
                return 5.0
        if err.code == 401:
            log.error("the server refused the receiver token; reports are kept until it is fixed")
            return UNAUTHORISED_WAIT_S
        log.warning(
            "uplink to %s: HTTP %d; %d reports wait", self.url, err.code, self.outbox.pending()
        )
        return -1.0

    def run(self) -> None:
        """Send until stopped, backing off exponentially (with jitter) while the server is away."""
        backoff = BACKOFF_MIN_S
        while not self._stop.is_set():
            wait = self.send_once()
            if wait < 0:  # a failure: back off
                wait = backoff * random.uniform(0.8, 1.2)
                backoff = min(backoff * 2, BACKOFF_MAX_S)
            else:
                backoff = BACKOFF_MIN_S
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()

    def drain(self, timeout_s: float) -> bool:
        """Send until the queue is empty or ``timeout_s`` passes; True when empty."""
        import time

        end = time.monotonic() + timeout_s
        backoff = 0.2
        while self.outbox.pending() and time.monotonic() < end:
            wait = self.send_once()
            if wait < 0:
                self._stop.wait(min(backoff, max(end - time.monotonic(), 0)))
                backoff = min(backoff * 2, 5.0)
            elif wait > 0 and self.outbox.pending():
                self._stop.wait(min(wait, max(end - time.monotonic(), 0)))
        return self.outbox.pending() == 0
