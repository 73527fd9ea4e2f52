"""The FUSE kernel protocol (``include/uapi/linux/fuse.h``), the part our own
request loop speaks: opcodes, INIT flags, and the request/reply structs as
:mod:`struct` formats.

Why by hand: the loop that survives a daemon crash (:mod:`fuse_mount.session`)
must read and answer ``/dev/fuse`` itself, because libfuse cannot adopt a
connection whose INIT already happened (``../shared/docs/fuse-takeover.md``),
and no maintained Python package exposes the raw protocol.  Only what we use
is here; sizes are those of protocol 7.45, checked against the header's
``static_assert``-like comments in ``fuse.h``.
"""

from __future__ import annotations

import struct

# -- opcodes ------------------------------------------------------------------------------
LOOKUP, FORGET, GETATTR, SETATTR, READLINK, SYMLINK = 1, 2, 3, 4, 5, 6
MKNOD, MKDIR, UNLINK, RMDIR, RENAME, LINK, OPEN, READ, WRITE = 8, 9, 10, 11, 12, 13, 14, 15, 16
STATFS, RELEASE, FSYNC = 17, 18, 20
SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, INIT = 21, 22, 23, 24, 25, 26
OPENDIR, READDIR, RELEASEDIR, FSYNCDIR = 27, 28, 29, 30
GETLK, SETLK, SETLKW, ACCESS, CREATE, INTERRUPT = 31, 32, 33, 34, 35, 36
BMAP, DESTROY, IOCTL, POLL, NOTIFY_REPLY, BATCH_FORGET = 37, 38, 39, 40, 41, 42
FALLOCATE, READDIRPLUS, RENAME2, LSEEK, COPY_FILE_RANGE = 43, 44, 45, 46, 47
SYNCFS, TMPFILE, STATX = 50, 51, 52

OPCODE_NAMES = {v: k.lower() for k, v in dict(globals()).items()
                if k.isupper() and isinstance(v, int) and not k.startswith("_")}

# -- INIT flags (flags | flags2 << 32) --------------------------------------------------------
ASYNC_READ = 1 << 0
ATOMIC_O_TRUNC = 1 << 3
BIG_WRITES = 1 << 5
AUTO_INVAL_DATA = 1 << 12
ASYNC_DIO = 1 << 15
PARALLEL_DIROPS = 1 << 18
MAX_PAGES = 1 << 22
INIT_EXT = 1 << 30
DIRECT_IO_ALLOW_MMAP = 1 << 36
HAS_RESEND = 1 << 39

# -- open reply flags ----------------------------------------------------------------------
FOPEN_DIRECT_IO = 1 << 0
FOPEN_KEEP_CACHE = 1 << 1

# -- setattr valid bits --------------------------------------------------------------------
FATTR_MODE, FATTR_UID, FATTR_GID, FATTR_SIZE = 1, 2, 4, 8
FATTR_ATIME, FATTR_MTIME, FATTR_FH = 16, 32, 64
FATTR_ATIME_NOW, FATTR_MTIME_NOW = 128, 256

GETATTR_FH = 1
RELEASE_FLUSH = 1

# -- notifications (an out header with unique 0 and the code in ``error``) -------------------
NOTIFY_INVAL_INODE = 2
NOTIFY_RESEND = 7

# a request the kernel sends again after NOTIFY_RESEND carries this bit in its unique
RESENT = 1 << 63

# -- structs -------------------------------------------------------------------------------
IN_HEADER = struct.Struct("<IIQQIIIHH")           # len opcode unique nodeid uid gid pid ext pad
OUT_HEADER = struct.Struct("<IiQ")                # len error unique
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")         # fuse_attr, 88 bytes
ENTRY_OUT = struct.Struct("<QQQQII")              # nodeid generation entry/attr valid (+nsec)
ATTR_OUT = struct.Struct("<QII")                  # attr_valid attr_valid_nsec dummy
GETATTR_IN = struct.Struct("<IIQ")                # flags dummy fh
SETATTR_IN = struct.Struct("<IIQQQQQQIIIIIIII")   # valid pad fh size lock atime mtime ctime ...
OPEN_IN = struct.Struct("<II")                    # flags open_flags
OPEN_OUT = struct.Struct("<QIi")                  # fh open_flags backing_id
CREATE_IN = struct.Struct("<IIII")                # flags mode umask open_flags
MKDIR_IN = struct.Struct("<II")                   # mode umask
RENAME_IN = struct.Struct("<Q")                   # newdir
RENAME2_IN = struct.Struct("<QII")                # newdir flags padding
READ_IN = struct.Struct("<QQIIQII")               # fh offset size read_flags lock flags pad
WRITE_IN = struct.Struct("<QQIIQII")              # fh offset size write_flags lock flags pad
WRITE_OUT = struct.Struct("<II")
RELEASE_IN = struct.Struct("<QIIQ")               # fh flags release_flags lock_owner
FLUSH_IN = struct.Struct("<QIIQ")                 # fh unused pad lock_owner
FSYNC_IN = struct.Struct("<QII")                  # fh fsync_flags pad
FORGET_IN = struct.Struct("<Q")                   # nlookup
BATCH_FORGET_IN = struct.Struct("<II")            # count dummy
FORGET_ONE = struct.Struct("<QQ")                 # nodeid nlookup
INIT_IN = struct.Struct("<IIIII")                 # major minor max_readahead flags flags2
INIT_OUT = struct.Struct("<IIIIHHIIHHII24x")      # ... flags2 max_stack_depth unused[6]
STATFS_OUT = struct.Struct("<QQQQQIII4x24x")      # blocks bfree bavail files ffree bsize ...
DIRENT = struct.Struct("<QQII")                   # ino off namelen type
ACCESS_IN = struct.Struct("<II")
INTERRUPT_IN = struct.Struct("<Q")
NOTIFY_INVAL_INODE_OUT = struct.Struct("<Qqq")    # ino off len

KERNEL_VERSION = 7
# the minor we answer with: the features above need 7.40 (resend), and the kernel speaks
# the lower of its own and ours
KERNEL_MINOR = 40
ROOT_ID = 1

assert IN_HEADER.size == 40 and OUT_HEADER.size == 16 and ATTR.size == 88
assert ENTRY_OUT.size + ATTR.size == 128 and INIT_OUT.size == 64 and STATFS_OUT.size == 80
assert SETATTR_IN.size == 88 and READ_IN.size == 40 and RELEASE_IN.size == 24


def dirent_size(namelen: int) -> int:
    """A directory entry's size in a READDIR reply: header + name, padded to 8 bytes."""
    return (DIRENT.size + namelen + 7) & ~7
