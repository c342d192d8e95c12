"""The benchmark runs every stage it knows, on small inputs, and reports honest numbers."""

from __future__ import annotations

import json

from tomlib import bench


def test_bench_writes_json_and_table(tmp_path):
    out = tmp_path / "bench.json"
    stages = (bench.Stage("market generation", "tomlib.market", "generate"),
              bench.Stage("absent", "tomlib.services.not_there", "f"))
    results = bench.run(sizes=[700], out=out, stages=stages, days=7, repeats=1)
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
