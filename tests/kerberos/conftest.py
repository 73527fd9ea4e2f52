"""Fixtures of the Kerberos tests (the helpers behind them live in ``krb_kit.py``).

* ``kdc`` (module): a real MIT KDC in a temporary realm.
* ``secure_hdfs`` (module): that KDC and a Kerberos-secured Apache Hadoop
  HDFS, with a client configuration directory and a superuser client.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import krb_kit  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    # --strict-markers: registered here too, so that this directory works on its own
    config.addinivalue_line("markers",
                            "kerberos: needs a real MIT KDC (scripts/fetch-kerberos.sh)")


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from krb_kit.run_kdc(tmp_path_factory)


@pytest.fixture(scope="module")
def secure_hdfs(kdc: Any, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[krb_kit.SecureHdfs]:
    yield from krb_kit.run_secure_hdfs(kdc, tmp_path_factory)
