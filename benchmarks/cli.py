"""``hdfs-csi bench``: what does the mount deliver, compared with direct HDFS and local disk?

Examples::

    hdfs-csi bench --quick                          # minidfs, all scenarios, < 2 min
    hdfs-csi bench --profile remote-1g              # minidfs throttled like a 1 GbE cluster
    hdfs-csi bench --quick --backend hadoop         # Apache Hadoop's HDFS (MiniDFSCluster, JVM)
    hdfs-csi bench --hdfs-uri hdfs://nn:8020 --user alice --hdfs-path /tmp/bench
    hdfs-csi bench --mountpoint /data --mount-subdir bench   # a mount made by the CSI driver
    hdfs-csi bench --prepare --hdfs-uri hdfs://nn:8020       # only put the dataset in place

The table goes to stdout; progress bars and logs to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from typing import Any

from hdfs_csi_common.logsetup import setup_logging
from hdfs_csi_common.units import parse_duration, parse_size

from benchmarks import report
from benchmarks.environment import PROFILES, SetupError
from benchmarks.runner import DEFAULT_MODES, MODES, Bench, BenchConfig
from benchmarks.scenarios import ALL, NAMES, ScenarioOptions

log = logging.getLogger("benchmarks")


def _csv(choices: tuple[str, ...]) -> Any:
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        if items == ["all"]:
            return list(choices)
        bad = [x for x in items if x not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(
                f"choose from {', '.join(choices)} (comma-separated) or 'all'; got {text!r}")
        return list(dict.fromkeys(items))
    return parse


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("Scenarios: seq (large shards, sequential), small (~110 KB files, shuffled), "
                     "meta (stat/list trees), dataloader (PyTorch DataLoader), parquet "
                     "(pyarrow.dataset scan); only when named: tfdata (tf.data.TFRecordDataset; "
                     "needs TensorFlow: HDFS_CSI_TF=yes scripts/setup.sh). Modes: local, direct, "
                     "mount-cold, mount-warm; only when named: mount-warmup. See BENCHMARKS.md.")
    g = parser.add_argument_group("what to run")
    size = g.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="tier", action="store_const", const="quick",
                      help="small datasets (CI; under 2 minutes on 2 cores)")
    size.add_argument("--full", dest="tier", action="store_const", const="full",
                      help="full-size datasets (several minutes; the default)")
    parser.set_defaults(tier="full")
    g.add_argument("--scenarios", type=_csv(ALL), default=list(NAMES),
                   help="comma-separated scenarios, or 'all' (default: all but tfdata)")
    g.add_argument("--modes", type=_csv(MODES), default=list(DEFAULT_MODES),
                   help="comma-separated modes, or 'all'; mount-warmup (the first epoch "
                        "after the mount's own warm-up) runs only when named or with 'all'")
    g.add_argument("--seed", type=int, default=42, help="dataset content and shuffle order")
    g.add_argument("--prepare", action="store_true",
                   help="only generate/upload the datasets (reusing what matches), then exit")
    g.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)  # tiny test runs

    w = parser.add_argument_group("where")
    w.add_argument("--hdfs-uri", help="a real cluster (hdfs://nn:port); default: start minidfs")
    w.add_argument("--backend", choices=("minidfs", "hadoop"), default="minidfs",
                   help="the HDFS to start when no --hdfs-uri: minidfs (embedded, default) or "
                        "hadoop (Apache Hadoop's MiniDFSCluster in a JVM; needs a JDK and "
                        "scripts/fetch-hadoop.sh)")
    w.add_argument("--hdfs-path", default="/benchmarks/hdfs-csi-bench",
                   help="HDFS directory holding the datasets (one subdirectory per size)")
    w.add_argument("--mountpoint", help="an existing mount to measure (e.g. made by the CSI "
                   "driver); only mount modes and local run")
    w.add_argument("--allow-plain-directory", action="store_true",
                   help="measure --mountpoint even though it is not a mount point (by default "
                        "a plain directory is refused: it would measure the local disk)")
    w.add_argument("--mount-subdir", help="dataset directory inside --mountpoint "
                   "(default: hdfs-csi-bench/<size>)")
    w.add_argument("--profile", choices=sorted(PROFILES), default="local",
                   help="throttle minidfs like a remote cluster: " + "; ".join(
                       f"{p.name}: {p.description}" for p in PROFILES.values()))
    w.add_argument("--minidfs-block-size", type=parse_size, default=None,
                   help="HDFS block size of the started backend (default 8M quick, 64M full)")
    w.add_argument("--user", help="HDFS simple-auth user")
    w.add_argument("--kerberos-principal", help="Kerberos principal to read HDFS as (with "
                   "--kerberos-keytab)")
    w.add_argument("--kerberos-keytab", help="keytab file of --kerberos-principal")
    w.add_argument("--data-dir", default=os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "hdfs-csi-bench"),
        help="local dataset copies and minidfs storage, reused across runs")
    w.add_argument("--work-dir", help="mountpoints and mount caches (default: a temp dir)")
    w.add_argument("--drop-caches", action="store_true",
                   help="also drop the whole machine's page cache before cold passes (root; "
                        "slows other processes). By default only the benchmark's own files "
                        "are evicted, with posix_fadvise")

    m = parser.add_argument_group("mount options (passed to hdfs-csi mount)")
    m.add_argument("--cache-size", help="disk cache bound, e.g. 2G")
    m.add_argument("--read-ahead-max", help="read-ahead window bound, e.g. 64M")
    m.add_argument("--metadata-ttl", help="attribute/listing cache TTL in seconds")
    m.add_argument("--mount-args", default="", help="more arguments for hdfs-csi mount (quoted)")

    s = parser.add_argument_group("scenario knobs")
    s.add_argument("--block-size", type=parse_size, default=1 << 20,
                   help="read() size for sequential and whole-file reads")
    s.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    s.add_argument("--batch-size", type=int, default=32, help="DataLoader batch size")
    s.add_argument("--compute-ms", type=parse_duration_ms, default=0.0,
                   help="simulated accelerator time per batch (ms); reports accelerator "
                        "utilisation (ResNet-50 on an H100: ~20 ms per 32 images)")

    o = parser.add_argument_group("output")
    o.add_argument("--json", dest="json_path", help="write every figure here "
                   "(default bench-results/<size>.json)")
    o.add_argument("--plot", dest="plot_path", help="write the ratio chart here "
                   "(default bench-results/<size>.png)")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")
    o.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default WARNING)")
    parser.set_defaults(func=run)


def parse_duration_ms(text: str) -> float:
    """``--compute-ms 20`` means 20 ms; a unit (``0.02s``) is honoured too."""
    t = text.strip()
    return parse_duration(t if t[-1:].isalpha() else t + "ms") * 1000


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    connect_kwargs: dict[str, Any] = {}
    if args.user:
        connect_kwargs["user"] = args.user
    if args.kerberos_principal:
        connect_kwargs["kerberos_principal"] = args.kerberos_principal
        connect_kwargs["kerberos_keytab"] = args.kerberos_keytab
    mount_args: list[str] = []
    for flag, value in (("--cache-size", args.cache_size),
                        ("--read-ahead-max", args.read_ahead_max),
                        ("--metadata-ttl", args.metadata_ttl)):
        if value:
            mount_args += [flag, str(value)]
    if args.user:
        mount_args += ["--user", args.user]
    if args.kerberos_principal:
        mount_args += ["--kerberos-principal", args.kerberos_principal,
                       "--kerberos-keytab", args.kerberos_keytab]
    mount_args += shlex.split(args.mount_args or "")
    if args.workers < 0 or args.batch_size < 1:
        raise SystemExit("hdfs-csi bench: --workers must be >= 0 and --batch-size >= 1")
    if bool(args.kerberos_principal) != bool(args.kerberos_keytab):
        raise SystemExit("hdfs-csi bench: --kerberos-principal and --kerberos-keytab go together")
    if args.scale <= 0:
        raise SystemExit("hdfs-csi bench: --scale must be positive")
    if args.mountpoint and args.hdfs_uri:
        raise SystemExit("hdfs-csi bench: give --mountpoint or --hdfs-uri, not both")
    if args.mountpoint:
        _check_mountpoint(args.mountpoint, args.allow_plain_directory)
    if args.backend != "minidfs" and (args.mountpoint or args.hdfs_uri):
        raise SystemExit("hdfs-csi bench: --backend picks the HDFS to start; it does not go "
                         "with --hdfs-uri or --mountpoint")
    if args.backend == "hadoop" and args.profile != "local":
        raise SystemExit("hdfs-csi bench: --profile throttles minidfs only; Hadoop's DataNode "
                         "cannot be throttled (use --profile local with --backend hadoop)")
    progress = not args.no_progress and sys.stderr.isatty()
    return BenchConfig(
        tier=args.tier, scale=args.scale, scenarios=args.scenarios, modes=args.modes,
        seed=args.seed, data_dir=args.data_dir, work_dir=args.work_dir, hdfs_uri=args.hdfs_uri,
        hdfs_path=args.hdfs_path, mountpoint=args.mountpoint, mount_subdir=args.mount_subdir,
        profile=args.profile, backend=args.backend, minidfs_block_size=args.minidfs_block_size,
        connect_kwargs=connect_kwargs, mount_args=mount_args,
        options=ScenarioOptions(block_size=args.block_size, seed=args.seed, workers=args.workers,
                                batch_size=args.batch_size, compute_s=args.compute_ms / 1000),
        prepare_only=args.prepare, progress=progress, drop_caches=args.drop_caches,
    )


def _check_mountpoint(path: str, allow_plain: bool) -> None:
    """--mountpoint must be a mount that exists: never create it, and never measure
    the local disk under the name of "mount" (a typo in the path would otherwise
    fill the root filesystem with benchmark data and report it as the mount)."""
    if not os.path.isdir(path):
        what = "is not a directory" if os.path.exists(path) else "does not exist"
        raise SystemExit(f"hdfs-csi bench: --mountpoint {path} {what}; give the directory "
                         "where the volume is mounted (the bench never creates it)")
    if not os.path.ismount(path) and not allow_plain:
        raise SystemExit(f"hdfs-csi bench: --mountpoint {path} is not a mount point, so it "
                         "would measure the local disk; give the mount's own directory, or "
                         "--allow-plain-directory to measure it anyway")


def _sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    setup_logging(args.log_level or os.environ.get("HDFS_CSI_LOG_LEVEL") or "WARNING",
                  component="hdfs-csi-bench")
    cfg = config_from_args(args)
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        outcome = Bench(cfg).run()
    except KeyboardInterrupt:
        print("hdfs-csi bench: interrupted; mounts and the HDFS it started were torn down",
              file=sys.stderr)
        return 130
    except SetupError as exc:
        print(f"hdfs-csi bench: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, old)
    if cfg.prepare_only:
        for p in outcome.prepared:
            print(f"{p['where']}: {p['part']}: {p['action']} ({p['files']} files, "
                  f"{p['bytes'] / 1e6:,.1f} MB)")
        return 0
    print(report.format_table(outcome.results))
    name = cfg.result_name()
    json_path = args.json_path or os.path.join("bench-results", f"{name}.json")
    plot_path = args.plot_path or os.path.join("bench-results", f"{name}.png")
    assert outcome.document is not None
    report.write_json(json_path, outcome.document)
    title = (f"hdfs-csi bench ({name}, profile {cfg.profile}, "
             f"{outcome.document['environment']['cpu_count']} CPUs)")
    report.plot(plot_path, outcome.results, title=title)
    print(f"\nJSON: {json_path}\nchart: {plot_path}")
    errors = [r for r in outcome.results if r.status == "error"]
    if errors:
        print(f"hdfs-csi bench: {len(errors)} pass(es) failed: "
              + "; ".join(f"{r.scenario}/{r.mode}: {r.reason}" for r in errors), file=sys.stderr)
        return 1
    return 0
