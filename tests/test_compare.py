"""Scenario comparison (tomlib.compare) and writing scenarios back to YAML (tomlib.scenario_io).

The issue's question, on the tiny scenario with its real values: DCC retrieval succeeding 95 % of
the time against 99.5 %. With the scenario's three retry days both collect every day before the
Interim Information run, so the comparison must show the difference where it is -- retries and
data held the day after (150 DCC MPAN-days: 93 % against 99 % at the first attempt) -- and, with
``retry_days: 0``, where a failed day is never collected, in the settlement runs themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tomlib import compare as cmp_mod
from tomlib.scenario import ScenarioError, load_scenario
from tomlib.scenario_io import SECTION_COMMENTS, write_scenario

TINY = Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml"
DCC95 = {"name": "dcc95", "retrieval.success_rate": 0.95}
DCC995 = {"name": "dcc995", "retrieval.success_rate": 0.995}


@pytest.fixture(scope="module")
def pair():
    return cmp_mod.load_pair(TINY, TINY, DCC95, DCC995)


@pytest.fixture(scope="module")
def market(pair):
    from tomlib.market import generate

    return generate(pair[0])


@pytest.fixture(scope="module")
def comparison(pair, market):
    return cmp_mod.compare(*pair, runs=["II"], markets={"dcc95": market, "dcc995": market})


def test_settings_diff_names_only_what_differs(pair):
    diff = cmp_mod.settings_diff(*pair, names=("dcc95", "dcc995"))
    assert list(diff.index) == ["name", "retrieval.success_rate"]
    assert diff.loc["retrieval.success_rate"].tolist() == [0.95, 0.995]
    assert cmp_mod.shares_market(*pair)
    other = pair[0].with_overrides({"market.household_noise": 0.3})
    assert not cmp_mod.shares_market(pair[0], other)


def test_overrides_are_validated():
    with pytest.raises(ScenarioError, match="success_rate"):
        cmp_mod.load_pair(TINY, TINY, {"retrieval.success_rate": 1.5})


def test_comparison_lines_up_error_by_run(comparison):
    assert comparison.names == ("dcc95", "dcc995")
    assert list(comparison.errors.index) == ["II"]
    assert set(comparison.errors.columns.get_level_values("metric")) == set(cmp_mod.ERROR_COLUMNS)
    err = comparison.errors.loc["II"]
    diff = comparison.difference.loc["II"]
    assert diff["actual_share"] == pytest.approx(err[("actual_share", "dcc995")] - err[("actual_share", "dcc95")])
    assert err[("abs_error", "dcc95")] >= 0 and err[("abs_error", "dcc995")] >= 0


def test_95_against_995_differs_in_what_retrieval_delivers(comparison):
    ret = comparison.retrieval
    assert list(ret.index) == ["dcc95", "dcc995", "b - a"] and list(ret.columns) == list(cmp_mod.RETRIEVAL_COLUMNS)
    assert ret.loc["dcc95", "mpan_days"] == ret.loc["dcc995", "mpan_days"] > 100
    # 5 % against 0.5 % of first attempts fail: on 150 MPAN-days, about 7 retried days against 1
    assert ret.loc["b - a", "first_attempt_share"] > 0.03
    assert ret.loc["b - a", "retried_share"] < -0.03
    assert ret.loc["b - a", "held_next_day_share"] > 0.03
    assert ret.loc["b - a", "mean_delay_days"] < 0
    for label in ("dcc95", "dcc995"):
        shares = ret.loc[label, ["first_attempt_share", "retried_share", "gave_up_share"]]
        assert shares.sum() == pytest.approx(1.0)


def test_without_retries_95_against_995_differs_in_the_runs(market):
    no_retry = {"retrieval.retry_days": 0}
    a, b = cmp_mod.load_pair(TINY, TINY, {**DCC95, **no_retry}, {**DCC995, **no_retry})
    cmp = cmp_mod.compare(a, b, runs=["II"], markets={"dcc95": market, "dcc995": market})
    assert cmp.retrieval.loc["b - a", "gave_up_share"] < -0.03
    diff = cmp.difference.loc["II"]
    assert diff["actual_share"] > 0.02  # fewer days never collected: more settled on actual data
    assert diff["abs_error"] < 0  # and closer to the truth


def test_records_are_json(comparison):
    rec = cmp_mod.comparison_records(comparison)
    json.dumps(rec, allow_nan=False)
    assert rec["scenarios"] == ["dcc95", "dcc995"] and rec["runs"] == ["II"]
    assert rec["settings_differ"]["retrieval.success_rate"] == [0.95, 0.995]
    assert set(rec["error_difference_by_run"]["II"]) == set(cmp_mod.ERROR_COLUMNS)
    assert rec["retrieval_by_scenario"]["b - a"]["first_attempt_share"] > 0.03


def test_write_scenario_round_trips_with_comments(pair, tmp_path):
    scn = pair[1]
    path = write_scenario(scn, tmp_path / "sub" / "dcc995.yaml")
    back = load_scenario(path)
    assert back.digest() == scn.digest() and back.retrieval.success_rate == 0.995
    text = path.read_text()
    assert text.count("\n# ") >= len(SECTION_COMMENTS) - 1  # a comment above each section
    assert "# Smart meter data retrieval" in text and scn.digest()[:12] in text
    assert [p.name for p in path.parent.iterdir()] == ["dcc995.yaml"]  # no temporary left


def test_write_scenario_refuses_other_suffix(pair, tmp_path):
    with pytest.raises(ValueError, match=r"\.yaml"):
        write_scenario(pair[0], tmp_path / "x.json")
