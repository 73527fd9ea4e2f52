"""POSIX-style permission checks, following HDFS's FSPermissionChecker.

HDFS has no ACLs-by-default and no setuid: a caller is the owner, a member of
the inode's group, or "other"; the superuser (the user who started the
NameNode) bypasses everything.  Group membership comes from a static mapping
given to MiniDFS, because a test cluster must not depend on the host's
``/etc/group``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minidfs.errors import AccessControl
from minidfs.inodes import INode

READ = 4
WRITE = 2
EXECUTE = 1

_ACTION_NAMES = {
    READ: "READ", WRITE: "WRITE", EXECUTE: "EXECUTE", READ | EXECUTE: "READ_EXECUTE",
    WRITE | EXECUTE: "WRITE_EXECUTE", READ | WRITE: "READ_WRITE", 7: "ALL", 0: "NONE",
}


@dataclass(frozen=True)
class Caller:
    """Who is making a call: ``effectiveUser`` from the connection context."""

    user: str
    groups: frozenset[str] = field(default_factory=frozenset)
    is_superuser: bool = False


def mode_string(inode: INode) -> str:
    perm = inode.perm
    out = ["d" if inode.is_dir else "-"]
    for shift in (6, 3, 0):
        bits = (perm >> shift) & 7
        out.append("r" if bits & 4 else "-")
        out.append("w" if bits & 2 else "-")
        out.append("x" if bits & 1 else "-")
    if perm & 0o1000:
        out[-1] = "t" if out[-1] == "x" else "T"
    return "".join(out)


def allowed(caller: Caller, inode: INode, access: int) -> bool:
    if caller.is_superuser:
        return True
    if caller.user == inode.owner:
        bits = inode.perm >> 6
    elif inode.group in caller.groups:
        bits = inode.perm >> 3
    else:
        bits = inode.perm
    return (bits & access) == access


def check(caller: Caller, inode: INode, access: int, path: str | None = None) -> None:
    if not allowed(caller, inode, access):
        raise AccessControl(
            f"Permission denied: user={caller.user}, access={_ACTION_NAMES[access]}, "
            f'inode="{path or inode.path()}":{inode.owner}:{inode.group}:{mode_string(inode)}'
        )


def check_owner(caller: Caller, inode: INode, path: str | None = None) -> None:
    if caller.is_superuser or caller.user == inode.owner:
        return
    raise AccessControl(
        f"Permission denied. user={caller.user} is not the owner of inode={path or inode.path()}"
    )


def check_superuser(caller: Caller, what: str) -> None:
    if not caller.is_superuser:
        raise AccessControl(f"Access denied for user {caller.user}. Superuser privilege is "
                            f"required ({what})")


def check_sticky(caller: Caller, parent: INode, child: INode) -> None:
    """Sticky directories: only the owner of the entry (or of the dir) may remove/rename it."""
    if not parent.perm & 0o1000 or caller.is_superuser:
        return
    if caller.user in (parent.owner, child.owner):
        return
    raise AccessControl(
        f"Permission denied by sticky bit: user={caller.user}, path=\"{child.path()}\":"
        f"{child.owner}:{child.group}:{mode_string(child)}, parent=\"{parent.path()}\":"
        f"{parent.owner}:{parent.group}:{mode_string(parent)}"
    )
