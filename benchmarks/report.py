"""Presenting a run: progress bars, the table, the JSON document and the chart.

Ratios are the point of the benchmark (absolute numbers depend on the
machine), so every result carries its ratio to ``direct`` (the in-process
HDFS client: the most a mount could deliver) and to ``local`` (the same files
on local disk: the physical reference), computed on the scenario's headline
figure (:data:`PRIMARY`).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Iterable

from benchmarks.scenarios.base import Bar, ProgressFactory, ScenarioResult, no_progress
from benchmarks.stats import ratio

SCHEMA = "hdfs-csi-bench/1"

#: the headline figure of each scenario, on which ratios are computed
PRIMARY = {
    "seq": "mb_per_s",
    "small": "files_per_s",
    "meta": "ops_per_s",
    "dataloader": "files_per_s",
    "parquet": "mb_per_s",
    "tfdata": "mb_per_s",
}

MODE_ORDER = ("local", "direct", "mount-cold", "mount-warm", "mount-warmup")


# -- progress ------------------------------------------------------------------------

def progress_factory(enabled: bool) -> ProgressFactory:
    """tqdm bars on stderr; a no-op when disabled (not a TTY, or --no-progress)."""
    if not enabled:
        return no_progress
    from tqdm import tqdm

    def make(desc: str, total: int, unit: str) -> Bar:
        return tqdm(total=total or None, desc=desc, unit=unit, unit_scale=(unit == "B"),
                    unit_divisor=1024 if unit == "B" else 1000, file=sys.stderr, leave=False,
                    dynamic_ncols=True, mininterval=0.2)

    return make


# -- ratios ------------------------------------------------------------------------------

def primary_value(res: ScenarioResult) -> float | None:
    if res.status != "ok" or res.metrics is None:
        return None
    return getattr(res.metrics, PRIMARY[res.scenario], None)


def ratios(results: list[ScenarioResult]) -> dict[tuple[str, str], dict[str, float | None]]:
    """``{(scenario, mode): {"to_direct": r, "to_local": r}}``."""
    by_key = {(r.scenario, r.mode): r for r in results}
    out = {}
    for r in results:
        v = primary_value(r)
        ref_d = by_key.get((r.scenario, "direct"))
        ref_l = by_key.get((r.scenario, "local"))
        out[(r.scenario, r.mode)] = {
            "to_direct": ratio(v, primary_value(ref_d) if ref_d else None),
            "to_local": ratio(v, primary_value(ref_l) if ref_l else None),
        }
    return out


# -- table -------------------------------------------------------------------------------

def _f(x: float | None, fmt: str = "{:,.1f}") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return fmt.format(x)


def _rate(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.2f}" if x < 10 else f"{x:,.0f}"


def _ms(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{x:.3f}" if x < 1 else f"{x:,.2f}"


def _note(res: ScenarioResult) -> str:
    if res.status != "ok":
        return f"{res.status}: {res.reason}"
    m = res.metrics
    assert m is not None
    e = m.extra
    if res.scenario == "dataloader":
        au = e.get("accel_utilisation")
        s = f"{e.get('workers')} workers"
        if au is not None:
            s += f", AU {au * 100:.0f}% @ {e.get('compute_ms_per_batch'):.0f} ms/batch"
        return s
    if res.scenario == "meta":
        return f"stat {e.get('stat_per_s', 0):,.0f}/s, ls wide {e.get('list_wide_ms', 0):,.0f} ms"
    if res.scenario == "parquet":
        return f"{e.get('rows_per_s', 0):,.0f} rows/s"
    if res.scenario == "tfdata":
        return f"{e.get('records_per_s', 0):,.0f} records/s, {e.get('readers')} readers"
    return ""


_HEADER = ["scenario", "mode", "MB/s", "files/s", "ops/s", "p50 ms", "p99 ms", "TTFB ms",
           "x direct", "x local", "notes"]


def _cells(results: list[ScenarioResult]) -> list[list[str]]:
    """One row of formatted cells per result; the text and Markdown tables share them."""
    rat = ratios(results)
    rows = []
    for r in results:
        m = r.metrics
        rr = rat[(r.scenario, r.mode)]
        rows.append([
            r.scenario, r.mode,
            _f(m.mb_per_s if m else None), _rate(m.files_per_s if m else None),
            _rate(m.ops_per_s if m else None),
            _ms(m.latency_p50_ms if m else None),
            _ms(m.latency_p99_ms if m else None),
            _ms(m.ttfb_p50_ms if m else None),
            _f(rr["to_direct"], "{:.2f}"), _f(rr["to_local"], "{:.2f}"),
            _note(r),
        ])
    return rows


def format_table(results: list[ScenarioResult]) -> str:
    header = _HEADER
    rows = [header, *_cells(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3, 4, 5, 6, 7, 8, 9}

    def line(row: list[str]) -> str:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                 for i, c in enumerate(row)]
        return "  ".join(cells).rstrip()

    out = [line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)


def markdown_table(results: list[ScenarioResult]) -> str:
    """The same table as Markdown, for BENCHMARKS.md."""
    out = ["| " + " | ".join(_HEADER) + " |",
           "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    out += ["| " + " | ".join(row) + " |" for row in _cells(results)]
    return "\n".join(out)


# -- JSON --------------------------------------------------------------------------------

def _clean(x: Any) -> Any:
    """JSON has no NaN/inf: write null rather than an unparseable document."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def build_document(results: list[ScenarioResult], *, environment: dict[str, Any],
                   options: dict[str, Any], datasets: Any, scenarios: Iterable[str],
                   modes: Iterable[str], started_at: str, finished_at: str,
                   duration_s: float) -> dict[str, Any]:
    rat = ratios(results)
    res = []
    for r in results:
        d = r.to_dict()
        d["primary_metric"] = PRIMARY[r.scenario]
        d["ratio_to_direct"] = rat[(r.scenario, r.mode)]["to_direct"]
        d["ratio_to_local"] = rat[(r.scenario, r.mode)]["to_local"]
        res.append(d)
    return _clean({
        "schema": SCHEMA,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_s": duration_s,
        "scenarios": list(scenarios),
        "modes": list(modes),
        "environment": environment,
        "options": options,
        "datasets": datasets,
        "results": res,
    })


def write_json(path: str, doc: dict[str, Any]) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


# -- chart ----------------------------------------------------------------------------------

def plot(path: str, results: list[ScenarioResult], title: str = "hdfs-csi bench") -> None:
    """Grouped bars: per scenario, each mode's ratio to direct (left) and to local (right)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and never pick an interactive backend
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rat = ratios(results)
    scenarios = list(dict.fromkeys(r.scenario for r in results))
    modes = [m for m in MODE_ORDER if any(r.mode == m for r in results)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=False)
    width = 0.8 / max(len(modes), 1)
    colors = {"local": "#7f7f7f", "direct": "#1f77b4", "mount-cold": "#ff7f0e",
              "mount-warm": "#2ca02c", "mount-warmup": "#d62728"}
    for ax, key, label in ((axes[0], "to_direct", "ratio to direct (in-process HDFS client)"),
                           (axes[1], "to_local", "ratio to local disk")):
        for i, mode in enumerate(modes):
            xs, ys = [], []
            for j, sc in enumerate(scenarios):
                v = rat.get((sc, mode), {}).get(key)
                if v is not None:
                    xs.append(j + (i - (len(modes) - 1) / 2) * width)
                    ys.append(v)
            bars = ax.bar(xs, ys, width, label=mode, color=colors.get(mode))
            for b, y in zip(bars, ys, strict=True):
                ax.annotate(f"{y:.2f}", (b.get_x() + b.get_width() / 2, y), ha="center",
                            va="bottom", fontsize=7, rotation=90, xytext=(0, 2),
                            textcoords="offset points")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        # ratios span 0.01x (cold metadata vs local) to 10x+ (warm cache vs HDFS)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xticks(range(len(scenarios)))
        ax.set_xticklabels(scenarios)
        ax.set_title(label, fontsize=10)
        ax.set_ylabel("x (higher is better)")
        ax.margins(y=0.2)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=colors.get(m, "#333333"), label=m) for m in modes],
               loc="lower center", fontsize=8, ncol=max(len(modes), 1), frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- reading a document back ------------------------------------------------------------------

def results_from_document(doc: dict[str, Any]) -> list[ScenarioResult]:
    """Rebuild results from a JSON document (to re-render a table or chart later)."""
    from benchmarks.stats import Metrics

    fields = set(Metrics.__dataclass_fields__) - {"extra"}
    out = []
    for r in doc["results"]:
        m = r.get("metrics")
        metrics = None
        if m:
            metrics = Metrics(**{k: m.get(k) for k in fields},
                              extra={k: v for k, v in m.items() if k not in fields})
        out.append(ScenarioResult(r["scenario"], r["mode"], r["status"], reason=r.get("reason"),
                                  metrics=metrics, target=r.get("target"),
                                  notes=r.get("notes") or {}))
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report RUN.json [--plot OUT.png]``: Markdown table of a run."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    p.add_argument("json_file")
    p.add_argument("--plot", help="also redraw the chart here")
    a = p.parse_args(argv)
    with open(a.json_file, encoding="utf-8") as f:
        doc = json.load(f)
    results = results_from_document(doc)
    print(markdown_table(results))
    if a.plot:
        plot(a.plot, results)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
