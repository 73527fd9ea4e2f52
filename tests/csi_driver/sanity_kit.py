"""Run ``hdfs-csi driver --mode all`` the way an independent CSI conformance suite does,
and run the real one, csi-sanity, against it.

An external suite (csi-sanity or similar) is given one unix socket, a staging
path and a target parent directory under a temporary directory, and a
driver whose ``--hdfs-uri``/``--base-path`` defaults make CreateVolume work
with no parameters and no secrets.  :class:`SanityEnv` builds exactly that:
the driver as a *subprocess*, the paths, and as backend either a minidfs
*subprocess* (the default) or any HDFS given by URI (plus an optional
``HADOOP_CONF_DIR``), e.g. Apache Hadoop's own MiniDFSCluster.  The pytest
fixtures in ``conftest.py`` use it.

:func:`run_csi_sanity` is the whole conformance run as one call: it takes an
HDFS URI and a work directory, starts the driver on it, runs the pinned
csi-sanity binary (``scripts/fetch-csi-sanity.sh`` installs it), parses its
JUnit report and returns a :class:`SanityResult`.  From the command line::

    python tests/csi_driver/sanity_kit.py --csi-sanity [--hdfs-uri hdfs://nn:8020]
    # runs the real suite, prints passed/failed/skipped with csi-sanity's reasons
    python tests/csi_driver/sanity_kit.py
    # prints: --csi.endpoint=... --csi.stagingdir=... --csi.mountdir=... and waits

Everything started is stopped and unmounted on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import grpc  # noqa: E402

from fuse_mount import mounts  # noqa: E402
from minidfs.process import MiniDFSProcess, clean_env  # noqa: E402
from hdfs_csi_pb import csi_pb2, csi_pb2_grpc  # noqa: E402

BASE_PATH = "/k8s/volumes"


class DriverProcess:
    """``hdfs-csi driver`` as a child process on a unix socket."""

    def __init__(self, workdir: str | os.PathLike[str], hdfs_uri: str, *, mode: str = "all",
                 node_id: str = "sanity-node", base_path: str | None = BASE_PATH,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 hadoop_conf_dir: str | os.PathLike[str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / "csi.sock"
        self.endpoint = f"unix://{self.socket}"
        self.state_dir = self.workdir / "state"
        self.log_file = self.workdir / "driver.log"
        self.hdfs_uri = hdfs_uri
        self.mode = mode
        self.node_id = node_id
        self.base_path = base_path
        self.extra_args = list(extra_args)
        self.env = env
        #: the only Hadoop configuration the driver sees (``clean_env`` drops the caller's,
        #: so a stray core-site.xml cannot switch it to Kerberos); a backend with an HA
        #: nameservice or security passes its own here
        self.hadoop_conf_dir = hadoop_conf_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    def command_line(self) -> list[str]:
        cmd = [sys.executable, "-m", "hdfs_csi", "driver", "--mode", self.mode,
               "--endpoint", self.endpoint, "--node-id", self.node_id,
               "--state-dir", str(self.state_dir), "--hdfs-uri", self.hdfs_uri,
               "--log-level", "INFO"]
        if self.base_path:
            cmd += ["--base-path", self.base_path]
        return cmd + self.extra_args

    def start(self, timeout: float = 30.0) -> "DriverProcess":
        env = clean_env(self.env)
        if self.hadoop_conf_dir is not None:
            env["HADOOP_CONF_DIR"] = str(self.hadoop_conf_dir)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=str(REPO), start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"driver exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists():
                try:
                    self.identity().Probe(csi_pb2.ProbeRequest(), timeout=2)
                    return self
                except grpc.RpcError:
                    pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"driver did not answer Probe within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    # -- gRPC -------------------------------------------------------------------------------
    def channel(self) -> grpc.Channel:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.endpoint)
        return self._channel

    def identity(self) -> Any:
        return csi_pb2_grpc.IdentityStub(self.channel())

    def controller(self) -> Any:
        return csi_pb2_grpc.ControllerStub(self.channel())

    def node(self) -> Any:
        return csi_pb2_grpc.NodeStub(self.channel())

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    # -- life cycle -----------------------------------------------------------------------------
    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        self._close_channel()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the driver alone (not its FUSE daemons: they are not its children)."""
        self.stop(signal.SIGKILL)

    def restart(self) -> "DriverProcess":
        self.stop()
        return self.start()


class SanityEnv:
    """Driver subprocess + the two directories a suite uses + an HDFS to serve from.

    Without ``dfs_uri`` a minidfs subprocess is started (and is ``self.dfs``, for
    tests that inject faults); with it, the driver talks to that cluster, which
    the caller owns, and ``hadoop_conf_dir`` (if any) is the driver's
    ``HADOOP_CONF_DIR``.
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 driver_args: Sequence[str] = ("--quota-replication", "1"),
                 block_size: str = "1M", dfs_uri: str | None = None,
                 hadoop_conf_dir: str | os.PathLike[str] | None = None,
                 driver_env: dict[str, str] | None = None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="hdfs-csi-sanity-"))
        self.driver_args = list(driver_args)
        self.block_size = block_size
        self.dfs_uri = dfs_uri
        self.hadoop_conf_dir = hadoop_conf_dir
        self.driver_env = driver_env
        self.dfs: Any = None
        self.driver: DriverProcess | None = None
        self.staging = self.workdir / "csi-staging"
        self.target_parent = self.workdir / "csi-mount"

    @property
    def uri(self) -> str:
        """The HDFS the driver serves from."""
        return self.dfs_uri or self.dfs.uri

    def start(self) -> "SanityEnv":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.dfs_uri is None:
            (self.workdir / "dfs").mkdir(parents=True, exist_ok=True)
            self.dfs = MiniDFSProcess(self.workdir / "dfs", datanodes=1,
                                      block_size=self.block_size,
                                      log_file=str(self.workdir / "minidfs.log")).start()
        try:
            self.driver = DriverProcess(self.workdir / "driver", self.uri,
                                        extra_args=self.driver_args, env=self.driver_env,
                                        hadoop_conf_dir=self.hadoop_conf_dir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            if self.driver is not None:
                self.driver.stop()
        finally:
            unmount_below(self.workdir)
            if self.dfs is not None:
                self.dfs.stop()

    def __enter__(self) -> "SanityEnv":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def mounts_below(path: str | os.PathLike[str]) -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    return [e.mountpoint for e in mounts.mount_table() if e.mountpoint.startswith(prefix)]


def unmount_below(path: str | os.PathLike[str]) -> list[str]:
    """Unmount everything below ``path`` (deepest first); return what was mounted."""
    left = mounts_below(path)
    for mp in sorted(left, key=len, reverse=True):
        with contextlib.suppress(OSError):
            mounts.unmount(mp)
    return left


# == the real csi-sanity ========================================================================

#: what the issue asks for; scripts/fetch-csi-sanity.sh pins the exact version
CSI_SANITY_MIN_VERSION = (5, 4, 0)
CSI_SANITY_MODULE = "github.com/kubernetes-csi/csi-test/v5"
CSI_SANITY_HINT = "run scripts/fetch-csi-sanity.sh"


def csi_sanity_binary() -> Path | None:
    """The installed csi-sanity: ``$CSI_SANITY`` if set, else where the fetch script puts it.

    Not ``csi-sanity`` on PATH: whatever version happens to be there is not the
    one this suite was checked against.
    """
    explicit = os.environ.get("CSI_SANITY")
    if explicit:
        path = Path(explicit)
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(cache, "hdfs-csi", "bin", "csi-sanity")
    return path if path.is_file() and os.access(path, os.X_OK) else None


_BUILDINFO_MOD = re.compile(rb"mod\t" + re.escape(CSI_SANITY_MODULE.encode()) + rb"\t(v[^\t\n]+)\t")


def csi_sanity_version(binary: str | os.PathLike[str]) -> str | None:
    """The csi-test module version the binary was built from (Go build info embedded in it).

    ``csi-sanity -version`` prints "(dev)" for a ``go install``-ed binary, so the
    version is read from the build info, as ``go version -m`` does, without Go.
    """
    match = _BUILDINFO_MOD.search(Path(binary).read_bytes())
    return match.group(1).decode() if match else None


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version.split("-")[0])[:3])


@dataclass(frozen=True)
class SpecResult:
    name: str          #: ginkgo's full spec text, e.g. "Node Service should work"
    status: str        #: passed | skipped | failed (ginkgo's panicked/timedout/... count as failed)
    message: str = ""  #: csi-sanity's skip reason, or the failure message


@dataclass
class SanityResult:
    specs: list[SpecResult]
    returncode: int
    wall_seconds: float
    version: str | None
    seed: str | None          #: ginkgo's random seed (``--ginkgo.seed`` reproduces the order)
    workdir: Path
    junit: Path
    output: Path              #: csi-sanity's own output (--ginkgo.v)
    driver_log: Path
    mounts_left: list[str] = field(default_factory=list)
    paths_left: list[str] = field(default_factory=list)

    def with_status(self, status: str) -> list[SpecResult]:
        return [s for s in self.specs if s.status == status]

    @property
    def passed(self) -> list[SpecResult]:
        return self.with_status("passed")

    @property
    def failed(self) -> list[SpecResult]:
        return self.with_status("failed")

    @property
    def skipped(self) -> list[SpecResult]:
        return self.with_status("skipped")

    def skip_reasons(self) -> dict[str, list[str]]:
        """Skip reason -> the specs skipped for it."""
        reasons: dict[str, list[str]] = {}
        for spec in self.skipped:
            reasons.setdefault(spec.message, []).append(spec.name)
        return dict(sorted(reasons.items()))

    def summary(self) -> str:
        lines = [f"csi-sanity {self.version or '?'} (seed {self.seed}): {len(self.passed)} passed, "
                 f"{len(self.failed)} failed, {len(self.skipped)} skipped, "
                 f"exit {self.returncode}, {self.wall_seconds:.1f} s"]
        for spec in self.failed:
            lines.append(f"  FAILED {spec.name}: {spec.message.strip()[:2000]}")
        lines.append("  skipped, with csi-sanity's reason:")
        for reason, names in self.skip_reasons().items():
            lines.append(f"    {len(names):2d} x {reason}")
        if self.mounts_left:
            lines.append(f"  mounts left behind: {self.mounts_left}")
        if self.paths_left:
            lines.append(f"  paths left behind: {self.paths_left}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "seed": self.seed, "returncode": self.returncode,
                "wall_seconds": round(self.wall_seconds, 2),
                "passed": [s.name for s in self.passed],
                "failed": {s.name: s.message for s in self.failed},
                "skipped": self.skip_reasons(),
                "mounts_left": self.mounts_left, "paths_left": self.paths_left}


_SKIP_PREFIX = "skipped - "


def parse_junit(path: str | os.PathLike[str]) -> tuple[list[SpecResult], str | None]:
    """Ginkgo's JUnit report -> one SpecResult per ``It`` (and per failed suite node), seed."""
    root = ET.parse(path).getroot()
    seed = None
    for prop in root.iter("property"):
        if prop.get("name") == "RandomSeed":
            seed = prop.get("value")
    specs = []
    for case in root.iter("testcase"):
        name = case.get("name", "")
        status = case.get("status", "")
        if name.startswith("[It] "):
            name = name[len("[It] "):]
        elif status == "passed":
            continue                     # ReportAfterSuite & co.: not specs
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if status == "passed" and problem is None:
            specs.append(SpecResult(name, "passed"))
        elif status in ("skipped", "pending") and problem is None:
            skipped = case.find("skipped")
            message = skipped.get("message", status) if skipped is not None else status
            if message.startswith(_SKIP_PREFIX):
                message = message[len(_SKIP_PREFIX):]
            specs.append(SpecResult(name, "skipped", message))
        else:
            specs.append(SpecResult(name, "failed", f"[{status}] {_condense(problem)}"))
    return specs, seed


def _condense(problem: ET.Element | None) -> str:
    """A failure in a few lines: gomega's first line, the gRPC error, where in csi-sanity.

    The full text (a dump of the status struct, twice) stays in the JUnit file.
    """
    if problem is None:
        return ""
    lines = [ln.strip() for ln in (problem.get("message") or "").splitlines() if ln.strip()]
    keep = lines[:1] + [ln for ln in lines[1:] if ln.startswith("rpc error:")][:1]
    keep += [ln.strip() for ln in (problem.text or "").splitlines()
             if ln.strip().startswith("In [")][:1]
    return " | ".join(keep)


def csi_sanity_command(binary: str | os.PathLike[str], env: SanityEnv, junit: Path, *,
                       parameters_file: Path | None = None,
                       seed: int | None = None) -> list[str]:
    """The flags that fit this driver.

    * one endpoint for all three services (``--mode all``);
    * staging and mount directories inside the work directory, which the driver
      was told is the kubelet directory, and which must not exist yet: csi-sanity
      ``mkdir``\\ s both before every spec and removes both after it;
    * csi-sanity's default 10 GiB test volume (a quota, not disk space, so a small
      test cluster is fine) and its default IdempotentCount of 10 (no flag for it);
    * no volume parameters unless given (``--base-path`` makes them unnecessary) and
      no secrets (``--hdfs-user`` is the identity).
    """
    assert env.driver is not None
    cmd = [str(binary), f"--csi.endpoint={env.driver.endpoint}",
           f"--csi.stagingdir={env.staging}", f"--csi.mountdir={env.target_parent}",
           f"--ginkgo.junit-report={junit}", "--ginkgo.no-color", "--ginkgo.v"]
    if parameters_file is not None:
        cmd.append(f"--csi.testvolumeparameters={parameters_file}")
    if seed is not None:
        cmd.append(f"--ginkgo.seed={seed}")
    return cmd


def run_csi_sanity(dfs_uri: str | None, workdir: str | os.PathLike[str], *,
                   hadoop_conf_dir: str | os.PathLike[str] | None = None,
                   driver_args: Sequence[str] = ("--quota-replication", "1"),
                   volume_parameters: Mapping[str, str] | None = None,
                   binary: str | os.PathLike[str] | None = None, seed: int | None = None,
                   timeout: float = 600.0) -> SanityResult:
    """Run the real csi-sanity against ``hdfs-csi driver --mode all`` on ``dfs_uri``.

    ``dfs_uri=None`` starts a minidfs subprocess in ``workdir`` (and stops it);
    otherwise the cluster is the caller's.  The driver is confined to ``workdir``
    with ``--kubelet-dir``, as a DaemonSet confines it to /var/lib/kubelet.
    Mounts still present when csi-sanity exits are recorded (then removed).
    Raises FileNotFoundError if csi-sanity is not installed.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    exe = Path(binary) if binary is not None else csi_sanity_binary()
    if exe is None or not exe.is_file():
        raise FileNotFoundError(f"csi-sanity not installed: {CSI_SANITY_HINT}")
    junit = workdir / "csi-sanity-junit.xml"
    output = workdir / "csi-sanity.log"
    parameters_file = None
    if volume_parameters:
        parameters_file = workdir / "volume-parameters.yaml"
        parameters_file.write_text(json.dumps(dict(volume_parameters)))   # JSON is YAML
    env = SanityEnv(workdir, dfs_uri=dfs_uri, hadoop_conf_dir=hadoop_conf_dir,
                    driver_args=[*driver_args, "--kubelet-dir", str(workdir.resolve())])
    env.start()
    try:
        assert env.driver is not None
        cmd = csi_sanity_command(exe, env, junit, parameters_file=parameters_file, seed=seed)
        started = time.monotonic()
        with open(output, "wb") as out:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=str(workdir), timeout=timeout)
        wall = time.monotonic() - started
        mounts_left = mounts_below(workdir)
        paths_left = [str(p) for p in (env.staging, env.target_parent) if p.exists()]
        driver_log = env.driver.log_file
    finally:
        env.stop()
    if not junit.exists():
        raise RuntimeError(f"csi-sanity exited {proc.returncode} without a JUnit report:\n"
                           + output.read_text(errors="replace")[-4000:])
    specs, used_seed = parse_junit(junit)
    result = SanityResult(specs=specs, returncode=proc.returncode, wall_seconds=wall,
                          version=csi_sanity_version(exe), seed=used_seed, workdir=workdir,
                          junit=junit, output=output, driver_log=driver_log,
                          mounts_left=mounts_left, paths_left=paths_left)
    (workdir / "csi-sanity-summary.json").write_text(json.dumps(result.as_json(), indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--hdfs-uri", default=None,
                        help="serve from this HDFS instead of a fresh minidfs subprocess")
    parser.add_argument("--hadoop-conf-dir", default=None, help="HADOOP_CONF_DIR for the driver")
    parser.add_argument("--csi-sanity", action="store_true",
                        help="run the real csi-sanity and print its result (exit 1 on failure)")
    parser.add_argument("--seed", type=int, default=None, help="ginkgo seed for --csi-sanity")
    args = parser.parse_args(argv)
    if args.csi_sanity:
        workdir = args.workdir or tempfile.mkdtemp(prefix="hdfs-csi-sanity-")
        result = run_csi_sanity(args.hdfs_uri, workdir, hadoop_conf_dir=args.hadoop_conf_dir,
                                seed=args.seed)
        print(result.summary())
        print(f"report: {result.junit}\ndriver log: {result.driver_log}")
        return 0 if result.returncode == 0 and not result.failed and not result.mounts_left else 1
    env = SanityEnv(args.workdir, dfs_uri=args.hdfs_uri,
                    hadoop_conf_dir=args.hadoop_conf_dir).start()
    assert env.driver is not None
    print(f"--csi.endpoint={env.driver.endpoint} --csi.stagingdir={env.staging} "
          f"--csi.mountdir={env.target_parent}", flush=True)
    print("driver log:", env.driver.log_file, "- Ctrl-C to stop", flush=True)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        env.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
