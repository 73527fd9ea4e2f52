"""The checksum the pipeline's agreement rests on (default tier: numpy and pyarrow only).

Spark, the readers and the example manifests' scripts each compute it on their own;
these tests show it is blind to what must not matter (row order, files, the integer
width of a format) and sees what must (any changed value, values swapped between rows),
and that the copies inside deploy/examples/spark-*.yaml compute the very same digests.
"""

from __future__ import annotations

import random
from collections import namedtuple
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pipeline_kit import SCRIPTS, definitions, script

from hdfs_csi.pipeline import (
    COLUMNS,
    FEATURES,
    Checksum,
    PipelineError,
    arrow_columns,
    rows_columns,
)

Row = namedtuple("Row", "id user features label day")


def _rows(n: int = 300, seed: int = 1) -> list[Row]:
    rng = random.Random(seed)
    return [Row(i * 7 + 3, f"u{rng.randrange(100):05d}",
                [float(np.float32(rng.uniform(-1, 1))) for _ in range(FEATURES)],
                rng.randrange(2), rng.randrange(4)) for i in range(n)]


def _sum(rows: list[Row]) -> Checksum:
    cs = Checksum()
    cs.add(*rows_columns(rows))
    return cs


def test_row_order_and_batching_do_not_matter() -> None:
    rows = _rows()
    shuffled = rows[:]
    random.Random(9).shuffle(shuffled)
    batched = Checksum()
    for i in range(0, len(shuffled), 64):
        batched.merge(_sum(shuffled[i:i + 64]))
    assert batched == _sum(rows)
    assert batched.rows == len(rows)


def test_one_flipped_float_bit_changes_only_that_column() -> None:
    rows = _rows()
    feats = list(rows[17].features)
    bits = np.array([feats[5]], dtype=np.float32).view(np.uint32)
    feats[5] = float((bits ^ 1).view(np.float32)[0])
    changed = rows[:17] + [rows[17]._replace(features=feats)] + rows[18:]
    assert _sum(rows).differences(_sum(changed)) == ["column features"]


def test_values_swapped_between_rows_are_seen() -> None:
    """A sum of per-value hashes alone would miss this; each value is hashed with its id."""
    rows = _rows()
    a, b = next((i, j) for i in range(len(rows)) for j in range(i + 1, len(rows))
                if rows[i].user != rows[j].user)
    swapped = list(rows)
    swapped[a] = rows[a]._replace(user=rows[b].user)
    swapped[b] = rows[b]._replace(user=rows[a].user)
    assert _sum(rows).differences(_sum(swapped)) == ["column user"]


def test_a_lost_row_is_seen_in_every_column() -> None:
    rows = _rows()
    assert _sum(rows).differences(_sum(rows[1:])) == \
        [f"rows {len(rows)} != {len(rows) - 1}"] + [f"column {c}" for c in COLUMNS]


def test_round_trip_and_shape_checks() -> None:
    cs = _sum(_rows())
    assert Checksum.from_dict(cs.to_dict()) == cs
    with pytest.raises(PipelineError):
        Checksum().add([1, 2], ["a", "b"], np.zeros((2, FEATURES - 1)), [0, 1], [0, 0])


def test_parquet_by_day_through_pyarrow_dataset_equals_the_rows(tmp_path: Path) -> None:
    """int32 labels and a Hive ``day=N`` directory (as Spark writes them) digest like the
    int64 values of a TFRecord Example; strings like bytes."""
    import pyarrow.dataset as pads

    rows = _rows()
    for day in range(4):
        part = [r for r in rows if r.day == day]
        table = pa.table({"id": pa.array([r.id for r in part], pa.int64()),
                          "user": [r.user for r in part],
                          "features": pa.array([r.features for r in part],
                                               pa.list_(pa.float32())),
                          "label": pa.array([r.label for r in part], pa.int32())})
        (tmp_path / f"day={day}").mkdir()
        pq.write_table(table, tmp_path / f"day={day}" / "part-0.parquet")
    cs = Checksum()
    cs.add_arrow(pads.dataset(str(tmp_path), format="parquet", partitioning="hive").to_table())
    assert cs == _sum(rows)
    ids, users, feats, labels, days = rows_columns(rows)
    as_bytes = Checksum()
    as_bytes.add(ids, [u.encode() for u in users], feats, labels.astype(np.int32), days)
    assert as_bytes == cs


def test_a_short_features_list_is_refused() -> None:
    table = pa.table({"id": [1], "user": ["u"], "features": pa.array([[0.5] * (FEATURES - 1)],
                                                                     pa.list_(pa.float32())),
                      "label": [0], "day": [0]})
    with pytest.raises(PipelineError, match="features"):
        arrow_columns(table)


@pytest.mark.parametrize("manifest", sorted(SCRIPTS))
def test_example_scripts_compile(manifest: str) -> None:
    compile(script(manifest), manifest, "exec")


@pytest.mark.parametrize("manifest", ["spark-pytorchjob.yaml", "spark-tf-job.yaml"])
def test_training_scripts_digest_like_the_pipeline(manifest: str) -> None:
    ns = definitions(manifest, "add")
    rows = _rows()
    sums = dict.fromkeys(COLUMNS, 0)
    ns["add"](sums, *rows_columns(rows))
    assert sums == _sum(rows).sums
    assert (ns["FEATURES"], ns["COLUMNS"], ns["MASK"]) == (FEATURES, COLUMNS, (1 << 64) - 1)


def test_spark_etl_script_digests_like_the_pipeline() -> None:
    ns = definitions("spark-job.yaml", "checksum", "merge")
    rows = _rows()
    parts = [next(ns["checksum"](iter(rows[i:i + 50]))) for i in range(0, len(rows), 50)]
    assert Checksum.from_dict(ns["merge"](parts)) == _sum(rows)
