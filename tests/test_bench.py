"""The benchmark runs every stage it knows, on small inputs, and reports honest numbers."""

from __future__ import annotations

import json

import pytest

from tomlib import bench
from tomlib.services import aggregation


def test_bench_writes_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    stages = (bench.Stage("market generation", "tomlib.market", "generate"),
              bench.Stage("absent", "tomlib.services.not_there", "f"))
    results = bench.run(sizes=[700], out=out, stages=stages, days=7, repeats=1, compare_methods=())
    market, absent = results
    # 100 import MPANs plus the export MPANs of solar homes, over a week holding the 46-period day
    periods_in_week = 7 * 48 - 2
    assert market.meter_periods % periods_in_week == 0
    assert 100 <= market.meter_periods // periods_in_week <= 130
    assert market.seconds > 0 and market.peak_memory_bytes > market.meter_periods * 4
    assert absent.skipped and "not_there" in absent.skipped
    payload = json.loads(out.read_text())
    assert [r["stage"] for r in payload["results"]] == ["market generation", "absent"]
    table = bench.format_table(results)
    assert "market generation" in table and "skipped" in table


def test_run_reports_growth_and_the_comparison(tmp_path):
    out = tmp_path / "bench.json"
    out.write_text(json.dumps({"scale": {"rows": []}}))  # another tool's key in the same file is kept
    stages = (bench.Stage("aggregation", "tomlib.services.aggregation", "aggregate"),)
    report = bench.run(sizes=[700, 7000], out=out, stages=stages, days=7, repeats=1)
    small, large = report
    assert small.growth_per_10x is None and large.growth_per_10x > 0
    payload = json.loads(out.read_text())
    assert payload["scale"] == {"rows": []}
    assert [r["growth_per_10x"] for r in payload["results"]][1] == pytest.approx(large.growth_per_10x)
    rows = payload["comparison"]
    assert [r["mpan_days"] for r in rows] == [700, 7000]
    for r in rows:
        for key in ("tomlib_seconds", "duckdb_seconds", "pandas_seconds", "plain_sum_seconds",
                    "duckdb_over_tomlib", "pandas_over_tomlib", "tomlib_over_plain_sum",
                    "tomlib_cpu_seconds", "duckdb_over_tomlib_cpu", "pandas_over_tomlib_cpu",
                    "tomlib_over_plain_sum_cpu"):
            assert r[key] > 0, key
        assert set(r["max_abs_diff_kwh"]) == {"duckdb", "pandas"} and not r["skipped"]
    assert set(rows[1]["growth_per_10x"]) == set(bench.METHODS)
    table = out.with_suffix(".txt").read_text()
    assert table.strip() == bench.format_table(report).strip()
    for label in ("DuckDB/tomlib", "pandas/tomlib", "tomlib/sum", "x t/10x n", "equal tomlib's"):
        assert label in table


@pytest.mark.parametrize("first_date, periods", [("2026-03-28", 48 + 46), ("2026-10-24", 48 + 50)])
def test_duckdb_and_pandas_give_tomlibs_corrected_volumes(first_date, periods):
    """Defaults, losses, a supplier change, de-energised MPANs and the correction, over a short and a long day."""
    c = bench.compare(1400, days=2, first_date=first_date, repeats=1)
    assert c.meter_periods == 700 * periods and c.aggregates > 0
    assert set(c.max_abs_diff_kwh) == {"duckdb", "pandas"} and not c.skipped
    assert max(c.max_abs_diff_kwh.values()) <= bench.RTOL * 100
    kwargs = aggregation.bench_inputs(1400, days=2, first_date=first_date)  # the data compare() used
    quality = kwargs["meters"]["quality"].values
    force = kwargs["registration"]
    # the data exercise every branch of the three methods
    assert (quality == 0).any() and (force.event[:, 0] != force.event[:, -1]).any() and not force.energised.all()


def test_a_method_that_differs_from_tomlib_is_not_timed(monkeypatch):
    real = bench._pandas

    def off_by_a_little(long):
        out = real(long)
        out.loc[out.index[len(out) // 2], "corrected"] *= 1.0 + 1e-6
        return out

    monkeypatch.setattr(bench, "_pandas", off_by_a_little)
    with pytest.raises(AssertionError, match="pandas differs from tomlib"):
        bench.compare(700, days=1, repeats=1, methods=("pandas",))


def test_capped_and_absent_methods_are_reported_skipped(monkeypatch):
    monkeypatch.setitem(bench.METHOD_CAPS, "pandas", (100, "a cap for the test"))

    def no_duckdb(long):
        raise ModuleNotFoundError("No module named 'duckdb'", name="duckdb")

    monkeypatch.setattr(bench, "_duckdb_connect", no_duckdb)
    c = bench.compare(700, days=1, repeats=1)
    assert c.skipped == {"pandas": "run up to 100 MPAN-days only: a cap for the test",
                         "duckdb": "duckdb is not installed"}
    assert c.duckdb_over_tomlib is None and c.pandas_over_tomlib is None and c.tomlib_over_plain_sum > 0
    table = bench.format_comparison([c])
    assert "pandas at 700 MPAN-days skipped: run up to 100 MPAN-days only" in table
    assert "duckdb at 700 MPAN-days skipped: duckdb is not installed" in table


def test_growth_is_the_time_ratio_per_tenfold_size():
    assert bench.growth({1_000: 1.0, 10_000: 10.0, 100_000: 200.0}) == pytest.approx({10_000: 10.0, 100_000: 20.0})
    assert bench.growth({100: 1.0, 10_000: 100.0}) == pytest.approx({10_000: 10.0})  # two decades, linear
    assert bench.growth({100: None, 1_000: 2.0}) == {}


def test_default_sizes_reach_ten_million_and_caps_say_why():
    from tomlib import cli

    assert bench.SIZES == (100_000, 1_000_000, 10_000_000)
    assert cli.build_parser().parse_args(["bench"]).sizes == list(bench.SIZES)
    uncapped = {s.name for s in bench.STAGES if s.max_mpan_days is None}
    assert {"aggregation", "GSP group correction", "load shaping"} <= uncapped
    for stage in bench.STAGES:
        if stage.max_mpan_days is not None:
            row = bench.measure(stage, stage.max_mpan_days * 10)  # returns before building any input
            assert row.skipped == f"timed up to {stage.max_mpan_days:,} MPAN-days only: {stage.cap_reason}"
            assert row.seconds is None
    assert "skipped: timed up to" in bench.format_table([bench.measure(bench.STAGES[0], 10**7)])


def test_scale_rows_join_the_bench_json_without_replacing_its_parts(tmp_path):
    from tomlib.scale import bench as scale_bench

    out = tmp_path / "bench.json"
    bench.update_json(out, {"machine": {"cpus": 2}, "results": [{"stage": "metering"}]})
    scale_bench.merge_into(out, [])
    payload = json.loads(out.read_text())
    assert payload["machine"] == {"cpus": 2} and payload["results"] == [{"stage": "metering"}]
    assert set(payload["scale"]) == {"rows", "linearity", "load_average", "written"}
    fresh = tmp_path / "scale_only.json"
    scale_bench.merge_into(fresh, [])
    assert set(json.loads(fresh.read_text())["machine"]) == set(bench.machine_facts())
