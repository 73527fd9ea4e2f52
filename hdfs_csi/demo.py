"""``hdfs-csi demo``: the whole product on one machine, acting as Kubernetes would.

It starts an HDFS (minidfs by default; ``--backend hadoop`` runs Apache
Hadoop's own NameNode and DataNode, a MiniDFSCluster in a JVM) and the CSI
driver as separate processes (as they run in a cluster), loads a small
dataset, and then makes the calls kubelet and the external-provisioner make:
a static read-only dataset volume and a dynamic read-write volume, each staged
(FUSE mount) and published (bind mount) into a "pod" directory, read and
written with plain file I/O.  Everything is torn down at the end, also on
Ctrl-C, and the demo fails loudly if a mount is left.

The demo talks to the driver only over its gRPC unix socket, so what it shows
is exactly what a cluster gets.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

from hdfs_csi_common.units import format_size, parse_size
from hdfs_csi.demo_harness import (
    Csi, DemoError, Teardown, check_prerequisites, say, start_driver, start_hadoop,
    start_minidfs, step,
)

DATASET_PATH = "/datasets/sample"


# -- the dataset ------------------------------------------------------------------

@dataclass
class Dataset:
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    total_bytes: int = 0


def load_dataset(hdfs_uri: str, images: int, image_size: int, shards: int,
                 shard_size: int, seed: int = 42) -> Dataset:
    """Write ImageNet-like small files and TFRecord-like shards, seeded."""
    from hdfs_client import connect

    rng = random.Random(seed)
    ds = Dataset()
    client = connect(hdfs_uri)
    try:
        client.mkdirs(DATASET_PATH + "/images")
        client.mkdirs(DATASET_PATH + "/shards")
        items: list[tuple[str, int]] = [
            (f"images/class{i % 10:02d}_{i:05d}.jpg", int(image_size * rng.uniform(0.7, 1.3)))
            for i in range(images)
        ] + [(f"shards/train-{i:05d}-of-{shards:05d}.tfrecord", shard_size) for i in range(shards)]
        for rel, size in items:
            data = rng.randbytes(size)
            client.write_file(f"{DATASET_PATH}/{rel}", data)
            ds.files[rel] = hashlib.sha256(data).hexdigest()
            ds.total_bytes += size
    finally:
        client.close()
    return ds


# -- CSI calls ---------------------------------------------------------------------

def read_tree(root: str, expected: Dataset) -> tuple[int, int, float, list[str]]:
    """Read every file with plain open()/read(); return files, bytes, seconds, mismatches."""
    bad: list[str] = []
    nbytes = 0
    t0 = time.perf_counter()
    for rel, digest in sorted(expected.files.items()):
        h = hashlib.sha256()
        with open(os.path.join(root, rel), "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                nbytes += len(chunk)
        if h.hexdigest() != digest:
            bad.append(rel)
    return len(expected.files), nbytes, time.perf_counter() - t0, bad


def dataloader_epoch(root: str, workers: int = 2) -> tuple[int, float] | None:
    """One epoch of a real PyTorch DataLoader over the images, if torch is installed."""
    try:
        import torch
        from torch.utils.data import DataLoader, Dataset as TorchDataset
    except ImportError:
        return None

    paths = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(root, "images"))
                   for f in fs)

    class Images(TorchDataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return len(paths)

        def __getitem__(self, i: int) -> "torch.Tensor":
            with open(paths[i], "rb") as fh:
                raw = torch.frombuffer(bytearray(fh.read()), dtype=torch.uint8)
            return raw[:1024].float().mean()  # stands in for decoding

    loader = DataLoader(Images(), batch_size=32, shuffle=True, num_workers=workers)
    t0 = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    return n, time.perf_counter() - t0


# -- the run --------------------------------------------------------------------------

def _mb_s(nbytes: int, seconds: float) -> str:
    return f"{nbytes / max(seconds, 1e-9) / 1e6:.1f} MB/s"



def run_demo(args: argparse.Namespace) -> int:
    check_prerequisites(args.port, getattr(args, "backend", "minidfs"))
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="hdfs-csi-demo-", dir=args.workdir)
    teardown = Teardown()
    # Ctrl-C and SIGTERM both become KeyboardInterrupt so the finally-block tears down.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    say(f"hdfs-csi demo (work directory {workdir})")
    try:
        _run(args, workdir, teardown)
    except KeyboardInterrupt:
        say("\ninterrupted: tearing down")
        teardown.run()
        _final_mount_check(workdir)
        return 130
    except BaseException:
        teardown.run()
        _final_mount_check(workdir)
        raise
    teardown.run()
    leftover = _final_mount_check(workdir)
    if teardown.failures or leftover:
        for f in teardown.failures:
            say(f"teardown problem: {f}")
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    say("\ndemo finished: all volumes unpublished, unstaged and deleted; no mount left behind")
    return 0


def _final_mount_check(workdir: str) -> list[str]:
    """Unmount anything still mounted under the work directory (never leave one behind)."""
    from fuse_mount.mounts import unmount_under

    left, still = unmount_under(workdir)
    if left:
        say(f"cleaned up {len(left)} leftover mount(s); still mounted: {len(still)}")
    return still


def _run(args: argparse.Namespace, workdir: str, teardown: Teardown) -> None:
    from hdfs_client import connect

    backend = getattr(args, "backend", "minidfs")
    if backend == "hadoop":
        step("starting Apache Hadoop HDFS (MiniDFSCluster: NameNode + DataNode in a JVM)")
        t0 = time.perf_counter()
        dfs, hdfs_uri = start_hadoop(workdir, args.block_size)
        teardown.push("stop Hadoop HDFS", dfs.stop)
        say(f"Hadoop HDFS is serving {hdfs_uri} (JVM up in {time.perf_counter() - t0:.1f} s)")
    else:
        step("starting minidfs (embedded HDFS: NameNode + DataNode, real Hadoop wire protocol)")
        dfs, hdfs_uri = start_minidfs(workdir, args.port, args.block_size)
        teardown.push("stop minidfs", dfs.stop)
        say(f"minidfs is serving {hdfs_uri}")

    step(f"loading the sample dataset into {hdfs_uri}{DATASET_PATH}")
    t0 = time.perf_counter()
    ds = load_dataset(hdfs_uri, args.images, args.image_size, args.shards, args.shard_size)
    say(f"wrote {args.images} images (~{format_size(args.image_size)} each) and {args.shards} "
        f"shards of {format_size(args.shard_size)}: {format_size(ds.total_bytes)} in "
        f"{time.perf_counter() - t0:.1f} s")

    step("starting the CSI driver (identity + controller + node) on a unix socket")
    driver, endpoint = start_driver(workdir, hdfs_uri)
    teardown.push("stop the CSI driver", driver.stop)
    csi = Csi(endpoint)
    teardown.push("close the gRPC channel", csi.close)
    pb = csi.pb
    info = csi.identity.GetPluginInfo(pb.GetPluginInfoRequest())
    say(f"driver {info.name} {info.vendor_version} listening at {endpoint}")

    kubelet = os.path.join(workdir, "kubelet")
    # -- a static, read-only dataset volume (a PV an admin wrote for /datasets/sample) --
    step("static dataset volume: NodeStageVolume (FUSE mount) + NodePublishVolume (read-only bind)")
    vol_id = "sample-dataset"
    rox = csi.capability("rox")
    context = {"path": DATASET_PATH}
    staging = os.path.join(kubelet, "plugins", "staging", vol_id)
    target = os.path.join(kubelet, "pods", "notebook-0", "volumes", vol_id, "mount")
    os.makedirs(staging, exist_ok=True)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    csi.node.NodeStageVolume(pb.NodeStageVolumeRequest(
        volume_id=vol_id, staging_target_path=staging, volume_capability=rox,
        volume_context=context))
    teardown.push("unstage the dataset volume", lambda: csi.node.NodeUnstageVolume(
        pb.NodeUnstageVolumeRequest(volume_id=vol_id, staging_target_path=staging)))
    csi.node.NodePublishVolume(pb.NodePublishVolumeRequest(
        volume_id=vol_id, staging_target_path=staging, target_path=target,
        volume_capability=rox, readonly=True, volume_context=context))
    teardown.push("unpublish the dataset volume", lambda: csi.node.NodeUnpublishVolume(
        pb.NodeUnpublishVolumeRequest(volume_id=vol_id, target_path=target)))
    say(f"dataset mounted read-only at {target}")

    step("reading the dataset through the mount with plain file I/O")
    client = connect(hdfs_uri)
    teardown.push("close the HDFS client", client.close)
    # Both paths read and hash every file, so the comparison is like for like.
    t0 = time.perf_counter()
    direct_bytes = 0
    for rel in ds.files:
        data = client.read_file(f"{DATASET_PATH}/{rel}")
        hashlib.sha256(data).hexdigest()
        direct_bytes += len(data)
    direct_s = time.perf_counter() - t0
    n, nbytes, cold_s, bad = read_tree(target, ds)
    if bad:
        raise DemoError(f"{len(bad)} file(s) read through the mount differ from HDFS: {bad[:5]}")
    _, _, warm_s, bad = read_tree(target, ds)
    if bad:
        raise DemoError(f"second read differs from HDFS: {bad[:5]}")
    say(f"read {n} files, {format_size(nbytes)}, every byte verified against HDFS (sha256)")
    say(f"  direct hdfs-native : {_mb_s(direct_bytes, direct_s)}")
    say(f"  mount, first epoch : {_mb_s(nbytes, cold_s)}  ({n / cold_s:.0f} files/s)")
    say(f"  mount, second epoch: {_mb_s(nbytes, warm_s)}  ({n / warm_s:.0f} files/s, cached)")
    try:
        with open(os.path.join(target, "should-fail"), "wb"):
            pass
        raise DemoError("writing to the read-only dataset volume succeeded; it must not")
    except OSError as exc:
        say(f"writing to the read-only volume is refused: {os.strerror(exc.errno or 0)}")
    dl = dataloader_epoch(target)
    if dl is None:
        say("PyTorch is not installed: skipping the DataLoader epoch (pip install torch)")
    else:
        say(f"PyTorch DataLoader epoch over the mount: {dl[0]} samples in {dl[1]:.2f} s "
            f"({dl[0] / dl[1]:.0f} samples/s)")

    # -- a dynamic read-write volume (a PVC with the StorageClass) --
    step("dynamic volume: CreateVolume (HDFS directory + space quota) then stage + publish")
    rwx = csi.capability("rwx")
    created = csi.controller.CreateVolume(pb.CreateVolumeRequest(
        name="pvc-demo-scratch", volume_capabilities=[rwx],
        capacity_range=pb.CapacityRange(required_bytes=256 * 1024 * 1024)))
    vol = created.volume
    teardown.push("delete the dynamic volume", lambda: csi.controller.DeleteVolume(
        pb.DeleteVolumeRequest(volume_id=vol.volume_id)))
    say(f"created volume {vol.volume_id[:48]}... capacity {format_size(vol.capacity_bytes)}")
    staging2 = os.path.join(kubelet, "plugins", "staging", "scratch")
    target2 = os.path.join(kubelet, "pods", "trainer-0", "volumes", "scratch", "mount")
    os.makedirs(staging2, exist_ok=True)
    os.makedirs(os.path.dirname(target2), exist_ok=True)
    csi.node.NodeStageVolume(pb.NodeStageVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=staging2, volume_capability=rwx,
        volume_context=dict(vol.volume_context)))
    teardown.push("unstage the dynamic volume", lambda: csi.node.NodeUnstageVolume(
        pb.NodeUnstageVolumeRequest(volume_id=vol.volume_id, staging_target_path=staging2)))
    csi.node.NodePublishVolume(pb.NodePublishVolumeRequest(
        volume_id=vol.volume_id, staging_target_path=staging2, target_path=target2,
        volume_capability=rwx, volume_context=dict(vol.volume_context)))
    teardown.push("unpublish the dynamic volume", lambda: csi.node.NodeUnpublishVolume(
        pb.NodeUnpublishVolumeRequest(volume_id=vol.volume_id, target_path=target2)))
    payload = os.urandom(3 * 1024 * 1024 + 17)
    with open(os.path.join(target2, "checkpoint.bin"), "wb") as fh:
        fh.write(payload)
    hdfs_dir = _volume_hdfs_path(vol.volume_id)
    back = client.read_file(f"{hdfs_dir}/checkpoint.bin") if hdfs_dir else b""
    if back != payload:
        raise DemoError("a file written through the mount did not arrive intact in HDFS")
    say(f"wrote checkpoint.bin ({format_size(len(payload))}) through the mount; "
        f"HDFS has identical bytes at {hdfs_dir}/checkpoint.bin")
    stats = csi.node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(
        volume_id=vol.volume_id, volume_path=target2))
    for u in stats.usage:
        kind = pb.VolumeUsage.Unit.Name(u.unit).lower()
        say(f"volume stats ({kind}): used {u.used} of {u.total}")

    step("tearing down: unpublish, unstage, delete, stop")


def _volume_hdfs_path(volume_id: str) -> str | None:
    """The dynamic volume's HDFS directory, from its id (``hdfs-csi:`` + URI)."""
    from csi_driver.volumes import decode_volume_id

    ref = decode_volume_id(volume_id)
    return None if ref is None else ref.path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0,
                        help="NameNode port for minidfs; 0 picks a free one so the demo never "
                             "collides with a real HDFS on 8020")
    parser.add_argument("--backend", choices=("minidfs", "hadoop"), default="minidfs",
                        help="the HDFS to run: minidfs (embedded, default) or hadoop (Apache "
                             "Hadoop's MiniDFSCluster in a JVM; needs a JDK and "
                             "scripts/fetch-hadoop.sh)")
    parser.add_argument("--images", type=int, default=400, help="number of ~110 KB sample images")
    parser.add_argument("--image-size", type=parse_size, default=110 * 1024,
                        help="mean image size (ImageNet JPEGs average ~110 KB)")
    parser.add_argument("--shards", type=int, default=4, help="number of TFRecord-like shards")
    parser.add_argument("--shard-size", type=parse_size, default=32 * 1024 * 1024,
                        help="bytes per shard")
    parser.add_argument("--block-size", type=parse_size, default=8 * 1024 * 1024,
                        help="HDFS block size; small so shards span several blocks")
    parser.add_argument("--workdir", default=None,
                        help="parent directory for the demo's temporary files (default: $TMPDIR)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (logs, data) after a successful run")
    parser.add_argument("--pipeline", action="store_true",
                        help="instead: Spark writes a training set into HDFS, a snapshot pins "
                             "it, and a PyTorch and a TensorFlow job read it through the "
                             "driver's volume (needs scripts/setup-pipeline.sh; "
                             "hdfs_csi/pipeline.py)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if getattr(args, "pipeline", False):
        from hdfs_csi.pipeline import demo_main

        return demo_main(args)
    try:
        return run_demo(args)
    except DemoError as exc:
        print(f"hdfs-csi demo: error: {exc}", file=sys.stderr)
        return 2

