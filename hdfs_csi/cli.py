"""The ``hdfs-csi`` command: one binary, one subcommand per component.

Each component owns its own ``cli.py`` exposing ``register(subparsers)``; this
module only wires them together and imports them lazily, so that
``hdfs-csi minidfs`` does not pay for importing gRPC or FUSE bindings, and a
missing optional dependency only breaks the subcommand that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from hdfs_csi_common import __version__
from hdfs_csi_common.helpformat import DefaultsHelpFormatter

# subcommand name -> (module with register(subparsers), one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "minidfs": ("minidfs.cli", "run the embedded HDFS (NameNode + DataNodes) in the foreground"),
    "driver": ("csi_driver.cli", "run the CSI driver (identity, controller and/or node services)"),
    "mount": ("fuse_mount.cli", "mount an HDFS path as a local FUSE filesystem"),
    "warmup": ("fuse_mount.warmup", "read a dataset through a mount once, to fill its disk cache"),
    "bench": ("benchmarks.cli", "measure read throughput: direct HDFS vs the mount vs local disk"),
    "demo": ("hdfs_csi.demo", "end-to-end demo: minidfs + driver + FUSE mount + reads"),
}
#: subcommand -> the package extra that brings the libraries it needs beyond the driver's
EXTRAS: dict[str, str] = {"bench": "bench"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hdfs-csi",
        description="Kubernetes CSI driver and FUSE mount for HDFS datasets.",
    )
    parser.add_argument("--version", action="version", version=f"hdfs-csi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text, add_help=False)
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if only is not None:
                raise
            sub.add_parser(name, help=f"{help_text} [unavailable: {exc}]", add_help=False)
            continue
        module.register(sub.add_parser(
            name, help=help_text, description=help_text,
            formatter_class=DefaultsHelpFormatter,
        ))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    only = next((a for a in args_list if not a.startswith("-")), None)
    if only not in SUBCOMMANDS:
        only = None
    try:
        parser = build_parser(only)
    except ImportError as exc:
        extra = EXTRAS.get(only or "")
        hint = (f"; install it with: pip install 'hdfs-csi[{extra}]' (the driver image leaves "
                f"it out; the {extra} image has it)" if extra else "")
        print(f"hdfs-csi {only}: a library it needs is not installed ({exc}){hint}",
              file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    rc = args.func(args)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
