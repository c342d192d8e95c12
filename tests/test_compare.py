"""Scenario comparison (tomlib.compare) and writing scenarios back to YAML (tomlib.scenario_io).

One comparison on the tiny scenario, settled once (run II only, one shared market), feeds the
assertions. DCC retrieval that never succeeds against one that always does must move the share
of MPAN-periods settled on actual data at the initial run, so the difference is not zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tomlib import compare as cmp_mod
from tomlib.scenario import ScenarioError, load_scenario
from tomlib.scenario_io import SECTION_COMMENTS, write_scenario

TINY = Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml"


@pytest.fixture(scope="module")
def pair():
    return cmp_mod.load_pair(TINY, TINY, {"name": "never", "retrieval.success_rate": 0.0},
                             {"name": "always", "retrieval.success_rate": 1.0})


@pytest.fixture(scope="module")
def comparison(pair):
    from tomlib.market import generate

    a, b = pair
    market = generate(a)
    return cmp_mod.compare(a, b, runs=["II"], markets={"never": market, "always": market})


def test_settings_diff_names_only_what_differs(pair):
    diff = cmp_mod.settings_diff(*pair, names=("never", "always"))
    assert list(diff.index) == ["name", "retrieval.success_rate"]
    assert diff.loc["retrieval.success_rate"].tolist() == [0.0, 1.0]
    assert cmp_mod.shares_market(*pair)
    other = pair[0].with_overrides({"market.household_noise": 0.3})
    assert not cmp_mod.shares_market(pair[0], other)


def test_overrides_are_validated():
    with pytest.raises(ScenarioError, match="success_rate"):
        cmp_mod.load_pair(TINY, TINY, {"retrieval.success_rate": 1.5})


def test_comparison_lines_up_error_by_run(comparison):
    assert comparison.names == ("never", "always")
    assert list(comparison.errors.index) == ["II"]
    assert set(comparison.errors.columns.get_level_values("metric")) == set(cmp_mod.ERROR_COLUMNS)
    err = comparison.errors.loc["II"]
    diff = comparison.difference.loc["II"]
    assert diff["actual_share"] == pytest.approx(err[("actual_share", "always")] - err[("actual_share", "never")])
    # retrieval that always succeeds settles more on actuals than retrieval that never does
    assert diff["actual_share"] > 0.05, comparison.errors
    assert err[("abs_error", "never")] >= 0 and err[("abs_error", "always")] >= 0


def test_records_are_json(comparison):
    rec = cmp_mod.comparison_records(comparison)
    json.dumps(rec, allow_nan=False)
    assert rec["scenarios"] == ["never", "always"] and rec["runs"] == ["II"]
    assert rec["settings_differ"]["retrieval.success_rate"] == [0.0, 1.0]
    assert rec["error_difference_by_run"]["II"]["actual_share"] > 0


def test_write_scenario_round_trips_with_comments(pair, tmp_path):
    scn = pair[1]
    path = write_scenario(scn, tmp_path / "sub" / "always.yaml")
    back = load_scenario(path)
    assert back.digest() == scn.digest() and back.retrieval.success_rate == 1.0
    text = path.read_text()
    assert text.count("\n# ") >= len(SECTION_COMMENTS) - 1  # a comment above each section
    assert "# Smart meter data retrieval" in text and scn.digest()[:12] in text
    assert [p.name for p in path.parent.iterdir()] == ["always.yaml"]  # no temporary left


def test_write_scenario_refuses_other_suffix(pair, tmp_path):
    with pytest.raises(ValueError, match=r"\.yaml"):
        write_scenario(pair[0], tmp_path / "x.json")
