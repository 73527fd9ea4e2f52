"""Fetching Hadoop's jars with Maven and compiling our launcher with javac.

Why Maven: Maven Central is the one place Hadoop publishes its
``hadoop-client-minicluster`` (a real NameNode and DataNode in one jar) and
the shaded client, so ``java/pom.xml`` names what we need and
``mvn dependency:copy-dependencies`` lays it out as one flat jar directory.
The same directory serves both the ``hadoop`` backend and the Java client
tier (``tests/minidfs_java``), which uses it without the minicluster jar.

Everything lives under ``${XDG_CACHE_HOME:-~/.cache}/hdfs-csi``:

* ``m2/``                      Maven's local repository (downloads, reused);
* ``hadoop/jars/``             the runtime jars, plus ``.pom-sha256`` naming the pom
                               they came from (a changed pom re-resolves);
* ``hadoop/classes/<hash>/``   the compiled launcher, one directory per
                               (source, jar set, javac) so edits recompile once.

Both steps are idempotent, take a lock (tests on several workers may start
at once) and publish by rename, so a half-written cache is never used.
``HADOOP_JARS_DIR`` points at a ready jar directory instead (no Maven then).

Run ``python -m hadoop_cluster.toolchain`` (what ``scripts/fetch-hadoop.sh``
does) to fetch and compile ahead of time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

JAVA_DIR = Path(__file__).resolve().parent / "java"
POM = JAVA_DIR / "pom.xml"
LAUNCHER_SOURCE = JAVA_DIR / "HdfsCsiMiniCluster.java"
LAUNCHER_CLASS = "HdfsCsiMiniCluster"
LOG4J_CONFIG = JAVA_DIR / "log4j2.properties"
FETCH_HINT = "run scripts/fetch-hadoop.sh"

#: jars that must be present for the directory to count as complete
CLIENT_JARS = ("hadoop-client-api-", "hadoop-client-runtime-", "slf4j-api-")
CLUSTER_JARS = (*CLIENT_JARS, "hadoop-client-minicluster-")

MAVEN_TIMEOUT = 900.0   # a cold ~115 MB download on a slow link
JAVAC_TIMEOUT = 300.0


class ToolchainError(RuntimeError):
    """Fetching or compiling failed although the tools are there (the message says why)."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hdfs-csi"


def maven_repo() -> Path:
    return cache_root() / "m2"


def jars_dir() -> Path:
    override = os.environ.get("HADOOP_JARS_DIR")
    return Path(override) if override else cache_root() / "hadoop" / "jars"


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def _stamp() -> Path:
    return jars_dir() / ".pom-sha256"


def _jars(required: tuple[str, ...]) -> list[Path] | None:
    d = jars_dir()
    jars = sorted(d.glob("*.jar")) if d.is_dir() else []
    names = [j.name for j in jars]
    if all(any(n.startswith(p) for n in names) for p in required):
        return jars
    return None


def jars_current() -> bool:
    """The jar directory is complete and was resolved from today's pom."""
    if _jars(CLUSTER_JARS) is None:
        return False
    if os.environ.get("HADOOP_JARS_DIR"):
        return True  # someone else's directory: no pom to compare with
    try:
        return _stamp().read_text().strip() == _pom_digest()
    except OSError:
        return False


def client_jars() -> list[Path] | None:
    """The jars a Hadoop *client* needs (no minicluster), or None if not fetched."""
    jars = _jars(CLIENT_JARS)
    if jars is None:
        return None
    return [j for j in jars if not j.name.startswith("hadoop-client-minicluster-")]


def cluster_jars() -> list[Path] | None:
    """Every jar, minicluster included, or None if not fetched."""
    return _jars(CLUSTER_JARS)


def missing_tools(*, need_maven: bool) -> str | None:
    """Why we cannot go on here (a missing JDK or Maven), or None."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found on PATH (install a JDK 11+, e.g. openjdk-17-jdk-headless)"
    if need_maven and shutil.which("mvn") is None:
        return ("`mvn` not found on PATH and the Hadoop jars are not cached in "
                f"{jars_dir()} (install maven, then {FETCH_HINT})")
    return None


def skip_reason() -> str | None:
    """Why the ``hadoop`` backend cannot run on this machine, or None.

    Jars that are not fetched yet are not a reason as long as Maven is here:
    :func:`ensure` fetches them (once, into the cache).
    """
    if os.environ.get("HADOOP_JARS_DIR") and not jars_current():
        return (f"HADOOP_JARS_DIR={jars_dir()} lacks the Hadoop jars "
                f"(unset it to use the cache, or {FETCH_HINT})")
    return missing_tools(need_maven=not jars_current())


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def resolve_jars() -> Path:
    """Fetch the jars named by ``java/pom.xml`` unless today's are cached; return the dir."""
    if jars_current():
        return jars_dir()
    if os.environ.get("HADOOP_JARS_DIR"):
        raise ToolchainError(f"HADOOP_JARS_DIR={jars_dir()} lacks the Hadoop jars "
                             f"({', '.join(p + '*.jar' for p in CLUSTER_JARS)})")
    reason = missing_tools(need_maven=True)
    if reason:
        raise ToolchainError(reason)
    with _locked("hadoop-jars"):
        if jars_current():  # another process finished while we waited
            return jars_dir()
        dest = jars_dir()
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".jars-", dir=dest.parent))
        tmp.chmod(0o755)  # mkdtemp makes 0700; other users may run the tests
        try:
            cmd = ["mvn", "-q", "-B", "-Dstyle.color=never", f"-Dmaven.repo.local={maven_repo()}",
                   "-f", str(POM), "dependency:copy-dependencies",
                   f"-DoutputDirectory={tmp}", "-DincludeScope=runtime"]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MAVEN_TIMEOUT,
                                      cwd=tmp, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise ToolchainError(f"mvn did not finish in {MAVEN_TIMEOUT:.0f}s") from None
            if proc.returncode != 0:
                tail = (proc.stdout + proc.stderr)[-4000:]
                raise ToolchainError(f"mvn dependency:copy-dependencies failed "
                                     f"(exit {proc.returncode}):\n{tail}")
            # copy-dependencies with cwd=tmp may leave a target/ there; keep jars only
            for p in tmp.iterdir():
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
            (tmp / ".pom-sha256").write_text(_pom_digest() + "\n")
            old = None
            if dest.exists():
                old = Path(tempfile.mkdtemp(prefix=".jars-old-", dir=dest.parent))
                os.rename(dest, old / "jars")
            os.rename(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if not jars_current():
        raise ToolchainError(f"mvn ran but {dest} lacks the Hadoop jars")
    return dest


def classpath(jars: list[Path], classes: Path | None = None) -> str:
    return os.pathsep.join(([str(classes)] if classes else []) + [str(j) for j in jars])


def compile_java(sources: list[Path], jars: list[Path], out_root: Path, main_class: str) -> Path:
    """javac ``sources`` against ``jars`` once per (sources, jars, javac); return the dir."""
    javac = shutil.which("javac")
    if javac is None:
        raise ToolchainError(missing_tools(need_maven=False) or "javac not found")
    h = hashlib.sha256()
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    for j in jars:
        h.update(j.name.encode() + b"\0")
    h.update(os.path.realpath(javac).encode())
    out = out_root / h.hexdigest()[:16]
    if (out / f"{main_class}.class").exists():
        return out
    out_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".javac-", dir=out_root))
    tmp.chmod(0o755)
    proc = subprocess.run(
        [javac, "-nowarn", "-encoding", "UTF-8", "-d", str(tmp), "-cp", classpath(jars),
         *map(str, sources)],
        capture_output=True, text=True, timeout=JAVAC_TIMEOUT, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ToolchainError(f"javac failed:\n{proc.stdout}{proc.stderr}")
    try:
        tmp.rename(out)  # atomic publish; a concurrent compiler may have won
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def compile_launcher() -> Path:
    """Compile the launcher (once per source) and return its jar.

    A jar, not the classes directory, because class-data sharing (below) only
    archives classes loaded from jar files.
    """
    jars = cluster_jars()
    if jars is None:
        raise ToolchainError(f"Hadoop jars missing in {jars_dir()}: {FETCH_HINT}")
    classes = compile_java([LAUNCHER_SOURCE], jars, cache_root() / "hadoop" / "classes",
                           LAUNCHER_CLASS)
    jar = classes / "launcher.jar"
    if not jar.exists():
        import zipfile

        tmp = classes / f".launcher-{os.getpid()}.jar"
        with zipfile.ZipFile(tmp, "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for cls in sorted(classes.glob("*.class")):
                z.write(cls, cls.name)
        os.replace(tmp, jar)
    return jar


def ensure() -> tuple[Path, str]:
    """Fetch and compile as needed; return (launcher jar, full classpath)."""
    reason = skip_reason()
    if reason:
        raise ToolchainError(reason)
    resolve_jars()
    launcher = compile_launcher()
    jars = cluster_jars()
    assert jars is not None
    return launcher, classpath([launcher, *jars])


# -- class-data sharing ----------------------------------------------------------------
# Loading ~100 MB of Hadoop classes is most of a cold start on two cores.  A
# dynamic CDS archive (JDK 13+) of the classes a cluster start loads makes
# every later start cheaper (measured ~25% under load).  It is built once by
# scripts/fetch-hadoop.sh and named after the exact classpath (names, sizes,
# mtimes) and JVM, so a changed jar simply finds no archive; the JVM also
# checks it itself and, with -Xshare:auto, runs without it on any mismatch.

def cds_archive() -> Path:
    _, cp = ensure()
    h = hashlib.sha256(os.path.realpath(shutil.which("java") or "java").encode())
    for entry in cp.split(os.pathsep):
        st = os.stat(entry)
        h.update(f"{entry}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return cache_root() / "hadoop" / "cds" / f"{h.hexdigest()[:16]}.jsa"


def build_cds_archive(timeout: float = 600.0) -> Path | None:
    """Start and stop a one-DataNode cluster once with -XX:ArchiveClassesAtExit; the archive."""
    target = cds_archive()
    if target.exists():
        return target
    with _locked("hadoop-cds"):
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="cds-", dir=target.parent) as work:
            tmp = Path(work) / "archive.jsa"
            cmd = launcher_command(["--base-dir", os.path.join(work, "dfs"), "--datanodes", "1",
                                    "--block-size", str(1 << 20)],
                                   jvm_options=(f"-XX:ArchiveClassesAtExit={tmp}",), cds=False)
            try:
                proc = subprocess.run(cmd, input="status\nshutdown\n", capture_output=True,
                                      text=True, timeout=timeout, cwd=work)
            except subprocess.TimeoutExpired:
                return None
            if proc.returncode != 0 or not tmp.exists():
                return None
            os.replace(tmp, target)
    return target


# Small heap, serial GC, C1 only: the machines have two shared cores, and a
# test cluster lives minutes, so start-up cost matters more than peak speed.
# JVM warnings and unified logging go to stderr: stdout is the launcher's protocol.

# The --add-opens are what Hadoop's own JDK 17 test runs pass (reflection into
# java.base for direct buffers, Kerberos config reloads in secure mode).
JVM_OPTS = (
    "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xss512k",
    "-XX:+DisplayVMOutputToStderr", "-Xlog:disable", "-Xlog:all=warning:stderr",
    "-Djava.net.preferIPv4Stack=true",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/sun.security.util=ALL-UNNAMED",
    "--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
)


def launcher_command(args: list[str], *, heap: str = "768m", log_level: str = "WARN",
                     jvm_options: tuple[str, ...] = (), cds: bool = True) -> list[str]:
    """The ``java`` command line that runs the launcher with ``args`` (fetches/compiles first)."""
    _, cp = ensure()
    share: list[str] = []
    if cds:
        archive = cds_archive()
        if archive.exists():
            share = [f"-XX:SharedArchiveFile={archive}"]
    return ["java", f"-Xmx{heap}", *JVM_OPTS, *share,
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dhdfscsi.log.level={log_level}",
            *jvm_options, "-cp", cp, LAUNCHER_CLASS, *args]


def _main() -> int:
    import time

    t0 = time.monotonic()
    try:
        fetched = not jars_current()
        launcher, _ = ensure()
        archive = build_cds_archive()
    except ToolchainError as exc:
        print(f"fetch-hadoop: {exc}", file=sys.stderr)
        return 1
    what = "fetched" if fetched else "cached"
    print(f"hadoop jars {what}: {jars_dir()}\nlauncher: {launcher}\n"
          f"class-data archive: {archive or 'not built (the JVM refused; starts are slower)'} "
          f"({time.monotonic() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
