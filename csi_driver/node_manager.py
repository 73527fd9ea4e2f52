"""Node core: one FUSE mount per staged volume, bind mounts per pod target.

Lifecycle on a node (what kubelet drives)::

    NodeStageVolume    staging dir (created if missing) <- hdfs-csi mount (daemon)
    NodePublishVolume  target dir (created if missing)  <- mount --bind staging [ro]
    NodeUnpublishVolume  umount target, rmdir it if we created it
    NodeUnstageVolume    umount staging (daemon exits), rmdir if created,
                         remove keytab file, cache dir and state record

Every step is recorded in the state directory *before* it changes the
system, and undone on failure, so a repeat of the same call finds either
"already done" (OK) or a half-done step it can finish.  A FUSE mount found
dead (ENOTCONN/EIO on stat) at stage, publish, stats or service start is
recovered: the daemon is stopped, the filesystem mounted again with the
recorded source, options and identity, and every bind of it re-made.

Directories are only ever created at the exact paths kubelet passed (never
their parents), and only what the driver created is removed.  Every local
path is walked component by component from the kubelet root and every mount
and unmount is made on the walked descriptors (:mod:`csi_driver.anchored`), so
no symlink swapped in by whoever can write a kubelet directory redirects
them; nesting one volume inside another is refused from the mounts the walk
crosses, not from path strings.  What a request names on the HDFS side is
checked as the controller checks it (:mod:`csi_driver.scope`): allowed
clusters only, and ``v1:`` ids only inside the base paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from typing import Mapping

from csi_driver.anchored import Anchor
from csi_driver.capabilities import SINGLE_TARGET_MODES, AccessMode, Capability, check_capability
from csi_driver.clients import ClientPool
from csi_driver.config import Config
from csi_driver.credentials import CredentialStore
from csi_driver.errors import (
    AlreadyExists, DriverError, FailedPrecondition, InvalidArgument, MountFailed, VolumeNotFound,
)
from csi_driver.locks import InFlight
from csi_driver.mounter import FuseMountSpec, Mounter
from csi_driver.params import (
    EPHEMERAL, Credentials, MountOptions, parse_secrets, parse_volume_context,
)
from csi_driver.paths import check_local_path, is_under
from csi_driver.scope import check_cluster, check_dynamic
from csi_driver.state import StagedVolume, StateStore, Target, volume_key
from csi_driver.volumes import (
    check_context_matches, check_volume_id, decode_volume_id, static_hdfs_path,
)
from fuse_mount.mounts import MountState
from hdfs_client import HdfsClient
from hdfs_client import errors as hdfs_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedVolume:
    cluster_uri: str
    hdfs_path: str
    dynamic: bool
    read_only: bool          #: forced by the volume itself (readOnly attribute, snapshot)
    mount: MountOptions
    #: an HDFS snapshot (``snapshot`` attribute or a ``.snapshot`` path): no
    #: way to write exists, so a writer use is refused, not quietly made read-only
    pinned: bool = False

    def check_use(self, cap: Capability, readonly: bool = False) -> None:
        """Refuse a writer use of a pinned volume (INVALID_ARGUMENT).

        The CSI spec: "SP MUST ensure the CO can use the ... volume as
        described" by ``volume_capability``; CreateVolume and
        ValidateVolumeCapabilities already refuse writer modes on read-only
        volumes.  A writer mode with ``readonly`` set at publish (kubelet's
        readOnly pod mount, inline volumes) or with the ``ro`` mount flag is a
        read-only use and accepted.
        """
        if self.pinned and not (readonly or cap.reader_only):
            raise InvalidArgument(
                f"{self.hdfs_path} is an HDFS snapshot and always read-only, but access mode "
                f"{cap.access_mode.name} asks to write: use ReadOnlyMany (MULTI_NODE_READER_ONLY), "
                "a readOnly volume mount, or the 'ro' mount option")


@dataclass(frozen=True)
class VolumeStats:
    bytes: tuple[int, int, int] | None      #: (total, used, available); None if HDFS did not answer
    inodes: tuple[int, int, int] | None     #: (total, used, available) when there is an inode quota
    abnormal: bool
    message: str


class NodeManager:
    def __init__(self, config: Config, pool: ClientPool, mounter: Mounter,
                 inflight: InFlight | None = None):
        self.config = config
        self.pool = pool
        self.mounter = mounter
        self.inflight = inflight or InFlight()
        self.store = StateStore(config.state_dir)
        self.creds = CredentialStore(config.state_dir)
        self.mounts_dir = os.path.join(config.state_dir, "mounts")
        self.cache_root = os.path.join(config.state_dir, "cache")
        #: where the mount helper mounts before the driver moves the mount to
        #: the kubelet path: root's alone, so no one can redirect the helper
        self.fuse_dir = os.path.join(config.state_dir, "fuse")
        self.local = Anchor(config.kubelet_dirs)

    # -- resolving what to mount ----------------------------------------------------------------
    def resolve(self, volume_id: str, context: Mapping[str, str]) -> ResolvedVolume:
        ref = decode_volume_id(volume_id)
        ctx = parse_volume_context(context)
        if ref is not None:
            check_context_matches(ref, ctx)
            check_dynamic(self.config, ref)
            return ResolvedVolume(ref.cluster_uri, ref.path, True, ctx.mount.read_only, ctx.mount)
        if ctx.path is None:
            raise VolumeNotFound("no such volume: the id is not a dynamic volume of this driver "
                                 "and volume_context names no path")
        cluster = ctx.hdfs_uri or self.config.hdfs_uri
        if not cluster:
            raise InvalidArgument("volume_context has no hdfsUri and the driver has no --hdfs-uri")
        # A static volume may name any directory (datasets live outside the base
        # path), but only on a cluster the driver was given.
        check_cluster(self.config, cluster)
        path = static_hdfs_path(ctx)
        pinned = ctx.snapshot is not None or ".snapshot" in path.split("/")
        return ResolvedVolume(cluster, path, False, ctx.mount.read_only or pinned, ctx.mount,
                              pinned)

    # -- helpers -----------------------------------------------------------------------------------
    def _client(self, vol: StagedVolume) -> HdfsClient:
        return self.pool.get(vol.cluster_uri, user=vol.user, principal=vol.principal,
                             keytab_file=vol.keytab_file)

    def _spec(self, vol: StagedVolume) -> FuseMountSpec:
        options = parse_volume_context(vol.mount_options).mount
        creds = (Credentials(user=vol.user, principal=vol.principal)
                 if (vol.user or vol.principal) else None)
        return FuseMountSpec(
            source_uri=vol.source_uri,
            mountpoint=os.path.join(self.fuse_dir, vol.key),
            read_only=vol.read_only,
            option_args=tuple(options.to_mount_args())
            + (("--cgroup", self.config.mount_cgroup) if self.config.mount_cgroup else ()),
            identity_args=tuple(self.creds.mount_args(creds, vol.keytab_file,
                                                      self.config.hdfs_user)),
            # The data cache is opt-in (a cacheSize attribute): the node's disk
            # is not ours to fill unless the volume asks for it.
            cache_dir=(os.path.join(self.cache_root, vol.key)
                       if options.get("cache_size") is not None else None),
            pid_file=os.path.join(self.mounts_dir, f"{vol.key}.pid"),
            log_file=os.path.join(self.mounts_dir, f"{vol.key}.log"),
            target=vol.staging_path,
        )

    def _mount(self, vol: StagedVolume) -> None:
        spec = self._spec(vol)
        # A dead, detached or half-started previous mount: unmount it and end its
        # daemon (if the pid file still names one serving this path) first.
        self.mounter.stop_fuse(spec)
        if vol.keytab_file and not os.path.exists(vol.keytab_file):
            raise FailedPrecondition("the Kerberos keytab of this volume is gone; "
                                     "NodeUnstageVolume and stage it again")
        os.makedirs(self.mounts_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.fuse_dir, mode=0o700, exist_ok=True)
        if spec.cache_dir is not None:
            os.makedirs(spec.cache_dir, mode=0o700, exist_ok=True)
        self.mounter.mount_fuse(spec)

    def _recover(self, vol: StagedVolume, why: str) -> None:
        """Remount a dead or missing staging mount and re-bind every target."""
        log.warning("recovering volume %s: %s", vol.volume_id, why)
        self._mount(vol)
        failures = []
        for t in vol.targets.values():
            try:
                state = self.mounter.state(t.path)
                if state is MountState.HEALTHY:
                    continue
                if state is not MountState.ABSENT:
                    self.mounter.unmount(t.path)
                if not t.created_dir and not self.local.is_dir(t.path):
                    raise FailedPrecondition(f"target {t.path} no longer exists")
                self._prepare_dir(t.path, "target_path")
                self.mounter.bind(vol.staging_path, t.path, t.read_only)
            except (DriverError, OSError) as exc:
                failures.append(f"{t.path}: {exc}")
        if failures:
            raise MountFailed("remounted the volume but could not re-bind: " + "; ".join(failures))
        log.info("volume %s recovered", vol.volume_id)

    def _ensure_healthy(self, vol: StagedVolume) -> None:
        state = self.mounter.state(vol.staging_path)
        if state is not MountState.HEALTHY:
            self._recover(vol, f"staging mount {vol.staging_path} is {state.value}")

    def _prepare_dir(self, path: str, what: str) -> bool:
        """Make sure ``path`` is a plain directory; return True if we created it."""
        return self.local.make_dir(path, what)

    def _remove_dir(self, path: str) -> None:
        self.local.remove_dir(path)

    @staticmethod
    def _same(a: str, b: str) -> bool:
        # Both are normalised, and no path with a symlink below the kubelet root
        # is ever used (the walk refuses it): equal strings are the same place.
        return a == b

    def _kubelet_path(self, field_name: str, value: str) -> str:
        """A staging/target path: safe, and below a kubelet directory.

        Symlinks are not resolved here; every use walks the path from its root
        and refuses one (:class:`csi_driver.anchored.Anchor`).
        """
        path = check_local_path(field_name, value)
        roots = self.config.kubelet_dirs
        if not any(is_under(path, r) and path != r for r in roots):
            raise InvalidArgument(f"{field_name} must be below the kubelet directory "
                                  f"({', '.join(roots)})")
        return path

    def _check_no_nesting(self, path: str, field_name: str) -> None:
        """kubelet never nests one volume's paths inside another's; refuse it.

        A mount inside another mount of the driver would be hidden or made
        unremovable by operations on the outer one, and the directory made for
        it would appear in the other volume's HDFS tree.  Recorded paths are
        compared as strings (which, with symlinks refused, are real paths);
        the mounts the path goes through are checked by descriptor, which also
        finds hdfs-csi mounts this node service never recorded.
        """
        for vol in self.store.all():
            for other in (vol.staging_path, *vol.targets):
                if path != other and (is_under(path, other) or is_under(other, path)):
                    raise InvalidArgument(f"{field_name} {path} is nested with {other}, which is "
                                          "in use by a volume")
        inside = self.local.nested_in(path)
        if inside is not None:
            raise InvalidArgument(f"{field_name} {path} lies inside the hdfs-csi volume mounted "
                                  f"at {inside}")

    # -- NodeStageVolume ---------------------------------------------------------------------------
    def stage(self, volume_id: str, staging_target_path: str, cap: Capability | None,
              secrets: Mapping[str, str], context: Mapping[str, str]) -> None:
        check_volume_id(volume_id)
        staging = self._kubelet_path("staging_target_path", staging_target_path)
        check_capability(cap)
        assert cap is not None
        resolved = self.resolve(volume_id, context)
        resolved.check_use(cap)
        creds = parse_secrets(secrets)
        read_only = resolved.read_only or cap.reader_only
        with self.inflight.hold(volume_id):
            vol = self.store.load(volume_id)
            if vol is not None:
                if not self._same(vol.staging_path, staging):
                    raise FailedPrecondition(f"volume is already staged at {vol.staging_path}")
                self._repeat_stage(vol, cap, resolved, read_only, "NodeStageVolume",
                                   "staged at this path")
                return
            self._stage_new(volume_id, staging, cap, resolved, creds, read_only)

    def _repeat_stage(self, vol: StagedVolume, cap: Capability, resolved: ResolvedVolume,
                      read_only: bool, call: str, where: str) -> None:
        """A repeated stage (or inline publish) of a recorded volume: OK if it asks for the
        same thing, finishing or recovering the mount; ALREADY_EXISTS if it asks otherwise."""
        if (vol.capability != cap.fingerprint() or vol.read_only != read_only
                or vol.source_uri != f"{resolved.cluster_uri}{resolved.hdfs_path}"
                or vol.mount_options != resolved.mount.to_context()):
            raise AlreadyExists(f"volume is already {where} with a different capability or "
                                "volume context")
        if vol.phase == "staged" and self.mounter.state(vol.staging_path) is MountState.HEALTHY:
            return
        self._recover(vol, f"repeated {call} found no live mount")
        vol.phase = "staged"
        self.store.save(vol)

    def _stage_new(self, volume_id: str, staging: str, cap: Capability, resolved: ResolvedVolume,
                   creds: Credentials | None, read_only: bool, *, ephemeral: bool = False) -> None:
        what = "target_path" if ephemeral else "staging_target_path"
        self._check_no_nesting(staging, what)
        if self.mounter.state(staging) is not MountState.ABSENT:
            if ephemeral:
                raise AlreadyExists(f"something else is already mounted at {staging}")
            raise FailedPrecondition(f"something not staged by this driver is mounted at {staging}")
        key = volume_key(volume_id)
        keytab_file = self.creds.write_keytab(key, creds) if creds and creds.kerberos else None
        vol = StagedVolume(
            volume_id=volume_id, key=key, staging_path=staging,
            cluster_uri=resolved.cluster_uri, hdfs_path=resolved.hdfs_path,
            read_only=read_only, capability=cap.fingerprint(),
            mount_options=resolved.mount.to_context(), dynamic=resolved.dynamic,
            user=creds.user if creds else None, principal=creds.principal if creds else None,
            keytab_file=keytab_file, ephemeral=ephemeral,
        )
        created = False
        try:
            try:
                status = self._client(vol).get_status(vol.hdfs_path)
            except hdfs_errors.NotFound:
                raise VolumeNotFound(f"{vol.source_uri} does not exist") from None
            if not status.is_dir:
                raise FailedPrecondition(f"{vol.source_uri} is not a directory")
            created = self._prepare_dir(staging, what)
            vol.created_staging_dir = created
            self.store.save(vol)
            self._mount(vol)
        except BaseException:
            self._undo_stage(vol, created)
            raise
        vol.phase = "staged"
        self.store.save(vol)
        log.info("%s volume %s (%s) at %s as %s", "mounted inline" if ephemeral else "staged",
                 volume_id, vol.source_uri, staging,
                 creds.describe() if creds else "the driver's default user")

    def _undo_stage(self, vol: StagedVolume, created_dir: bool) -> None:
        with contextlib.suppress(Exception):
            self.mounter.stop_fuse(self._spec(vol))
        if created_dir and self.mounter.state(vol.staging_path) is MountState.ABSENT:
            with contextlib.suppress(Exception):
                self._remove_dir(vol.staging_path)
        self._forget(vol)

    def _forget(self, vol: StagedVolume) -> None:
        """Remove everything the volume left in the state directory."""
        self.creds.remove(vol.key)
        self.pool.drop(vol.cluster_uri, user=vol.user, principal=vol.principal,
                       keytab_file=vol.keytab_file)
        shutil.rmtree(os.path.join(self.cache_root, vol.key), ignore_errors=True)
        # the helper's mount point (empty once the mount moved to the kubelet
        # path); rmdir, not rmtree: if anything is still mounted there, keep it
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(self.fuse_dir, vol.key))
        for suffix in (".pid", ".log"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.mounts_dir, vol.key + suffix))
        self.store.delete(vol)

    # -- NodeUnstageVolume -------------------------------------------------------------------------
    def unstage(self, volume_id: str, staging_target_path: str) -> None:
        check_volume_id(volume_id)
        staging = self._kubelet_path("staging_target_path", staging_target_path)
        with self.inflight.hold(volume_id):
            vol = self.store.load(volume_id)
            if vol is None or not self._same(vol.staging_path, staging):
                log.info("volume %s is not staged at %s: nothing to undo", volume_id, staging)
                return
            live = [t.path for t in vol.targets.values()
                    if self.mounter.state(t.path) is not MountState.ABSENT]
            if live:
                raise FailedPrecondition(f"volume is still published at {len(live)} target(s); "
                                         "NodeUnpublishVolume them first")
            self.mounter.stop_fuse(self._spec(vol))
            if self.mounter.state(staging) is not MountState.ABSENT:
                raise MountFailed(f"{staging} is still mounted after unmount")
            for t in vol.targets.values():   # stale records of targets that are gone
                if t.created_dir:
                    self._remove_dir(t.path)
            if vol.created_staging_dir:
                self._remove_dir(staging)
            self._forget(vol)
            log.info("unstaged volume %s from %s", volume_id, staging)

    # -- NodePublishVolume -------------------------------------------------------------------------
    def publish(self, volume_id: str, staging_target_path: str, target_path: str,
                cap: Capability | None, readonly: bool, secrets: Mapping[str, str],
                context: Mapping[str, str]) -> None:
        check_volume_id(volume_id)
        target = self._kubelet_path("target_path", target_path)
        check_capability(cap)
        assert cap is not None
        if not staging_target_path and context.get(EPHEMERAL) == "true":
            self._publish_ephemeral(volume_id, target, cap, readonly, secrets, context)
            return
        if not staging_target_path:
            raise FailedPrecondition("staging_target_path is required: this driver stages volumes "
                                     "(STAGE_UNSTAGE_VOLUME)")
        staging = self._kubelet_path("staging_target_path", staging_target_path)
        if is_under(target, staging) or is_under(staging, target):
            raise InvalidArgument("target_path and staging_target_path must not contain each other")
        parse_secrets(secrets)   # validated; the mount's identity was fixed at stage time
        self.resolve(volume_id, context).check_use(cap, readonly)
        with self.inflight.hold(volume_id):
            vol = self.store.load(volume_id)
            if vol is None:
                raise FailedPrecondition("volume is not staged on this node; NodeStageVolume first")
            if not self._same(vol.staging_path, staging):
                raise FailedPrecondition(f"volume is staged at {vol.staging_path}, not {staging}")
            read_only = readonly or cap.reader_only or vol.read_only
            fingerprint = cap.fingerprint()
            existing = vol.targets.get(target)
            if existing is not None:
                if existing.read_only != read_only or existing.capability != fingerprint:
                    raise AlreadyExists("volume is already published at this target with a "
                                        "different capability or readonly flag")
                self._ensure_healthy(vol)
                state = self.mounter.state(target)
                if state is MountState.HEALTHY:
                    return
                if state is not MountState.ABSENT:
                    self.mounter.unmount(target)
                self._prepare_dir(target, "target_path")
                self.mounter.bind(vol.staging_path, target, read_only)
                return
            others = [t for p, t in vol.targets.items()
                      if self.mounter.state(p) is not MountState.ABSENT]
            modes = {AccessMode(cap.mode)} | {AccessMode(int(t.capability.get("mode", 0)))
                                              for t in others}
            if others and modes & SINGLE_TARGET_MODES:
                raise FailedPrecondition("volume is published at another target and its access "
                                         "mode allows a single workload only")
            self._check_no_nesting(target, "target_path")
            if self.mounter.state(target) is not MountState.ABSENT:
                raise AlreadyExists(f"something else is already mounted at {target}")
            created = self._prepare_dir(target, "target_path")
            vol.targets[target] = Target(target, read_only, fingerprint, created)
            self.store.save(vol)
            try:
                self._ensure_healthy(vol)
                self.mounter.bind(vol.staging_path, target, read_only)
            except BaseException:
                with contextlib.suppress(Exception):
                    if self.mounter.state(target) is not MountState.ABSENT:
                        self.mounter.unmount(target)
                    if created:
                        self._remove_dir(target)
                vol.targets.pop(target, None)
                self.store.save(vol)
                raise
            log.info("published volume %s at %s%s", volume_id, target,
                     " (read-only)" if read_only else "")

    def _publish_ephemeral(self, volume_id: str, target: str, cap: Capability, readonly: bool,
                           secrets: Mapping[str, str], context: Mapping[str, str]) -> None:
        """An inline volume: kubelet skips staging, so mount FUSE right at the target.

        Its identity comes from the node-publish secret; NodeUnpublishVolume
        undoes everything (there is no NodeUnstageVolume for it).
        """
        resolved = self.resolve(volume_id, context)
        if resolved.dynamic:
            raise InvalidArgument("an inline volume names its data in volume attributes, not a "
                                  "dynamic volume id")
        resolved.check_use(cap, readonly)
        creds = parse_secrets(secrets)
        read_only = readonly or cap.reader_only or resolved.read_only
        with self.inflight.hold(volume_id):
            vol = self.store.load(volume_id)
            if vol is not None:
                if not vol.ephemeral or not self._same(vol.staging_path, target):
                    raise FailedPrecondition(f"volume is already in use at {vol.staging_path}")
                self._repeat_stage(vol, cap, resolved, read_only, "NodePublishVolume",
                                   "published at this target")
                return
            self._stage_new(volume_id, target, cap, resolved, creds, read_only, ephemeral=True)

    # -- NodeUnpublishVolume -----------------------------------------------------------------------
    def unpublish(self, volume_id: str, target_path: str) -> None:
        check_volume_id(volume_id)
        target = self._kubelet_path("target_path", target_path)
        with self.inflight.hold(volume_id):
            vol = self.store.load(volume_id)
            if vol is not None and vol.ephemeral and self._same(vol.staging_path, target):
                self.mounter.stop_fuse(self._spec(vol))
                if self.mounter.state(vol.staging_path) is not MountState.ABSENT:
                    raise MountFailed(f"{target} is still mounted after unmount")
                if vol.created_staging_dir:
                    self._remove_dir(vol.staging_path)
                self._forget(vol)
                log.info("unpublished inline volume %s from %s", volume_id, target)
                return
            recorded = None
            if vol is not None:
                recorded = vol.targets.get(target) or next(
                    (t for p, t in vol.targets.items() if self._same(p, target)), None)
            if vol is None or recorded is None:
                log.info("volume %s is not published at %s: nothing to undo", volume_id, target)
                return
            self.mounter.unmount(recorded.path)
            if recorded.created_dir:
                self._remove_dir(recorded.path)
            vol.targets.pop(recorded.path, None)
            self.store.save(vol)
            log.info("unpublished volume %s from %s", volume_id, recorded.path)

    # -- NodeGetVolumeStats ------------------------------------------------------------------------
    def stats(self, volume_id: str, volume_path: str) -> VolumeStats:
        check_volume_id(volume_id)
        if not volume_path:
            raise InvalidArgument("volume_path is required")
        if "\x00" in volume_path:
            raise InvalidArgument("volume_path contains a NUL byte")
        vol = self.store.load(volume_id)
        if vol is None:
            raise VolumeNotFound("volume is not staged or published on this node")
        path = os.path.normpath(volume_path) if volume_path.startswith("/") else None
        known = [vol.staging_path, *vol.targets]
        if path is None or not any(self._same(path, k) for k in known):
            raise VolumeNotFound(f"volume is not available at {volume_path[:256]}")
        abnormal, message = False, "mount is healthy"
        state = self.mounter.state(path)
        if state is not MountState.HEALTHY:
            abnormal = True
            try:
                with self.inflight.hold(volume_id):
                    fresh = self.store.load(volume_id)
                    if fresh is not None:
                        self._recover(fresh, f"{path} is {state.value}")
                message = f"the mount at {path} was {state.value}; it has been remounted"
            except DriverError as exc:
                message = f"the mount at {path} is {state.value} and recovery failed: {exc}"
        try:
            return self._usage(vol, abnormal, message)
        except hdfs_errors.HdfsError as exc:
            # Usage needs HDFS; the condition is still worth reporting without it.
            return VolumeStats(None, None, True, f"{message}; HDFS usage unavailable: {exc}")

    def _usage(self, vol: StagedVolume, abnormal: bool, message: str) -> VolumeStats:
        client = self._client(vol)
        summary = client.content_summary(vol.hdfs_path)
        r = self.config.quota_replication
        used = summary.length
        if summary.space_quota >= 0:
            total = summary.space_quota // r
        else:
            try:
                total = used + max(client.fs_stats().remaining, 0) // r
            except hdfs_errors.HdfsError:
                total = used
        inodes = None
        if summary.quota >= 0:
            inodes_used = summary.file_count + summary.directory_count
            inodes = (summary.quota, inodes_used, max(summary.quota - inodes_used, 0))
        return VolumeStats((total, used, max(total - used, 0)), inodes, abnormal, message)

    # -- service start -----------------------------------------------------------------------------
    def adopt(self) -> list[str]:
        """Take over the volumes a previous node service staged; recover dead mounts.

        Healthy mounts are left untouched (their daemons never depended on the
        old service process).  Returns the adopted volume ids.
        """
        self.store.ensure()
        adopted = []
        for vol in self.store.all():
            adopted.append(vol.volume_id)
            try:
                state = self.mounter.state(vol.staging_path)
            except DriverError as exc:
                log.error("cannot look at the mount of volume %s at %s: %s", vol.volume_id,
                          vol.staging_path, exc)
                continue
            if state is MountState.HEALTHY:
                log.info("adopted healthy mount of volume %s at %s",
                         vol.volume_id, vol.staging_path)
                continue
            if vol.phase != "staged":
                log.info("volume %s was being staged when the service stopped; the CO's retry "
                         "will finish it", vol.volume_id)
                continue
            threading.Thread(target=self._adopt_recover, args=(vol.volume_id,),
                             name=f"recover-{vol.key[:8]}", daemon=True).start()
        return adopted

    def _adopt_recover(self, volume_id: str) -> None:
        try:
            with self.inflight.hold(volume_id):
                vol = self.store.load(volume_id)
                if vol is not None:
                    self._ensure_healthy(vol)
        except Exception as exc:  # noqa: BLE001 - logged; the next stage/publish/stats retries
            log.error("could not recover volume %s at start-up: %s", volume_id, exc)
