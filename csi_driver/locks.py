"""Per-volume in-flight set: a second concurrent call on a volume gets ABORTED.

Kubelet times out a CSI call after two minutes and retries while the first
call may still be running.  Letting both proceed would race on the same
mount or directory; blocking the second would pile up threads behind a hung
one.  The CSI answer is ABORTED ("operation pending for volume"), after which
the CO retries with backoff, so that is what :meth:`InFlight.hold` raises.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from csi_driver.errors import Aborted


class InFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    @contextlib.contextmanager
    def hold(self, *keys: str) -> Iterator[None]:
        """Claim all ``keys`` at once or none of them."""
        wanted = set(keys)
        with self._lock:
            clash = wanted & self._busy
            if clash:
                raise Aborted("an operation on this volume is already in progress; retry later")
            self._busy |= wanted
        try:
            yield
        finally:
            with self._lock:
                self._busy -= wanted

    def busy(self, key: str) -> bool:
        with self._lock:
            return key in self._busy
