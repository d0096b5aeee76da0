"""An RTL-SDR dongle on USB, through pyrtlsdr (``pip install safetynet[sdr]``).

pyrtlsdr loads the native library when it is imported and fails when it is missing, so it is
imported here, lazily, only when a USB source is opened. Reads are synchronous
(``read_bytes``); the bytes are cu8 as the dongle delivers them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from receiver.samples import Chunk
from safetynet.errors import DeviceError
from safetynet.rtl import nearest_gain_db, nominal_cal_dbm_at_fullscale

log = logging.getLogger(__name__)


def _load_rtlsdr() -> Any:
    try:
        import rtlsdr
    except ImportError as err:
        raise DeviceError(
            "the RTL-SDR driver is not installed: pip install 'safetynet[sdr]' "
            f"(pyrtlsdr[lib] brings its own librtlsdr) — {err}"
        ) from err
    except Exception as err:  # pyrtlsdr raises bare exceptions when the native library is broken
        raise DeviceError(f"the RTL-SDR driver failed to load: {err}") from err
    return rtlsdr


class RtlSdrSource:
    """Samples from a USB dongle (``rtlsdr://INDEX``)."""

    live = True
    position: tuple[float, float, float] | None = None

    def __init__(
        self,
        device_index: int,
        sample_rate_hz: float,
        center_hz: float,
        gain_db: float | None = None,
        ppm: int = 0,
    ) -> None:
        rtlsdr = _load_rtlsdr()
        try:
            self._sdr = rtlsdr.RtlSdr(device_index=device_index)
            self._sdr.sample_rate = sample_rate_hz
            self._sdr.center_freq = center_hz
            if ppm:
                self._sdr.freq_correction = ppm
        except Exception as err:
            raise DeviceError(f"cannot open RTL-SDR #{device_index}: {err}") from err
        self.sample_rate_hz = float(self._sdr.sample_rate)
        self.center_hz = float(self._sdr.center_freq)
        self.gains_db = tuple(float(g) for g in self._sdr.valid_gains_db)
        self.gain_db: float | None = None
        self.set_gain(gain_db)
        self.start_time = datetime.now(UTC)
        self._next = 0

    def read(self, n_samples: int) -> Chunk | None:
        try:
            raw = self._sdr.read_bytes(2 * n_samples)
        except Exception as err:
            raise DeviceError(f"RTL-SDR read failed (unplugged?): {err}") from err
        first = self._next
        self._next += n_samples
        cal = None if self.gain_db is None else nominal_cal_dbm_at_fullscale(self.gain_db)
        t0 = self.start_time + timedelta(seconds=first / self.sample_rate_hz)
        data = np.frombuffer(bytes(raw), np.uint8)
        return Chunk(first, cu8=data, gain_db=self.gain_db, cal_dbm_at_fullscale=cal, t0=t0)

    def set_gain(self, gain_db: float | None) -> bool:
        if gain_db is None:
            self._sdr.gain = "auto"
            self.gain_db = None
            return True
        steps = self.gains_db or (gain_db,)
        chosen = (
            min(steps, key=lambda g: abs(g - gain_db))
            if self.gains_db
            else nearest_gain_db(gain_db)
        )
        self._sdr.gain = chosen
        self.gain_db = float(chosen)
        return True

    def close(self) -> None:
        self._sdr.close()
