"""Trustworthy timings in bench.py: min / median / spread over repeats, outlier calls flagged, speedup by fastest call."""

from __future__ import annotations

import pytest
from conftest import tiny_model

from glean_hub import bench
from glean_hub.bench import TimingStats, bench_model, format_table, settings_for


def test_stats_of_steady_calls_are_clean():
    st = TimingStats.of([1.00, 1.02, 0.99, 1.01, 1.00])
    assert (st.min, st.median, st.max, st.outliers) == (0.99, 1.00, 1.02, 0)
    assert st.spread_pct == pytest.approx(3.0) and st.flag() == ""


def test_a_noisy_sample_is_flagged_not_believed():
    # the "27x slower" case of issue 18: one call hit by other load
    st = TimingStats.of([0.010, 0.27, 0.011, 0.010, 0.012])
    assert st.median == 0.011 and st.outliers == 1
    assert st.flag().startswith("noisy: 1 outlier call > 1.5x the fastest") and "spread" in st.flag()
    assert TimingStats.of([1.0, 1.3, 1.1]).flag() == "noisy: spread 27%"
    with pytest.raises(ValueError):
        TimingStats.of([])


def test_rows_carry_min_spread_and_flags(monkeypatch):
    calls = iter(range(10_000))
    real = bench.time_calls

    def slowed(fn, x, device, warmup, repeats):  # every 4th timed call of the fast path 10x slower
        first, times, out = real(fn, x, device, warmup, repeats)
        if fn.__class__.__name__ == "FastGLEAN":
            times = [t * (10 if next(calls) % 4 == 0 else 1) for t in times]
        return first, times, out

    monkeypatch.setattr(bench, "time_calls", slowed)
    rows = bench_model(tiny_model(), "tiny", settings_for(["fp32"]), [1], "cpu", warmup=1, repeats=5)
    fast = rows[1]
    for r in rows:
        assert r.ms_per_image_min <= r.ms_per_image <= r.ms_per_image_max and r.spread_pct >= 0
    assert fast.outliers >= 1 and "noisy" in fast.note and fast.speedup_min > 0
    table = format_table(rows)
    assert "min ms" in table and "spread" in table and "noisy" in table
