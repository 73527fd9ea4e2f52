"""pytest plugin: the HDFS clusters tests run against (loaded by ``tests/conftest.py``).

Two backends speak the same wire protocol: **minidfs** (ours, embedded, no JVM:
the default) and **hadoop** (Apache Hadoop's own ``MiniDFSCluster``, a real
NameNode and DataNodes in a JVM; see :mod:`hadoop_cluster`).  A test that talks
to HDFS over the wire asks for ``dfs`` (or ``dfs_factory``) and runs once per
backend; the ``hadoop`` run carries the ``hadoop`` marker, so the default tier
(``-m "not hadoop"``) stays JVM-free and ``-m hadoop`` is the real-HDFS tier.
Differences between the two runs are bugs, in minidfs or in our code.

Fixtures:

* ``dfs`` - module-scoped running cluster, parametrized over the backends:
  1 DataNode, 1 MiB blocks.  For ``minidfs`` a fresh one per module.  For
  ``hadoop`` one JVM serves the whole session (a cold start costs ~10 s on
  two cores) and its namespace is emptied before each module, so modules see
  a fresh file system as they do with minidfs.
* ``dfs_factory`` - ``dfs_factory(datanodes=2, block_size=..., **kw)`` starts
  more clusters of the same backend as the test's ``dfs`` parameter (keywords
  both backends take: ``datanodes``, ``block_size``, ``replication``,
  ``data_dir``); all stopped at teardown.
* ``hdfs`` - an :class:`hdfs_client.HdfsClient` on ``dfs``.
* ``minidfs`` / ``minidfs_factory`` / ``minidfs_process_factory`` - minidfs
  only, for tests of minidfs itself or that need its internals (fault
  injection, call counters, the namespace object).
* ``minidfs_only`` marker - a ``dfs`` test that also reads minidfs internals
  (``dfs.faults`` counters, ``dfs.ns``) runs on minidfs only.
* ``hadoop_dfs_factory`` - Hadoop only, with HA, erasure coding or extra
  configuration (``ha=True``, ``ec_policies=(...)``, ``conf={...}``).

Hadoop config pointers (``HADOOP_CONF_DIR``/``HADOOP_HOME``) are removed
from the environment while a fixture cluster runs: a stray ``core-site.xml``
could switch hdfs-native to Kerberos.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

TEST_BLOCK_SIZE = 1024 * 1024
_HADOOP_VARS = ("HADOOP_CONF_DIR", "HADOOP_HOME")

#: the backends a ``dfs`` test runs on; the real one carries the ``hadoop`` marker
BACKEND_PARAMS = ["minidfs", pytest.param("hadoop", marks=pytest.mark.hadoop)]


@pytest.fixture(scope="session", autouse=False)
def _hadoop_env_cleared() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in _HADOOP_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _skip_if_unavailable(backend: str) -> None:
    if backend == "minidfs":
        return
    from hdfs_backends import backend_unavailable

    reason = backend_unavailable(backend)
    if reason is None:
        return
    if os.environ.get("CI") and backend == "hadoop":
        # CI runs the real-HDFS tier on purpose: a missing JDK or jar is a failure there.
        pytest.fail(f"hadoop backend unavailable in CI: {reason}")
    pytest.skip(reason)


def _start(backend: str, data_dir: Any, **kwargs: Any) -> Any:
    if backend == "minidfs":
        from minidfs import MiniDFS

        return MiniDFS(data_dir, **kwargs).start()
    _skip_if_unavailable(backend)
    from hdfs_backends import start_backend

    return start_backend(backend, data_dir, **kwargs)


# -- the shared real cluster ------------------------------------------------------------
class _SharedHadoop:
    """One Hadoop JVM per session, emptied between modules (see module docstring)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self.cluster: Any = None

    def get(self) -> Any:
        if self.cluster is not None and not self._wipe():
            self.stop()
        if self.cluster is None:
            self.cluster = _start("hadoop", self._factory.mktemp("hadoop"),
                                  datanodes=1, block_size=TEST_BLOCK_SIZE)
        return self.cluster

    def _wipe(self) -> bool:
        """Delete everything below ``/``; False if the namespace could not be emptied
        (a snapshot left behind): the caller starts afresh.  Tests that stop DataNodes,
        fail over or change configuration use ``dfs_factory``/``hadoop_dfs_factory``."""
        from hdfs_client import connect

        try:
            client = connect(self.cluster.uri)
            try:
                for st in client.list_status("/"):
                    client.delete(st.path, recursive=True)
                return not list(client.list_status("/"))
            finally:
                client.close()
        except Exception:
            return False

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


@pytest.fixture(scope="session")
def _shared_hadoop(tmp_path_factory: pytest.TempPathFactory,
                   _hadoop_env_cleared: None) -> Iterator[_SharedHadoop]:
    shared = _SharedHadoop(tmp_path_factory)
    yield shared
    shared.stop()


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def dfs_backend(request: pytest.FixtureRequest) -> str:
    """The backend name of this run of the test: ``minidfs`` or ``hadoop``."""
    return str(request.param)


@pytest.fixture(scope="module")
def dfs(dfs_backend: str, request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory, _hadoop_env_cleared: None) -> Iterator[Any]:
    if dfs_backend == "hadoop":
        yield request.getfixturevalue("_shared_hadoop").get()
        return
    cluster = _start("minidfs", tmp_path_factory.mktemp("minidfs"), datanodes=1,
                     block_size=TEST_BLOCK_SIZE)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def dfs_factory(dfs_backend: str, tmp_path_factory: pytest.TempPathFactory,
                _hadoop_env_cleared: None) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []

    def factory(datanodes: int = 1, block_size: int = TEST_BLOCK_SIZE,
                data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        cluster = _start(dfs_backend, data_dir or tmp_path_factory.mktemp(dfs_backend),
                         datanodes=datanodes, block_size=block_size, **kwargs)
        started.append(cluster)
        return cluster

    yield factory
    for cluster in reversed(started):
        cluster.stop()


@pytest.fixture
def hadoop_dfs_factory(tmp_path_factory: pytest.TempPathFactory,
                       _hadoop_env_cleared: None) -> Iterator[Callable[..., Any]]:
    started: list[Any] = []

    def factory(datanodes: int = 1, block_size: int = TEST_BLOCK_SIZE, **kwargs: Any) -> Any:
        cluster = _start("hadoop", tmp_path_factory.mktemp("hadoop"), datanodes=datanodes,
                         block_size=block_size, **kwargs)
        started.append(cluster)
        return cluster

    yield factory
    for cluster in reversed(started):
        cluster.stop()


@pytest.fixture
def hdfs(dfs: Any) -> Iterator[Any]:
    from hdfs_client import connect

    client = connect(dfs.uri)
    try:
        yield client
    finally:
        client.close()


# -- minidfs only -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minidfs(tmp_path_factory: pytest.TempPathFactory, _hadoop_env_cleared: None) -> Iterator[Any]:
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("minidfs"), datanodes=1,
                 block_size=TEST_BLOCK_SIZE) as cluster:
        yield cluster


@pytest.fixture
def minidfs_factory(tmp_path_factory: pytest.TempPathFactory,
                    _hadoop_env_cleared: None) -> Iterator[Callable[..., Any]]:
    from minidfs import MiniDFS

    started: list[Any] = []

    def factory(datanodes: int = 1, block_size: int = TEST_BLOCK_SIZE,
                data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        cluster = MiniDFS(data_dir or tmp_path_factory.mktemp("minidfs"), datanodes=datanodes,
                          block_size=block_size, **kwargs)
        started.append(cluster)
        return cluster.start()

    yield factory
    for cluster in reversed(started):
        cluster.stop()


@pytest.fixture
def minidfs_process_factory(tmp_path_factory: pytest.TempPathFactory,
                            _hadoop_env_cleared: None) -> Iterator[Callable[..., Any]]:
    from minidfs.process import MiniDFSProcess

    started: list[Any] = []

    def factory(datanodes: int = 1, block_size: int = TEST_BLOCK_SIZE,
                data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        d = data_dir or tmp_path_factory.mktemp("minidfs-proc")
        kwargs.setdefault("log_file", os.path.join(str(d), "minidfs.log"))
        proc = MiniDFSProcess(d, datanodes=datanodes, block_size=block_size, **kwargs)
        started.append(proc)
        return proc.start()

    yield factory
    for proc in reversed(started):
        proc.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the ``hadoop`` runs of tests marked ``minidfs_only``."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("dfs_backend") if callspec is not None else None
        if backend == "hadoop" and item.get_closest_marker("minidfs_only") is not None:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
