"""pytest plugin: minidfs fixtures (auto-loaded through tests/conftest.py).

* ``minidfs`` - module-scoped running cluster: 1 DataNode, 1 MiB blocks, a
  fresh data directory.  Tests in one module share it, so use unique paths.
* ``minidfs_factory`` - ``minidfs_factory(datanodes=2, block_size=..., **kw)``
  starts more clusters (any :class:`minidfs.MiniDFS` keyword); all are
  stopped at teardown.
* ``minidfs_process_factory`` - the same as a child process
  (:class:`minidfs.process.MiniDFSProcess`), for tests that must keep the
  server out of the test process's GIL.
* ``hdfs`` - an :class:`hdfs_client.HdfsClient` connected to ``minidfs``.

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


@pytest.fixture(scope="session", autouse=False)
def _hadoop_env_cleared() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in _HADOOP_VARS if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@pytest.fixture(scope="module")
def minidfs(tmp_path_factory: pytest.TempPathFactory, _hadoop_env_cleared: None) -> Iterator[Any]:
    from minidfs import MiniDFS

    with MiniDFS(tmp_path_factory.mktemp("minidfs"), datanodes=1,
                 block_size=TEST_BLOCK_SIZE) as dfs:
        yield dfs


@pytest.fixture
def minidfs_factory(tmp_path_factory: pytest.TempPathFactory,
                    _hadoop_env_cleared: None) -> Iterator[Callable[..., Any]]:
    from minidfs import MiniDFS

    started: list[Any] = []

    def factory(datanodes: int = 1, block_size: int = TEST_BLOCK_SIZE,
                data_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        dfs = MiniDFS(data_dir or tmp_path_factory.mktemp("minidfs"), datanodes=datanodes,
                      block_size=block_size, **kwargs)
        started.append(dfs)
        return dfs.start()

    yield factory
    for dfs in reversed(started):
        dfs.stop()


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


@pytest.fixture
def hdfs(minidfs: Any) -> Iterator[Any]:
    from hdfs_client import connect

    client = connect(minidfs.uri)
    try:
        yield client
    finally:
        client.close()
