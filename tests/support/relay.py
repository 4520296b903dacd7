"""A TCP relay whose outgoing connections leave from a chosen loopback address.

libpq cannot choose the source address of a connection, so a test that needs a client on
127.0.0.x connects to the relay (on 127.0.0.1) and the relay connects on from 127.0.0.x. Bytes are
copied as they are, TLS included.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def relay(target: tuple[str, int], source_address: str) -> Iterator[tuple[str, int]]:
    """Listen on 127.0.0.1 (address yielded); each client is connected to `target` from `source_address`."""
    listener = socket.create_server(("127.0.0.1", 0))
    sockets: list[socket.socket] = [listener]

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(target, source_address=(source_address, 0))
            sockets.extend((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()
    finally:
        for sock in sockets:
            sock.close()
