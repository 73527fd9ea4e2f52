"""MountOptions: CSI keys, strict validation, round trip through the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import errno

import pytest

from fuse_mount import cli
from fuse_mount.errors import FsError, errno_for
from fuse_mount.options import (
    VOLUME_ATTRIBUTES, GiB, MiB, MountOptions, flags_for, parse_volume_attributes,
    volume_attributes,
)
from hdfs_client import errors as hdfs_errors


def test_from_mapping_parses_kubernetes_strings():
    o = MountOptions.from_mapping({
        "readOnly": "true", "cacheSize": "2Gi", "readAheadMax": "16M", "metadataTtl": "2.5s",
    })
    assert o.read_only is True
    assert o.cache_size == 2 * GiB
    assert o.read_ahead_max == 16 * MiB
    assert o.metadata_ttl == 2.5


def test_volume_attribute_keys_are_the_ones_the_csi_driver_accepts():
    """One owner: the CSI layer takes its mount-option keys from here."""
    from csi_driver import params

    assert set(VOLUME_ATTRIBUTES) == {"readOnly", "cacheSize", "readAheadMax", "metadataTtl",
                                      "warmup", "prefetchMaxSize", "cachePool", "cachePoolTtl",
                                      "cachePoolReplication", "directIo"}
    assert set(params.MOUNT_OPTION_KEYS) == set(VOLUME_ATTRIBUTES)
    assert set(VOLUME_ATTRIBUTES) <= set(params.STORAGE_CLASS_KEYS)
    assert set(VOLUME_ATTRIBUTES) <= set(params.VOLUME_CONTEXT_KEYS)


def test_canonical_attributes_and_flags_round_trip():
    given = parse_volume_attributes({"cacheSize": "1.5Gi", "metadataTtl": "12345.678",
                                     "readOnly": "false", "readAheadMax": "64Mi"})
    again = parse_volume_attributes(volume_attributes(given))
    assert {k: v for k, v in again.items() if k != "read_only"} == \
        {k: v for k, v in given.items() if k != "read_only"}
    assert "readOnly" not in volume_attributes(given)      # a false readOnly is left out
    args = _parse(["hdfs://nn/x", "/mnt", *flags_for(given)])
    assert args.metadata_ttl == 12345.678                  # not rounded to 6 digits
    assert args.cache_size == 3 * GiB // 2


def test_volume_attributes_keep_their_limits():
    with pytest.raises(ValueError, match="cacheSize must not exceed 16"):
        parse_volume_attributes({"cacheSize": "17Ti"})
    with pytest.raises(ValueError, match="metadataTtl must not exceed"):
        parse_volume_attributes({"metadataTtl": "100000s"})


@pytest.mark.parametrize("mapping,match", [
    ({"readonly": "true"}, "unknown mount option"),        # wrong case is a typo, not a default
    ({"user": "alice"}, "unknown mount option"),           # identity never comes from attributes
    ({"readOnly": "maybe"}, "not a boolean"),
    ({"cacheSize": "lots"}, "not a size"),
    ({"metadataTtl": "-1"}, "metadataTtl"),
    ({"cacheDir": "/var/cache"}, "unknown mount option"),  # the node's disk is not the PV's
    ({"ioTimeout": "5s"}, "unknown mount option"),
    ({"readAheadMax": "4K"}, "at least 128 KiB"),
])
def test_from_mapping_rejects(mapping, match):
    with pytest.raises(ValueError, match=match):
        MountOptions.from_mapping(mapping)


def test_overrides_are_applied():
    o = MountOptions.from_mapping({"readOnly": "false"}, user="alice", pid_file="/run/x.pid")
    assert o.user == "alice" and o.pid_file == "/run/x.pid"


def _parse(argv):
    p = argparse.ArgumentParser()
    cli.register(p)
    return p.parse_args(argv)


def test_to_args_round_trips_through_the_cli():
    o = MountOptions(read_only=True, cache_dir="/c", cache_size=3 * GiB, read_ahead_max=8 * MiB,
                     metadata_ttl=1.5, io_timeout=7, user="bob", allow_other=False,
                     metrics_port=9100, foreground=True)
    args = _parse(["hdfs://nn:8020/data", "/mnt/x", *o.to_args()])
    assert cli.options_from_args(args) == o
    assert args.source == "hdfs://nn:8020/data" and args.mountpoint == "/mnt/x"


@pytest.mark.parametrize("field", [f for f in dataclasses.fields(MountOptions)
                                   if f.metadata["kind"] in ("bool", "bool3")],
                         ids=lambda f: f.name)
def test_every_boolean_flipped_from_its_default_round_trips(field):
    """to_args writes --no-X for a boolean that is on by default; the CLI must accept it."""
    for value in (True, False):
        if value == field.default:
            continue
        o = MountOptions(**{field.name: value})
        args = _parse(["hdfs://nn:8020/", "/mnt/x", *o.to_args()])
        assert getattr(cli.options_from_args(args), field.name) is value


def test_cli_defaults_equal_dataclass_defaults():
    args = _parse(["hdfs://nn:8020/", "/mnt/x"])
    assert cli.options_from_args(args) == MountOptions()
    assert MountOptions().to_args() == []


def test_help_documents_every_option_with_default():
    p = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.register(p)
    text = p.format_help()
    for f in dataclasses.fields(MountOptions):
        assert "--" + f.name.replace("_", "-") in text
    assert "32MiB" in text and "10GiB" in text  # sizes shown the way people write them


def test_errno_table():
    cases = [
        (hdfs_errors.NotFound("x"), errno.ENOENT),
        (hdfs_errors.AlreadyExists("x"), errno.EEXIST),
        (hdfs_errors.PermissionDenied("x"), errno.EACCES),
        (hdfs_errors.NotEmpty("x"), errno.ENOTEMPTY),
        (hdfs_errors.NotADirectory("x"), errno.ENOTDIR),
        (hdfs_errors.IsADirectory("x"), errno.EISDIR),
        (hdfs_errors.QuotaExceeded("x"), errno.EDQUOT),
        (hdfs_errors.HdfsTimeout("x"), errno.EIO),
        (hdfs_errors.HdfsIOError("x"), errno.EIO),
        (hdfs_errors.Unsupported("x"), errno.ENOTSUP),
        (FsError(errno.EROFS), errno.EROFS), (ValueError("bug"), errno.EIO),
    ]
    for exc, code in cases:
        assert errno_for(exc) == code, exc


def test_direct_io_is_auto_unless_said_and_an_attribute_keeps_either_answer():
    """``directIo`` is three-valued: absent = auto; "false" must survive the round trip
    to the mount command (a dropped false would turn into auto, not off)."""
    assert MountOptions().direct_io is None
    for raw, want, flag in (("true", True, "--direct-io"), ("false", False, "--no-direct-io")):
        given = parse_volume_attributes({"directIo": raw})
        assert given == {"direct_io": want}
        assert volume_attributes(given) == {"directIo": raw}
        assert flags_for(given) == [flag]
        assert _parse(["hdfs://nn/x", "/mnt", flag]).direct_io is want
    assert _parse(["hdfs://nn/x", "/mnt"]).direct_io is None
    with pytest.raises(ValueError, match="directIo"):
        parse_volume_attributes({"directIo": "sometimes"})
