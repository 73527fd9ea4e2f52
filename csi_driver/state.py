"""What the node service remembers about staged volumes, on disk.

One JSON file per staged volume in ``<state-dir>/volumes/``, replaced
atomically (write to a temporary file, fsync, rename, fsync the directory),
so a node service killed at any instant leaves either the old or the new
record, never a torn one.  The record holds everything needed to

* answer idempotent repeats (same staging path and capability -> OK),
* undo exactly what was done (which directories the driver created), and
* remount a dead FUSE mount with the same source, options and identity
  after the node service itself restarted.

The files hold no secrets: a Kerberos identity is recorded as the principal
and the path of its 0600 keytab file (see :mod:`csi_driver.credentials`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass
class Target:
    path: str
    read_only: bool
    capability: dict[str, Any]
    created_dir: bool = False


@dataclass
class StagedVolume:
    volume_id: str
    key: str
    staging_path: str
    cluster_uri: str
    hdfs_path: str              #: what is mounted (a .snapshot path for pinned volumes)
    read_only: bool
    capability: dict[str, Any]
    mount_options: dict[str, str]   #: canonical volume-context form of MountOptions
    dynamic: bool = False
    user: str | None = None
    principal: str | None = None
    keytab_file: str | None = None
    created_staging_dir: bool = False
    #: An inline (ephemeral) volume: kubelet never stages it, so the FUSE mount
    #: sits directly at the pod's target path (``staging_path`` holds that path).
    ephemeral: bool = False
    phase: str = "staging"      #: "staging" until the mount answered, then "staged"
    targets: dict[str, Target] = field(default_factory=dict)

    @property
    def source_uri(self) -> str:
        return f"{self.cluster_uri}{self.hdfs_path}"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["version"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StagedVolume":
        data = dict(data)
        data.pop("version", None)
        targets = {p: Target(**t) for p, t in data.pop("targets", {}).items()}
        return cls(**data, targets=targets)


def volume_key(volume_id: str) -> str:
    """File-name-safe key of a volume id (ids may contain any character)."""
    return hashlib.sha256(volume_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class StateStore:
    def __init__(self, state_dir: str):
        self.root = state_dir
        self.dir = os.path.join(state_dir, "volumes")

    def ensure(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def _file(self, key: str) -> str:
        return os.path.join(self.dir, f"{key}.json")

    def load(self, volume_id: str) -> StagedVolume | None:
        vol = self._load_file(self._file(volume_key(volume_id)))
        if vol is not None and vol.volume_id != volume_id:  # pragma: no cover - hash collision
            return None
        return vol

    def _load_file(self, path: str) -> StagedVolume | None:
        try:
            with open(path, encoding="utf-8") as fh:
                return StagedVolume.from_json(json.load(fh))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError) as exc:
            # A corrupt record must not take the whole node service down; it is
            # kept for an operator and treated as absent.
            log.error("ignoring unreadable state file %s: %s", path, exc)
            return None

    def save(self, vol: StagedVolume) -> None:
        self.ensure()
        final = self._file(vol.key)
        tmp = f"{final}.tmp"
        payload = json.dumps(vol.to_json(), indent=1, sort_keys=True).encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o600)
        try:
            os.write(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        self._fsync_dir()

    def delete(self, vol: StagedVolume) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._file(vol.key))
        self._fsync_dir()

    def all(self) -> list[StagedVolume]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name.endswith(".json"):
                vol = self._load_file(os.path.join(self.dir, name))
                if vol is not None:
                    out.append(vol)
        return out

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
