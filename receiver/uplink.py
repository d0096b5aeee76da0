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
- ``5xx`` or no connection: exponential backoff (1 s doubling to 60 s, each wait drawn between
  half and all of it — "equal jitter" — so that a fleet of receivers does not return in step),
  reset only by a batch the server took. New reports do not cut a backoff short: during an
  outage a receiver tries about nine times in three minutes, whatever it hears.

Delivery is at least once; the server stores each ``(receiver_id, seq)`` once, so a batch resent
after a lost answer is harmless. Nothing leaves the queue before the server has answered for it.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from safetynet.reports import FieldReport, report_to_json

log = logging.getLogger(__name__)

MAX_BATCH = 1000
BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
JITTER_LOW = 0.5  # each backoff wait is drawn from [JITTER_LOW, 1] of the current backoff
UNAUTHORISED_WAIT_S = 60.0
RETRY_AFTER_DEFAULT_S = 5.0  # a 429 whose Retry-After is not a number of seconds
RETRY_AFTER_MIN_S = 0.1
IDLE_POLL_S = 1.0  # with nothing queued, look again this often (or when told of a report)
PARTIAL_BATCH_PAUSE_S = 0.05  # after a batch smaller than the limit, before the next
REQUEST_TIMEOUT_S = 10.0
DRAIN_BACKOFF_MIN_S = 0.2
DRAIN_BACKOFF_MAX_S = 5.0


class Outcome(Enum):
    """What one attempt came to."""

    IDLE = "idle"  # nothing to send
    SENT = "sent"  # the server answered for the batch
    WAIT = "wait"  # the server asked for a pause (429, 401) or a smaller batch (413)
    FAILED = "failed"  # no answer, or a server error: back off


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
        with self._lock:  # not under a thread that is writing
            self._db.close()


@dataclass
class Uplink:
    outbox: Outbox
    url: str
    token: str
    timeout_s: float = REQUEST_TIMEOUT_S
    max_batch: int = MAX_BATCH
    backoff_min_s: float = BACKOFF_MIN_S
    backoff_max_s: float = BACKOFF_MAX_S
    sent: int = 0
    duplicates: int = 0
    rejected: int = 0
    attempts: int = 0  # requests made
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)

    def notify(self) -> None:
        """New reports are waiting: send without waiting out the idle poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def send_once(self) -> float:
        """Send one batch; returns how long to wait before the next attempt (0: at once), or a
        negative number when it failed (the caller backs off)."""
        outcome, wait = self._attempt(self.timeout_s)
        return -1.0 if outcome is Outcome.FAILED else wait

    def _attempt(self, timeout_s: float) -> tuple[Outcome, float]:
        batch = self.outbox.batch(self.max_batch)
        if not batch:
            return Outcome.IDLE, IDLE_POLL_S
        body = ("[" + ",".join(b for _, b in batch) + "]").encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )  # fmt: skip
        self.attempts += 1
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as err:
            return self._http_error(err, len(batch))
        except (urllib.error.URLError, OSError, ValueError) as err:
            log.warning(
                "uplink to %s failed: %s; %d reports wait", self.url, err, self.outbox.pending()
            )
            return Outcome.FAILED, 0.0
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
        return Outcome.SENT, 0.0 if len(batch) == self.max_batch else PARTIAL_BATCH_PAUSE_S

    def _http_error(self, err: urllib.error.HTTPError, size: int) -> tuple[Outcome, float]:
        if err.code == 413 and size > 1:
            self.max_batch = max(size // 2, 1)
            log.warning(
                "the server found %d reports too many; sending %d at a time", size, self.max_batch
            )
            return Outcome.WAIT, 0.0
        if err.code == 429:
            retry = err.headers.get("Retry-After", "")
            try:
                return Outcome.WAIT, max(float(retry), RETRY_AFTER_MIN_S)
            except ValueError:
                return Outcome.WAIT, RETRY_AFTER_DEFAULT_S
        if err.code == 401:
            log.error("the server refused the receiver token; reports are kept until it is fixed")
            return Outcome.WAIT, UNAUTHORISED_WAIT_S
        log.warning(
            "uplink to %s: HTTP %d; %d reports wait", self.url, err.code, self.outbox.pending()
        )
        return Outcome.FAILED, 0.0

    def _backoff_wait_s(self, backoff_s: float) -> float:
        return backoff_s * random.uniform(JITTER_LOW, 1.0)

    def run(self) -> None:
        """Send until stopped, backing off exponentially (with jitter) while the server is away.

        Only a batch the server took resets the backoff; a report queued meanwhile waits for
        the next attempt (it wakes the uplink only when the queue was idle).
        """
        backoff_s = self.backoff_min_s
        try:
            while not self._stop.is_set():
                outcome, wait_s = self._attempt(self.timeout_s)
                if outcome is Outcome.FAILED:
                    self._stop.wait(self._backoff_wait_s(backoff_s))
                    backoff_s = min(backoff_s * 2, self.backoff_max_s)
                elif outcome is Outcome.IDLE:
                    if self._wake.wait(wait_s):
                        self._wake.clear()
                else:
                    if outcome is Outcome.SENT:
                        backoff_s = self.backoff_min_s
                    if wait_s > 0:
                        self._stop.wait(wait_s)
        except sqlite3.ProgrammingError:
            if not self._stop.is_set():  # the queue was closed under a running uplink
                raise

    def drain(self, timeout_s: float) -> bool:
        """Send until the queue is empty or ``timeout_s`` passes; True when empty. No request
        outlasts the time left."""
        end = time.monotonic() + timeout_s
        backoff_s = DRAIN_BACKOFF_MIN_S
        while self.outbox.pending() and (left_s := end - time.monotonic()) > 0:
            outcome, wait_s = self._attempt(min(self.timeout_s, max(left_s, 0.1)))
            if outcome is Outcome.FAILED:
                time.sleep(min(backoff_s, max(end - time.monotonic(), 0)))
                backoff_s = min(backoff_s * 2, DRAIN_BACKOFF_MAX_S)
            elif wait_s > 0 and self.outbox.pending():
                time.sleep(min(wait_s, max(end - time.monotonic(), 0)))
        return self.outbox.pending() == 0
