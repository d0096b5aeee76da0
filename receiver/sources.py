"""Sample sources behind one interface: whatever delivers I/Q, the code above cannot tell.

A source has a sample rate, a tuning, the UTC time of its first sample, optionally a position,
and a calibration (``cal_dbm_at_fullscale`` at its current gain; ``None`` when uncalibrated).
:meth:`SampleSource.read` returns the next :class:`Chunk` — cu8 bytes for RTL-SDR sources, or
complex samples normalised to full scale — or ``None`` at the end. Live sources can change gain.

:func:`open_source` takes the URLs of the command line:

- ``sigmf:PATH.sigmf-meta`` — a SigMF recording (cu8, ci16_le, cf32_le), its geolocation and
  sntx calibration read with the ``sigmf`` package;
- ``cu8:PATH?fs=2400000&fc=216500000[&gain=40.2&cal=-80]`` — raw cu8 bytes;
- ``rtltcp://HOST:PORT[?gain=auto&ppm=0&fs=2400000&fc=216500000]`` — an rtl_tcp server;
- ``rtlsdr://INDEX[?gain=auto&ppm=0&fs=2400000&fc=216500000]`` — a USB dongle (extra ``sdr``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import numpy as np
from numpy.typing import NDArray

from safetynet.errors import InputError
from safetynet.rtl import nominal_cal_dbm_at_fullscale
from safetynet.sntx import RECOMMENDED_CENTER_HZ, RECOMMENDED_SAMPLE_RATE_HZ

log = logging.getLogger(__name__)


@dataclass
class Chunk:
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
        if datatype not in ("cu8", "ci16_le", "cf32_le"):
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
        return {"cu8": 2, "ci16_le": 4, "cf32_le": 8}[self.datatype]

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
            ints = np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768.0)
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
    except (OSError, SigMFError, ValueError) as err:
        raise InputError(f"cannot read SigMF recording {meta_path}: {err}") from err
    meta = handle.get_global_info()
    datatype = str(meta.get("core:datatype", ""))
    if datatype not in ("cu8", "ci16_le", "cf32_le"):
        raise InputError(f"{meta_path}: core:datatype {datatype!r} is not cu8, ci16_le or cf32_le")
    captures = handle.get_captures()
    if not captures or "core:frequency" not in captures[0]:
        raise InputError(f"{meta_path}: the first capture segment has no core:frequency")
    capture = captures[0]
    when = capture.get("core:datetime")
    start = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else datetime.now(UTC)
    geo = capture.get("core:geolocation") or meta.get("core:geolocation")
    position = None
    if isinstance(geo, dict) and len(geo.get("coordinates", [])) >= 2:
        lon, lat, *rest = geo["coordinates"]  # GeoJSON orders [lon, lat, alt]
        position = (float(lat), float(lon), float(rest[0]) if rest else 0.0)
    cal = meta.get("sntx:cal_dbm_at_fullscale")
    gain = meta.get("sntx:gain_db")
    if cal is None:
        log.warning("%s carries no sntx:cal_dbm_at_fullscale: RSSI will be in dBFS", meta_path)
    data_path = meta_path.with_suffix(".sigmf-data")
    return FileSource(
        data_path, datatype, float(meta["core:sample_rate"]), float(capture["core:frequency"]),
        start.astimezone(UTC), position, None if gain is None else float(gain),
        None if cal is None else float(cal),
    )  # fmt: skip


def _query(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def _float(params: dict[str, str], key: str, default: float | None, url: str) -> float | None:
    if key not in params:
        return default
    try:
        return float(params[key])
    except ValueError:
        raise InputError(f"{url}: {key} must be a number, got {params[key]!r}") from None


def _gain(params: dict[str, str], url: str) -> float | None:
    text = params.get("gain", "auto")
    return None if text == "auto" else _float(params, "gain", None, url)


def open_source(url: str) -> SampleSource:
    """Open a sample source from its URL (see the module docstring)."""
    scheme, _, rest = url.partition(":")
    if scheme == "sigmf":
        return open_sigmf(Path(rest))
    if scheme == "cu8":
        parts = urlsplit(url)
        params = _query(url)
        if "fs" not in params or "fc" not in params:
            raise InputError(f"{url}: a cu8 file needs ?fs=SAMPLE_RATE&fc=CENTRE_FREQUENCY")
        fs = _float(params, "fs", None, url)
        fc = _float(params, "fc", None, url)
        assert fs is not None
        assert fc is not None
        gain = _float(params, "gain", None, url)
        cal = _float(
            params, "cal", None if gain is None else nominal_cal_dbm_at_fullscale(gain), url
        )
        start = datetime.fromisoformat(params["t0"]) if "t0" in params else datetime.now(UTC)
        return FileSource(Path(parts.path), "cu8", fs, fc, start, None, gain, cal)
    if scheme == "rtltcp":
        from receiver.rtl_tcp import RtlTcpSource

        parts = urlsplit(url)
        params = _query(url)
        if not parts.hostname or not parts.port:
            raise InputError(f"{url}: an rtl_tcp source is rtltcp://HOST:PORT")
        return RtlTcpSource(
            parts.hostname, parts.port,
            sample_rate_hz=_float(params, "fs", RECOMMENDED_SAMPLE_RATE_HZ, url) or 0.0,
            center_hz=_float(params, "fc", RECOMMENDED_CENTER_HZ, url) or 0.0,
            gain_db=_gain(params, url), ppm=int(_float(params, "ppm", 0, url) or 0),
        )  # fmt: skip
    if scheme == "rtlsdr":
        from receiver.usb import RtlSdrSource

        parts = urlsplit(url)
        params = _query(url)
        return RtlSdrSource(
            int(parts.netloc or 0),
            sample_rate_hz=_float(params, "fs", RECOMMENDED_SAMPLE_RATE_HZ, url) or 0.0,
            center_hz=_float(params, "fc", RECOMMENDED_CENTER_HZ, url) or 0.0,
            gain_db=_gain(params, url), ppm=int(_float(params, "ppm", 0, url) or 0),
        )  # fmt: skip
    raise InputError(
        f"unknown source {url!r}; use sigmf:PATH.sigmf-meta, cu8:PATH?fs=..&fc=.., "
        "rtltcp://HOST:PORT, rtlsdr://0 or serial:/dev/ttyACM0"
    )
