"""Fixtures shared by the minidfs tests (the cluster fixtures come from minidfs.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from minidfs_testkit import native_as


@pytest.fixture
def raw(minidfs: Any) -> Any:
    return native_as(minidfs.uri)


@pytest.fixture
def admin(minidfs: Any) -> Iterator[Any]:
    from hdfs_client.admin_rpc import AdminRpcClient

    client = AdminRpcClient(minidfs.uri)
    yield client
    client.close()
