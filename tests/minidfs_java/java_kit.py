"""Compile and run the Java client smoke program (tests/java/HdfsJavaSmoke.java).

Why a separate helper: the pytest tier and a developer chasing a minidfs
incompatibility by hand need the same steps (locate jars, compile once per
source hash, run with the right classpath and logging).  Run it directly::

    python tests/minidfs_java/java_kit.py --start            # start a MiniDFS, run all checks
    python tests/minidfs_java/java_kit.py --uri hdfs://127.0.0.1:9000 --only append --debug
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run directly (python tests/minidfs_java/java_kit.py)
    sys.path.insert(0, str(REPO))

from hadoop_cluster import toolchain  # noqa: E402  (the one place that knows the jars)

JAVA_DIR = REPO / "tests" / "java"
SMOKE_SOURCE = JAVA_DIR / "HdfsJavaSmoke.java"
LOG4J_CONFIG = JAVA_DIR / "log4j2.properties"
MAIN_CLASS = "HdfsJavaSmoke"
FETCH_HINT = toolchain.FETCH_HINT

# Small heap, serial GC, C1 only: the box has 2 shared cores and the
# program is short-lived, so startup cost matters more than peak speed.
JVM_OPTS = ["-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"]

BLOCK_SIZE = 1 << 20


def cache_root() -> Path:
    return toolchain.cache_root()


def jars_dir() -> Path:
    return toolchain.jars_dir()


def find_jars() -> list[Path] | None:
    """The Hadoop *client* jars (Maven-resolved, minicluster left out), or None if missing."""
    return toolchain.client_jars()


def skip_reason() -> str | None:
    """Why the Java tier cannot run here, or None (jars not fetched yet are fetched)."""
    return toolchain.skip_reason()


def classpath(classes: Path | None = None) -> str:
    jars = find_jars()
    if jars is None:
        raise RuntimeError(f"Hadoop client jars missing in {jars_dir()}: {FETCH_HINT}")
    return toolchain.classpath(jars, classes)


def compile_smoke() -> Path:
    """Fetch the jars if needed, compile the Java sources once per (sources, jars, javac)."""
    toolchain.resolve_jars()
    jars = find_jars()
    assert jars is not None
    return toolchain.compile_java(sorted(JAVA_DIR.glob("*.java")), jars,
                                  cache_root() / "java-classes", MAIN_CLASS)


def java_command(classes: Path, args: list[str], *, log_level: str = "WARN") -> list[str]:
    return [
        "java", *JVM_OPTS,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dsmoke.log.level={log_level}",
        "-cp", classpath(classes), MAIN_CLASS, *args,
    ]


def java_env(user: str | None = None) -> dict[str, str]:
    """Environment for the JVM: no stray Hadoop config may switch on Kerberos."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HADOOP_CONF_DIR", "HADOOP_HOME", "HADOOP_USER_NAME")}
    if user:
        env["HADOOP_USER_NAME"] = user
    return env


def run_java(classes: Path, args: list[str], *, timeout: float, log_level: str = "WARN",
             user: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(java_command(classes, args, log_level=log_level),
                          capture_output=True, text=True, timeout=timeout, env=java_env(user))


def popen_java(classes: Path, args: list[str], *, log_level: str = "WARN",
               user: str | None = None) -> subprocess.Popen[str]:
    """Start the program with pipes (for the interactive ``hold`` mode)."""
    return subprocess.Popen(java_command(classes, args, log_level=log_level), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=java_env(user))


_CHECK_RE = re.compile(r'^\s*check\("([a-z0-9_]+)",', re.M)
_RESULT_RE = re.compile(r"^(PASS|FAIL) ([a-z0-9_]+)(?:: (.*)| \(\d+ ms\))?$", re.M)


def check_names() -> list[str]:
    """Check names declared in the Java source (no JVM needed: used at collection time)."""
    return _CHECK_RE.findall(SMOKE_SOURCE.read_text(encoding="utf-8"))


@dataclass
class SmokeRun:
    returncode: int
    stdout: str
    stderr: str
    results: dict[str, tuple[str, str]]  # name -> (PASS|FAIL, message)

    def failure_detail(self, name: str) -> str:
        """The stack trace the program printed for ``name`` (stderr section)."""
        m = re.search(rf"^=== {re.escape(name)} (?:failed|timed out).*?^=== end {re.escape(name)}$",
                      self.stderr, re.M | re.S)
        return m.group(0) if m else self.stderr[-4000:]


def run_smoke(classes: Path, uri: str, *, datanodes: int = 1, only: list[str] | None = None,
              timeout: float = 600, check_timeout: int = 90,
              log_level: str = "WARN") -> SmokeRun:
    args = ["smoke", uri, "--datanodes", str(datanodes), "--block-size", str(BLOCK_SIZE),
            "--timeout", str(check_timeout)]
    if only:
        args += ["--only", ",".join(only)]
    try:
        proc = run_java(classes, args, timeout=timeout, log_level=log_level)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc = -1
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        err += f"\n[java_kit] JVM killed after {timeout}s"
    results = {m.group(2): (m.group(1), m.group(3) or "") for m in _RESULT_RE.finditer(out)}
    return SmokeRun(rc, out, err, results)


def _main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--uri", help="run against this hdfs://host:port")
    g.add_argument("--start", action="store_true", help="start a MiniDFS in a temp dir")
    ap.add_argument("--datanodes", type=int, default=1)
    ap.add_argument("--only", help="comma-separated check names")
    ap.add_argument("--debug", action="store_true", help="Hadoop client DEBUG logging on stderr")
    ap.add_argument("--spy", action="store_true",
                    help="log every NameNode RPC through a proxy (see rpcspy_kit.py)")
    a = ap.parse_args()
    reason = skip_reason()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    classes = compile_smoke()
    only = a.only.split(",") if a.only else None
    level = "DEBUG" if a.debug else "WARN"

    def go(uri: str) -> int:
        if a.spy:
            sys.path.insert(0, str(REPO))
            from rpcspy_kit import RpcSpy

            host, port = uri.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
            spy = RpcSpy((host, int(port)))
            uri = f"hdfs://127.0.0.1:{spy.port}"
        r = run_smoke(classes, uri, datanodes=a.datanodes, only=only, log_level=level)
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        return r.returncode

    if a.uri:
        return go(a.uri)
    sys.path.insert(0, str(REPO))
    from minidfs import MiniDFS

    with tempfile.TemporaryDirectory(prefix="minidfs-java-") as d:
        with MiniDFS(d, port=0, datanodes=a.datanodes, block_size=BLOCK_SIZE) as dfs:
            return go(dfs.uri)


if __name__ == "__main__":
    sys.exit(_main())
