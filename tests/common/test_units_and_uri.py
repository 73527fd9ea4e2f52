"""Sizes, durations and HDFS URIs: parsed the same way everywhere."""

from __future__ import annotations

import pytest

from hdfs_client.uri import parse_hdfs_uri
from hdfs_csi_common.units import format_size, parse_duration, parse_size


@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("64K", 64 * 1024), ("1Mi", 1 << 20), ("10GiB", 10 << 30),
    ("2g", 2 << 30), ("1.5M", int(1.5 * (1 << 20))), (7, 7),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "ten", "-1", "5X", "1..2M", "1 M B x"])
def test_parse_size_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


@pytest.mark.parametrize("text,expected",
                         [("30", 30.0), ("250ms", 0.25), ("1.5s", 1.5), ("5m", 300.0)])
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == pytest.approx(expected)


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(3 * 1024 * 1024) == "3.0 MiB"


def test_parse_hdfs_uri_normalises() -> None:
    loc = parse_hdfs_uri("hdfs://nn1:8020//datasets/./imagenet/")
    assert loc.cluster_uri == "hdfs://nn1:8020"
    assert loc.path == "/datasets/imagenet"
    assert parse_hdfs_uri("hdfs://ns1").path == "/"


@pytest.mark.parametrize("bad", [
    "file:///etc/passwd", "hdfs:///no-authority", "hdfs://nn/a/../../etc", "hdfs://nn/a\x00b",
    "hdfs://nn/a?x=1", "/just/a/path", "hdfs://alice@nn:8020/", "hdfs://nn 1:8020/",
    "hdfs://nn\\x:8020/",
])
def test_parse_hdfs_uri_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_hdfs_uri(bad)
