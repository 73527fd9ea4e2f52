#!/usr/bin/env python3
"""Regenerate the Python modules in ``hdfs_csi_pb/`` from the ``.proto`` sources.

The sources live under ``proto/hdfs_csi_pb/`` so that the import path inside
each ``.proto`` (``import "hdfs_csi_pb/hadoop/hdfs.proto"``) matches the Python
package protoc writes, and generated modules import each other as
``from hdfs_csi_pb.hadoop import hdfs_pb2`` instead of flat module names.

The generated code is committed (a fresh machine needs no protoc to run), and
``tests/test_proto_generated.py`` fails when it is out of date.

Usage: ``python proto/generate.py [--out DIR]`` (needs grpcio-tools).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent
# Only CSI has gRPC services; Hadoop RPC uses its own framing (minidfs, admin_rpc).
GRPC_SERVICES = {"hdfs_csi_pb/csi.proto"}


def sources() -> list[pathlib.Path]:
    return sorted(p for p in (ROOT / "hdfs_csi_pb").rglob("*.proto"))


def generate(out: pathlib.Path) -> None:
    from grpc_tools import protoc
    import grpc_tools

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    for src in sources():
        rel = src.relative_to(ROOT).as_posix()
        args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}"]
        if rel in GRPC_SERVICES:
            args.append(f"--grpc_python_out={out}")
        args.append(rel)
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {rel}")
    # make every generated directory a package
    for d in [out / "hdfs_csi_pb", *(p for p in (out / "hdfs_csi_pb").rglob("*") if p.is_dir())]:
        init = d / "__init__.py"
        if not init.exists():
            init.write_text('"""Generated from proto/ by proto/generate.py; do not edit."""\n')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT.parent,
                        help="directory that receives the hdfs_csi_pb package")
    args = parser.parse_args(argv)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
