"""Tests of tomlib.scenario: the shipped scenario files and the error messages for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar, scenario
from tomlib.scenario import Scenario, ScenarioError, default_scenario_path, load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "datasets" / "scenarios"
DEMO_TEXT = (SCENARIOS / "demo.yaml").read_text(encoding="utf-8")


# ---- the shipped files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "tiny", "tiny_autumn"])
def test_shipped_scenarios_load(name):
    s = load_scenario(name)
    assert s.name == name
    assert s.source == str(SCENARIOS / f"{name}.yaml")
    assert s.first_date <= s.last_date
    assert set(s.mpans) == set(s.gsp_groups)
    assert abs(sum(sup.market_share for sup in s.suppliers) - 1) <= 1e-9
    mix = s.segments
    assert abs(mix.smart_domestic + mix.smart_non_domestic + mix.advanced + mix.unmetered - 1) <= 1e-9


def test_demo_settings():
    s = load_scenario("demo")
    assert s.seed == 20260322
    assert (s.first_date, s.last_date) == (pd.Timestamp("2026-03-22"), pd.Timestamp("2026-04-04"))
    assert s.gsp_groups == ("_C", "_P")
    assert dict(s.mpans) == {"_C": 2000, "_P": 1000} and s.n_mpans == 3000
    assert (s.segments.smart_domestic, s.segments.smart_non_domestic, s.segments.advanced) == (0.84, 0.10, 0.05)
    assert s.segments.unmetered == 0.01
    assert s.solar_export_share == 0.08
    assert [sup.id for sup in s.suppliers] == ["ALFA", "BRVO", "CHRL", "DLTA"]
    assert s.timetable == "mhhs"
    assert s.retrieval.success_rate == 0.97 and s.retrieval.retry_days == 3
    assert s.market.lcl_label == "start"
    assert s.unaccounted_energy == s.market.unaccounted_energy
    # The March clock change (46 periods) lies inside the demo fortnight.
    assert 46 in calendar.periods_in_day(s.settlement_dates)


@pytest.mark.parametrize("name, periods", [("tiny", 46), ("tiny_autumn", 50)])
def test_tiny_scenarios_hold_a_clock_change_day(name, periods):
    s = load_scenario(name)
    assert 40 <= s.n_mpans <= 100
    assert len(s.gsp_groups) == 2
    assert periods in calendar.periods_in_day(s.settlement_dates)


@pytest.mark.parametrize("name", ["demo", "tiny", "tiny_autumn"])
def test_every_key_is_commented(name):
    lines = (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        if re.match(r"^\s*[A-Za-z_]+:", line) and "#" not in line:
            previous = lines[i - 1].strip() if i else ""
            if not previous.startswith("#"):
                uncommented.append(line)
    assert uncommented == []


def test_default_scenario_path():
    assert default_scenario_path() == SCENARIOS / "demo.yaml"
    assert default_scenario_path("tiny") == SCENARIOS / "tiny.yaml"
    explicit = SCENARIOS / "tiny_autumn.yaml"
    assert default_scenario_path(explicit) == explicit
    assert default_scenario_path(str(explicit)) == explicit
    shipped = ", ".join(sorted(p.stem for p in SCENARIOS.glob("*.yaml")))
    assert {"demo", "tiny", "tiny_autumn"} <= set(shipped.split(", "))
    with pytest.raises(FileNotFoundError, match=f"nope.yaml not found; scenarios in .*: {shipped}$"):
        default_scenario_path("nope")


def test_gsp_group_fallback_matches_reference():
    from tomlib import reference

    assert scenario._FALLBACK_GSP_GROUPS == tuple(reference.gsp_groups().index)
    assert scenario.known_gsp_groups() == scenario._FALLBACK_GSP_GROUPS


# ---- provenance -----------------------------------------------------------------------------


def test_to_dict_round_trip_and_digest():
    s = load_scenario("demo")
    d = s.to_dict()
    assert d["first_date"] == "2026-03-22" and d["mpans"] == {"_C": 2000, "_P": 1000}
    again = Scenario.from_dict(d)
    assert again == s and again.digest() == s.digest()
    assert re.fullmatch(r"[0-9a-f]{64}", s.digest())
    assert s.with_overrides({"retrieval.success_rate": 0.95}).digest() != s.digest()
    assert load_scenario("tiny").digest() != load_scenario("tiny_autumn").digest()
    assert hash(again) == hash(s) and len({s, again, load_scenario("tiny")}) == 2


def test_with_overrides_is_validated():
    s = load_scenario("tiny")
    t = s.with_overrides({"retrieval.success_rate": 0.5, "seed": 7})
    assert (t.retrieval.success_rate, t.seed, s.retrieval.success_rate) == (0.5, 7, 0.97)
    with pytest.raises(ScenarioError, match=r"retrieval.success_rate must be within \[0, 1\], got 1.3"):
        s.with_overrides({"retrieval.success_rate": 1.3})
    with pytest.raises(ScenarioError, match="seed.x"):
        s.with_overrides({"seed.x": 1})


def test_scenario_is_frozen():
    s = load_scenario("tiny")
    with pytest.raises(AttributeError):
        s.seed = 3
    with pytest.raises(TypeError):
        s.mpans["_C"] = 1


def test_mpan_total_is_split_evenly_in_group_order(tmp_path):
    path = tmp_path / "total.yaml"
    path.write_text(re.sub(r"mpans:\n  _C: .*\n  _P: .*\n", "mpans: 61\n", DEMO_TEXT), encoding="utf-8")
    s = load_scenario(path)
    assert dict(s.mpans) == {"_C": 31, "_P": 30}


def test_from_dict_errors_name_the_source():
    d = load_scenario("tiny").to_dict()
    d["market"]["lcl_label"] = "middle"
    with pytest.raises(ScenarioError, match=r"^<dict>: market.lcl_label must be one of 'start', 'end', "
                                            r"got 'middle' \(a string\)$"):
        Scenario.from_dict(d)
    with pytest.raises(ScenarioError, match="^x: the top level must be a mapping"):
        Scenario.from_dict([1], source="x")


# ---- bad input corpus -----------------------------------------------------------------------


def _sub(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


BAD = [
    ("success_rate", _sub("success_rate: 0.97", "success_rate: 1.3"),
     "bad.yaml: retrieval.success_rate must be within [0, 1], got 1.3"),
    ("retry_days_float", _sub("retry_days: 3", "retry_days: 2.5"),
     "bad.yaml: retrieval.retry_days must be a non-negative integer, got 2.5 (a number)"),
    ("unknown_top_key", _sub("retrieval:", "retreival:"),
     "bad.yaml: retreival is not a known setting (did you mean 'retrieval'?)"),
    ("unknown_nested_key", _sub("  late_data_share:", "  late_data_shar:"),
     "bad.yaml: retrieval.late_data_shar is not a known setting (did you mean 'late_data_share'?)"),
    ("wrong_type_seed", _sub("seed: 20260322", "seed: abc"),
     "bad.yaml: seed must be a non-negative integer, got 'abc' (a string)"),
    ("bool_seed", _sub("seed: 20260322", "seed: true"),
     "bad.yaml: seed must be a non-negative integer, got True (a boolean)"),
    ("negative_seed", _sub("seed: 20260322", "seed: -1"),
     "bad.yaml: seed must be a non-negative integer, got -1 (an integer)"),
    ("wrong_type_section", _sub("  household_noise: 0.15", "  household_noise: [0.15]"),
     "bad.yaml: market.household_noise must be a number within [0, 1], got [0.15] (a list)"),
    ("segment_shares", _sub("smart_domestic: 0.84", "smart_domestic: 0.80"),
     "bad.yaml: segments shares must sum to 1 (within 1e-09), got 0.8 + 0.1 + 0.05 + 0.01 = 0.96"),
    ("supplier_shares", _sub("market_share: 0.10}", "market_share: 0.15}"),
     "bad.yaml: suppliers market_share values must sum to 1 (within 1e-09), got 0.4 + 0.3 + 0.2 + 0.15 = 1.05"),
    ("supplier_share_range", _sub("market_share: 0.10}", "market_share: 0}"),
     "bad.yaml: suppliers[3].market_share must be within (0, 1], got 0"),
    ("supplier_id", _sub("id: DLTA", "id: dlta"),
     "bad.yaml: suppliers[3].id must be a 4-letter upper-case market participant id (MPID), got 'dlta'"),
    ("supplier_dup", _sub("id: DLTA", "id: ALFA"), "bad.yaml: suppliers ids must be unique, got ALFA"),
    ("supplier_missing_field", _sub("{id: DLTA, name: Delta Electric, ", "{id: DLTA, "),
     "bad.yaml: suppliers[3].name is missing (expected a non-empty string)"),
    ("unknown_gsp_group", _sub("gsp_groups: [_C, _P]", "gsp_groups: [_C, _I]"),
     ("bad.yaml: gsp_groups[1] must be a known GSP group id (_A, _B, _C, _D, _E, _F, _G, _H, _J, _K, _L, "
     "_M, _N, _P), got '_I'")),
    ("duplicate_gsp_group", _sub("gsp_groups: [_C, _P]", "gsp_groups: [_C, _C]"),
     "bad.yaml: gsp_groups must list each GSP group once, got _C more than once"),
    ("mpans_not_in_groups", _sub("  _P: 1000", "  _D: 1000"),
     "bad.yaml: mpans._D is not one of gsp_groups (_C, _P)"),
    ("mpans_zero", _sub("  _C: 2000", "  _C: 0"),
     "bad.yaml: mpans._C must be a positive integer, got 0 (an integer)"),
    ("bad_date", _sub("first_date: 2026-03-22", "first_date: 2026-02-30"),
     "bad.yaml: first_date must be an ISO date YYYY-MM-DD, got '2026-02-30' (a string)"),
    ("not_a_date", _sub("first_date: 2026-03-22", "first_date: 22/03/2026"),
     "bad.yaml: first_date must be an ISO date YYYY-MM-DD, got '22/03/2026' (a string)"),
    ("first_date_out_of_range", _sub("first_date: 2026-03-22", "first_date: 1899-12-30"),
     ("bad.yaml: first_date must be a settlement day from 1996-01-01 to 2040-12-31 (the years tomlib.calendar "
      "was checked for), got 1899-12-30 (line")),
    ("last_date_out_of_range", _sub("last_date: 2026-04-04", "last_date: 2126-04-04"),
     "bad.yaml: last_date must be a settlement day from 1996-01-01 to 2040-12-31"),
    ("last_before_first", _sub("last_date: 2026-04-04", "last_date: 2026-03-21"),
     "bad.yaml: last_date must be on or after first_date (2026-03-22), got 2026-03-21"),
    ("missing_key", _sub("timetable: mhhs\n", ""),
     "bad.yaml: timetable is missing (expected one of 'mhhs', 'legacy')"),
    ("missing_nested_key", _sub("  retry_days: 3             # days a failed retrieval is retried [days]\n", ""),
     "bad.yaml: retrieval.retry_days is missing (expected a non-negative integer)"),
    ("timetable_choice", _sub("timetable: mhhs", "timetable: fast"),
     "bad.yaml: timetable must be one of 'mhhs', 'legacy', got 'fast' (a string)"),
    ("lcl_label", _sub("lcl_label: start", "lcl_label: middle"),
     "bad.yaml: market.lcl_label must be one of 'start', 'end', got 'middle' (a string)"),
    ("solar_range", _sub("    min: 2.0", "    min: 7.0"),
     "bad.yaml: market.solar_capacity_kwp.min must be <= market.solar_capacity_kwp.max (6), got 7"),
    ("coverage_zero", _sub("min_household_coverage: 0.9", "min_household_coverage: 0"),
     "bad.yaml: market.min_household_coverage must be within (0, 1], got 0"),
    ("duplicate_key", lambda t: t + "seed: 5\n", "bad.yaml: seed is given twice"),
    ("bool_as_text", _sub("ct_fault: false", "ct_fault: 'yes'"),
     "bad.yaml: advanced.ct_fault must be true or false, got 'yes' (a string)"),
    ("no_such_fault_date", _sub("ct_fault_from: null", "ct_fault_from: '2026-02-30'"),
     "bad.yaml: advanced.ct_fault_from must be null or an ISO date YYYY-MM-DD, got '2026-02-30' (no such date)"),
    ("name", _sub("name: demo", "name: my demo"),
     "bad.yaml: name must be a name of letters, digits, '_', '.' or '-', got 'my demo' (a string)"),
    ("syntax_error", _sub("gsp_groups: [_C, _P]", "gsp_groups: [_C, _P"),
     "bad.yaml: line 19, column 1: invalid YAML"),
    ("bad_indent", _sub("  household_noise: 0.15", " household_noise: 0.15"),
     f"bad.yaml: line {DEMO_TEXT.splitlines().index('  household_noise: 0.15     # relative sd of noise on household consumption [-]') + 2}, column"),
    ("empty", lambda t: "", "bad.yaml: the file is empty; expected a mapping of scenario settings"),
    ("comments_only", lambda t: "# nothing\n", "bad.yaml: the file is empty"),
    ("top_level_list", lambda t: "- 1\n- 2\n", "bad.yaml: expected a mapping of scenario settings at the top level"),
]


@pytest.mark.parametrize("edit, expected", [pytest.param(e, m, id=i) for i, e, m in BAD])
def test_bad_input_names_file_and_key(tmp_path, edit, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(DEMO_TEXT), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message


def test_errors_give_the_line_of_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    text = DEMO_TEXT.replace("success_rate: 0.97", "success_rate: 1.3")
    path.write_text(text, encoding="utf-8")
    line = 1 + text.splitlines().index(next(x for x in text.splitlines() if "success_rate: 1.3" in x))
    with pytest.raises(ScenarioError, match=rf"retrieval.success_rate must be within \[0, 1\], got 1.3 \(line {line}\)$"):
        load_scenario(path)


def test_exponent_floats_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(DEMO_TEXT.replace("sd: 0.002", "sd: 2e-3"), encoding="utf-8")
    assert load_scenario(path).market.unaccounted_energy.sd == pytest.approx(0.002)


def test_shares_within_tolerance_are_accepted():
    d = load_scenario("tiny").to_dict()
    d["segments"].update(smart_domestic=0.85 + 5e-10)
    assert Scenario.from_dict(d).segments.smart_domestic == 0.85 + 5e-10
    d["segments"].update(smart_domestic=0.85 + 2e-9)
    with pytest.raises(ScenarioError, match="segments shares must sum to 1"):
        Scenario.from_dict(d)


def test_dates_accept_date_objects_in_dicts():
    import datetime as dt

    d = load_scenario("tiny").to_dict()
    d["first_date"] = dt.date(2026, 3, 28)
    assert Scenario.from_dict(d).first_date == pd.Timestamp("2026-03-28")
    d["first_date"] = dt.datetime(2026, 3, 28, 10)
    with pytest.raises(ScenarioError, match="first_date must be an ISO date"):
        Scenario.from_dict(d)


def test_settlement_dates():
    s = load_scenario("tiny_autumn")
    assert list(s.settlement_dates) == list(pd.date_range("2026-10-24", "2026-10-26"))
    assert np.array_equal(calendar.periods_in_day(s.settlement_dates), [48, 50, 48])
