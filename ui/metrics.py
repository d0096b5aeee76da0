"""The server's figures for operators, in the Prometheus text format (``GET /metrics``).

Each application has its own :class:`Metrics` on its own ``CollectorRegistry`` (not the
library's global one: a test builds many applications in one process, and a process counts only
what it did itself). A deployment of several processes is scraped process by process, each at
its own address (a load balancer in front would give a different process's counts each time).

What is counted:

- ``safetynet_reports_ingested_total{via}``: reports stored (``via`` is ``http`` or ``mqtt``);
- ``safetynet_reports_duplicate_total{via}``: reports already stored under their
  ``(receiver_id, seq)``;
- ``safetynet_reports_refused_total{via,reason}``: reports or bodies refused, by a reason from
  :data:`REASONS` (a fixed set, so a sender cannot grow the label space);
- ``safetynet_ingest_queue_depth{via}``: reports and messages taken in but not yet stored (the
  HTTP posts in progress, the MQTT messages waiting for the worker);
- ``safetynet_fix_latency_seconds``: from a report's arrival at this server to the fix it caused
  being pushed to the search's pages.

Who may read it: ``/metrics`` answers only to ``Authorization: Bearer`` with
``SAFETYNET_METRICS_TOKEN``; with no token set it does not exist (404). The figures hold no
client's data, but a stranger has no business knowing how busy a search is.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
VIAS = ("http", "mqtt")
# Why a report (or a whole body) was refused; anything else counts as "invalid".
REASONS = (
    "invalid",  # a field out of range or missing (spec/reports.md)
    "unreadable",  # not JSON, nested too deep, over the integer limit
    "out_of_window",  # its time too far from the server's clock and the searches' last seen
    "not_allowed",  # another receiver's id, or a login sending what it may not
    "fix_as_input",  # fixes are the locator's output
    "too_large",  # a body over the size or count limits
    "rate_limited",
    "unknown_receiver",  # an MQTT topic naming a receiver the registry does not know
    "error",  # the server failed on it (logged); never the sender's fault
)
# From a report's arrival to its fix on the pages: the goal is 0.2 s at the 95th percentile.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)


def refusal_reason(rejected: dict[str, Any]) -> str:
    """The reason label of one refused, readable item of an ingest answer (``index``,
    ``field``, ``message``); an item that could not be read is "unreadable"."""
    field = str(rejected.get("field", ""))
    message = str(rejected.get("message", ""))
    if field == "t":
        return "out_of_window"
    if field == "receiver_id" and ("belongs to" in message or "login" in message
                                   or "may send" in message or "searcher" in message):  # fmt: skip
        return "not_allowed"
    if field == "kind" and message.startswith("fix reports"):
        return "fix_as_input"
    return "invalid"


class Metrics:
    """The counters of one server process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ingested = Counter(
            "safetynet_reports_ingested", "Reports stored.", ["via"], registry=self.registry
        )
        self.duplicates = Counter(
            "safetynet_reports_duplicate",
            "Reports already stored under their (receiver_id, seq).",
            ["via"],
            registry=self.registry,
        )
        self.refused = Counter(
            "safetynet_reports_refused",
            "Reports or bodies refused, by reason.",
            ["via", "reason"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "safetynet_ingest_queue_depth",
            "Reports or messages taken in and not yet stored.",
            ["via"],
            registry=self.registry,
        )
        self.fix_latency = Histogram(
            "safetynet_fix_latency_seconds",
            "From a report's arrival to the fix it caused being pushed to the pages.",
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        for via in VIAS:  # every series exists from the start, at 0
            self.ingested.labels(via)
            self.duplicates.labels(via)
            self.queue_depth.labels(via)
            for reason in REASONS:
                self.refused.labels(via, reason)

    def refuse(self, via: str, reason: str, count: int = 1) -> None:
        self.refused.labels(via, reason if reason in REASONS else "invalid").inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
