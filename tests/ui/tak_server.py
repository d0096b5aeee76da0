"""Real TAK software for the interop tests: the taky TAK server from the package index, in a
virtualenv of its own, and a TAK client made with pytak.

Why taky: of the TAK servers on the package index (taky, FreeTAKServer, OpenTAKServer) it is
the one that runs here from a plain ``pip install`` with nothing else: a CoT router in pure
Python with TLS and client certificates (``takyctl setup`` makes its CA and server certificate,
``takyctl build_client`` a client's), no database, no message broker, no web stack to start.
FreeTAKServer and OpenTAKServer need their own databases and services (and OpenTAKServer a
RabbitMQ) before they route a single event.

The virtualenv is made on first use from the package index (``pip install taky==0.10``) under
``test-artifacts/venvs`` (git-ignored) and kept for later runs. Where it cannot be made or
taky does not start, the tests skip, but fail under CI (``CI`` set).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import venv
import warnings
from collections.abc import Iterator
from configparser import ConfigParser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.conftest import IN_CI
from tests.ui_support import ARTIFACTS, free_port

TAKY = "taky==0.10"
VENVS = ARTIFACTS / "venvs"
TAKY_VENV = VENVS / "taky-0.10"


def unavailable(message: str) -> None:
    """A TAK server that cannot be had: skip here, fail under CI."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def taky_venv() -> Path:
    """The bin folder of taky's own virtualenv, made and installed on first use."""
    VENVS.mkdir(parents=True, exist_ok=True)
    done = TAKY_VENV / ".installed"
    with (VENVS / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be making it
        if not done.exists():
            shutil.rmtree(TAKY_VENV, ignore_errors=True)
            try:
                venv.EnvBuilder(with_pip=True, clear=True).create(TAKY_VENV)
                subprocess.run(
                    [str(TAKY_VENV / "bin" / "python"), "-m", "pip", "install", "-q", TAKY],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
            except (OSError, subprocess.SubprocessError) as err:
                detail = getattr(err, "stderr", b"") or b""
                unavailable(f"taky could not be installed ({err}): {detail[-800:]!r}")
            done.write_text(TAKY + "\n")
    return TAKY_VENV / "bin"


@dataclass
class Credentials:
    cert: Path
    key: Path


@dataclass
class TakyServer:
    """A taky server with TLS and client certificates in ``root``, on a free local port."""

    root: Path
    bin_dir: Path = field(default_factory=taky_venv)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self._takyctl(
            "setup", "--host", "127.0.0.1", "--public-ip", "127.0.0.1", "--bind-ip", "127.0.0.1",
            "--user", _user(), str(self.root), cwd=self.root.parent,
        )  # fmt: skip
        self.port = free_port()
        config = ConfigParser(allow_no_value=True)
        config.read(self.conf)
        config.set("cot_server", "port", str(self.port))
        with self.conf.open("w") as f:
            config.write(f)

    @property
    def conf(self) -> Path:
        return self.root / "taky.conf"

    @property
    def ca(self) -> Path:
        return self.root / "ssl" / "ca.crt"

    def _takyctl(self, *args: str, cwd: Path) -> None:
        try:
            subprocess.run(
                [str(self.bin_dir / "takyctl"), *args],
                cwd=cwd, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as err:
            detail = getattr(err, "stderr", b"") or b""
            unavailable(f"takyctl {args[0]} failed ({err}): {detail[-800:]!r}")

    def client_credentials(self, name: str) -> Credentials:
        """A client certificate signed by the server's CA (``takyctl build_client``), made
        once per name."""
        if list(self.root.glob(f"{name}-*.crt")):
            (cert,) = self.root.glob(f"{name}-*.crt")
            (key,) = self.root.glob(f"{name}-*.key")
            return Credentials(cert, key)
        self._takyctl("-c", str(self.conf), "build_client", "--dump_pem", name, cwd=self.root)
        (cert,) = self.root.glob(f"{name}-*.crt")
        (key,) = self.root.glob(f"{name}-*.key")
        return Credentials(cert, key)

    def start(self, timeout_s: float = 30.0) -> float:
        """Start taky; returns the monotonic time its port first took a connection."""
        log = (self.root / f"taky-{self.starts}.log").open("wb")
        self.starts += 1
        self.process = subprocess.Popen(
            [str(self.bin_dir / "taky"), "-c", str(self.conf), "-l", "info"],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                unavailable(f"taky ended at start: {self.log_tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return time.monotonic()
            time.sleep(0.05)
        self.stop()
        unavailable(f"taky did not listen on {self.port} within {timeout_s} s: {self.log_tail()}")
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self) -> str:
        logs = sorted(self.root.glob("taky-*.log"))
        return logs[-1].read_text(errors="replace")[-1500:] if logs else ""


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


class PytakClient:
    """A TAK client (pytak over TLS with its own certificate) in a thread: it keeps every event
    the server routes to it, and sends what it is given; it reconnects when told to."""

    def __init__(self, port: int, credentials: Credentials, ca: Path) -> None:
        with warnings.catch_warnings():  # it warns of extras this client does not use
            warnings.simplefilter("ignore", UserWarning)
            import pytak

        self._pytak = pytak
        parser = ConfigParser(interpolation=None)
        parser["client"] = {
            "COT_URL": f"tls://127.0.0.1:{port}",
            "PYTAK_TLS_CLIENT_CERT": str(credentials.cert),
            "PYTAK_TLS_CLIENT_KEY": str(credentials.key),
            "PYTAK_TLS_CLIENT_CAFILE": str(ca),
        }
        self.config = parser["client"]
        self.received: list[tuple[float, ET.Element, bytes]] = []  # (monotonic time, event, raw)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._writer: Any = None
        self._reader_task: Any = None

    def connect(self, timeout_s: float = 20.0) -> None:
        """Connect (again), retrying until the server takes the connection."""
        asyncio.run_coroutine_threadsafe(self._connect(timeout_s), self._loop).result(timeout_s + 5)

    async def _connect(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                reader, self._writer = await self._pytak.protocol_factory(self.config)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        self._reader_task = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                data = await reader.readuntil(b"</event>")
            except (asyncio.IncompleteReadError, OSError):
                return
            text = data.strip()
            text = re.sub(rb"^<\?xml[^>]*\?>", b"", text).strip()
            with contextlib.suppress(ET.ParseError):
                ev = ET.fromstring(text)
                with self._lock:
                    self.received.append((time.monotonic(), ev, text))

    def send(self, data: bytes) -> None:
        async def write() -> None:
            self._writer.write(data)
            await self._writer.drain()

        asyncio.run_coroutine_threadsafe(write(), self._loop).result(10)

    def events(self, since_s: float = 0.0) -> list[tuple[float, ET.Element, bytes]]:
        with self._lock:
            return [r for r in self.received if r[0] >= since_s]

    def latest(self, since_s: float = 0.0) -> dict[str, ET.Element]:
        """The newest event of each uid received since ``since_s`` (monotonic)."""
        return {ev.get("uid", ""): ev for _, ev, _ in self.events(since_s)}

    def wait_for(self, check: Any, timeout_s: float, since_s: float = 0.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            latest = self.latest(since_s)
            if check(latest):
                return latest
            time.sleep(0.05)
        return self.latest(since_s)

    def close(self) -> None:
        async def shut() -> None:
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    self._writer.close()
            if self._reader_task is not None:
                self._reader_task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextlib.contextmanager
def taky_server(root: Path) -> Iterator[TakyServer]:
    server = TakyServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
