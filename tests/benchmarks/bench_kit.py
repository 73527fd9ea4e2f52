"""Checks shared by the benchmark tests: is a bench JSON document complete and plausible?"""

from __future__ import annotations

import math
from typing import Any

# figures every "ok" result must have as positive finite numbers, per scenario
REQUIRED = {
    "seq": ["mb_per_s", "files_per_s", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms", "wall_s"],
    "small": ["mb_per_s", "files_per_s", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms",
              "wall_s"],
    "meta": ["ops_per_s", "files_per_s", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms",
             "wall_s", "stat_per_s"],
    "dataloader": ["mb_per_s", "files_per_s", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms",
                   "wall_s", "samples_per_s"],
    "parquet": ["mb_per_s", "files_per_s", "latency_p50_ms", "latency_p99_ms", "ttfb_p50_ms",
                "wall_s", "rows_per_s"],
}


def _pos(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def check_document(doc: dict[str, Any], scenarios: list[str], modes: list[str],
                   allow_skip: set[str] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """Assert every (scenario, mode) is there with plausible figures; return them keyed.

    "skipped" is accepted only with a reason, and only for scenarios in ``allow_skip``.
    """
    assert doc["schema"] == "hdfs-csi-bench/1"
    env = doc["environment"]
    assert env["python"] and env["cpu_count"] >= 1 and "packages" in env
    assert doc["options"]["scenarios"] == scenarios
    by_key = {(r["scenario"], r["mode"]): r for r in doc["results"]}
    for sc in scenarios:
        for mode in modes:
            r = by_key.get((sc, mode))
            assert r is not None, f"missing result {sc}/{mode}"
            if r["status"] == "skipped":
                assert r["reason"], f"{sc}/{mode} skipped without a reason"
                assert allow_skip and sc in allow_skip, f"{sc}/{mode} skipped: {r['reason']}"
                continue
            assert r["status"] == "ok", f"{sc}/{mode}: {r['status']}: {r['reason']}"
            m = r["metrics"]
            for key in REQUIRED[sc]:
                assert _pos(m.get(key)), f"{sc}/{mode}: {key} = {m.get(key)!r}"
            assert m["latency_p99_ms"] >= m["latency_p50_ms"]
            if "local" in modes:
                assert _pos(r["ratio_to_local"]), f"{sc}/{mode}: ratio_to_local"
            if "direct" in modes:
                assert _pos(r["ratio_to_direct"]), f"{sc}/{mode}: ratio_to_direct"
    return by_key
