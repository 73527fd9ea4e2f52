"""A throwaway MIT Kerberos KDC for tests: Debian's ``krb5kdc`` on a loopback port.

Why MIT's KDC and not Hadoop's MiniKdc: it is the KDC real clusters run,
and its clients (``libgssapi_krb5``, which hdfs-native and
:mod:`hdfs_client.rpc_sasl` load) are the ones that must get tickets from
it.  ``scripts/fetch-kerberos.sh`` installs it; nothing global is touched:

* the realm lives in one directory (0700): ``kdc.conf``, ``krb5.conf``, the
  database, its stash, the KDC's log, and the keytabs made for tests;
* every tool runs with ``KRB5_CONFIG`` / ``KRB5_KDC_PROFILE`` pointing there
  (``/etc/krb5.conf`` is never read or edited); Java clients get
  ``-Djava.security.krb5.conf`` (:meth:`MitKdc.jvm_options`) because the JVM
  ignores ``KRB5_CONFIG``;
* ``krb5kdc -n`` stays in the foreground as our child on a free port
  (UDP and TCP), and :meth:`MitKdc.stop` waits for it to exit.

No secret is ever on a command line: principals get random keys
(``addprinc -randkey``) that only ever exist in the database and in the
keytabs ``ktadd`` writes, and the database master password (random, used
once) is fed to ``kdb5_util`` on stdin.

Ticket lifetimes: the realm's ``max_life`` bounds every ticket; a principal
made with ``max_life=60`` gets at most one-minute tickets (a TGT's lifetime is
the minimum of the client's and ``krbtgt``'s limits), and with
``max_renewable_life = 0`` nothing is renewable, so a client that outlives
its ticket must log in again from its keytab.  ``clockskew`` is cut from
MIT's and Java's 300 s to a few seconds so that a server really refuses an
expired ticket instead of granting five minutes of grace.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

FETCH_HINT = "run scripts/fetch-kerberos.sh"
DEFAULT_REALM = "HDFS-CSI.TEST"
#: Debian installs the KDC tools in /usr/sbin, which a non-login shell's PATH may lack
_SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class KdcError(RuntimeError):
    """The KDC or one of its tools failed (the message says which and why)."""


def find_tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in _SBIN:
        path = os.path.join(d, name)
        if os.access(path, os.X_OK):
            return path
    return None


def unavailable_reason() -> str | None:
    """Why no KDC can run here (a tool missing), or None."""
    missing = [t for t in ("krb5kdc", "kdb5_util", "kadmin.local") if find_tool(t) is None]
    if missing:
        return f"MIT Kerberos KDC tools missing ({', '.join(missing)}): {FETCH_HINT}"
    return None


def _free_port(host: str) -> int:
    """A port free for both TCP and UDP on ``host`` right now (the KDC binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
            return port
    raise KdcError("no port free for both TCP and UDP")


class MitKdc:
    """One realm, one ``krb5kdc`` process.

    >>> with MitKdc() as kdc:
    ...     keytab = kdc.add_principal("alice", max_life=60)
    ...     env = kdc.client_env()          # KRB5_CONFIG for clients

    ``root_dir=None`` uses a temporary directory removed on :meth:`stop`.
    ``max_life`` (seconds) is the realm's ticket limit; per-principal limits
    come with :meth:`add_principal`.
    """

    def __init__(self, root_dir: str | os.PathLike[str] | None = None, *,
                 realm: str = DEFAULT_REALM, host: str = "127.0.0.1", max_life: int = 10 * 3600,
                 clockskew: int = 5, startup_timeout: float = 20.0):
        if not re.fullmatch(r"[A-Z0-9][A-Z0-9.-]*", realm):
            raise ValueError(f"realm {realm!r}: use upper-case letters, digits, '.' and '-'")
        self._own_dir = root_dir is None
        self.root = Path(root_dir) if root_dir is not None else \
            Path(tempfile.mkdtemp(prefix="hdfs-csi-kdc-"))
        self.realm = realm
        self.host = host
        self.max_life = int(max_life)
        self.clockskew = int(clockskew)
        self.startup_timeout = startup_timeout
        self.port = 0
        self.kdc_conf = self.root / "kdc.conf"
        self.krb5_conf = self.root / "krb5.conf"
        self.log_file = self.root / "kdc.log"
        self.keytab_dir = self.root / "keytabs"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0

    # -- names and environments ----------------------------------------------------
    def principal(self, name: str) -> str:
        """``name@REALM`` (a name that already has a realm is returned as it is)."""
        return name if "@" in name else f"{name}@{self.realm}"

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) plus what a Kerberos client needs."""
        env = dict(os.environ if base is None else base)
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env.pop("KRB5CCNAME", None)         # never a ticket cache of the host's
        env.pop("KRB5_CLIENT_KTNAME", None)
        env.pop("KRB5_KTNAME", None)
        return env

    def admin_env(self) -> dict[str, str]:
        env = self.client_env()
        env["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), *_SBIN])
        return env

    def jvm_options(self) -> list[str]:
        """JVM flags for Hadoop's servers/clients: the JVM reads no ``KRB5_CONFIG``."""
        return [f"-Djava.security.krb5.conf={self.krb5_conf}",
                "-Dsun.security.krb5.debug=false",
                # the realm's KDC is on loopback; no DNS lookups for realms or KDCs
                "-Dsun.security.krb5.disableReferrals=true"]

    # -- configuration files ----------------------------------------------------------
    def _write(self, path: Path, text: str, mode: int = 0o644) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)

    def _write_confs(self) -> None:
        r = self.root
        self._write(self.kdc_conf, f"""\
[kdcdefaults]
 kdc_listen = {self.host}:{self.port}
 kdc_tcp_listen = {self.host}:{self.port}

[realms]
 {self.realm} = {{
  database_name = {r}/principal
  key_stash_file = {r}/stash
  acl_file = {r}/kadm5.acl
  max_life = {self.max_life}s
  max_renewable_life = 0s
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}

[logging]
 kdc = FILE:{self.log_file}
 default = FILE:{r}/kadmin.log
""", 0o600)
        self._write(self.krb5_conf, f"""\
[libdefaults]
 default_realm = {self.realm}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
 clockskew = {self.clockskew}
 ticket_lifetime = {self.max_life}s
 renew_lifetime = 0s
 forwardable = false

[realms]
 {self.realm} = {{
  kdc = {self.host}:{self.port}
 }}

[domain_realm]
 localhost = {self.realm}
 .localhost = {self.realm}
 127.0.0.1 = {self.realm}
""")

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> MitKdc:
        if self.proc is not None and self.proc.poll() is None:
            return self
        reason = unavailable_reason()
        if reason:
            raise KdcError(reason)
        t0 = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.keytab_dir.mkdir(mode=0o700, exist_ok=True)
        last_error = ""
        for _attempt in range(3):   # another process may take the port between pick and bind
            self.port = _free_port(self.host)
            self._write_confs()
            if not (self.root / "principal").exists():
                self._create_database()
            try:
                self._launch()
                break
            except KdcError as exc:
                last_error = str(exc)
        else:
            raise KdcError(f"krb5kdc did not start: {last_error}")
        self.startup_seconds = time.monotonic() - t0
        return self

    def _create_database(self) -> None:
        master = secrets.token_urlsafe(24)
        self._run([find_tool("kdb5_util") or "kdb5_util", "create", "-s", "-r", self.realm],
                  stdin=f"{master}\n{master}\n")
        (self.root / "kadm5.acl").write_text("")

    def _launch(self) -> None:
        log = open(self.root / "krb5kdc.out", "ab")
        try:
            self.proc = subprocess.Popen(
                [find_tool("krb5kdc") or "krb5kdc", "-n", "-r", self.realm],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.admin_env(), cwd=str(self.root))
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise KdcError(f"krb5kdc exited with {code}: {self._tail()}")
            if self._listening():
                return
            time.sleep(0.05)
        self._terminate()
        raise KdcError(f"krb5kdc not listening on {self.host}:{self.port} "
                       f"within {self.startup_timeout:.0f}s: {self._tail()}")

    def _listening(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect((self.host, self.port))
            except OSError:
                return False
        return True

    def _tail(self, n: int = 1500) -> str:
        parts = []
        for path in (self.root / "krb5kdc.out", self.log_file):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace")[-n:])
        return " | ".join(p.strip() for p in parts if p.strip())

    def _terminate(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Stop the KDC (waits for the process to exit); idempotent."""
        self._terminate()
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> MitKdc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- administration ----------------------------------------------------------------
    def _run(self, argv: list[str], stdin: str | None = None) -> tuple[str, str]:
        proc = subprocess.run(argv, input=(stdin or "").encode(), capture_output=True,
                              env=self.admin_env(), cwd=str(self.root), timeout=60)
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        if proc.returncode != 0:
            raise KdcError(f"{os.path.basename(argv[0])} {' '.join(argv[1:3])} failed "
                           f"({proc.returncode}): {(out + err).strip()[-800:]}")
        return out, err

    #: what kadmin.local prints on stderr when all is well
    _KADMIN_NOISE = ("Authenticating as principal", "No policy specified for")

    def kadmin(self, query: str) -> str:
        """One ``kadmin.local`` query; its output.  kadmin.local exits 0 even when the
        query failed and says so on stderr, so any other stderr line raises."""
        if "\n" in query:
            raise ValueError("one query per call")
        out, err = self._run([find_tool("kadmin.local") or "kadmin.local", "-r", self.realm,
                              "-q", query])
        problems = [ln.strip() for ln in err.splitlines()
                    if ln.strip() and not ln.startswith(self._KADMIN_NOISE)]
        if problems:
            raise KdcError(f"kadmin.local {query.split()[0]}: {'; '.join(problems)}")
        return out

    def add_principal(self, name: str, keytab: str | os.PathLike[str] | None = None, *,
                      max_life: int | None = None) -> str:
        """Create ``name`` with a random key and write it to ``keytab``; return the keytab path.

        ``keytab`` defaults to ``keytabs/<name>.keytab`` in the realm directory;
        an existing keytab gets the new entries added.  ``max_life`` (seconds)
        caps this principal's tickets below the realm's limit.
        """
        return self.add_principals([name], keytab, max_life=max_life)

    def add_principals(self, names: Iterable[str], keytab: str | os.PathLike[str] | None = None,
                       *, max_life: int | None = None) -> str:
        names = [self._check_name(n) for n in names]
        if not names:
            raise ValueError("no principal names")
        path = Path(keytab) if keytab is not None else \
            self.keytab_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", names[0]) + ".keytab")
        life = f' -maxlife "{int(max_life)} seconds"' if max_life is not None else ""
        for name in names:
            self.kadmin(f"addprinc -randkey{life} {self.principal(name)}")
        self._ktadd(names, path)
        return str(path)

    def _ktadd(self, names: list[str], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o077)
        try:
            self.kadmin(f"ktadd -k {path} " + " ".join(self.principal(n) for n in names))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)

    def export_keytab(self, name: str, keytab: str | os.PathLike[str]) -> str:
        """A fresh keytab for an existing principal.  ``ktadd`` gives the principal a new
        random key, so every keytab exported before this one stops working."""
        self._ktadd([self._check_name(name)], Path(keytab))
        return str(keytab)

    def rotate_key(self, name: str) -> None:
        """Give ``name`` a new random key: every keytab of it made so far is now stale."""
        self.kadmin(f"cpw -randkey {self.principal(self._check_name(name))}")

    def delete_principal(self, name: str) -> None:
        """Remove ``name`` from the database (its keytabs now name an unknown principal)."""
        self.kadmin(f"delprinc -force {self.principal(self._check_name(name))}")

    def max_life_of(self, name: str) -> int:
        """The principal's maximum ticket life in seconds, as the database has it."""
        out = self.kadmin(f"getprinc {self.principal(self._check_name(name))}")
        m = re.search(r"Maximum ticket life:\s*(\d+) days? (\d+):(\d+):(\d+)", out)
        if not m:
            raise KdcError(f"no ticket life in getprinc output: {out.strip()[-300:]}")
        d, h, mi, s = (int(x) for x in m.groups())
        return ((d * 24 + h) * 60 + mi) * 60 + s

    @staticmethod
    def _check_name(name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?(@[A-Z0-9.-]+)?", name):
            raise ValueError(f"not a principal name: {name!r}")
        return name

    # -- what the KDC saw --------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def issued(self, client: str, service: str | None = None, kind: str = "AS_REQ") -> int:
        """How many tickets the KDC issued to ``client`` (``AS_REQ``: logins; ``TGS_REQ``:
        service tickets), optionally only those for ``service``."""
        client = re.escape(self.principal(client))
        target = re.escape(self.principal(service)) if service else r"\S+"
        pattern = re.compile(rf"{kind} .*ISSUE: .*\b{client} for {target}")
        return sum(1 for line in self.log_text().splitlines() if pattern.search(line))
