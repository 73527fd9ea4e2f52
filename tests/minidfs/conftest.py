"""Fixtures shared by the minidfs tests (the cluster fixtures come from dfs_kit)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from minidfs_kit import native_as


@pytest.fixture
def raw(dfs: Any) -> Any:
    return native_as(dfs.uri)


@pytest.fixture
def admin(dfs: Any) -> Iterator[Any]:
    from hdfs_client.admin_rpc import AdminRpcClient

    client = AdminRpcClient(dfs.uri)
    yield client
    client.close()
