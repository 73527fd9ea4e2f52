"""One mount's lifetime: connect, check, mount, serve until unmounted, clean up.

Used in the foreground by ``hdfs-csi mount --foreground`` and inside the
daemon by the background form; :func:`run_mount` blocks until the filesystem
is unmounted (``fusermount3 -u``, ``umount``, SIGTERM/SIGINT/SIGHUP, which
libfuse turns into a clean unmount).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any
from collections.abc import Callable

from fuse_mount import mounts
from fuse_mount.options import MountOptions
from hdfs_client.uri import parse_hdfs_uri

log = logging.getLogger(__name__)


class MountError(RuntimeError):
    """The mount could not be set up; the message is meant for the operator."""


def prepare_mountpoint(mountpoint: str) -> str:
    """Absolute mountpoint, created if missing; a dead FUSE mount there is cleared."""
    mountpoint = os.path.abspath(mountpoint)
    state = mounts.mount_state(mountpoint)
    if state is mounts.MountState.HEALTHY:
        raise MountError(f"{mountpoint} is already mounted")
    if state is mounts.MountState.DEAD:
        log.warning("%s holds a dead mount (transport endpoint not connected); detaching it",
                    mountpoint)
        mounts.unmount(mountpoint)
    if os.path.lexists(mountpoint) and not os.path.isdir(mountpoint):
        raise MountError(f"mountpoint {mountpoint} exists and is not a directory")
    try:
        os.makedirs(mountpoint, exist_ok=True)
    except OSError as exc:
        raise MountError(f"cannot create mountpoint {mountpoint}: {exc.strerror}") from None
    return mountpoint


def tune_kernel_readahead(mountpoint: str, nbytes: int) -> int | None:
    """Raise the mount's bdi read_ahead_kb (root only); return the value set.

    FUSE mounts start with 128 KiB, which splits every sequential read into
    128 KiB requests (one round trip each); measured on a null filesystem
    through this adapter: 128 KiB -> 0.47 GB/s, 4 MiB -> 1.3 GB/s.
    """
    if nbytes <= 0:
        return None
    entry = mounts.find_mount(mountpoint)
    if entry is None or not entry.dev:
        return None
    path = f"/sys/class/bdi/{entry.dev}/read_ahead_kb"
    try:
        with open(path, "w") as fh:
            fh.write(str(max(nbytes // 1024, 4)))
        with open(path) as fh:
            value = int(fh.read().strip())
        log.info("kernel read-ahead of %s set to %d KiB", mountpoint, value)
        return value
    except OSError as exc:
        log.info("could not set %s (%s); kernel read-ahead stays at its default", path, exc)
        return None


def tune_malloc() -> None:
    """Make freed read-ahead buffers cheap to reuse and quick to give back.

    Every read-ahead part is a fresh multi-MiB buffer (in the client, then as
    ``bytes``).  Measured reading 4 x 512 MiB through the mount:

    ==========================  ===========  ==========  ===========
    glibc setting               page faults  CPU ticks   peak RSS
    ==========================  ===========  ==========  ===========
    defaults (dynamic mmap)     ~150k/pass   ~110        728 MB
    mmap every buffer >= 1 MiB  ~550k/pass   ~190        344 MB
    2 arenas, 32 MiB mmap
    threshold, 8 MiB trim       ~20k/pass    ~90         277 MB
    ==========================  ===========  ==========  ===========

    The defaults keep one heap per thread (up to 8 per core) and grow each to
    its peak, so RSS ends far above the live data; mmapping every buffer
    bounds RSS but faults every page in again.  Fixed thresholds give the low
    CPU of heap reuse and a small, bounded footprint.  One arena with a 64 MiB
    trim threshold (instead of two with 8 MiB) then cut the page faults of a
    cold 1 GiB pass from ~70k to ~50k (hdfs-native's per-read buffers no
    longer fall into freshly trimmed or freshly created heaps) and the peak RSS
    of 4 x 1 GiB (selfbench ``memory``) from 326 to 293 MB; the buffers are
    few and large, so one arena's lock is not contended.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
    libc.mallopt(M_ARENA_MAX, 1)
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


def connect(loc: Any, opts: MountOptions) -> Any:
    """An HDFS client for the mount at ``loc``, after a quick reachability check;
    :class:`MountError` (in words, within seconds) when it cannot be had."""
    import hdfs_client
    from hdfs_client.errors import HdfsError

    # The client's own socket timeout frees threads stuck on a silent DataNode
    # (our IoPool already bounds every wait; this bounds the threads too).
    kw: dict[str, object] = {
        "config": {"dfs.client.socket-timeout": str(max(1000, int(opts.io_timeout * 1000)))},
    }
    if opts.user:
        kw["user"] = opts.user
        # One mount process = one HDFS identity.  hdfs-native reads the simple-auth
        # user from the environment when it connects (lazily, on the first call),
        # so it must stay set for the life of the process, not only while the
        # client object is built.
        os.environ["HADOOP_USER_NAME"] = opts.user
    if opts.kerberos_principal:
        kw["kerberos_principal"] = opts.kerberos_principal
        kw["kerberos_keytab"] = opts.kerberos_keytab
    from hdfs_client.native import site_config
    from hdfs_client.reach import unreachable

    # in words and within seconds, not as a stat timing out after --io-timeout
    why = unreachable(loc.cluster_uri, site_config(None),
                      timeout=min(5.0, max(1.0, opts.io_timeout)))
    if why:
        raise MountError(f"cannot mount {loc}: {why}")
    try:
        return hdfs_client.connect(loc.cluster_uri, **kw)
    except HdfsError as exc:
        raise MountError(f"cannot connect to {loc.cluster_uri}: {exc}") from None


def build_core(client: Any, loc: Any, opts: MountOptions, metrics: Any) -> Any:
    """The filesystem core of a mount, its root checked; :class:`MountError` if not."""
    from fuse_mount.cache import CacheBusy
    from fuse_mount.fs import HdfsFilesystem
    from hdfs_client.errors import HdfsError

    try:
        core = HdfsFilesystem(client, loc.path, opts, metrics=metrics)
    except CacheBusy as exc:
        raise MountError(str(exc)) from None
    try:
        core.check_root()
    except HdfsError as exc:
        core.close()
        raise MountError(f"cannot mount {loc}: {type(exc).__name__}: {exc}") from None
    return core


def uses_own_loop(opts: MountOptions) -> bool:
    """Whether this mount is served by our own /dev/fuse loop under a keeper (crash
    survival) or by libfuse: ``--fuse-loop``; ``auto`` = ours when we may call
    mount(2) ourselves (root), since an unprivileged mount needs fusermount3."""
    if opts.fuse_loop == "auto":
        return os.geteuid() == 0
    return opts.fuse_loop == "own"


def run_mount(source: str, mountpoint: str, opts: MountOptions, *,
              on_ready: Callable[[], None] | None = None, client: object | None = None) -> None:
    """Mount ``source`` (``hdfs://host:port/path``) at ``mountpoint`` and serve it with
    libfuse's loop (:func:`fuse_mount.keeper.keep_mount` is the other way).

    ``on_ready`` is called (from another thread) once the mount answers.
    Raises :class:`MountError` (or an HDFS error) when set-up fails.
    """
    from fuse_mount.adapter import FuseAdapter, HdfsFUSE, fuse_mount_options
    from fuse_mount.metrics import MountMetrics

    try:
        loc = parse_hdfs_uri(source)
    except ValueError as exc:
        raise MountError(str(exc)) from None
    mountpoint = prepare_mountpoint(mountpoint)
    tune_malloc()
    if client is None:
        client = connect(loc, opts)
    metrics = MountMetrics()
    background: list[Any] = []   # --warmup and --cache-pool jobs, once the mount answers
    core = build_core(client, loc, opts, metrics)
    try:
        if opts.metrics_port is not None:
            metrics.serve(opts.metrics_port)
        adapter = FuseAdapter(core, opts)
        fuse_kw = fuse_mount_options(opts, str(loc), os.geteuid() == 0)
        log.info("mounting %s at %s (%s)", loc, mountpoint, opts.describe())

        def when_mounted() -> None:
            if mounts.wait_mounted(mountpoint, timeout=60):
                tune_kernel_readahead(mountpoint, opts.kernel_read_ahead)
                log.info("%s is mounted", mountpoint)
                # libfuse 3.14 cannot let a direct-I/O file be mmap-ed MAP_SHARED
                core.direct_io.connection_ready(mmap_allowed=False)
                if on_ready is not None:
                    on_ready()
                if opts.warmup:
                    from fuse_mount.warmer import Warmer

                    background.append(Warmer(core, opts.warmup, max_bytes=opts.cache_size))
                    background[-1].start()
                from fuse_mount import cluster_cache

                pinned = cluster_cache.start_for(core, opts, metrics)
                if pinned is not None:
                    background.append(pinned)
            else:
                log.error("%s did not become ready", mountpoint)

        threading.Thread(target=when_mounted, name="mount-watch", daemon=True).start()
        try:
            HdfsFUSE(adapter, mountpoint, **fuse_kw)
        except RuntimeError as exc:
            raise MountError(f"FUSE mount of {mountpoint} failed (libfuse returned {exc}); "
                             "is /dev/fuse available and fusermount3 installed?") from None
        log.info("%s unmounted", mountpoint)
    finally:
        for job in background:
            job.stop()
        core.close()
        try:
            client.close()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001
            pass
