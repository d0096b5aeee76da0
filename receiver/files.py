"""Recordings as sample sources: SigMF (its metadata read with the ``sigmf`` package) and raw cu8.

:class:`FileSource` reads cu8, ci16_le or cf32_le samples from a file; :func:`open_sigmf` takes
the rate, tuning, start time, geolocation and sntx calibration from a ``.sigmf-meta`` file.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from receiver.samples import Chunk
from safetynet.errors import InputError

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = {"cu8": 2, "ci16_le": 4, "cf32_le": 8}
CI16_FULLSCALE = 32768.0  # ci16_le samples are divided by this to reach full scale 1


class FileSource:
    """A recording: SigMF (with metadata) or raw cu8 (with the rate and tuning given)."""

    live = False

    def __init__(
        self,
        data_path: Path,
        datatype: str,
        sample_rate_hz: float,
        center_hz: float,
        start_time: datetime,
        position: tuple[float, float, float] | None = None,
        gain_db: float | None = None,
        cal_dbm_at_fullscale: float | None = None,
    ) -> None:
        if datatype not in BYTES_PER_SAMPLE:
            raise InputError(
                f"sample type {datatype!r} is not supported; use cu8, ci16_le or cf32_le"
            )
        try:
            self._file = data_path.open("rb")
        except OSError as err:
            raise InputError(f"cannot open {data_path}: {err.strerror}") from err
        self.datatype = datatype
        self.sample_rate_hz = sample_rate_hz
        self.center_hz = center_hz
        self.start_time = start_time
        self.position = position
        self.gain_db = gain_db
        self.cal = cal_dbm_at_fullscale
        self._next = 0

    @property
    def _bytes_per_sample(self) -> int:
        return BYTES_PER_SAMPLE[self.datatype]

    def read(self, n_samples: int) -> Chunk | None:
        data = self._file.read(n_samples * self._bytes_per_sample)
        n = len(data) // self._bytes_per_sample
        if n == 0:
            return None
        first = self._next
        self._next += n
        raw = data[: n * self._bytes_per_sample]
        if self.datatype == "cu8":
            return Chunk(
                first,
                cu8=np.frombuffer(raw, np.uint8).copy(),
                gain_db=self.gain_db,
                cal_dbm_at_fullscale=self.cal,
            )
        if self.datatype == "ci16_le":
            ints = np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(CI16_FULLSCALE)
            iq = ints.view(np.complex64)
        else:
            iq = np.frombuffer(raw, "<f4").astype(np.float32).view(np.complex64)
        return Chunk(first, iq=iq, gain_db=self.gain_db, cal_dbm_at_fullscale=self.cal)

    def set_gain(self, gain_db: float | None) -> bool:
        return False

    def close(self) -> None:
        self._file.close()


def open_sigmf(meta_path: Path) -> FileSource:
    """A SigMF recording, its metadata read with the ``sigmf`` package."""
    from sigmf import sigmffile
    from sigmf.error import SigMFError

    if not meta_path.name.endswith(".sigmf-meta"):
        raise InputError(f"a SigMF source is the .sigmf-meta file, got {meta_path}")
    try:
        handle = sigmffile.fromfile(str(meta_path), skip_checksum=True)
        meta = handle.get_global_info()
        captures = handle.get_captures()
    except (OSError, SigMFError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise InputError(f"cannot read SigMF recording {meta_path}: {err}") from err
    if not isinstance(meta, dict) or not isinstance(captures, list):
        raise InputError(f"{meta_path}: the metadata has no global object and captures list")
    datatype = str(meta.get("core:datatype", ""))
    if datatype not in BYTES_PER_SAMPLE:
        raise InputError(f"{meta_path}: core:datatype {datatype!r} is not cu8, ci16_le or cf32_le")
    if not captures or not isinstance(captures[0], dict) or "core:frequency" not in captures[0]:
        raise InputError(f"{meta_path}: the first capture segment has no core:frequency")
    capture = captures[0]
    sample_rate_hz = _finite(meta_path, "core:sample_rate", meta.get("core:sample_rate"))
    if sample_rate_hz <= 0:
        raise InputError(f"{meta_path}: core:sample_rate must be above 0, got {sample_rate_hz}")
    center_hz = _finite(meta_path, "core:frequency", capture["core:frequency"])
    when = capture.get("core:datetime")
    if when is None:
        start = datetime.now(UTC)
    elif not isinstance(when, str):
        raise InputError(f"{meta_path}: core:datetime must be an ISO 8601 text, got {when!r}")
    else:
        try:
            start = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError as err:
            raise InputError(f"{meta_path}: core:datetime {when!r} is not ISO 8601") from err
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
    geo = capture.get("core:geolocation") or meta.get("core:geolocation")
    position = None
    if isinstance(geo, dict) and isinstance(geo.get("coordinates"), list):
        coordinates = geo["coordinates"]
        if len(coordinates) >= 2:
            # GeoJSON orders [lon, lat, alt]
            lon = _finite(meta_path, "core:geolocation longitude", coordinates[0])
            lat = _finite(meta_path, "core:geolocation latitude", coordinates[1])
            alt = (
                _finite(meta_path, "core:geolocation altitude", coordinates[2])
                if len(coordinates) > 2
                else 0.0
            )
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise InputError(
                    f"{meta_path}: core:geolocation must be [lon −180..180, lat −90..90], "
                    f"got {coordinates[:2]}"
                )
            position = (lat, lon, alt)
    cal_raw = meta.get("sntx:cal_dbm_at_fullscale")
    gain_raw = meta.get("sntx:gain_db")
    cal = None if cal_raw is None else _finite(meta_path, "sntx:cal_dbm_at_fullscale", cal_raw)
    gain = None if gain_raw is None else _finite(meta_path, "sntx:gain_db", gain_raw)
    if cal is None:
        log.warning("%s carries no sntx:cal_dbm_at_fullscale: RSSI will be in dBFS", meta_path)
    data_path = meta_path.with_suffix(".sigmf-data")
    return FileSource(
        data_path, datatype, sample_rate_hz, center_hz, start.astimezone(UTC), position, gain, cal
    )  # fmt: skip


def _finite(meta_path: Path, key: str, value: object) -> float:
    """A metadata number: a finite int or float (not a bool, not text)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(f"{meta_path}: {key} must be a finite number, got {value!r}")
    return float(value)
