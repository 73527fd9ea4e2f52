"""``hdfs-csi mount hdfs://HOST:PORT/path MOUNTPOINT [options]``.

Every flag is generated from :class:`fuse_mount.options.MountOptions`, so
``--help``, the CSI volume attributes and ``MountOptions.to_args()`` can never
disagree about a name or a default.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from fuse_mount.options import MountOptions, flag_name, parse_value
from hdfs_csi_common.units import format_size


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Mount an HDFS directory as a local filesystem through FUSE. Without --foreground "
        "the command returns once the mount answers (exit 0) or failed (non-zero, reason "
        "on stderr); the mount process keeps running detached. Unmount with "
        "'fusermount3 -u MOUNTPOINT' or by sending SIGTERM to the mount process.")
    parser.add_argument("source", metavar="hdfs://HOST:PORT/path",
                        help="HDFS directory to mount (viewfs:// and HA nameservices work too)")
    parser.add_argument("mountpoint", metavar="MOUNTPOINT",
                        help="local directory to mount on (created if missing)")
    for f in dataclasses.fields(MountOptions):
        kind = f.metadata["kind"]
        flag = flag_name(f)
        help_text = f.metadata["help"]
        if kind == "bool" and f.default is False:
            parser.add_argument(flag, dest=f.name, action="store_true", default=False,
                                help=help_text)
        elif kind in ("bool", "bool3"):  # on by default (or unset): --no-X must exist too
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                                default=f.default, help=help_text)
        else:
            default = f.default
            if kind == "size":
                default = format_size(default).replace(" ", "").replace(".0", "")
            parser.add_argument(flag, dest=f.name, metavar=_metavar(kind), default=default,
                                type=_parser_for(kind), help=help_text)
    parser.set_defaults(func=run)


def _metavar(kind: str) -> str:
    return {"size": "SIZE", "duration": "SECONDS", "int": "N", "path": "PATH",
            "list": "PATHS"}.get(kind, "VALUE")


def _parser_for(kind: str):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        try:
            return parse_value(kind, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = kind
    return parse


def options_from_args(args: argparse.Namespace) -> MountOptions:
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(MountOptions)}
    return MountOptions(**values)


def run(args: argparse.Namespace) -> int:
    from hdfs_csi_common.logsetup import setup_logging

    try:
        opts = options_from_args(args)
    except ValueError as exc:
        print(f"hdfs-csi mount: {exc}", file=sys.stderr)
        return 2
    from hdfs_client.uri import parse_hdfs_uri

    try:
        parse_hdfs_uri(args.source)
    except ValueError as exc:
        print(f"hdfs-csi mount: {exc}", file=sys.stderr)
        return 2

    def body(on_ready=None) -> None:  # type: ignore[no-untyped-def]
        from fuse_mount.runner import run_mount, uses_own_loop

        if uses_own_loop(opts):
            from fuse_mount.keeper import keep_mount

            keep_mount(args.source, args.mountpoint, opts, on_ready=on_ready)
        else:
            run_mount(args.source, args.mountpoint, opts, on_ready=on_ready)

    if opts.foreground:
        setup_logging(opts.log_level, component="hdfs-csi-mount")
        from fuse_mount.runner import MountError

        try:
            body()
        except MountError as exc:
            print(f"hdfs-csi mount: {exc}", file=sys.stderr)
            return 1
        return 0

    from fuse_mount.daemon import daemonize

    return daemonize(
        lambda ready: body(ready),
        pid_file=opts.pid_file, log_file=opts.log_file,
        startup_timeout=max(60.0, 2 * opts.io_timeout + 10),
        setup_logging=lambda: setup_logging(opts.log_level, component="hdfs-csi-mount"),
    )
