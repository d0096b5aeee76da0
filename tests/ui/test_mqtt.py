"""Receiver fleets over MQTT, through a real Mosquitto with per-receiver logins and an access
list (tests/mqtt_broker.py): the receiver's store-and-forward queue keeps every report while
the broker is away and each arrives stored exactly once after it returns; a receiver cannot
publish under another's topic (the broker refuses it) nor name another in its reports (the
server refuses it); malformed messages are refused, counted, and never hold up the next one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from receiver.mqtt_uplink import MqttUplink
from receiver.uplink import Outbox
from registry.db import make_engine
from registry.models import StoredReport
from safetynet.mqtt import parse_mqtt_url
from safetynet.reports import Pulse, PulseStatus, report_to_json
from tests.mqtt_broker import TOPIC_PREFIX, Mosquitto
from tests.ui_support import TOKENS, seed, settings_for
from ui.app import create_app
from ui.bodies import MAX_REPORTS_BYTES

pytest.importorskip("paho.mqtt")

# Each receiver's broker password is its receiver token; GHOST has a broker login only.
LOGINS = {**TOKENS, "GHOST": "ghost-" + "g" * 24}


def pulse(receiver_id: str, seq: int, t: datetime) -> Pulse:
    return Pulse(
        receiver_id=receiver_id,
        seq=seq,
        t=t,
        channel=19,
        freq_hz=216_462_612,
        bracelet_id="3A7F",
        status=PulseStatus(seq=seq % 32, test=False, strap_open=False, low_battery=False),
        rssi_dbm=-97.0,
        snr_db=18.0,
        gain_db=28.0,
        lat_deg=42.30206,
        lon_deg=-71.05761,
        alt_m=12.0,
        heading_deg=None,
        antenna="omni",
    )


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A broker, and a server whose MQTT worker is subscribed to it."""
    broker = Mosquitto(tmp_path / "broker", LOGINS).start()
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    seed(url)
    app = create_app(settings_for(tmp_path, url, mqtt_url=broker.ingest_url()))
    try:
        with TestClient(app):
            worker = app.state.mqtt_ingest
            wait_for(worker.subscribed.is_set, 15, "the ingest worker's subscription")
            yield {"broker": broker, "app": app, "worker": worker, "url": url}
    finally:
        app.state.safetynet.engine.dispose()
        broker.stop()


def stored(url: str, receiver_id: str) -> list[int]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.scalars(
                select(StoredReport.seq).where(StoredReport.receiver_id == receiver_id)
            ).all()
    finally:
        engine.dispose()
    return sorted(rows)


def raw_client(broker: Mosquitto, user: str, password: str) -> Any:
    """A bare paho client logged in as ``user`` (a receiver that does not use our uplink)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"raw-{user}", protocol=mqtt.MQTTv5)
    client.username_pw_set(user, password)
    acks: dict[int, Any] = {}
    connected = threading.Event()
    dropped = threading.Event()

    def on_disconnect(*_: Any) -> None:
        connected.clear()
        dropped.set()

    client.on_connect = lambda _c, _u, _f, reason, _p: connected.set()
    client.on_disconnect = on_disconnect
    client.on_publish = lambda _c, _u, mid, reason, _p: acks.__setitem__(mid, reason)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.user_data_set({"acks": acks, "connected": connected, "dropped": dropped})
    return client


def publish(client: Any, topic: str, payload: bytes) -> Any:
    """Publish with QoS 1 and return the broker's PUBACK reason (Mosquitto drops a client's
    connection after refusing it a topic; paho reconnects)."""
    acks, connected = client.user_data_get()["acks"], client.user_data_get()["connected"]
    wait_for(connected.is_set, 10, "the connection")
    info = client.publish(topic, payload, qos=1)
    info.wait_for_publish(10)
    wait_for(lambda: info.mid in acks, 10, "the PUBACK")
    return acks[info.mid]


def test_reports_queued_while_the_broker_is_away_arrive_once(
    fleet: dict[str, Any], tmp_path: Path
) -> None:
    broker, worker = fleet["broker"], fleet["worker"]
    broker.stop()  # the broker goes away before the receivers have sent anything
    now = datetime.now(UTC) - timedelta(seconds=30)
    sent: dict[str, list[int]] = {"HH-07": [], "HH-12": []}
    uplinks: list[tuple[MqttUplink, Outbox, threading.Thread]] = []
    for receiver_id, seqs in sent.items():
        outbox = Outbox(tmp_path / f"{receiver_id}.sqlite")
        target = parse_mqtt_url(
            broker.url(receiver_id, LOGINS[receiver_id], f"{TOPIC_PREFIX}/{receiver_id}")
        )
        uplink = MqttUplink(outbox, target, f"rx-{receiver_id}", puback_timeout_s=2.0)
        thread = threading.Thread(target=uplink.run, daemon=True)
        thread.start()
        uplinks.append((uplink, outbox, thread))
        for _ in range(250):  # two messages' worth, then some
            seq = outbox.next_seq()
            outbox.put(pulse(receiver_id, seq, now + timedelta(milliseconds=100 * seq)))
            seqs.append(seq)
        uplink.notify()
    try:
        time.sleep(2.0)
        for uplink, outbox, _ in uplinks:  # nothing lost, nothing sent
            assert outbox.pending() == 250
            assert uplink.sent == 0
        assert stored(fleet["url"], "HH-07") == []
        broker.start()  # the same port; the worker's session was saved with the broker
        for _, outbox, _ in uplinks:
            wait_for(partial(lambda o: o.pending() == 0, outbox), 90, "the queue to empty")
        for receiver_id in sent:
            wait_for(partial(lambda r: len(stored(fleet["url"], r)) == 250, receiver_id), 30,
                     "the store")  # fmt: skip
        # A batch published again (an answer lost on the way) is stored no second time.
        uplink, outbox, _ = uplinks[0]
        outbox.put(pulse("HH-07", sent["HH-07"][0], now))
        uplink.notify()
        wait_for(lambda: outbox.pending() == 0, 30, "the resent report")
        metrics = fleet["app"].state.safetynet.metrics
        wait_for(lambda: metrics.duplicates.labels("mqtt")._value.get() >= 1, 10, "a duplicate")
    finally:
        for uplink, outbox, thread in uplinks:
            uplink.stop()
            thread.join(5)
            uplink.close()
            outbox.close()
    for receiver_id, seqs in sent.items():
        assert stored(fleet["url"], receiver_id) == seqs  # each report once, none missing
    assert worker.stored == 500


def test_a_receiver_cannot_publish_as_another(fleet: dict[str, Any], tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    broker, app = fleet["broker"], fleet["app"]
    t = datetime.now(UTC) - timedelta(seconds=10)
    hh12 = raw_client(broker, "HH-12", LOGINS["HH-12"])
    try:
        # Under HH-07's topic: the broker refuses it (its access list), the server never sees it.
        forged = "[" + report_to_json(pulse("HH-07", 7, t)) + "]"
        reason = publish(hh12, f"{TOPIC_PREFIX}/HH-07", forged.encode())
        assert reason.value == 135  # MQTT 5: not authorised
        # Mosquitto drops the connection just after its refusal: publishing before the drop is
        # seen would go out on a closed connection ("the client is not currently connected").
        hh12.user_data_get()["dropped"].wait(3.0)
        # On its own topic, naming HH-07 in the body: the server refuses it (the topic says who).
        named = "[" + report_to_json(pulse("HH-07", 8, t)) + "]"
        assert publish(hh12, f"{TOPIC_PREFIX}/HH-12", named.encode()).value == 0
        # Its own report, after both: once it is stored, the two before it have been dealt with.
        own = "[" + report_to_json(pulse("HH-12", 9, t)) + "]"
        assert publish(hh12, f"{TOPIC_PREFIX}/HH-12", own.encode()).value == 0
        wait_for(lambda: stored(fleet["url"], "HH-12") == [9], 15, "HH-12's own report")
    finally:
        hh12.loop_stop()
        hh12.disconnect()
    assert stored(fleet["url"], "HH-07") == []
    # Our own uplink, set up with another receiver's topic: refused, and its report kept.
    outbox = Outbox(tmp_path / "misconfigured.sqlite")
    target = parse_mqtt_url(broker.url("HH-12", LOGINS["HH-12"], f"{TOPIC_PREFIX}/HH-07"))
    uplink = MqttUplink(outbox, target, "rx-misconfigured")
    outbox.put(pulse("HH-12", 10, t))
    thread = threading.Thread(target=uplink.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: uplink.refused >= 1, 15, "the broker's refusal")
        assert outbox.pending() == 1
    finally:
        uplink.stop()
        thread.join(5)
        uplink.close()
        outbox.close()
    refused = app.state.safetynet.metrics.refused
    assert refused.labels("mqtt", "not_allowed")._value.get() == 1
    # A wrong password is refused at the door.
    wrong = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-wrong",
                        protocol=mqtt.MQTTv5)  # fmt: skip
    wrong.username_pw_set("HH-07", "not-its-password")
    answers: list[Any] = []
    wrong.on_connect = lambda _c, _u, _f, reason, _p: answers.append(reason)
    wrong.connect("127.0.0.1", broker.port)
    wrong.loop_start()
    wait_for(lambda: bool(answers), 10, "the CONNACK")
    wrong.loop_stop()
    assert answers[0].is_failure


def test_malformed_messages_are_refused_counted_and_never_stall(fleet: dict[str, Any]) -> None:
    broker, app, worker = fleet["broker"], fleet["app"], fleet["worker"]
    t = datetime.now(UTC) - timedelta(seconds=10)
    topic = f"{TOPIC_PREFIX}/HH-07"
    bad = {
        b"{{{": "unreadable",
        b"[1, 2": "unreadable",
        b"\xff\xfe\x00garbage": "unreadable",
        b'{"kind": "pulse", "receiver_id": "HH-07"}': "invalid",  # one report, fields missing
        b"[" + b"1," * (MAX_REPORTS_BYTES // 2) + b"1]": "too_large",
    }
    hh07 = raw_client(broker, "HH-07", LOGINS["HH-07"])
    ghost = raw_client(broker, "GHOST", LOGINS["GHOST"])
    try:
        for payload in bad:
            assert publish(hh07, topic, payload).value == 0
        # A broker login the registry does not know (no receiver token): refused by the server.
        ghost_report = "[" + report_to_json(pulse("GHOST", 1, t)) + "]"
        assert publish(ghost, f"{TOPIC_PREFIX}/GHOST", ghost_report.encode()).value == 0
        good = "\n".join(report_to_json(pulse("HH-07", s, t)) for s in (1, 2, 3))  # JSON Lines
        assert publish(hh07, topic, good.encode()).value == 0
        wait_for(lambda: stored(fleet["url"], "HH-07") == [1, 2, 3], 15, "the good message")
        wait_for(lambda: worker.refused == len(bad) + 1, 10, "the ghost's refusal")
    finally:
        for client in (hh07, ghost):
            client.loop_stop()
            client.disconnect()
    refused = app.state.safetynet.metrics.refused
    expected: dict[str, int] = {"unknown_receiver": 1}
    for reason in bad.values():
        expected[reason] = expected.get(reason, 0) + 1
    for reason, count in expected.items():
        assert refused.labels("mqtt", reason)._value.get() == count, reason
    assert stored(fleet["url"], "GHOST") == []
    assert app.state.safetynet.metrics.ingested.labels("mqtt")._value.get() == 3


def test_the_receive_command_publishes_what_it_hears(tmp_path: Path) -> None:
    """``safetynet receive --uplink mqtt://...``: a real receiver process on the simulator's
    rtl_tcp stream; every report it writes reaches the fleet's topic, and SIGTERM drains it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.firmware_sim.test_iq import scenario, stationary
    from tests.mqtt_broker import INGEST_PASSWORD, INGEST_USER
    from tests.receiver.test_io import serve

    broker = Mosquitto(tmp_path / "broker", LOGINS).start()
    heard: list[dict[str, Any]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="listener",
                           protocol=mqtt.MQTTv5)  # fmt: skip
    listener.username_pw_set(INGEST_USER, INGEST_PASSWORD)
    subscribed = threading.Event()
    listener.on_connect = lambda c, _u, _f, _r, _p: c.subscribe(f"{TOPIC_PREFIX}/+", qos=1)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = lambda _c, _u, msg: heard.extend(json.loads(msg.payload))
    listener.connect("127.0.0.1", broker.port)
    listener.loop_start()
    world = scenario([stationary("3A7F", 19, 800)], duration_s=120.0)
    radio = serve(world, speed=1.0)
    out, err = tmp_path / "out.jsonl", tmp_path / "err.log"
    url = f"mqtt://127.0.0.1:{broker.port}/{TOPIC_PREFIX}/HH-07"
    try:
        assert subscribed.wait(10)
        with err.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "safetynet", "receive", "--source",
                 f"rtltcp://127.0.0.1:{radio.port}", "--receiver-id", "HH-07", "--out", str(out),
                 "--uplink", url, "--token", LOGINS["HH-07"], "--queue", str(tmp_path / "q")],
                stdout=subprocess.DEVNULL, stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            wait_for(lambda: out.exists() and out.read_text().count('"pulse"') >= 3, 60, "pulses")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, err.read_text()
        finally:
            if process.poll() is None:
                process.kill()
        written = {(r["receiver_id"], r["seq"]) for r in map(json.loads, out.read_text().split())}
        wait_for(lambda: {(r["receiver_id"], r["seq"]) for r in heard} >= written, 10, "all")
    finally:
        radio.stop()
        listener.loop_stop()
        listener.disconnect()
        broker.stop()
    assert {(r["receiver_id"], r["seq"]) for r in heard} == written


def test_a_full_queue_never_holds_the_broker_thread_past_a_stop() -> None:
    """paho's thread waits while a worker is QUEUE_LIMIT behind; on stop the workers are gone,
    and that wait must end (loop_stop joins the thread), leaving the message unacknowledged."""
    from types import SimpleNamespace

    from ui.metrics import Metrics
    from ui.mqtt_ingest import QUEUE_LIMIT, MqttIngest

    app: Any = SimpleNamespace(settings=SimpleNamespace(port=0), metrics=Metrics())
    worker = MqttIngest(app, "mqtt://ingest:pw@127.0.0.1:1/safetynet/reports/+", workers=1)
    msg = SimpleNamespace(topic="safetynet/reports/HH-07", payload=b"[]", mid=1, qos=1)
    for _ in range(QUEUE_LIMIT):
        worker._on_message(None, None, msg)
    blocked = threading.Thread(target=worker._on_message, args=(None, None, msg), daemon=True)
    blocked.start()
    blocked.join(0.8)
    assert blocked.is_alive(), "a full queue holds the broker back"
    worker._stop.set()
    blocked.join(2.0)
    assert not blocked.is_alive(), "the broker's thread still waits after the stop"
    assert worker._queues[0].qsize() == QUEUE_LIMIT  # the last one left to the broker
