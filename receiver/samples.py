"""The sample-source interface: whatever delivers I/Q, the code above it cannot tell which.

A source has a sample rate, a tuning, the UTC time of its first sample, optionally a position,
and a calibration (``cal_dbm_at_fullscale`` at its current gain; ``None`` when uncalibrated).
:meth:`SampleSource.read` returns the next :class:`Chunk` — cu8 bytes for RTL-SDR sources, or
complex samples normalised to full scale — or ``None`` at the end. Live sources can change gain.

The implementations: recordings (:mod:`receiver.files`), an rtl_tcp stream
(:mod:`receiver.rtl_tcp`), a USB dongle (:mod:`receiver.usb`); the simulator's streams implement
the same interface. :func:`receiver.sources.open_source` opens one from a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import numpy as np
from numpy.typing import NDArray


@dataclass
class Chunk:
    """Consecutive samples of a source, with the gain and calibration they were taken at."""

    first_sample: int
    cu8: NDArray[np.uint8] | None = None  # interleaved I/Q bytes
    iq: NDArray[np.complex64] | None = None  # full-scale complex samples
    gain_db: float | None = None
    cal_dbm_at_fullscale: float | None = None
    t0: datetime | None = None  # UTC of the first sample, for live sources (None: from the start)
    discontinuity: bool = False  # samples were lost before this chunk (a stream reconnected)

    @property
    def n_samples(self) -> int:
        if self.cu8 is not None:
            return self.cu8.size // 2
        assert self.iq is not None
        return self.iq.size


class SampleSource(Protocol):
    sample_rate_hz: float
    center_hz: float
    start_time: datetime
    position: tuple[float, float, float] | None
    live: bool

    def read(self, n_samples: int) -> Chunk | None: ...

    def set_gain(self, gain_db: float | None) -> bool: ...

    def close(self) -> None: ...
