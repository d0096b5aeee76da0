"""Opening a sample source from its URL (the command line's ``--source``).

:func:`open_source` takes:

- ``sigmf:PATH.sigmf-meta`` — a SigMF recording (cu8, ci16_le, cf32_le), its geolocation and
  sntx calibration read with the ``sigmf`` package;
- ``cu8:PATH?fs=2400000&fc=216500000[&gain=40.2&cal=-80]`` — raw cu8 bytes;
- ``rtltcp://HOST:PORT[?gain=auto&ppm=0&fs=2400000&fc=216500000]`` — an rtl_tcp server;
- ``rtlsdr://INDEX[?gain=auto&ppm=0&fs=2400000&fc=216500000]`` — a USB dongle (extra ``sdr``);
- ``kraken://HOST:PORT[?channels=5]`` — a KrakenSDR's DAQ stream (:mod:`receiver.kraken`): the
  reference channel as samples, every channel for the array's bearings.

Every source implements :class:`receiver.samples.SampleSource`; the code above cannot tell them
apart.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from receiver.files import FileSource, open_sigmf
from receiver.samples import SampleSource
from safetynet.errors import InputError
from safetynet.rtl import nominal_cal_dbm_at_fullscale
from safetynet.sntx import RECOMMENDED_CENTER_HZ, RECOMMENDED_SAMPLE_RATE_HZ


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


def open_source(url: str, stop: Callable[[], bool] | None = None) -> SampleSource:
    """Open a sample source from its URL (see the module docstring); a live source whose waits
    can be long (rtl_tcp reconnecting) gives up within a fraction of a second of ``stop``."""
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
            gain_db=_gain(params, url), ppm=int(_float(params, "ppm", 0, url) or 0), stop=stop,
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
    if scheme == "kraken":
        from receiver.kraken import KrakenSource

        parts = urlsplit(url)
        params = _query(url)
        if not parts.hostname or not parts.port:
            raise InputError(f"{url}: a KrakenSDR source is kraken://HOST:PORT (the DAQ: 5000)")
        channels = _float(params, "channels", None, url)
        if channels is not None and not (channels.is_integer() and 2 <= channels <= 32):
            raise InputError(f"{url}: channels must be a whole number within 2..32")
        return KrakenSource(
            parts.hostname, parts.port, None if channels is None else int(channels), stop=stop
        )
    raise InputError(
        f"unknown source {url!r}; use sigmf:PATH.sigmf-meta, cu8:PATH?fs=..&fc=.., "
        "rtltcp://HOST:PORT, rtlsdr://0, kraken://HOST:5000 or serial:/dev/ttyACM0"
    )
