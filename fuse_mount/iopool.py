"""Worker threads for HDFS calls, with a bound on every wait.

Why not :class:`concurrent.futures.ThreadPoolExecutor`: a DataNode that stops
answering can leave an HDFS call blocked for good.  With a fixed pool those
calls pin its workers one by one until the whole mount hangs, and even after
HDFS recovers the pool stays full of dead calls.  Here a caller never waits
longer than its timeout (it gets :class:`~hdfs_client.errors.HdfsTimeout`,
which the FUSE layer answers with EIO), and a worker busy for longer than
``stuck_after`` stops counting against ``max_workers``, so fresh workers serve
new requests and the mount works again once HDFS does.  ``hard_limit`` caps the
number of threads if HDFS hangs everything for a long time; beyond it requests
queue and their callers time out.

HDFS calls (hdfs-native, Rust) release the GIL, so these threads run truly in
parallel; idle workers exit after ``idle_exit`` seconds.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from hdfs_client.errors import HdfsTimeout

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()


class IoPool:
    def __init__(self, max_workers: int, *, stuck_after: float, hard_limit: int | None = None,
                 idle_exit: float = 60.0, name: str = "hdfs-io",
                 on_timeout: Callable[[], None] | None = None):
        self.max_workers = max_workers
        self.stuck_after = stuck_after
        self.hard_limit = hard_limit or max(4 * max_workers, max_workers + 64)
        self.idle_exit = idle_exit
        self.name = name
        self._on_timeout = on_timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0      # workers not running a task (including ones about to take one)
        self._pending = 0   # tasks queued and not yet taken by a worker
        self._busy_since: dict[int, float] = {}  # worker id -> start of current task
        self._threads: dict[int, threading.Thread] = {}
        self._ids = itertools.count()
        self._closed = False

    # -- submitting ---------------------------------------------------------------
    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("IoPool is closed")
            self._pending += 1
            self._queue.put((fut, fn, args))
            self._maybe_spawn_locked()
        return fut

    def call(self, fn: Callable[..., T], *args: Any, timeout: float, what: str = "HDFS call") -> T:
        """Run ``fn(*args)`` on a worker; wait at most ``timeout`` seconds."""
        return self.wait(self.submit(fn, *args), timeout, what)

    def wait(self, fut: Future[T], timeout: float, what: str = "HDFS call") -> T:
        try:
            return fut.result(timeout=max(timeout, 0.0))
        except FutureTimeout:
            fut.cancel()  # still queued -> never runs; running -> left to finish alone
            if self._on_timeout:
                self._on_timeout()
            raise HdfsTimeout(f"{what} did not finish within {timeout:.1f}s") from None

    def _maybe_spawn_locked(self) -> None:
        # A worker that has dequeued a task but not yet updated the counters is still
        # counted in both _idle and _pending, so this comparison is race-free.
        if self._idle >= self._pending:
            return  # an idle worker will take it
        now = time.monotonic()
        healthy_busy = sum(1 for t0 in self._busy_since.values() if now - t0 < self.stuck_after)
        if healthy_busy + self._idle >= self.max_workers:
            return
        if len(self._threads) >= self.hard_limit:
            log.warning("%s: %d threads, all stuck or busy; request queued", self.name,
                        len(self._threads))
            return
        wid = next(self._ids)
        t = threading.Thread(target=self._work, args=(wid,), name=f"{self.name}-{wid}",
                             daemon=True)
        self._threads[wid] = t
        self._idle += 1
        t.start()

    # -- workers ------------------------------------------------------------------
    def _work(self, wid: int) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle_exit)
                except queue.Empty:
                    with self._lock:
                        if self._pending == 0:
                            self._idle -= 1
                            return
                    continue
                if item is _STOP:
                    with self._lock:
                        self._idle -= 1
                    return
                fut, fn, args = item
                if not fut.set_running_or_notify_cancel():
                    with self._lock:
                        self._pending -= 1
                    continue
                with self._lock:
                    self._pending -= 1
                    self._idle -= 1
                    self._busy_since[wid] = time.monotonic()
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 - hand every failure to the waiter
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
                finally:
                    del fn, args, item, fut
                    with self._lock:
                        self._busy_since.pop(wid, None)
                        self._idle += 1
                        if self._pending:
                            self._maybe_spawn_locked()
        finally:
            with self._lock:
                self._threads.pop(wid, None)

    # -- introspection / shutdown -------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._lock:
            now = time.monotonic()
            stuck = sum(1 for t0 in self._busy_since.values() if now - t0 >= self.stuck_after)
            return {"threads": len(self._threads), "idle": self._idle,
                    "busy": len(self._busy_since), "stuck": stuck}

    def close(self, wait: float = 1.0) -> None:
        with self._lock:
            self._closed = True
            threads = list(self._threads.values())
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + wait
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
