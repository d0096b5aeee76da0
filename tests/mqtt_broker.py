"""A Mosquitto broker of the test's own on a free port, as a deployment would set it up for a
receiver fleet: no anonymous logins, a password file written by ``mosquitto_passwd``, and an
access list by which each receiver's login may write only ``safetynet/reports/<its login>``
and only the ingest worker's login may read the fleet's topics."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import require_tool

TOPIC_PREFIX = "safetynet/reports"
INGEST_USER = "ingest"
INGEST_PASSWORD = "ingest-" + "p" * 24

ACL = f"""\
# The server's ingest worker reads every receiver's topic.
user {INGEST_USER}
topic read {TOPIC_PREFIX}/+

# Every other login writes its own topic only (%u: the login's user name).
pattern write {TOPIC_PREFIX}/%u
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One broker in ``folder`` with the given logins (user → password) and the ingest's."""

    def __init__(self, folder: Path, logins: dict[str, str], port: int | None = None) -> None:
        self.binary = require_tool("mosquitto")
        passwd = require_tool("mosquitto_passwd")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        password_file = folder / "passwd"
        password_file.write_text("")
        for user, password in {**logins, INGEST_USER: INGEST_PASSWORD}.items():
            subprocess.run([passwd, "-b", str(password_file), user, password], check=True)
        (folder / "acl").write_text(ACL)
        (folder / "mosquitto.conf").write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous false\n"
            f"password_file {password_file}\n"
            f"acl_file {folder / 'acl'}\n"
            # The ingest worker's persistent session, and what waits in it, survive a restart;
            # no limit on what waits for it (the default keeps 1,000 messages and drops the rest).
            "persistence true\n"
            f"persistence_location {folder}/\n"
            "max_queued_messages 0\n"
            "user root\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, user: str, password: str, topic: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}/{topic}"

    def ingest_url(self) -> str:
        return self.url(INGEST_USER, INGEST_PASSWORD, f"{TOPIC_PREFIX}/+")

    def start(self) -> Mosquitto:
        log = (self.folder / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.folder / "mosquitto.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.folder / 'mosquitto.log').read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start listening")

    def stop(self) -> None:
        """Stop it as a service stop would (SIGTERM: it saves its sessions first)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
