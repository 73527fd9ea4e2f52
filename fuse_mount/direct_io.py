"""When a mount reads large files with FUSE direct I/O instead of through the page cache.

Direct I/O (``FOPEN_DIRECT_IO`` on an open) sends the application's reads to
the daemon as they are: no copy into the kernel's page cache, requests as
large as the application's (not split into the kernel read-ahead's 1 MiB),
served by our read-ahead.  Measured cold on this project's 2-core machine
(BENCHMARKS.md, "Direct I/O for the first epoch"): sequential shards 1.3x,
Parquet 1.4x, ``tf.data`` 1.7x faster.  It costs in two places:

- **a dataset that fits in memory**: the page cache would serve the second
  epoch from RAM (about 10x direct), direct I/O sends it through the daemon
  again (0.8x);
- **small reads**: each 8 KiB ``read(2)`` becomes a FUSE round trip (176 vs
  418 MB/s), where the page cache would have merged them.

``mmap(MAP_SHARED)`` of such a file works only when the FUSE connection
allows it (``FUSE_DIRECT_IO_ALLOW_MMAP``, Linux 6.6), which our own loop
negotiates and libfuse 3.14 cannot; without it ``mmap`` fails with ENODEV,
which numpy memmaps, pyarrow and safetensors would see.

So ``--direct-io`` / the ``directIo`` volume attribute is three-valued: on,
off, or (the default) *auto*: on only where none of the costs above bites
much: the connection allows mmap, and the mount's dataset (the total size
under its root, asked of the NameNode once, in the background, at mount) is
larger than half of the memory available, so a second epoch could not have
come from the page cache anyway.  Until that answer is in, auto means off.
Either way only files of :data:`MIN_SIZE` and more that the disk cache does
not yet hold completely are read directly (the decision per file is the
core's, at open).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hdfs_csi_common.units import format_size

log = logging.getLogger(__name__)

#: direct I/O applies to files at least this large (smaller ones are read whole at once)
MIN_SIZE = 16 << 20
#: auto turns direct I/O on when the dataset exceeds this share of the available memory
MEMORY_SHARE = 0.5


def available_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """``MemAvailable`` in bytes: what the page cache could hold without pushing
    anything out (file pages that can be dropped count as available)."""
    try:
        with open(meminfo) as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def auto_decision(dataset_bytes: int | None, memory_bytes: int | None,
                  mmap_allowed: bool) -> bool:
    """The auto rule: direct I/O only where mmap still works and the dataset cannot
    stay in the page cache.  Unknown sizes mean no."""
    if not mmap_allowed or dataset_bytes is None or memory_bytes is None:
        return False
    return dataset_bytes > memory_bytes * MEMORY_SHARE


class DirectIoPolicy:
    """Whether this mount reads large, not yet cached files with direct I/O.

    ``setting`` is the option: True, False, or None for auto.  ``dataset_size``
    returns the total size of the mount's tree (a NameNode content summary);
    it is called at most once, on a thread of its own, when the connection is
    known to allow mmap (:meth:`connection_ready`).
    """

    def __init__(self, setting: bool | None, dataset_size: Callable[[], int], *,
                 memory: Callable[[], int | None] = available_memory):
        self.setting = setting
        self._dataset_size = dataset_size
        self._memory = memory
        self._auto = False
        self._sized = threading.Event()
        self._started = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Direct I/O for large files not complete in the disk cache, right now."""
        return self._auto if self.setting is None else self.setting

    def connection_ready(self, mmap_allowed: bool) -> None:
        """The FUSE connection is up; ``mmap_allowed``: it negotiated
        ``FUSE_DIRECT_IO_ALLOW_MMAP``.  Starts the auto sizing (once)."""
        with self._lock:
            if self.setting is not None or self._started:
                return
            self._started = True
        if not mmap_allowed:
            log.info("direct I/O: auto stays off (this FUSE connection cannot mmap "
                     "direct-I/O files)")
            self._sized.set()
            return
        threading.Thread(target=self._size, name="direct-io-size", daemon=True).start()

    def wait_sized(self, timeout: float | None = None) -> bool:
        """For tests and logs: whether the auto decision has been made."""
        return self._sized.wait(timeout)

    def _size(self) -> None:
        try:
            dataset = self._dataset_size()
            memory = self._memory()
            self._auto = auto_decision(dataset, memory, True)
            log.info("direct I/O: auto %s (dataset %s, %s of memory available)",
                     "on: large first reads bypass the page cache" if self._auto else "off",
                     format_size(dataset),
                     "unknown" if memory is None else format_size(memory))
        except Exception as exc:  # noqa: BLE001 - a NameNode refusal only keeps the default
            log.info("direct I/O: auto stays off (cannot size the dataset: %s)", exc)
        finally:
            self._sized.set()
