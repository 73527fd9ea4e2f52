"""Fixtures for the CSI driver tests: a real driver on a real unix socket.

* ``sanity_env`` (module scope, once per backend of ``dfs_kit``): an HDFS +
  ``hdfs-csi driver --mode all`` subprocess, exactly as an independent
  conformance suite runs it (see ``sanity_kit.py``): a minidfs subprocess,
  or, under the ``hadoop`` marker, Apache Hadoop's own HDFS.
* ``kubelet``: per-test staging directory and target parent directory, as
  csi-sanity creates them; teardown fails the test if anything is still
  mounted below them (after unmounting it, so later tests start clean).
* ``hdfs``-like direct client: ``direct`` (an HdfsClient on the same cluster).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from csi_kit import Kubelet  # noqa: E402
from sanity_kit import DriverProcess, SanityEnv, mounts_below, unmount_below  # noqa: E402


@pytest.fixture(scope="module")
def sanity_env(dfs_backend: str, request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[SanityEnv]:
    """On ``minidfs`` the env starts its own minidfs subprocess (``sanity_env.dfs``, for
    fault injection); on ``hadoop`` the driver serves from dfs_kit's shared cluster."""
    if dfs_backend == "hadoop":
        cluster = request.getfixturevalue("dfs")
        env = SanityEnv(tmp_path_factory.mktemp("csi-env"), dfs_uri=cluster.uri,
                        hadoop_conf_dir=cluster.hadoop_conf_dir).start()
    else:
        env = SanityEnv(tmp_path_factory.mktemp("csi-env")).start()
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture
def driver(sanity_env: SanityEnv) -> DriverProcess:
    assert sanity_env.driver is not None
    if sanity_env.driver.proc is None or sanity_env.driver.proc.poll() is not None:
        sanity_env.driver.start()  # a previous test stopped it
    return sanity_env.driver


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[Kubelet]:
    k = Kubelet(tmp_path, tmp_path / "csi-staging", tmp_path / "csi-mount")
    k.staging.mkdir()
    k.target_parent.mkdir()
    yield k
    left = mounts_below(tmp_path)
    unmount_below(tmp_path)
    assert not left, f"mounts left behind: {left}"


@pytest.fixture
def direct(sanity_env: SanityEnv) -> Iterator[Any]:
    from hdfs_client import connect

    client = connect(sanity_env.uri)
    try:
        yield client
    finally:
        client.close()
