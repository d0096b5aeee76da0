"""The server's MQTT ingest worker: receiver fleets' reports from a broker into the same ingest
path as ``POST /api/v1/reports`` (:func:`ui.intake.take_in`).

``SAFETYNET_MQTT_URL`` (or ``safetynet serve --mqtt URL``) names the broker, the worker's login
and a topic filter with one ``+`` level, ``mqtt://ingest:PASSWORD@broker:1883/safetynet/reports/+``.
That level of each message's topic is the sender's receiver id: the broker's access list lets a
receiver's login write only its own topic, so the id is the broker's word, never the body's (a
report naming another receiver is refused, as with another receiver's token over HTTP). The
receiver must also hold a live token in the registry (``safetynet token create``; the same token
is its broker password), so revoking a receiver stops it on both paths.

Nothing is lost: the worker's session is persistent (MQTT 5, an hour's expiry, a fixed client id,
QoS 1) so the broker keeps what arrives while the server is away, and each message is
acknowledged (manual PUBACK) only after its reports are stored; a server that dies before that
gets the message again. A filter of the form ``$share/GROUP/...`` lets several server processes
share the stream, each message to one of them.

No input stalls the worker: a message is read under the ingest's limits (size, count, depth);
one that cannot be read, names an unknown receiver, or holds invalid reports is refused with
its reason logged (by receiver id and index, never the payload) and counted in ``/metrics``,
and acknowledged. Only the database being away holds messages back: the worker retries that
message (1 s doubling to 30 s) until it is stored.
"""

from __future__ import annotations

import logging
import queue
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from registry.models import ReceiverToken
from safetynet.errors import BodyError, BodyTooLargeError, ConfigError
from safetynet.mqtt import (
    KEEPALIVE_S,
    MqttTarget,
    connect_properties,
    new_client,
    parse_mqtt_url,
)
from ui.bodies import MAX_REPORTS_BYTES, report_items
from ui.deps import AppState
from ui.ingest import Sender
from ui.intake import take_in

log = logging.getLogger(__name__)

RECEIVER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
QUEUE_LIMIT = 250  # messages taken from the broker and not yet stored, per worker thread
WORKERS = 4  # threads storing messages: one would wait out every database round trip in turn
DB_RETRY_MIN_S = 1.0
DB_RETRY_MAX_S = 30.0


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_s: float


def ingest_filter(target: MqttTarget) -> tuple[str, int]:
    """The worker's topic filter and the index (within the topic, after any ``$share/GROUP/``)
    of the one ``+`` level that names the receiver."""
    levels = target.topic.split("/")
    body = levels[2:] if levels[0] == "$share" and len(levels) > 2 else levels
    if (
        "#" in target.topic
        or body.count("+") != 1
        or any("+" in level and level != "+" for level in body)
    ):
        raise ConfigError(
            "SAFETYNET_MQTT_URL: the topic must be a filter with exactly one '+' level for the "
            f"receiver id and no '#', e.g. safetynet/reports/+; got {target.topic!r}"
        )
    return target.topic, body.index("+")


class MqttIngest:
    """Subscribes to the fleet's topics and stores what arrives, in ``workers`` threads of its
    own (each receiver's messages in one of them, in order)."""

    def __init__(
        self, app: AppState, url: str, client_id: str | None = None, workers: int = WORKERS
    ) -> None:
        self.app = app
        self.target = parse_mqtt_url(url, "SAFETYNET_MQTT_URL")
        self.topic_filter, self._id_level = ingest_filter(self.target)
        # The host's name and the server's port: stable across restarts of one server (its
        # persistent session is found again) and distinct between the processes of a host.
        self.client_id = client_id or f"safetynet-ingest-{socket.gethostname()}-{app.settings.port}"
        self.stored = 0  # reports stored, and messages or reports refused (for the tests)
        self.refused = 0
        self._count_lock = threading.Lock()
        # A receiver's messages always go to the same thread, so they are stored in order.
        self._queues: list[queue.Queue[_Message]] = [
            queue.Queue(QUEUE_LIMIT) for _ in range(workers)
        ]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(q,), name=f"mqtt-ingest-{n}", daemon=True)
            for n, q in enumerate(self._queues)
        ]
        self._client: Any = None
        self.subscribed = threading.Event()  # set while the broker has the worker's subscription
        self._depth = app.metrics.queue_depth.labels("mqtt")

    # --- the broker's side (paho's thread) ------------------------------------------------------
    def start(self) -> None:
        client = new_client(self.target, self.client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.connect_async(
            self.target.host,
            self.target.port,
            keepalive=KEEPALIVE_S,
            clean_start=False,
            properties=connect_properties(persistent=True),
        )
        self._client = client
        for thread in self._threads:
            thread.start()
        client.loop_start()

    def stop(self) -> None:
        self._stop.set()
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
        for thread in self._threads:
            thread.join(5.0)

    def _on_connect(self, client: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.error("the broker %s refused the ingest worker: %s", self.target.describe(), reason)
            return
        client.subscribe(self.topic_filter, qos=1)
        log.info("MQTT ingest from %s", self.target.describe())

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, reasons: Any, _props: Any) -> None:
        if all(not r.is_failure for r in reasons):
            self.subscribed.set()
        else:
            log.error("the broker refused the subscription to %s: %s", self.topic_filter,
                      ", ".join(str(r) for r in reasons))  # fmt: skip

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("MQTT ingest lost %s (%s); reconnecting", self.target.describe(), reason)

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        # Waits when a worker is QUEUE_LIMIT behind: the broker then holds the rest. Never past
        # a stop: the workers are gone, and paho's thread must end (loop_stop joins it); the
        # message, not acknowledged, is sent again by the broker.
        message = _Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.monotonic())
        messages = self._queues[zlib.crc32(msg.topic.encode()) % len(self._queues)]
        self._depth.inc()
        while not self._stop.is_set():
            try:
                messages.put(message, timeout=0.5)
                return
            except queue.Full:
                continue
        self._depth.dec()

    # --- the worker -----------------------------------------------------------------------------
    def _work(self, messages: queue.Queue[_Message]) -> None:
        while not self._stop.is_set():
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                done = self._store_until_done(message)
            finally:
                self._depth.dec()
            if done and message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def _store_until_done(self, message: _Message) -> bool:
        """Store (or refuse) one message; False only when stopped while the database was away
        (the message is then not acknowledged, and the broker sends it again)."""
        wait_s = DB_RETRY_MIN_S
        while True:
            try:
                self.take(message.topic, message.payload, message.received_s)
                return True
            except DBAPIError as err:
                log.warning("MQTT ingest: the database is away (%s); retrying", err.orig)
                if self._stop.wait(wait_s):
                    return False
                wait_s = min(wait_s * 2, DB_RETRY_MAX_S)
            except Exception:  # a fault of ours on one message must not stop the fleet's
                log.exception("MQTT ingest failed on a message on %s", message.topic)
                self.app.metrics.refuse("mqtt", "error")
                self._count(refused=1)
                return True

    def _count(self, stored: int = 0, refused: int = 0) -> None:
        with self._count_lock:
            self.stored += stored
            self.refused += refused

    def receiver_of(self, topic: str) -> str | None:
        """The receiver id a message's topic names (None: the topic has no valid one)."""
        levels = topic.split("/")
        if len(levels) <= self._id_level:
            return None
        receiver_id = levels[self._id_level]
        return receiver_id if RECEIVER_ID.fullmatch(receiver_id) else None

    def _known(self, receiver_id: str) -> bool:
        with self.app.session() as session:
            return (
                session.scalar(
                    select(ReceiverToken.id)
                    .where(
                        ReceiverToken.receiver_id == receiver_id,
                        ReceiverToken.revoked_at.is_(None),
                    )
                    .limit(1)
                )
                is not None
            )

    def _refuse(self, reason: str, topic: str, why: str) -> None:
        self._count(refused=1)
        self.app.metrics.refuse("mqtt", reason)
        log.warning("MQTT ingest refused a message on %s: %s", topic, why)

    def take(self, topic: str, payload: bytes, received_s: float) -> None:
        """Store one message's reports (a JSON array, or JSON Lines) from its topic's receiver."""
        receiver_id = self.receiver_of(topic)
        if receiver_id is None:
            self._refuse("unknown_receiver", topic, "the topic names no valid receiver id")
            return
        if not self._known(receiver_id):
            self._refuse("unknown_receiver", topic, f"receiver {receiver_id} has no live token")
            return
        if len(payload) > MAX_REPORTS_BYTES:
            self._refuse("too_large", topic, f"{len(payload)} bytes; at most {MAX_REPORTS_BYTES}")
            return
        kind = "application/json" if payload.lstrip()[:1] == b"[" else "application/x-ndjson"
        try:
            items = report_items(payload, kind)
        except BodyTooLargeError as err:
            self._refuse("too_large", topic, str(err))
            return
        except BodyError as err:
            self._refuse("unreadable", topic, str(err))
            return
        result = take_in(self.app, Sender(receiver_id=receiver_id), items, "mqtt", received_s)
        self._count(stored=result.accepted)
        for item in result.rejected:
            self._count(refused=1)
            log.warning("MQTT ingest refused report %s of a message from %s (%s: %s)",
                        item.get("index"), receiver_id, item.get("field"),
                        item.get("message"))  # fmt: skip
