"""Percentiles and derived figures: the numbers every table cell comes from."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from benchmarks.stats import Recorder, percentile, ratio, summarize


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200),
       st.sampled_from([0, 1, 25, 50, 90, 99, 100]))
def test_percentile_matches_numpy_linear(xs, q):
    assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)), rel=1e-9, abs=1e-9)


def test_percentile_empty_and_bounds():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_derives_rates_and_milliseconds():
    rec = Recorder(bytes=10_000_000, files=4, ops=10)
    rec.latencies_s = [0.001 * i for i in range(1, 101)]
    rec.ttfb_s = [0.002, 0.004]
    rec._t0, rec._t1 = 100.0, 102.0
    m = summarize(rec)
    assert m.mb_per_s == pytest.approx(5.0)
    assert m.files_per_s == pytest.approx(2.0)
    assert m.ops_per_s == pytest.approx(5.0)
    assert m.latency_p50_ms == pytest.approx(50.5)
    assert m.latency_p99_ms == pytest.approx(99.01)
    assert m.ttfb_p50_ms == pytest.approx(3.0)
    assert m.samples == 100


def test_summarize_leaves_missing_figures_empty():
    rec = Recorder(ops=3)
    rec._t0, rec._t1 = 1.0, 2.0
    m = summarize(rec)
    assert m.mb_per_s is None and m.files_per_s is None and m.latency_p50_ms is None
    assert m.ops_per_s == pytest.approx(3.0)


def test_ratio_guards_against_missing_and_zero_references():
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(None, 4.0) is None
    assert ratio(2.0, None) is None
    assert ratio(2.0, 0.0) is None
    assert ratio(2.0, math.inf) is None
