"""Tests of tomlib.reference: the package reference tables and their loaders."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tomlib import calendar
from tomlib import reference as ref

DATA = ref.DATA_DIR


def _copy_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """Package table `name` with one text replacement, written to tmp_path (test of the file checks)."""
    text = (DATA / name).read_text()
    assert old in text, f"fixture text {old!r} not in {name}"
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


# ------------------------------------------------------------------------------------------- GSP groups

# mhhs-domain.md F-6 (ids and names); distributor short codes from Market_Participant_Role.csv.
EXPECTED_GSP = {
    "_A": ("Eastern", 10, "EELC"), "_B": ("East Midlands", 11, "EMEB"), "_C": ("London", 12, "LOND"),
    "_D": ("Merseyside and North Wales", 13, "MANW"), "_E": ("Midlands", 14, "MIDE"),
    "_F": ("Northern", 15, "NEEB"), "_G": ("North Western", 16, "NORW"), "_H": ("Southern", 20, "SOUT"),
    "_J": ("South Eastern", 19, "SEEB"), "_K": ("South Wales", 21, "SWAE"),
    "_L": ("South Western", 22, "SWEB"), "_M": ("Yorkshire", 23, "YELG"),
    "_N": ("South Scotland", 18, "SPOW"), "_P": ("North Scotland", 17, "HYDE"),
}


def test_gsp_groups_table():
    gsp = ref.gsp_groups()
    assert len(gsp) == 14  # F-5
    assert gsp.index.name == "gsp_group"
    assert list(gsp.columns[:6]) == ["name", "distributor_id", "distributor_mpid", "latitude", "longitude", "region"]
    got = {g: (r["name"], r["distributor_id"], r["distributor_mpid"]) for g, r in gsp.iterrows()}
    assert got == EXPECTED_GSP
    assert gsp["distributor_id"].dtype == np.int64
    assert set(gsp.index[gsp["region"] == "scotland"]) == {"_N", "_P"}
    assert set(gsp["region"]) == set(calendar.REGIONS)
    assert gsp.loc["_C", ["latitude", "longitude"]].tolist() == pytest.approx([51.51, -0.13], abs=0.05)
    # North of Scotland is the northernmost group, the southern coast groups the southernmost.
    assert gsp["latitude"].idxmax() == "_P"
    assert gsp.loc["_P", "latitude"] > 57 and gsp.loc["_L", "latitude"] < 51.5


def test_loaders_return_copies():
    gsp = ref.gsp_groups()
    gsp.loc["_A", "name"] = "changed"
    assert ref.gsp_groups().loc["_A", "name"] == "Eastern"
    shapes = ref.profile_class_shapes()
    shapes[:] = -1.0
    assert float(ref.profile_class_shapes().min()) >= 0
    w = ref.gsp_correction_scaling_weights()
    w[:] = 99
    assert ref.gsp_correction_scaling_weights().max() < 99


def test_market_segments():
    seg = ref.market_segments()
    assert list(seg.index) == ["S", "A", "U"]
    assert seg.loc["U", "description"].startswith("Unmetered")


# ------------------------------------------------------------------------------------------------- CCCs

def test_consumption_component_classes_keyed_by_attributes():
    ccc = ref.consumption_component_classes()
    attrs = ["measurement_quantity", "market_segment", "data_quality", "component"]
    assert not ccc.duplicated(attrs).any()
    combos = set(map(tuple, ccc[attrs].to_numpy().tolist()))
    expected = {(mq, seg, q, c) for mq in ("AI", "AE") for seg in "SAU" for q in ("actual", "estimated")
                for c in ("consumption", "losses") if not (mq == "AE" and seg == "U")}
    assert combos == expected
    assert ccc.index.is_unique and all(isinstance(i, str) for i in ccc.index)


def test_scaling_weights_cover_cccs_and_follow_documented_choices():
    ccc = ref.consumption_component_classes()
    w = ref.gsp_correction_scaling_weights()
    assert set(w.index) == set(ccc.index) and (w >= 0).all()
    joined = ccc.join(w)
    for (seg, quality), weight in joined.groupby(["market_segment", "data_quality"])["weight"]:
        assert weight.nunique() == 1, (seg, quality)
    first = joined.groupby(["market_segment", "data_quality"])["weight"].first()
    assert first[("S", "actual")] == 1.0 and first[("U", "actual")] == 1.0
    assert first[("A", "actual")] == 0.0
    for seg in "SAU":
        assert first[(seg, "estimated")] > first[(seg, "actual")]


def test_scaling_weights_selection_and_unknown_ccc():
    assert ref.gsp_correction_scaling_weights(["AI-A-A-C", "AI-S-E-C"]).tolist() == [0.0, 1.5]
    assert ref.gsp_correction_scaling_weights("AI-S-A-C").tolist() == [1.0]
    with pytest.raises(ValueError, match="unknown ccc XX; expected one of AI-S-A-C"):
        ref.gsp_correction_scaling_weights(["AI-S-A-C", "XX"])


def test_bad_weight_file_names_file_line_field(tmp_path):
    path = _copy_with(tmp_path, "gsp_correction_scaling_weights.csv", "AI-S-E-C,1.5", "AI-S-E-C,-1.5")
    line = _line_of(path, "AI-S-E-C,-1.5")
    msg = re.escape(f"gsp_correction_scaling_weights.csv, line {line}, field 'weight': expected a finite "
                    "number >= 0, got '-1.5'")
    with pytest.raises(ValueError, match=msg):
        ref.gsp_correction_scaling_weights(path=path)


def test_weight_file_missing_a_ccc(tmp_path):
    path = _copy_with(tmp_path, "gsp_correction_scaling_weights.csv", "AE-A-E-L,0.5\n", "")
    with pytest.raises(ValueError, match="no weight for ccc AE-A-E-L"):
        ref.gsp_correction_scaling_weights(path=path)


def test_bad_ccc_file(tmp_path):
    path = _copy_with(tmp_path, "consumption_component_classes.csv", "AI-U-E-L,AI,U", "AI-U-E-L,AX,U")
    line = _line_of(path, "AI-U-E-L,AX,U")
    with pytest.raises(ValueError, match=f"line {line}, field 'measurement_quantity': expected one of AI, AE"):
        ref.consumption_component_classes(path)
    dup = _copy_with(tmp_path, "consumption_component_classes.csv", "AI-S-A-L,AI,S,actual,losses",
                     "AI-S-A-X,AI,S,actual,consumption")
    with pytest.raises(ValueError, match="field 'measurement_quantity,market_segment,data_quality,component'"):
        ref.consumption_component_classes(dup)


def test_header_and_duplicate_key_checks(tmp_path):
    bad_header = _copy_with(tmp_path, "market_segments.csv", "market_segment,description", "segment,description")
    with pytest.raises(ValueError, match="market_segments.csv, line 4: header"):
        ref.consumption_component_classes(bad_header)  # any loader: the header check comes first
    sub = tmp_path / "dup"
    sub.mkdir()
    dup = _copy_with(sub, "consumption_component_classes.csv", "AI-S-A-L,", "AI-S-A-C,")
    with pytest.raises(ValueError, match=r"field 'ccc': duplicate key \('AI-S-A-C',\)"):
        ref.consumption_component_classes(dup)


# ------------------------------------------------------------------------------------------- timetables

def test_run_timetables_match_sources():
    legacy = ref.run_timetable("legacy")  # F-20
    assert list(legacy.index) == ["II", "SF", "R1", "R2", "R3", "RF", "DF"]
    assert legacy["working_days"].iloc[:6].tolist() == [5, 16, 39, 84, 154, 292]
    assert legacy.loc["DF", "months"] == 28 and pd.isna(legacy.loc["DF", "working_days"])
    mhhs = ref.run_timetable()  # F-21, the default
    assert list(mhhs.index) == ["II", "SF", "R1", "RF", "DF"]
    assert mhhs["working_days"].iloc[:4].tolist() == [4, 7, 30, 84]
    assert mhhs.loc["DF", "months"] == 20
    assert ref.timetable_presets() == ("legacy", "mhhs")


def test_unknown_preset_and_run():
    with pytest.raises(ValueError, match="unknown timetable preset 'p272'; expected one of legacy, mhhs"):
        ref.run_timetable("p272")
    with pytest.raises(ValueError, match="unknown run 'R2' for timetable preset 'mhhs'; expected one of II, SF, R1, RF, DF"):
        ref.run_as_of(pd.Timestamp("2026-03-29"), "R2", "mhhs")


# Hand-counted: 2026-03-29 (46 periods) is a Sunday; Good Friday 3 Apr 2026 is a bank holiday in both regions,
# Easter Monday 6 Apr only in England & Wales. 2026-10-25 (50 periods) is a Sunday. 2026-08-31 is the
# England & Wales August bank holiday (Scotland's is 3 Aug).
@pytest.mark.parametrize("date, run, preset, region, expected", [
    ("2026-03-29", "II", "mhhs", "england_wales", "2026-04-02"),
    ("2026-03-29", "SF", "mhhs", "england_wales", "2026-04-09"),
    ("2026-03-29", "SF", "mhhs", "scotland", "2026-04-08"),
    ("2026-03-29", "II", "legacy", "england_wales", "2026-04-07"),
    ("2026-03-29", "II", "legacy", "scotland", "2026-04-06"),
    ("2026-10-25", "II", "legacy", "england_wales", "2026-10-30"),
    ("2026-10-25", "II", "mhhs", "england_wales", "2026-10-29"),
    ("2026-08-31", "II", "legacy", "england_wales", "2026-09-07"),
    ("2026-10-25", "DF", "mhhs", "england_wales", "2028-06-25"),
    ("2026-10-25", "DF", "legacy", "scotland", "2029-02-25"),
    ("2026-08-31", "DF", "mhhs", "england_wales", "2028-04-30"),  # DateOffset keeps the month end
])
def test_run_as_of_golden(date, run, preset, region, expected):
    out = ref.run_as_of(pd.Timestamp(date), run, preset, region)
    assert isinstance(out, pd.DatetimeIndex) and out.name == "as_of"
    assert list(out) == [pd.Timestamp(expected)]


def test_run_as_of_vectorised_and_consistent_with_calendar():
    dates = pd.date_range("2026-03-22", "2026-11-01", freq="D")
    assert {46, 50} <= set(calendar.periods_in_day(dates).tolist())
    for preset in ref.timetable_presets():
        table = ref.run_timetable(preset)
        previous = dates
        for run, row in table.iterrows():
            out = ref.run_as_of(dates, run, preset)
            assert len(out) == len(dates) and (out > previous).all()
            if pd.notna(row["working_days"]):
                assert (calendar.working_days_between(dates, out) == row["working_days"]).all()
            previous = out


def test_reconciliation_window_shrinks_from_14_to_4_months():
    # F-3: the TOM cuts reconciliation from 14 months to 4 months.
    d = pd.Timestamp("2026-03-29")
    legacy_rf = ref.run_as_of(d, "RF", "legacy")[0]
    mhhs_rf = ref.run_as_of(d, "RF", "mhhs")[0]
    assert 13.5 < (legacy_rf - d).days / 30.44 < 14.5
    assert 3.5 < (mhhs_rf - d).days / 30.44 < 4.5


def test_run_as_of_rejects_non_midnight_dates():
    with pytest.raises(ValueError, match="settlement_dates: index 1 is 2026-03-29 12:00:00; expected a midnight"):
        ref.run_as_of(pd.DatetimeIndex([pd.Timestamp("2026-03-28"), pd.Timestamp("2026-03-29 12:00")]), "II")
    with pytest.raises(ValueError, match="expected tz-naive local dates"):
        ref.run_as_of(pd.Timestamp("2026-03-29", tz="Europe/London"), "II")


def test_bad_timetable_rows(tmp_path):
    both = _copy_with(tmp_path, "settlement_timetables.csv", "mhhs,DF,,20", "mhhs,DF,5,20")
    line = _line_of(both, "mhhs,DF,5,20")
    with pytest.raises(ValueError, match=f"line {line}, field 'working_days,months': expected exactly one"):
        ref.run_timetable(path=both)
    sub = tmp_path / "order"
    sub.mkdir()
    shrinking = _copy_with(sub, "settlement_timetables.csv", "mhhs,R1,30,", "mhhs,R1,6,")
    with pytest.raises(ValueError, match="field 'working_days': expected more than 7"):
        ref.run_timetable(path=shrinking)


# ------------------------------------------------------------------------------------------------ LLFCs

REQUIRED_USES = {"smart_domestic", "smart_non_domestic", "smart_export", "advanced_lv", "advanced_hv", "unmetered"}


def test_line_loss_factor_classes():
    llfc = ref.line_loss_factor_classes()
    gsp = ref.gsp_groups()
    assert llfc.index.name == "llfc" and llfc.index.is_unique
    assert all(re.fullmatch(r"[0-9A-Z]{3}", i) for i in llfc.index)
    assert set(llfc["distributor_id"]) == set(gsp["distributor_id"])
    for d, group in llfc.groupby("distributor_id"):
        assert REQUIRED_USES <= set(group["segment_use"]), d
    assert (llfc["gsp_group"] == gsp.reset_index().set_index("distributor_id").loc[llfc["distributor_id"], "gsp_group"].to_numpy()).all()
    assert set(llfc.loc[llfc["measurement_quantity"] == "AE", "segment_use"]) == {"smart_export"}
    assert set(llfc.loc[llfc["segment_use"] == "unmetered", "market_segment"]) == {"U"}
    assert set(llfc.loc[llfc["segment_use"].str.startswith("advanced"), "market_segment"]) == {"A"}
    assert set(llfc["voltage_level"]) == {"LV", "HV", "EHV"}
    assert (DATA / "line_loss_factor_classes.csv").stat().st_size <= 50_000


def test_llfc_rows_are_real_mdd_rows():
    # Spot checks against elexon-mdd/mdd/Line_Loss_Factor_Class.csv (ids there are unpadded: "3", "86").
    llfc = ref.line_loss_factor_classes()
    assert llfc.loc["003", ["distributor_mpid", "description"]].tolist() == ["EELC", "Domestic Unrestricted"]
    assert llfc.loc["086", ["distributor_mpid", "description"]].tolist() == ["EELC", "LV HH Metered"]
    assert llfc.loc["520", ["distributor_mpid", "description"]].tolist() == ["SOUT", "UMS_LV_HH"]
    assert llfc.loc["961", ["distributor_mpid", "description"]].tolist() == ["NORW", "LV GENERATION NHH"]


def test_bad_llfc_file(tmp_path):
    path = _copy_with(tmp_path, "line_loss_factor_classes.csv", "086,10,EELC", "086,10,LOND")
    line = _line_of(path, "086,10,LOND")
    with pytest.raises(ValueError, match=f"line {line}, field 'distributor_mpid': expected EELC for distributor 10"):
        ref.line_loss_factor_classes(path)


def test_line_loss_factor_bands():
    bands = ref.line_loss_factor_bands()["llf"]
    assert len(bands) == 3 * 2 * 3
    lo_hi = {"LV": (1.05, 1.10), "HV": (1.02, 1.05), "EHV": (1.0, 1.02)}
    for (v, s, t), value in bands.items():
        assert lo_hi[v][0] <= value <= lo_hi[v][1], (v, s, t)
    for v in ref.VOLTAGE_LEVELS:
        for s in ("winter", "summer"):
            assert bands[(v, s, "night")] < bands[(v, s, "day")] < bands[(v, s, "peak")]
        for t in ("night", "day", "peak"):
            assert bands[(v, "winter", t)] > bands[(v, "summer", t)]
    for s in ("winter", "summer"):
        for t in ("night", "day", "peak"):
            assert bands[("LV", s, t)] > bands[("HV", s, t)] > bands[("EHV", s, t)]


def test_llf_band_lookup():
    idx = np.arange(48)
    band = ref.llf_time_band(idx)
    assert (band[:14] == "night").all() and (band[32:38] == "peak").all()
    assert (band[14:32] == "day").all() and (band[38:] == "day").all()
    assert ref.llf_season_half(np.arange(1, 13)).tolist() == ["winter"] * 3 + ["summer"] * 6 + ["winter"] * 3
    got = ref.band_line_loss_factors(np.array([["LV"], ["HV"]]), [13, 14, 32], 3)
    bands = ref.line_loss_factor_bands()["llf"]
    assert got.shape == (2, 3)
    assert got[0].tolist() == [bands[("LV", "winter", t)] for t in ("night", "day", "peak")]
    assert got[1, 2] == bands[("HV", "winter", "peak")]
    with pytest.raises(ValueError, match="voltage_level: 'MV' is not one of LV, HV, EHV"):
        ref.band_line_loss_factors("MV", 0, 1)
    with pytest.raises(ValueError, match="local_index: value 48"):
        ref.llf_time_band([0, 48])
    with pytest.raises(ValueError, match="months: value 13"):
        ref.llf_season_half(13)


@given(st.lists(st.integers(0, 47), min_size=1, max_size=30), st.integers(1, 12),
       st.sampled_from(ref.VOLTAGE_LEVELS))
def test_band_llf_equals_table_lookup(local_index, month, voltage):
    bands = ref.line_loss_factor_bands()["llf"]
    got = ref.band_line_loss_factors(voltage, local_index, month)
    half = "winter" if month in (10, 11, 12, 1, 2, 3) else "summer"
    expected = [bands[(voltage, half, "night" if i < 14 else "peak" if 32 <= i < 38 else "day")] for i in local_index]
    assert got.tolist() == expected


def test_time_band_file_must_tile_the_day(tmp_path):
    path = _copy_with(tmp_path, "line_loss_time_bands.csv", "peak,16:00,19:00", "peak,16:00,18:30")
    with pytest.raises(ValueError, match="line_loss_time_bands.csv: local half hour 18:30 is in no time band"):
        ref.line_loss_time_bands(path)


# ------------------------------------------------------------------------------------- profile shapes

# Golden table of /work/shared/data/elexon-load-profiles/README.md (sums of GAD x 0.5 h).
PROFILE_GOLDEN = {
    1: (12.290, 9.520, 0.92), 2: (25.340, 12.200, 2.58), 3: (48.115, 18.135, 3.94), 4: (92.435, 28.775, 5.62),
    5: (263.400, 48.765, 22.84), 6: (391.025, 128.985, 30.32), 7: (447.945, 252.780, 28.98),
    8: (559.980, 474.195, 28.62),
}


def test_profile_class_shapes_structure():
    gad = ref.profile_class_shapes()
    assert gad.dims == ("profile_class", "season", "day_type", "settlement_period")
    assert gad["profile_class"].values.tolist() == list(range(1, 9))
    assert gad["season"].values.tolist() == ["winter", "spring", "summer", "high_summer", "autumn"]
    assert tuple(gad["season"].values) == calendar.SEASONS
    assert gad["day_type"].values.tolist() == ["weekday", "saturday", "sunday"]
    assert gad["settlement_period"].values.tolist() == list(range(1, 49))
    assert gad.attrs["units"] == "kW"
    assert np.isfinite(gad.values).all() and (gad.values >= 0).all()


@pytest.mark.parametrize("pc", range(1, 9))
def test_profile_class_golden_daily_energy(pc):
    gad = ref.profile_class_shapes().sel(profile_class=pc)
    winter_wd, hsummer_sun, peak = PROFILE_GOLDEN[pc]
    kwh = (gad * 0.5).sum("settlement_period")
    assert float(kwh.sel(season="winter", day_type="weekday")) == pytest.approx(winter_wd, abs=1e-9)
    assert float(kwh.sel(season="high_summer", day_type="sunday")) == pytest.approx(hsummer_sun, abs=1e-9)
    assert float(gad.max()) == pytest.approx(peak, abs=1e-12)


def test_profile_class_1_first_and_last_rows_match_readme():
    # README format block: first row "00:30,..." is period 1, last row "00:00,..." is period 48;
    # columns Aut Wd, Aut Sat, Aut Sun, Hsr.., Smr.., Spr.., Wtr Wd, Wtr Sat, Wtr Sun.
    order = [("autumn", d) for d in ref.PROFILE_DAY_TYPES] + [("high_summer", d) for d in ref.PROFILE_DAY_TYPES] \
        + [("summer", d) for d in ref.PROFILE_DAY_TYPES] + [("spring", d) for d in ref.PROFILE_DAY_TYPES] \
        + [("winter", d) for d in ref.PROFILE_DAY_TYPES]
    gad = ref.profile_class_shapes().sel(profile_class=1)
    first = [0.28, 0.31, 0.35, 0.29, 0.31, 0.33, 0.27, 0.31, 0.32, 0.29, 0.33, 0.33, 0.33, 0.39, 0.41]
    assert [float(gad.sel(season=s, day_type=d, settlement_period=1)) for s, d in order] == first
    last = gad.sel(settlement_period=48)
    assert float(last.sel(season="autumn", day_type="weekday")) == 0.34
    assert [float(last.sel(season="winter", day_type=d)) for d in ref.PROFILE_DAY_TYPES] == [0.41, 0.46, 0.42]


def test_bad_profile_file(tmp_path):
    path = _copy_with(tmp_path, "profile_class_shapes.csv", "\n1,1,0.33,", "\n1,1,-0.33,")
    line = _line_of(path, "1,1,-0.33,")
    with pytest.raises(ValueError, match=f"profile_class_shapes.csv, line {line}, field 'winter_weekday'"):
        ref.profile_class_shapes(path)
    sub = tmp_path / "short"
    sub.mkdir()
    text = (DATA / "profile_class_shapes.csv").read_text().rstrip("\n").rsplit("\n", 1)[0] + "\n"
    (sub / "profile_class_shapes.csv").write_text(text)
    with pytest.raises(ValueError, match="expected 384 rows"):
        ref.profile_class_shapes(sub / "profile_class_shapes.csv")


# ------------------------------------------------------------------------------------------- provenance

REFERENCE_FILES = [
    "gsp_groups.csv", "market_segments.csv", "consumption_component_classes.csv",
    "gsp_correction_scaling_weights.csv", "settlement_timetables.csv", "line_loss_factor_classes.csv",
    "line_loss_factor_bands.csv", "line_loss_time_bands.csv", "line_loss_season_halves.csv",
    "profile_class_shapes.csv",
]


def test_every_data_file_has_provenance():
    readme = (DATA / "README.md").read_text()
    for name in REFERENCE_FILES:
        path = DATA / name
        head = [ln for ln in path.read_text().splitlines()[:12] if ln.startswith("#")]
        assert head, path.name
        text = " ".join(head)
        assert "source:" in text or "[INF]" in text, path.name
        assert path.name in readme, path.name
    total = sum((DATA / name).stat().st_size for name in REFERENCE_FILES)
    assert total < 100_000
