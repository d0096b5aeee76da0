"""When a field report may say it happened: the window checked at ingest, before anything is
stored or reaches a live search.

A receiver's clock can be wrong without malice (a GNSS unit after a cold start says 1980 or
2080, a laptop without NTP drifts), and one report timed thousands of years ahead once made the
live map blur for an 8,000-year walk. So every report's ``t`` must lie within::

    [ earliest, now + FUTURE_SLACK ]

- ``now`` is the server's clock; ``FUTURE_SLACK`` (5 minutes) is far more than a GNSS-timed
  receiver's error (under a second) or a phone's, and covers a laptop that drifts.
- ``earliest`` is the last-seen time minus ``BEFORE_LAST_SEEN`` (1 day) of the earliest active
  search the report belongs to: a report from before the person went missing by more than a day
  says nothing about where they are now, and a replay of a day's reports is still bounded.
- A report that belongs to no active search may be up to ``MAX_AGE`` (30 days) old: a receiver
  that was out of reach for weeks still delivers its store-and-forward queue, which is kept.
- Never before :data:`ui.bodies.EARLIEST_TIME` (2000-01-01).

A report outside is refused per item (field ``t``) with a message that gives the window; the
sender files it in its dead-letter file and does not resend it. The functions are pure: the
caller passes the clock and the searches' times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from safetynet.reports import format_time
from ui.bodies import EARLIEST_TIME

FUTURE_SLACK = timedelta(minutes=5)
BEFORE_LAST_SEEN = timedelta(days=1)
MAX_AGE = timedelta(days=30)


@dataclass(frozen=True)
class TimeWindow:
    """The times a report may carry, both ends included (UTC)."""

    earliest: datetime
    latest: datetime

    def problem(self, t: datetime) -> str | None:
        """Why ``t`` is refused (None: it lies in the window)."""
        if t > self.latest:
            return (
                f"time {format_time(t)} is ahead of the server's clock; a report may be at "
                f"most {FUTURE_SLACK.total_seconds() / 60:.0f} minutes ahead (until "
                f"{format_time(self.latest)}): check the receiver's clock"
            )
        if t < self.earliest:
            return (
                f"time {format_time(t)} is too old for this report; it must be at or after "
                f"{format_time(self.earliest)} (a day before the search's last-seen time, or "
                f"{MAX_AGE.days} days before now for a report of no active search): check the "
                "receiver's clock"
            )
        return None


def report_window(now: datetime, last_seen: Iterable[datetime] = ()) -> TimeWindow:
    """The window for a report that belongs to the active searches last seen at ``last_seen``
    (none: a report of no active search), at server time ``now`` (timezone-aware)."""
    times = list(last_seen)
    earliest = min(times) - BEFORE_LAST_SEEN if times else now - MAX_AGE
    return TimeWindow(max(earliest, EARLIEST_TIME), now + FUTURE_SLACK)
