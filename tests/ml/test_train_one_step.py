"""One training step of a tiny model, TensorFlow/Keras and PyTorch, from data read
through a real FUSE mount of minidfs.

The dataset is made here without either framework: TFRecord shards (framed by
:mod:`benchmarks.tfrecord`) for TensorFlow, one file per sample for a PyTorch
map-style dataset; each record is 8 float32 features and a float32 label.  A
job in a subprocess (``sys.executable -c``) reads the mount's paths as a
training job in a pod would: every record once (counted and summed, so a
wrong or missing byte fails the test), then one optimizer step, whose weights
must change and whose loss must be finite.

A subprocess is also a must: minidfs runs inside this pytest process, and a
framework's reader that maps a FUSE file would fault its pages in while this
process holds the GIL that minidfs needs to serve them.  The framework is
looked up, not imported, here, so neither loads into the test process; a
test whose framework is not installed is skipped with the reason.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.tfrecord import write_records

pytestmark = [pytest.mark.fuse, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
SAMPLES = 96
SHARDS = 3
FEATURES = 8


def _needs(module: str, how: str) -> pytest.MarkDecorator:
    """Skip (before minidfs starts) where ``module`` is not installed, saying how to get it."""
    return pytest.mark.skipif(importlib.util.find_spec(module) is None,
                              reason=f"{module} is not installed ({how})")


def _samples() -> np.ndarray:
    """Rows of 8 features and a label (a fixed linear function of them)."""
    rng = np.random.Generator(np.random.PCG64(16))
    x = rng.standard_normal((SAMPLES, FEATURES), dtype=np.float32)
    w = np.linspace(-1, 1, FEATURES, dtype=np.float32)
    y = (x @ w + 0.5).astype(np.float32)[:, None]
    return np.concatenate([x, y], axis=1)


@pytest.fixture(scope="module")
def dataset(minidfs: Any) -> tuple[str, np.ndarray]:
    """``tfrecords/part-*.tfrecord`` and ``samples/*.bin`` in a fresh HDFS directory."""
    import hdfs_client

    rows = _samples()
    base = f"/ml-{uuid.uuid4().hex[:10]}"
    client = hdfs_client.connect(minidfs.uri)
    try:
        for s in range(SHARDS):
            out = io.BytesIO()
            write_records(out, (r.tobytes() for r in rows[s::SHARDS]))
            client.write_file(f"{base}/tfrecords/part-{s:05d}-of-{SHARDS:05d}.tfrecord",
                              out.getvalue())
        for i, r in enumerate(rows):
            client.write_file(f"{base}/samples/{i:05d}.bin", r.tobytes())
    finally:
        client.close()
    return f"{minidfs.uri}{base}", rows


def _train(script: str, mnt: Path) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(script), str(mnt)], cwd=REPO,
                       capture_output=True, text=True, timeout=200, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def _check(got: dict[str, Any], rows: np.ndarray) -> None:
    assert got["records"] == SAMPLES
    assert got["sum"] == pytest.approx(float(rows.astype(np.float64).sum()), rel=1e-5)
    assert got["steps"] == 1 and got["weights_changed"] is True
    assert np.isfinite(got["loss"]) and got["loss"] > 0


_KERAS = """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import numpy as np
    import tensorflow as tf

    mnt = sys.argv[1]
    files = sorted(tf.io.gfile.glob(os.path.join(mnt, "tfrecords", "*.tfrecord")))
    assert len(files) == 3, files

    def parse(record):
        v = tf.io.decode_raw(record, tf.float32)
        return v[:8], v[8:]

    # the input pipeline of a training job: parallel interleaved reads of the shards
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=3).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)
    records, total = 0, 0.0
    for x, y in ds:                       # an epoch: every record, both CRCs checked
        records += 1
        total += float(tf.reduce_sum(x)) + float(tf.reduce_sum(y))

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(4, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    hist = model.fit(ds.shuffle(96, seed=0).batch(16).take(1), epochs=1, verbose=0)
    changed = any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    print(json.dumps({"records": records, "sum": total, "steps": len(hist.history["loss"]),
                      "loss": float(hist.history["loss"][0]), "weights_changed": changed}))
"""


@_needs("tensorflow", "HDFS_CSI_TF=yes scripts/setup.sh installs tensorflow-cpu")
def test_keras_trains_one_step_from_tfrecords_on_the_mount(dataset, mount_factory) -> None:
    source, rows = dataset
    m = mount_factory(source, "--read-only")
    _check(_train(_KERAS, m.path), rows)


_TORCH = """
    import json, os, sys
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset

    mnt = sys.argv[1]
    root = os.path.join(mnt, "samples")
    names = sorted(os.listdir(root))
    assert len(names) == 96, len(names)

    class Samples(Dataset):
        # one file per sample, read with plain open(), as an image dataset does
        def __len__(self):
            return len(names)

        def __getitem__(self, i):
            with open(os.path.join(root, names[i]), "rb") as f:
                v = torch.from_numpy(np.frombuffer(f.read(), dtype=np.float32).copy())
            return v[:8], v[8:]

    g = torch.Generator().manual_seed(0)
    loader = DataLoader(Samples(), batch_size=16, shuffle=True, generator=g, num_workers=2)
    records, total = 0, 0.0
    for x, y in loader:                   # an epoch through two worker processes
        records += len(x)
        total += float(x.double().sum()) + float(y.double().sum())

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = next(iter(loader))
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    print(json.dumps({"records": records, "sum": total, "steps": 1, "loss": float(loss),
                      "weights_changed": changed}))
"""


@_needs("torch", "HDFS_CSI_TORCH=yes scripts/setup.sh installs it, ~5 GB")
def test_pytorch_trains_one_step_from_files_on_the_mount(dataset, mount_factory) -> None:
    source, rows = dataset
    m = mount_factory(source, "--read-only")
    _check(_train(_TORCH, m.path), rows)


@pytest.mark.parametrize("script", [_KERAS, _TORCH], ids=["keras", "pytorch"])
def test_the_job_scripts_compile(script: str) -> None:
    # runs where the frameworks are missing too: a typo must not hide behind a skip
    compile(textwrap.dedent(script), "<job>", "exec")
