"""The TCP accept loop both minidfs servers (NameNode RPC, DataNode transfer) run:
one daemon thread per connection, and a stop that unblocks ``accept``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from google.protobuf.message import DecodeError


class Listener:
    """Accepts on ``host:port`` (0 = any free port) and runs ``handler(sock, addr)``
    on a new daemon thread per connection, named ``<name>-conn``."""

    def __init__(self, host: str, port: int, handler: Callable[[socket.socket, tuple], None],
                 name: str):
        self.host = host
        self.port = port
        self.name = name
        self._handler = handler
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._open = False

    def open(self) -> int:
        """Bind, listen and start accepting; returns the bound port."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._sock = sock
        self._open = True
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"{self.name}-accept")
        self._thread.start()
        return self.port

    def close(self, join_timeout: float = 5.0) -> None:
        """Stop accepting (``shutdown`` wakes a blocked ``accept``) and wait for the loop."""
        self._open = False
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=join_timeout)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while self._open:
            try:
                conn, addr = self._sock.accept()
            except OSError:
                return
            if not self._open:
                conn.close()
                return
            threading.Thread(target=self._handler, args=(conn, addr), daemon=True,
                             name=f"{self.name}-conn").start()


def parse_message(cls: type, data: bytes | memoryview, error: type[Exception]) -> object:
    """A protobuf message of type ``cls`` from ``data``; ``error`` when it does not
    parse or misses required fields (proto2), which closes the peer's connection."""
    msg = cls()
    try:
        msg.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise error(f"malformed {cls.__name__}: {exc}") from None
    if not msg.IsInitialized():
        raise error(f"{cls.__name__} misses required fields")
    return msg
