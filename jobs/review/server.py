"""Running the review app under uvicorn: in the foreground (the page) or in a thread (the
``--auto`` demo and the browser tests).

The socket is bound here, before uvicorn starts, so a taken port is a one-line error
naming the fix instead of a log line from inside the server.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from infra.errors import FinesiftError

STARTUP_SECONDS = 30


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0 picks a free one).

    Raises:
        FinesiftError: the address cannot be bound (port in use, unknown host).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise FinesiftError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port "
            "(or stop what is using it)"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    """The http:// URL a bound socket answers on."""
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _server(app, sock: socket.socket):
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve_forever(app, sock: socket.socket) -> None:
    """Serve until Ctrl-C or SIGTERM (uvicorn's own handling)."""
    _server(app, sock).run(sockets=[sock])


@contextmanager
def serving_in_thread(app, sock: socket.socket) -> Iterator[str]:
    """Serve the app in a thread for the duration of the block; yields its URL.

    Raises:
        FinesiftError: the server did not start within a few seconds.
    """
    server = _server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise FinesiftError(f"the review server on {url_of(sock)} did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)
        sock.close()
