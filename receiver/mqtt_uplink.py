"""Store-and-forward over MQTT: the same on-disk queue as the HTTP uplink, published to the
receiver's own topic with QoS 1 (``safetynet receive --uplink mqtt://HOST:PORT/TOPIC``).

A batch of queued reports (a JSON array, at most :data:`MAX_BATCH`) is one MQTT message; it
leaves the queue (:class:`receiver.uplink.Outbox`) only when the broker has acknowledged it
(PUBACK), so nothing is lost while the broker is away or the link drops: the batch is published
again after the reconnection. Delivery is at least once, and the server stores each
``(receiver_id, seq)`` once, so a batch published twice is harmless.

The broker knows the receiver by its login (``--token`` is the password; the user name is the
URL's, or the receiver id), and its access list lets that login write only this topic. Unlike
HTTP there is no answer per report: a report the server refuses is logged and counted there
(``/metrics``), not kept in this receiver's dead letters.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from receiver.uplink import Outbox
from safetynet.mqtt import KEEPALIVE_S, MqttTarget, connect_properties, new_client

log = logging.getLogger(__name__)

MAX_BATCH = 200  # reports in one message (about 80 kB; the server takes up to 1,000)
PUBACK_TIMEOUT_S = 10.0  # a batch not acknowledged by then is published again
IDLE_POLL_S = 1.0
CONNECT_WAIT_S = 1.0  # while away, look again this often (paho reconnects by itself)
REFUSED_WAIT_S = 60.0  # the broker refused a batch (not authorised): try again after this


@dataclass
class MqttUplink:
    """Sends an :class:`Outbox` to ``target`` (a topic without wildcards)."""

    outbox: Outbox
    target: MqttTarget
    client_id: str
    puback_timeout_s: float = PUBACK_TIMEOUT_S
    max_batch: int = MAX_BATCH
    sent: int = 0  # reports the broker acknowledged
    attempts: int = 0  # messages published
    duplicates: int = 0  # never known over MQTT (the server counts them); kept for the CLI
    rejected: int = 0
    refused: int = 0  # batches the broker refused (its access list: not this login's topic)
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _connected: threading.Event = field(default_factory=threading.Event)
    _client: Any = None
    _acks: dict[int, Any] = field(default_factory=dict)  # mid -> the PUBACK's reason code
    _acks_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if any(c in self.target.topic for c in "+#"):
            raise ValueError(f"one topic, not a filter: {self.target.topic!r}")
        client = new_client(self.target, self.client_id)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.connect_async(
            self.target.host,
            self.target.port,
            keepalive=KEEPALIVE_S,
            clean_start=True,
            properties=connect_properties(persistent=False),
        )
        client.loop_start()  # paho's own thread: the network, and reconnecting while away
        self._client = client

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("the broker %s refused this receiver: %s; reports are kept",
                      self.target.describe(), reason)  # fmt: skip
            return
        log.info("connected to %s", self.target.describe())
        self._connected.set()
        self._wake.set()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker %s (%s); %d reports wait",
                        self.target.describe(), reason, self.outbox.pending())  # fmt: skip

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        with self._acks_lock:
            self._acks[mid] = reason

    def notify(self) -> None:
        """New reports are waiting: send without waiting out the idle poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        """Stop paho's thread and the connection (after :meth:`stop` and any drain)."""
        self._client.disconnect()
        self._client.loop_stop()

    def _send_one(self, timeout_s: float) -> bool | None:
        """Publish one batch and wait for its PUBACK: True when the broker took it, False when
        not (not connected, no answer in time, or refused), None when the queue is empty."""
        batch = self.outbox.batch(self.max_batch)
        if not batch:
            return None
        if not self._connected.is_set():
            return False
        payload = ("[" + ",".join(b for _, b in batch) + "]").encode("utf-8")
        self.attempts += 1
        info = self._client.publish(self.target.topic, payload, qos=1)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as err:  # not queued: the connection went meanwhile
            log.warning("publish to %s failed: %s", self.target.describe(), err)
            return False
        if not info.is_published():
            return False
        with self._acks_lock:
            reason = self._acks.pop(info.mid, None)
        # MQTT 5: 0 success, 16 "no matching subscribers" (taken all the same: the server's
        # persistent session is a subscriber, so this means it was never set up); 128 and up
        # refused — the reports stay queued, and this is said loudly.
        if reason is not None and reason.is_failure:
            self.refused += 1
            log.error("the broker %s refused this receiver's reports on %s (%s); they are "
                      "kept and sent again in %.0f s", self.target.describe(), self.target.topic,
                      reason, REFUSED_WAIT_S)  # fmt: skip
            self._stop.wait(REFUSED_WAIT_S)
            return False
        self.outbox.ack([i for i, _ in batch])
        self.sent += len(batch)
        return True

    def run(self) -> None:
        """Send until stopped; while the broker is away, wait for paho to reconnect."""
        try:
            while not self._stop.is_set():
                done = self._send_one(self.puback_timeout_s)
                if done is None:
                    if self._wake.wait(IDLE_POLL_S):
                        self._wake.clear()
                elif not done:
                    self._connected.wait(CONNECT_WAIT_S)
                    if not self._connected.is_set():
                        self._stop.wait(CONNECT_WAIT_S)
        except sqlite3.ProgrammingError:
            if not self._stop.is_set():  # the queue was closed under a running uplink
                raise

    def drain(self, timeout_s: float) -> bool:
        """Send until the queue is empty or ``timeout_s`` passes; True when empty."""
        end = time.monotonic() + timeout_s
        while self.outbox.pending() and (left_s := end - time.monotonic()) > 0:
            if self._send_one(min(self.puback_timeout_s, max(left_s, 0.1))) is False:
                self._connected.wait(min(CONNECT_WAIT_S, max(end - time.monotonic(), 0)))
                if not self._connected.is_set():
                    time.sleep(min(0.2, max(end - time.monotonic(), 0)))
        return self.outbox.pending() == 0
