"""Fault injection: latency, bandwidth caps, failing calls, stalled reads.

One :class:`Faults` object is shared by the NameNode RPC server and every
DataNode of a MiniDFS, and may be changed while clients are connected (tests
flip faults on and off mid-read).  Reads of the plain float attributes are
racy by design: a packet that sees the old value a moment longer is fine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hdfs_csi_common.ratelimit import TokenBucket


class Faults:
    def __init__(self, *, rpc_latency: float = 0.0, packet_latency: float = 0.0,
                 stream_bandwidth: float | None = None):
        #: seconds added before every NameNode RPC is handled
        self.rpc_latency = rpc_latency
        #: seconds added before every DataNode data packet (read and write)
        self.packet_latency = packet_latency
        #: bytes/s cap per DataNode stream; None or 0 = unlimited
        self.stream_bandwidth = stream_bandwidth
        self._lock = threading.Condition()
        self._failures: dict[str, list[tuple[str, str]]] = {}
        self._stalls: dict[int, float] = {}  # dn index -> monotonic deadline (inf = forever)
        #: calls seen per RPC method name / DataNode op ("READ_BLOCK", "WRITE_BLOCK"):
        #: lets tests assert how many NameNode round trips a layer above made
        self.calls: dict[str, int] = {}

    # -- NameNode RPC / DataNode op failures ------------------------------------
    def fail_next(self, method: str, count: int = 1,
                  exception_class: str = "java.io.IOException",
                  message: str | None = None) -> None:
        """Fail the next ``count`` calls of ``method`` (an RPC name such as
        ``"getBlockLocations"``, or ``"READ_BLOCK"`` / ``"WRITE_BLOCK"`` for
        DataNode operations) with the given Java exception class."""
        msg = message or f"injected failure of {method}"
        with self._lock:
            self._failures.setdefault(method, []).extend([(exception_class, msg)] * count)

    def take_failure(self, method: str) -> tuple[str, str] | None:
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            pending = self._failures.get(method)
            if not pending:
                return None
            failure = pending.pop(0)
            if not pending:
                del self._failures[method]
            return failure

    # -- stalled reads -------------------------------------------------------------
    def stall_reads(self, datanode: int, seconds: float | None = None) -> None:
        """Block data packets of reads on DataNode ``datanode`` for ``seconds`` (None = until
        :meth:`unstall`)."""
        with self._lock:
            self._stalls[datanode] = float("inf") if seconds is None else \
                time.monotonic() + seconds
            self._lock.notify_all()

    def unstall(self, datanode: int | None = None) -> None:
        with self._lock:
            if datanode is None:
                self._stalls.clear()
            else:
                self._stalls.pop(datanode, None)
            self._lock.notify_all()

    def wait_read(self, datanode: int, running: Callable[[], bool]) -> None:
        """Called before each read packet: returns once the DataNode is not stalled."""
        if not self._stalls:
            return
        with self._lock:
            while running():
                deadline = self._stalls.get(datanode)
                if deadline is None:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    self._stalls.pop(datanode, None)
                    return
                self._lock.wait(min(left, 0.2))

    def wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    # -- streams -----------------------------------------------------------------
    def stream_limiter(self) -> TokenBucket | None:
        rate = self.stream_bandwidth
        # no credit at the start, at most 50 ms banked: the cap holds for short streams
        # too (a 64 KiB block read is one stream)
        return TokenBucket(rate, burst=rate * 0.05, start_full=False) if rate else None

    def clear(self) -> None:
        with self._lock:
            self.rpc_latency = 0.0
            self.packet_latency = 0.0
            self.stream_bandwidth = None
            self._failures.clear()
            self._stalls.clear()
            self._lock.notify_all()
