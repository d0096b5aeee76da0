"""MQTT addresses and clients for receiver fleets: ``mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC``
(``mqtts://`` for TLS, port 8883 by default; 1883 for ``mqtt://``).

A receiver publishes its reports to its own topic (``safetynet/reports/HH-07``) and the server's
ingest worker subscribes to a filter with one ``+`` level (``safetynet/reports/+``) whose value
is the receiver's id; the broker's access list lets each receiver's login write only its own
topic, so the topic names the sender (see the README, "Receiver fleets over MQTT").

paho-mqtt (the ``mqtt`` extra) is imported only by :func:`new_client`: the field install and
the server work without it until an ``mqtt://`` address is given.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from safetynet.errors import ConfigError

SCHEMES = {"mqtt": 1883, "mqtts": 8883}
KEEPALIVE_S = 30


@dataclass(frozen=True)
class MqttTarget:
    """A broker and a topic (or a topic filter) read from an ``mqtt://`` address."""

    host: str
    port: int
    topic: str
    tls: bool
    username: str | None = None
    password: str | None = None

    def describe(self) -> str:
        """The address without its password (for logs)."""
        user = f"{self.username}@" if self.username else ""
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{user}{self.host}:{self.port}/{self.topic}"


def is_mqtt(url: str) -> bool:
    return url.split(":", 1)[0].lower() in SCHEMES


def parse_mqtt_url(url: str, what: str = "the MQTT address") -> MqttTarget:
    """Read an ``mqtt://`` or ``mqtts://`` address; a topic is required."""
    form = "mqtt://[user[:password]@]host[:port]/topic"
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{what} must be {form} (or mqtts://), got scheme {parts.scheme!r}")
    try:
        port = parts.port or SCHEMES[scheme]
    except ValueError:
        raise ConfigError(f"{what}: the port must be a number within 1..65535") from None
    if not parts.hostname:
        raise ConfigError(f"{what} names no broker host; give {form}")
    topic = unquote(parts.path.lstrip("/"))
    if not topic:
        raise ConfigError(f"{what} names no topic; give {form}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what}: no query or fragment is read; give {form}")
    return MqttTarget(
        host=parts.hostname,
        port=port,
        topic=topic,
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def new_client(target: MqttTarget, client_id: str, **options: Any) -> Any:
    """A paho-mqtt client (MQTT 5) for ``target``, not yet connected, reconnecting by itself
    (1 s doubling to 60 s). ``options`` go to ``paho.mqtt.client.Client``."""
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError as err:
        raise ConfigError(
            "an mqtt:// address needs paho-mqtt: pip install 'safetynet[mqtt]'"
        ) from err
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        **options,
    )
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set_context(ssl.create_default_context())
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    return client


def connect_properties(persistent: bool) -> Any:
    """The CONNECT properties. ``persistent``: the broker keeps the session (its subscriptions
    and the messages not yet acknowledged) for an hour while the client is away, so a server
    restarting loses nothing sent meanwhile; otherwise none."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600 if persistent else 0
    return props
