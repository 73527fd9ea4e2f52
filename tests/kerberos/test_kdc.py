"""The throwaway MIT KDC (:mod:`hadoop_cluster.kdc`) and keytab reading
(:mod:`hdfs_client.keytab`), with real ``krb5kdc``, ``kadmin.local`` and ``kinit``.

No JVM: this runs in the default tier (about a second) wherever
``scripts/fetch-kerberos.sh`` has installed the KDC.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hadoop_cluster.kdc import MitKdc, find_tool
from hdfs_client import keytab as keytabs

pytestmark = [pytest.mark.kerberos, pytest.mark.timeout(120)]


def kinit(kdc: MitKdc, principal: str, keytab: str, cache: Path) -> subprocess.CompletedProcess:
    env = kdc.client_env()
    env["KRB5CCNAME"] = f"FILE:{cache}"
    return subprocess.run([find_tool("kinit") or "kinit", "-k", "-t", keytab, principal],
                          env=env, capture_output=True, text=True, timeout=30)


def klist_lifetime(kdc: MitKdc, cache: Path) -> int:
    """Seconds between the TGT's start and end (from ``klist`` of the cache)."""
    import datetime

    env = kdc.client_env()
    out = subprocess.run([find_tool("klist") or "klist", f"FILE:{cache}"], env=env,
                         capture_output=True, text=True, timeout=30,
                         ).stdout.splitlines()
    line = next(ln for ln in out if f"krbtgt/{kdc.realm}@{kdc.realm}" in ln).split()
    fmt = "%m/%d/%y %H:%M:%S"
    start = datetime.datetime.strptime(f"{line[0]} {line[1]}", fmt)
    end = datetime.datetime.strptime(f"{line[2]} {line[3]}", fmt)
    return int((end - start).total_seconds())


def test_a_realm_of_its_own_with_short_tickets(kdc: Any, tmp_path: Path) -> None:
    assert kdc.running() and kdc.port > 0
    assert (kdc.root.stat().st_mode & 0o777) == 0o700
    keytab = kdc.add_principal("erin", tmp_path / "erin.keytab", max_life=60)
    assert (os.stat(keytab).st_mode & 0o777) == 0o600
    assert keytabs.principals(keytab) == [kdc.principal("erin")]
    assert kdc.max_life_of("erin") == 60
    before = kdc.issued("erin")
    cache = tmp_path / "cc"
    done = kinit(kdc, "erin", keytab, cache)
    assert done.returncode == 0, done.stderr
    assert kdc.issued("erin") == before + 1          # the KDC's own log saw the login
    assert klist_lifetime(kdc, cache) == 60          # capped by the principal, not the realm
    # only our files were read: the host's /etc/krb5.conf (if any) names another realm
    assert f"default_realm = {kdc.realm}" in kdc.krb5_conf.read_text()


def test_rotated_and_deleted_principals_make_keytabs_useless(kdc: Any, tmp_path: Path) -> None:
    old = kdc.add_principal("frank", tmp_path / "frank.keytab")
    kdc.rotate_key("frank")
    done = kinit(kdc, "frank", old, tmp_path / "cc1")
    assert done.returncode != 0
    fresh = kdc.export_keytab("frank", tmp_path / "frank-new.keytab")
    assert kinit(kdc, "frank", fresh, tmp_path / "cc2").returncode == 0
    kdc.delete_principal("frank")
    assert kinit(kdc, "frank", fresh, tmp_path / "cc3").returncode != 0


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    kdc = MitKdc(tmp_path / "realm", realm="STOP.TEST").start()
    pid = kdc.proc.pid if kdc.proc else 0
    assert pid and Path(f"/proc/{pid}").exists()
    kdc.stop()
    kdc.stop()                                       # idempotent
    assert not Path(f"/proc/{pid}").exists()      # exited and reaped
    assert not kdc.running()


def test_no_secret_on_a_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tool the KDC module runs, recorded (and run for real): random keys are made
    inside kadmin.local, the database's master password goes in on stdin."""
    import hadoop_cluster.kdc as kdc_module

    real_run, real_popen = subprocess.run, subprocess.Popen
    seen: list[tuple[list[str], bytes]] = []

    def run(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), kwargs.get("input") or b""))
        return real_run(argv, *args, **kwargs)

    def popen(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append((list(argv), b""))
        return real_popen(argv, *args, **kwargs)

    monkeypatch.setattr(kdc_module.subprocess, "run", run)
    monkeypatch.setattr(kdc_module.subprocess, "Popen", popen)
    with MitKdc(tmp_path / "realm", realm="ARGV.TEST") as kdc:
        raw = Path(kdc.add_principal("gina", tmp_path / "gina.keytab")).read_bytes()
        kdc.rotate_key("gina")
    monkeypatch.undo()
    tools = [os.path.basename(argv[0]) for argv, _ in seen]
    assert {"kdb5_util", "krb5kdc", "kadmin.local"} <= set(tools)
    master = next(stdin for argv, stdin in seen if argv[0].endswith("kdb5_util"))
    password = master.split(b"\n")[0].decode()
    assert len(password) >= 24
    for argv, _ in seen:
        line = " ".join(argv)
        assert password not in line and "-pw" not in argv and "-P" not in argv, line
        assert raw[-16:].hex() not in line


def test_keytab_reader_and_failure_sentences(kdc: Any, tmp_path: Path) -> None:
    both = kdc.add_principals(["svc/host-a", "svc/host-b"], tmp_path / "svc.keytab")
    assert keytabs.principals(both) == [kdc.principal("svc/host-a"), kdc.principal("svc/host-b")]
    text = keytabs.describe_failure("someone", both, None, "No credentials cache found")
    assert "holds svc/host-a@" in text and "not someone" in text
    assert "does not exist" in keytabs.describe_failure("x", str(tmp_path / "nope"), None, "")
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x01\x02garbage")
    assert "not a usable keytab" in keytabs.describe_failure("x", str(junk), None, "")
    stale = keytabs.describe_failure(kdc.principal("svc/host-a"), both,
                                     keytabs.AP_ERR_BAD_INTEGRITY & 0xFFFFFFFF,
                                     "Decrypt integrity check failed")
    assert "rotated" in stale
    with pytest.raises(keytabs.KeytabUnreadable):
        keytabs.parse_principals(b"\x05\x02\x00\x00\x00\x10short")


def test_native_login_errors_become_sentences() -> None:
    raw = ('GSSAPIError(GssMajorCodes { raw: "0x00070000", calling_error: "none", '
           'routine_error: "GSS_S_NO_CRED", supplementary_info: "0x0000" }, 2529639068, '
           '"No credentials were supplied, or the credentials were unavailable or '
           'inaccessible: Cannot contact any KDC for realm \'R\'")')
    kind, text = keytabs.native_login_error(raw, "alice@R", "/k") or ("", "")
    assert kind == "transient" and text.startswith("Kerberos login as alice@R failed")
    assert "GssMajorCodes" not in text and "Cannot contact any KDC" in text
    refused = keytabs.native_login_error(raw.replace("2529639068", "2529638943"))
    assert refused is not None and refused[0] == "refused"
    assert keytabs.native_login_error('RPCError("java.io.FileNotFoundException", "x")') is None
