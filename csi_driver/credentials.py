"""Turning secrets into something a mount can use, and nothing more.

A Kerberos keytab arrives base64-encoded in the node-stage secret.  It is
written to exactly one place: a 0600 file in the state directory's
``credentials/`` folder (itself 0700), created with O_EXCL so an existing
file or symlink there is never followed.  The FUSE daemon gets only the
file's path.  NodeUnstageVolume removes the file.  Nothing in this module
logs or formats the key material.
"""

from __future__ import annotations

import contextlib
import os

from csi_driver.params import Credentials


class CredentialStore:
    def __init__(self, state_dir: str):
        self.dir = os.path.join(state_dir, "credentials")

    def _ensure_dir(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)

    def keytab_path(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.keytab")

    def write_keytab(self, key: str, creds: Credentials) -> str:
        """Write ``creds.keytab`` for the volume ``key``; return the file's path.

        Rewritten on every stage so a rotated secret takes effect on the next
        (re)mount; written to a temporary name first so a reader never sees a
        half-written keytab.
        """
        assert creds.keytab is not None
        self._ensure_dir()
        final = self.keytab_path(key)
        tmp = f"{final}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(creds.keytab)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        return final

    def remove(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.keytab_path(key))

    def mount_args(self, creds: Credentials | None, keytab_file: str | None,
                   default_user: str | None) -> list[str]:
        """Identity flags of the ``hdfs-csi mount`` command contract."""
        if creds is not None and creds.kerberos:
            assert keytab_file is not None
            return ["--kerberos-principal", str(creds.principal), "--kerberos-keytab", keytab_file]
        user = creds.user if creds is not None and creds.user else default_user
        return ["--user", user] if user else []
