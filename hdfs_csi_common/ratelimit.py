"""The one bandwidth limiter, shared by the throttling client wrapper and
minidfs's fault injection (both model a slow link; neither imports the other)."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """Bytes-per-second limiter: :meth:`acquire` sleeps until ``n`` more bytes fit the rate.

    ``burst`` is how much unused allowance may be banked (default: a tenth of a
    second's worth, at least 64 KiB).  ``start_full`` says whether a new bucket
    starts with that allowance: a client-side link model does (a fresh
    connection may send its window at once); a DataNode stream does not, so
    that the cap holds even for a stream shorter than the burst.
    """

    def __init__(self, rate: float, *, burst: float | None = None, start_full: bool = True):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(rate / 10, 65536))
        self._tokens = self.capacity if start_full else 0.0
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self, n: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
