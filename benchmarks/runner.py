"""One benchmark run: prepare data, bring up the environment, run scenario x mode.

Modes, in the order they run for each scenario:

``local``
    the local reference copy, evicted from the page cache first: what the
    same job would get from this machine's disk.
``direct``
    HDFS read in-process through :class:`hdfs_client.HdfsClient`: the ceiling
    for anything built on that client, the mount included.
``mount-cold``
    a fresh ``hdfs-csi mount`` with an empty cache directory (and a new FUSE
    superblock, so no page cache either): the first epoch.
``mount-warm``
    the same mount again: the second epoch (its disk cache, page cache and
    metadata cache now hold what the first pass read).
``mount-warmup`` (only when named in ``--modes``)
    a fresh mount with ``--warmup <the scenario's dataset>`` (the ``warmup``
    volume attribute): the pass starts once the mount's warm-up has filled its
    disk cache, with the cache files evicted from the page cache, so it is the
    first epoch of a job whose dataset was warmed at stage time, read from the
    node's disk.

Where a minidfs is ours, its block files are evicted from the page cache
before ``direct`` and ``mount-cold``, so "cold" is cold on both sides.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from benchmarks import datasets, pagecache, report
from benchmarks.environment import (
    PROFILES, HadoopDfs, MiniDfsProcess, MountProcess, SetupError, describe_environment,
    fuse_unavailable_reason, wait_for_log,
)
from benchmarks.scenarios import RunContext, ScenarioOptions, ScenarioResult, Skipped, load
from benchmarks.targets import DirectTarget, FileSystemTarget, Target
from fuse_mount import mounts
from hdfs_client import HdfsClient, HdfsError, connect

log = logging.getLogger(__name__)

MODES = ("local", "direct", "mount-cold", "mount-warm", "mount-warmup")
#: what runs when --modes is not given (mount-warmup adds a warm-up per scenario)
DEFAULT_MODES = ("local", "direct", "mount-cold", "mount-warm")
MOUNT_MODES = ("mount-cold", "mount-warm")
#: the mount's last warm-up line: done, skipped or failed
_WARMUP_END = re.compile(r"warm-up: warmed [0-9,]+ files|warm-up .*skipped|warm-up failed")


@dataclass
class BenchConfig:
    tier: str = "full"
    scale: float = 1.0
    scenarios: list[str] = field(default_factory=lambda: ["seq", "small", "meta", "dataloader",
                                                          "parquet"])
    modes: list[str] = field(default_factory=lambda: list(DEFAULT_MODES))
    seed: int = 42
    data_dir: str = os.path.join(os.path.expanduser("~"), ".cache", "hdfs-csi-bench")
    work_dir: str | None = None
    # where HDFS is
    hdfs_uri: str | None = None
    hdfs_path: str = "/benchmarks/hdfs-csi-bench"
    mountpoint: str | None = None
    mount_subdir: str | None = None
    profile: str = "local"
    backend: str = "minidfs"             #: started when no hdfs_uri: "minidfs" or "hadoop"
    minidfs_block_size: int | None = None  #: block size of the started backend
    connect_kwargs: dict[str, Any] = field(default_factory=dict)
    # mount options passed to `hdfs-csi mount`
    mount_args: list[str] = field(default_factory=list)
    options: ScenarioOptions = field(default_factory=ScenarioOptions)
    prepare_only: bool = False
    progress: bool = True
    drop_caches: bool = False

    def spec(self) -> datasets.DataSpec:
        return datasets.TIERS[self.tier].scaled(self.scale)

    def dataset_name(self) -> str:
        return self.tier if self.scale == 1.0 else f"{self.tier}-x{self.scale:g}"

    def result_name(self) -> str:
        """File name stem of the JSON and chart: the dataset, plus the backend if not minidfs."""
        started = not (self.hdfs_uri or self.mountpoint)
        suffix = f"-{self.backend}" if started and self.backend != "minidfs" else ""
        return self.dataset_name() + suffix

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["connect_kwargs"] = {k: ("***" if "keytab" in k else v)
                               for k, v in self.connect_kwargs.items()}
        d["dataset_spec"] = asdict(self.spec())
        d["profile_detail"] = PROFILES[self.profile].to_dict()
        return d


@dataclass
class RunOutcome:
    results: list[ScenarioResult]
    document: dict[str, Any] | None
    prepared: list[dict[str, Any]]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Bench:
    """Holds the environment of one run; :meth:`run` is the whole benchmark."""

    def __init__(self, cfg: BenchConfig, *, progress: Any = None):
        self.cfg = cfg
        self.progress = progress or report.progress_factory(cfg.progress)
        self.stack = contextlib.ExitStack()
        self.client: HdfsClient | None = None
        self.hdfs_server: MiniDfsProcess | HadoopDfs | None = None  #: the HDFS we started
        self.hdfs_root: str | None = None
        self.mount_source: str | None = None
        self.mount_root = ""  #: dataset root inside a user-given --mountpoint
        self.local_root = os.path.join(cfg.data_dir, "datasets", cfg.dataset_name())
        self.work_dir = ""

    # -- setup --------------------------------------------------------------------------
    def _parts(self) -> list[str]:
        return list(dict.fromkeys(datasets.SCENARIO_PART[s] for s in self.cfg.scenarios))

    def _setup(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        if cfg.work_dir:
            self.work_dir = cfg.work_dir
            os.makedirs(self.work_dir, exist_ok=True)
        else:
            self.work_dir = tempfile.mkdtemp(prefix="hdfs-csi-bench-")
            self.stack.callback(_remove_tree, self.work_dir)
        parts = self._parts()
        prepared: list[dict[str, Any]] = []
        t = time.perf_counter()
        for st in datasets.prepare_local(self.local_root, parts, cfg.spec(), cfg.seed,
                                         self._bar):
            prepared.append({"where": "local", **asdict(st)})
        log.info("local dataset ready in %.1f s: %s", time.perf_counter() - t, self.local_root)

        if not any(m in cfg.modes for m in ("direct", *MOUNT_MODES)):
            return prepared  # local only: no HDFS needed
        store: datasets.Store
        if cfg.mountpoint:
            root = os.path.join(cfg.mountpoint, cfg.mount_subdir or
                                posixpath.join("hdfs-csi-bench", cfg.dataset_name()))
            # listing through the mount to verify sizes would warm it: trust its manifest
            store = datasets.DirStore(root, list_to_verify=False)
            self.mount_root = root
        else:
            if cfg.hdfs_uri:
                uri = cfg.hdfs_uri
            else:
                block = cfg.minidfs_block_size or (8 << 20 if cfg.tier == "quick" else 64 << 20)
                server: MiniDfsProcess | HadoopDfs
                if cfg.backend == "hadoop":
                    if cfg.profile != "local":
                        raise SetupError(f"--profile {cfg.profile} throttles minidfs; "
                                         "Hadoop's DataNode cannot be throttled (use "
                                         "--profile local with --backend hadoop)")
                    server = HadoopDfs(os.path.join(cfg.data_dir, "hadoop", cfg.dataset_name()),
                                       block_size=block)
                elif cfg.backend == "minidfs":
                    server = MiniDfsProcess(
                        os.path.join(cfg.data_dir, "minidfs", cfg.dataset_name()),
                        profile=PROFILES[cfg.profile], block_size=block)
                else:
                    raise SetupError(f"unknown backend {cfg.backend!r} (minidfs or hadoop)")
                self.stack.enter_context(server)
                self.hdfs_server = server
                uri = server.uri or ""
            try:
                self.client = connect(uri, **cfg.connect_kwargs)
            except HdfsError as exc:
                raise SetupError(f"cannot connect to {uri}: {exc}") from exc
            self.stack.callback(self.client.close)
            self.hdfs_root = posixpath.join("/" + cfg.hdfs_path.strip("/"), cfg.dataset_name())
            self.mount_source = self.client.uri + self.hdfs_root
            store = datasets.HdfsStore(self.client, self.hdfs_root)
        t = time.perf_counter()
        try:
            synced = datasets.sync_store(self.local_root, store, parts, self._bar)
        except (OSError, HdfsError) as exc:
            raise SetupError(f"cannot place the dataset in {store.describe()}: {exc}; "
                             "for a read-only mount, prepare the data on HDFS first "
                             "(hdfs-csi bench --prepare --hdfs-uri ...)") from exc
        for st in synced:
            prepared.append({"where": store.describe(), **asdict(st)})
        log.info("dataset in place in %.1f s: %s", time.perf_counter() - t, store.describe())
        return prepared

    def _bar(self, desc: str, total: int) -> Any:
        return self.progress(desc, total, "B" if not desc.endswith("meta") else "file")

    # -- modes -------------------------------------------------------------------------------
    def _evict_hdfs(self) -> None:
        if self.hdfs_server is not None:
            pagecache.evict_tree(self.hdfs_server.data_dir)
        self._drop_all()

    def _drop_all(self) -> None:
        if self.cfg.drop_caches:
            why = pagecache.drop_all()
            if why:
                log.warning("%s; relying on per-file eviction", why)

    @contextlib.contextmanager
    def _mounted(self, scenario: str, warmup: str | None = None) -> Iterator[str]:
        """A fresh mount (new cache dir) for one scenario, or the user's mount.

        ``warmup``: a mount-relative path the mount warms (``--warmup``); the
        mount is handed out once its warm-up ended, its cache files evicted
        from the page cache."""
        if self.cfg.mountpoint:
            yield self.mount_root
            return
        assert self.mount_source is not None
        base = os.path.join(self.work_dir, f"mount-{scenario}")
        cache = os.path.join(base, "cache")
        log_file = os.path.join(base, "mount.log")
        _remove_tree(base)  # a reused --work-dir may hold a previous run's leftovers
        extra = [*self.cfg.mount_args, *(["--warmup", warmup] if warmup else [])]
        m = MountProcess(self.mount_source, os.path.join(base, "mnt"), cache_dir=cache,
                         log_file=log_file, pid_file=os.path.join(base, "mount.pid"),
                         extra_args=extra)
        with m:
            if warmup:
                _wait_for_warmup(log_file)
                pagecache.evict_tree(cache)
            yield m.mountpoint

    def _modes_for(self) -> list[str]:
        modes = [m for m in MODES if m in self.cfg.modes]
        if self.cfg.mountpoint:
            modes = [m for m in modes if m != "direct"]
        return modes

    def _run_one(self, scenario: str, mode: str, target: Target | None,
                 files: dict[str, list[Any]], skip_reason: str | None = None) -> ScenarioResult:
        if skip_reason:
            return ScenarioResult(scenario, mode, "skipped", reason=skip_reason)
        assert target is not None
        module = load(scenario)
        ctx = RunContext(mode=mode, files=files, options=self.cfg.options, progress=self.progress)
        try:
            res = module.run(target, ctx)
        except Skipped as exc:
            res = ScenarioResult(scenario, mode, "skipped", reason=str(exc))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - one failed pass must not lose the others
            log.debug("%s/%s failed:\n%s", scenario, mode, traceback.format_exc())
            res = ScenarioResult(scenario, mode, "error", reason=f"{type(exc).__name__}: {exc}")
        res.target = target.describe()
        log.info("%s/%s: %s", scenario, mode, res.status if res.status != "ok" else
                 f"{report.primary_value(res):,.1f} {report.PRIMARY[scenario]}")
        return res

    def _scenario(self, scenario: str, files: dict[str, list[Any]]) -> list[ScenarioResult]:
        out = []
        modes = self._modes_for()
        # a scenario that cannot run at all (torch missing) is skipped once per mode, cheaply
        check = getattr(load(scenario), "unavailable", None)
        pre_reason = check() if check else None
        if pre_reason:
            return [ScenarioResult(scenario, m, "skipped", reason=pre_reason) for m in modes]
        if "local" in modes:
            pagecache.evict_tree(os.path.join(self.local_root, datasets.SCENARIO_PART[scenario]))
            self._drop_all()
            out.append(self._run_one(scenario, "local", FileSystemTarget(self.local_root), files))
        if "direct" in modes:
            assert self.client is not None and self.hdfs_root is not None
            self._evict_hdfs()
            target = DirectTarget(self.client, self.hdfs_root, self.cfg.connect_kwargs)
            out.append(self._run_one(scenario, "direct", target, files))
        mount_modes = [m for m in MOUNT_MODES if m in modes]
        if mount_modes:
            reason = None if self.cfg.mountpoint else fuse_unavailable_reason()
            if reason:
                out += [self._run_one(scenario, m, None, files, reason) for m in mount_modes]
                return out
            try:
                with self._mounted(scenario) as mnt:
                    self._evict_hdfs()
                    target = FileSystemTarget(mnt)
                    first = self._run_one(scenario, "mount-cold", target, files)
                    if "mount-cold" in mount_modes:
                        if self.cfg.mountpoint:
                            first.notes["cold"] = ("first pass over an existing mount: its "
                                                   "caches were not cleared by the benchmark")
                        out.append(first)
                    if "mount-warm" in mount_modes:
                        out.append(self._run_one(scenario, "mount-warm", target, files))
            except SetupError as exc:
                done = {r.mode for r in out}
                out += [ScenarioResult(scenario, m, "error", reason=str(exc).splitlines()[0])
                        for m in mount_modes if m not in done]
                log.error("%s", exc)
        if "mount-warmup" in modes:
            out.append(self._warmed_pass(scenario, files))
        return out

    def _warmed_pass(self, scenario: str, files: dict[str, list[Any]]) -> ScenarioResult:
        """The ``mount-warmup`` pass: a fresh mount that warmed the scenario's dataset."""
        if self.cfg.mountpoint:
            return self._run_one(scenario, "mount-warmup", None, files,
                                 "needs a mount the benchmark starts (not --mountpoint)")
        reason = fuse_unavailable_reason()
        if reason:
            return self._run_one(scenario, "mount-warmup", None, files, reason)
        try:
            with self._mounted(scenario, warmup=datasets.SCENARIO_PART[scenario]) as mnt:
                self._evict_hdfs()
                return self._run_one(scenario, "mount-warmup", FileSystemTarget(mnt), files)
        except SetupError as exc:
            log.error("%s", exc)
            return ScenarioResult(scenario, "mount-warmup", "error",
                                  reason=str(exc).splitlines()[0])

    # -- the run ---------------------------------------------------------------------------------
    def run(self, on_result: Callable[[ScenarioResult], None] | None = None) -> RunOutcome:
        cfg = self.cfg
        started, t0 = _now(), time.perf_counter()
        with self.stack:
            prepared = self._setup()
            if cfg.prepare_only:
                return RunOutcome([], None, prepared)
            manifest = datasets.DirStore(self.local_root).read_manifest()
            assert manifest is not None
            results: list[ScenarioResult] = []
            for scenario in cfg.scenarios:
                files = datasets.part_files(manifest, datasets.SCENARIO_PART[scenario])
                for res in self._scenario(scenario, files):
                    results.append(res)
                    if on_result:
                        on_result(res)
            env = describe_environment()
            env["hdfs"] = (self.client.uri if self.client else None)
            env["minidfs"] = isinstance(self.hdfs_server, MiniDfsProcess)
            env["backend"] = (None if self.hdfs_server is None else
                              "hadoop" if isinstance(self.hdfs_server, HadoopDfs) else "minidfs")
            env["mountpoint"] = cfg.mountpoint
            env["mount_defaults"] = _mount_defaults()
            env["mount_flags"] = (None if cfg.mountpoint else
                                  ["--read-only", "--cache-dir", "<fresh per scenario>",
                                   *cfg.mount_args])
        doc = report.build_document(
            results, environment=env, options=cfg.to_dict(), datasets=prepared,
            scenarios=cfg.scenarios, modes=self._modes_for(), started_at=started,
            finished_at=_now(), duration_s=time.perf_counter() - t0)
        return RunOutcome(results, doc, prepared)


def _mount_defaults() -> dict[str, Any] | None:
    """The mount's option defaults, so a result records what the mount was tuned to."""
    try:
        from fuse_mount.options import MountOptions
    except Exception:  # noqa: BLE001 - the mount is optional for local-only runs
        return None
    return {k: v for k, v in asdict(MountOptions()).items()
            if k not in ("pid_file", "log_file", "kerberos_keytab", "kerberos_principal", "user")}


def _wait_for_warmup(log_file: str, timeout: float = 1800.0) -> None:
    """Until the mount's log says its warm-up ended (:data:`_WARMUP_END`)."""
    if wait_for_log(log_file, _WARMUP_END, timeout, poll=0.2) is None:
        raise SetupError(f"the mount's warm-up did not end within {timeout:.0f} s "
                         f"(see {log_file})")


def _remove_tree(path: str) -> None:
    """rmtree that never descends into a mount: unmount what is there, else keep the tree."""
    _found, still = mounts.unmount_under(path)
    if still:
        log.warning("not removing %s: %s still mounted", path, ", ".join(still))
        return
    shutil.rmtree(path, ignore_errors=True)
