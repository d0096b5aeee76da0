"""The server's listening socket, bound before anything else happens.

``safetynet demo`` and ``safetynet serve`` bind their port first and hand the bound socket to
uvicorn: a port in use fails at once with a message, before a demo seeds a search or prints its
address and logins (and no other process can take the port between a check and the bind).
"""

from __future__ import annotations

import socket

from safetynet.errors import ConfigError


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening. Raises :class:`ConfigError` when the
    address is in use or cannot be bound, naming it and what to do."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host!r} is not an address this machine has: {err}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {err.strerror or err}; stop what uses the port "
            "or choose another with --port"
        ) from None
    sock.set_inheritable(True)
    return sock
