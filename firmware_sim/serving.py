"""The simulator's TCP servers' shared part: a listening socket, and clients served one after
another (a dongle or a DAQ serves one client at a time) until the server is told to stop.

:class:`ServesClients` gives a server (the rtl_tcp, KrakenSDR DAQ and GNSS servers) its
``bind``, ``stop`` and ``serve_forever``; the server says what it serves one client with
(``_serve_client``), when its scenario is over (``finished``) and how it names itself in the log.
"""

from __future__ import annotations

import logging
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

log = logging.getLogger(__name__)

ACCEPT_WAIT_S = 0.2  # how often the accept loop looks whether it should stop


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (0: any free port) for one client at a time."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1)
    sock.settimeout(ACCEPT_WAIT_S)
    return sock


def serve_clients(
    sock: socket.socket,
    done: Callable[[], bool],
    serve: Callable[[socket.socket], None],
    what: str,
) -> None:
    """Serve clients one after another with ``serve`` until ``done()``; closes ``sock``."""
    try:
        while not done():
            try:
                conn, peer = sock.accept()
            except TimeoutError:
                continue
            log.info("%s client %s connected", what, peer)
            with conn:
                serve(conn)
            log.info("%s client %s disconnected", what, peer)
    finally:
        sock.close()


class ServesClients(ABC):
    """``bind``, ``stop`` and ``serve_forever`` of a simulated server, for a dataclass that
    holds ``host``, ``port``, ``_sock`` (None until bound) and ``_stop``."""

    host: str
    port: int
    _sock: socket.socket | None
    _stop: threading.Event
    client_kind = "TCP"  # how the log names its clients

    @property
    @abstractmethod
    def finished(self) -> bool:
        """The scenario is over: no client is served any more."""

    @abstractmethod
    def describe(self) -> str:
        """What it serves, for the log ("rtl_tcp server for FIX-1")."""

    @abstractmethod
    def _serve_client(self, conn: socket.socket) -> None:
        """Serve one connected client until it leaves or the server stops."""

    def bind(self) -> int:
        """Open the listening socket; returns the port (useful with port 0)."""
        self._sock = listening_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        return self.port

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self) -> None:
        """Serve clients one after another until :meth:`stop` or the scenario's end."""
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        logging.getLogger(type(self).__module__).info(
            "%s on %s:%d", self.describe(), self.host, self.port
        )
        serve_clients(
            self._sock,
            lambda: self._stop.is_set() or self.finished,
            self._serve_client,
            self.client_kind,
        )
