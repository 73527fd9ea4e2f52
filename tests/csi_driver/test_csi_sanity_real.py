"""The real csi-sanity (kubernetes-csi/csi-test ``cmd/csi-sanity``) against ``hdfs-csi driver``.

Why the real binary and not only our port: a port checks what we understood
csi-sanity to check.  This runs the conformance suite Kubernetes CSI drivers
are held to, pinned by ``scripts/fetch-csi-sanity.sh`` (installed with
``go install`` into ``~/.cache/hdfs-csi/bin``), against the driver as a
subprocess on a unix socket with real FUSE and bind mounts.  The run itself is
:func:`sanity_kit.run_csi_sanity`; this file only decides what counts as
passing:

* csi-sanity exits 0 and its JUnit report has no failed spec;
* at least :data:`MIN_PASSED` specs passed, and the specs in :data:`MUST_PASS`
  passed rather than skipped: csi-sanity skips some of them for reasons that are
  not capabilities (a driver answering OUT_OF_RANGE for 10 GiB, or reporting
  capacity 0, would otherwise "pass" by losing the case);
* every skip is csi-sanity's own "capability not advertised" kind; the skipped
  specs and their reasons are printed and recorded (``record_property`` and
  ``csi-sanity-summary.json`` in the work directory);
* nothing is left mounted, and csi-sanity's staging/mount directories are gone.

It runs once with the driver's *default* flags (a 10 GiB test volume is then a
30 GiB space quota, ``--quota-replication 3``, on a small cluster) and once as
``sanity_kit.SanityEnv`` starts it (``--quota-replication 1``).

Backends: :func:`hdfs_backend` hands the run an HDFS URI (and an optional
``HADOOP_CONF_DIR``) from ``dfs_kit``'s ``dfs``: minidfs in the default tier,
Apache Hadoop's own MiniDFSCluster in the ``hadoop`` tier (``-m hadoop``).

When the binary is missing the test fails under CI (``CI`` set) and skips
locally, saying how to install it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from csi_kit import needs_fuse
from sanity_kit import (CSI_SANITY_HINT, CSI_SANITY_MIN_VERSION, SanityResult,
                           csi_sanity_binary, csi_sanity_version, parse_junit, run_csi_sanity,
                           version_tuple)

pytestmark = pytest.mark.timeout(600)

#: csi-sanity v5.6.0 ran 41 specs for this driver's capabilities; fewer means a
#: capability (and its specs) was lost, or specs started skipping
MIN_PASSED = 41

#: specs csi-sanity may skip for reasons other than a capability; for us they must pass
MUST_PASS = (
    "CreateVolume should return appropriate values SingleNodeWriter WithCapacity 1Gi",
    "CreateVolume should fail when requesting to create a volume with already existing name "
    "and different capacity",
    "ExpandVolume [Controller Server] should work",
    "NodeUnpublishVolume should remove target path",
    "NodeGetVolumeStats should fail when volume does not exist on the specified path",
    "Node Service should work",
    "Node Service should be idempotent",
)

#: the shapes of csi-sanity's skip messages that mean "the driver does not advertise
#: this capability" (``Skip("ListVolumes not supported")``, ...) or an ``XIt``
CAPABILITY_SKIP = re.compile(r"^(?:.+ not supported|Service does not have .+ capability|pending)$")
#: csi-sanity skips with "... not supported" wording that are *not* capability gates
NOT_A_CAPABILITY = ("Required bytes not supported",)

#: how the driver is started for the suite (see module docstring)
DRIVER_FLAGS = {"driver-defaults": (), "sanity-runner": ("--quota-replication", "1")}


@dataclass(frozen=True)
class HdfsBackend:
    name: str
    uri: str
    hadoop_conf_dir: str | None = None


@pytest.fixture(scope="module")
def hdfs_backend(dfs_backend: str, dfs: Any) -> HdfsBackend:
    """The HDFS the driver serves from: ``dfs`` (``tests/dfs_kit.py``) runs this module once
    per backend, minidfs in the default tier and Apache Hadoop's own HDFS under the
    ``hadoop`` marker.  Any other cluster works the same way: only its URI (and its
    ``HADOOP_CONF_DIR``, for an HA nameservice) reach the driver."""
    return HdfsBackend(dfs_backend, dfs.uri, getattr(dfs, "hadoop_conf_dir", None))


def require_binary() -> Path:
    binary = csi_sanity_binary()
    if binary is None:
        message = f"csi-sanity is not installed: {CSI_SANITY_HINT}"
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail(message + " (CI must install it in set-up)", pytrace=False)
        pytest.skip(message)
    version = csi_sanity_version(binary)
    assert version and version_tuple(version) >= CSI_SANITY_MIN_VERSION, \
        f"{binary} is csi-test {version or '(unknown version)'}; need >= " \
        f"v{'.'.join(map(str, CSI_SANITY_MIN_VERSION))}: {CSI_SANITY_HINT}"
    return binary


def check(result: SanityResult) -> list[str]:
    """Everything wrong with a run (empty: it passed)."""
    problems = []
    if result.failed:
        problems.append(f"{len(result.failed)} specs failed: " +
                        "; ".join(s.name for s in result.failed))
    if result.returncode != 0:
        problems.append(f"csi-sanity exited {result.returncode}")
    if len(result.passed) < MIN_PASSED:
        problems.append(f"only {len(result.passed)} specs passed, expected >= {MIN_PASSED}")
    status = {s.name: s for s in result.specs}
    for wanted in MUST_PASS:
        found = [s for name, s in status.items() if name.endswith(wanted)]
        if not found:
            problems.append(f"spec not in the report: {wanted}")
        for spec in found:
            if spec.status != "passed":
                problems.append(f"{spec.name}: {spec.status} ({spec.message})")
    for reason, names in result.skip_reasons().items():
        if not CAPABILITY_SKIP.match(reason) or reason in NOT_A_CAPABILITY:
            problems.append(f"skipped for a reason that is not a capability: {reason!r}: {names}")
    if result.mounts_left:
        problems.append(f"mounts left behind: {result.mounts_left}")
    if result.paths_left:
        problems.append(f"csi-sanity's directories left behind: {result.paths_left}")
    return problems


@needs_fuse
@pytest.mark.fuse
@pytest.mark.parametrize("flags", sorted(DRIVER_FLAGS))
def test_csi_sanity(hdfs_backend: HdfsBackend, flags: str, tmp_path: Path,
                    record_property: Callable[[str, object], None]) -> None:
    binary = require_binary()
    result = run_csi_sanity(hdfs_backend.uri, tmp_path, binary=binary,
                            hadoop_conf_dir=hdfs_backend.hadoop_conf_dir,
                            driver_args=DRIVER_FLAGS[flags])
    summary = result.summary()
    print(f"[{hdfs_backend.name}, {flags}] {summary}")
    record_property("csi_sanity_version", result.version)
    record_property("csi_sanity_counts", f"{len(result.passed)} passed, "
                                         f"{len(result.failed)} failed, "
                                         f"{len(result.skipped)} skipped")
    record_property("csi_sanity_skipped", {r: len(n) for r, n in result.skip_reasons().items()})
    problems = check(result)
    assert not problems, "\n".join(problems) + f"\n\n{summary}\n\nreport: {result.junit}\n" \
        f"csi-sanity output: {result.output}\ndriver log: {result.driver_log}\n" \
        f"reproduce the order with --ginkgo.seed={result.seed}"


# -- the verdict itself, on a report of a run that went wrong (no binary needed) ------------

_BAD_REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" failures="1"><testsuite name="CSI Driver Test Suite" tests="5">
<properties><property name="RandomSeed" value="42"></property></properties>
<testcase name="[It] Node Service should work" status="failed">
  <failure message="volume create failed&#xA;rpc error: code = OutOfRange desc = too big"
   type="failed">[FAILED] volume create failed&#xA;In [It] at: node.go:97</failure></testcase>
<testcase status="skipped" name="[It] Controller Service [Controller Server] CreateVolume should \
return appropriate values SingleNodeWriter WithCapacity 1Gi">
  <skipped message="skipped - Required bytes not supported"></skipped></testcase>
<testcase name="[It] ListVolumes should return appropriate values" status="skipped">
  <skipped message="skipped - ListVolumes not supported"></skipped></testcase>
<testcase name="[It] ListVolumes pagination" status="pending"><skipped message="pending"></skipped>
</testcase>
<testcase name="[It] Identity Service Probe should return appropriate information" status="passed">
</testcase>
<testcase name="[ReportAfterSuite] Autogenerated ReportAfterSuite" status="passed"></testcase>
</testsuite></testsuites>
"""


def test_verdict_on_a_bad_report(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(_BAD_REPORT)
    specs, seed = parse_junit(junit)
    assert seed == "42"
    by_name = {s.name: s for s in specs}
    assert "[ReportAfterSuite] Autogenerated ReportAfterSuite" not in by_name
    work = by_name["Node Service should work"]
    assert work.status == "failed" and "rpc error: code = OutOfRange" in work.message \
        and "node.go:97" in work.message
    assert by_name["ListVolumes should return appropriate values"].message == \
        "ListVolumes not supported"
    assert by_name["ListVolumes pagination"].status == "skipped"
    result = SanityResult(specs=specs, returncode=1, wall_seconds=1.0, version="v5.6.0",
                          seed=seed, workdir=tmp_path, junit=junit, output=tmp_path / "out",
                          driver_log=tmp_path / "log", mounts_left=[str(tmp_path / "m")])
    problems = "\n".join(check(result))
    for expected in ("1 specs failed: Node Service should work", "csi-sanity exited 1",
                     "only 1 specs passed", "WithCapacity 1Gi: skipped",
                     "not a capability: 'Required bytes not supported'",
                     "spec not in the report: Node Service should be idempotent",
                     "mounts left behind"):
        assert expected in problems, expected
    assert "ListVolumes not supported" not in problems and "pending" not in problems
