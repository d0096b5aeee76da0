"""The simulator's TCP servers' shared part: a listening socket, and clients served one after
another (a dongle or a DAQ serves one client at a time) until the server is told to stop."""

from __future__ import annotations

import logging
import socket
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
