"""IF022 / IF023 JSON: Elexon's field names, round trip, and strict reading."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib import cube
from tomlib.flows import load_shapes as fl
from tomlib.services import load_shaping as lss

A, E9 = cube.QUALITY_CODES["A"], cube.QUALITY_CODES["E9"]


def _shapes(first="2026-03-28", last="2026-03-30", categories=None):
    """Load shapes of 6 hand-made MPANs over days holding the 46-period day (or the 50-period one)."""
    times = cal.time_axis(pd.Timestamp(first), pd.Timestamp(last))
    rng = np.random.default_rng(7)
    rows = [("_C", "W", "S", True, "AI"), ("_C", "W", "S", True, "AI"), ("_P", "W", "S", True, "AI"),
            ("_C", "W", "S", False, "AI"), ("_C", "W", "S", True, "AE"), ("_C", "L", "A", False, "AI")]
    st = pd.DataFrame(rows, columns=["gsp_group", "connection_type", "market_segment", "domestic",
                                     "measurement_quantity"]).assign(
        supplier="ALFA", bm_unit="2__CALFA001", llfc="100", annual_consumption=3000.0)
    st.index = pd.Index([f"{10**12 + i:013d}" for i in range(len(rows))], name="mpan")
    q = np.where(rng.random((len(rows), len(times))) < 0.8, A, E9).astype(np.uint8)
    q[5] = E9  # the advanced MPAN has no actual data: a back-stop category
    ds = cube.meter_cube(rng.random((len(rows), len(times))), times, st.index.to_numpy(), st, quality=q)
    ls = lss.load_shapes(ds, run="R1", config={"min_population": 2, "categories": categories})
    return ls, lss.load_shape_totals(ls)


@pytest.fixture(scope="module")
def spring():
    return _shapes()


def test_if022_records_have_elexons_fields_in_order(spring):
    ls, _ = spring
    rec = fl.if022_records(ls)
    assert tuple(rec.columns) == fl.IF022_FIELDS
    assert len(rec) == ls["load_shape"].size
    assert (rec["runNumber"] == 3).all() and (rec["settlementPeriodDuration"] == 30).all()
    assert set(rec["defaultLoadShapeFlag"]) <= {"A", "D", "E", "B"}
    assert set(rec["domesticPremiseIndicator"]) == {"T", "F"}
    day = rec[rec["settlementDate"] == pd.Timestamp("2026-03-29")]
    assert day["settlementPeriod"].max() == 46
    sp3 = day[day["settlementPeriod"] == 3].iloc[0]
    assert sp3["settlementPeriodStartDateTime"] == pd.Timestamp("2026-03-29 01:00")  # 02:00 BST
    assert sp3["settlementPeriodEndDateTime"] == pd.Timestamp("2026-03-29 01:30")


def test_if022_round_trip(tmp_path, spring):
    ls, _ = spring
    path = fl.write_if022(ls, tmp_path / "if022.json")
    back = fl.read_if022(path)
    pd.testing.assert_frame_equal(back, fl.if022_records(ls))
    da = fl.shapes_from_if022(back)
    np.testing.assert_array_equal(da.sel(category=ls["category"].values).values, ls["load_shape"].values)
    np.testing.assert_array_equal(da.sel(category=ls["category"].values)["default_flag"].values,
                                  ls["default_flag"].values)
    assert da.attrs["run"] == "R1"
    text = path.read_text()
    assert text.startswith('{"data": [') and '"metadata": {"datasets": ["IF022"]}' in text


def test_if023_round_trip_and_nullable_totals(tmp_path, spring):
    _, tot = spring
    rec = fl.if023_records(tot)
    assert tuple(rec.columns) == fl.IF023_FIELDS and len(rec) == tot.sizes["category"] * tot.sizes["settlement_date"]
    path = fl.write_if023(tot, tmp_path / "if023.json")
    pd.testing.assert_frame_equal(fl.read_if023(path), rec)
    t2 = tot.copy(deep=True)
    t2["day_peak_total"].values[0, 0] = np.nan
    rec2 = fl.if023_records(t2)
    assert rec2["loadShapeDayPeakTotal"].iloc[0] is None
    back = fl.read_if023(fl.write_if023(rec2, tmp_path / "if023b.json"))
    assert back["loadShapeDayPeakTotal"].iloc[0] is None
    t2["day_total"].values[0, 0] = np.nan
    with pytest.raises(ValueError, match="loadShapeDayTotal must be finite"):
        fl.if023_records(t2)


def test_fifty_period_day_round_trip(tmp_path):
    ls, tot = _shapes("2026-10-24", "2026-10-26")
    back = fl.read_if022(fl.write_if022(ls, tmp_path / "a.json"))
    assert back.loc[back["settlementDate"] == pd.Timestamp("2026-10-25"), "settlementPeriod"].max() == 50
    assert fl.read_if023(fl.write_if023(tot, tmp_path / "b.json"))["settlementDate"].nunique() == 3


def test_the_stream_form_a_bare_array_is_read_too(tmp_path, spring):
    ls, _ = spring
    obj = json.loads(fl.write_if022(ls, tmp_path / "x.json").read_text())
    (tmp_path / "stream.json").write_text(json.dumps(obj["data"]))
    pd.testing.assert_frame_equal(fl.read_if022(tmp_path / "stream.json"), fl.if022_records(ls))


def test_coarsened_keys_are_null_and_round_trip(tmp_path):
    ls, _ = _shapes(categories=lss.load_categories().coarsen("gsp_group"))
    rec = fl.if022_records(ls)
    assert rec["gspGroupId"].isna().all()
    back = fl.read_if022(fl.write_if022(rec, tmp_path / "c.json"))
    pd.testing.assert_frame_equal(back, rec)
    assert all(c.startswith("*|") for c in fl.shapes_from_if022(back)["category"].values)


def test_refined_categories_cannot_be_written():
    ls, _ = _shapes()
    ls = ls.assign_coords(tariff=("category", np.full(ls.sizes["category"], "E7")))
    with pytest.raises(ValueError, match=r"category key\(s\) \['tariff'\] have no IF022/IF023 field"):
        fl.if022_records(ls)


def test_nan_values_are_refused_by_the_writer(spring):
    ls, _ = spring
    bad = ls.copy(deep=True)
    bad["load_shape"].values[1, 5] = np.nan
    with pytest.raises(ValueError, match="loadShapePeriodValue must be finite"):
        fl.if022_records(bad)


# ------------------------------------------------------------------------------------------ strict reading


def _records(spring, tmp_path):
    ls, _ = spring
    return json.loads(fl.write_if022(ls, tmp_path / "ok.json").read_text())


@pytest.mark.parametrize(("mutate", "field", "message"), [
    (lambda r: r.pop("runNumber"), "runNumber", "field is missing"),
    (lambda r: r.update(extra=1), "extra", "unexpected field"),
    (lambda r: r.update(loadShapePeriodValue="0.3"), "loadShapePeriodValue", "expected a finite number"),
    (lambda r: r.update(settlementPeriod=True), "settlementPeriod", "expected an integer"),
    (lambda r: r.update(gspGroupId="_I"), "gspGroupId", "expected one of _A"),
    (lambda r: r.update(defaultLoadShapeFlag="X"), "defaultLoadShapeFlag", "expected one of A, D, E, B"),
    (lambda r: r.update(settlementDate="2026-02-30"), "settlementDate", "expected a calendar date"),
    (lambda r: r.update(settlementPeriodDuration=60), "settlementPeriodDuration", "expected 30"),
    (lambda r: r.update(sourceFileDatetime="2026-03-29 01:00"), "sourceFileDatetime", "ISO 8601"),
    (lambda r: r.update(settlementPeriodStartDateTime="2026-03-28T00:30:00Z"), "settlementPeriodStartDateTime",
     "expected 2026-03-28T00:00:00Z"),
])
def test_strict_reader_names_file_record_and_field(tmp_path, spring, mutate, field, message):
    obj = _records(spring, tmp_path)
    mutate(obj["data"][3])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=rf"bad.json, record 3, field '{field}'.*{message}"):
        fl.read_if022(path)


def test_period_47_on_the_short_day_is_refused(tmp_path, spring):
    obj = _records(spring, tmp_path)
    i = next(i for i, r in enumerate(obj["data"]) if r["settlementDate"] == "2026-03-29")
    obj["data"][i]["settlementPeriod"] = 47
    (tmp_path / "bad.json").write_text(json.dumps(obj))
    with pytest.raises(ValueError, match=rf"record {i}, field 'settlementPeriod': settlement period 47 does not "
                                         r"exist on 2026-03-29 \(valid: 1..46\)"):
        fl.read_if022(tmp_path / "bad.json")


def test_duplicates_and_bad_json_are_refused(tmp_path, spring):
    obj = _records(spring, tmp_path)
    obj["data"].append(dict(obj["data"][0]))
    (tmp_path / "dup.json").write_text(json.dumps(obj))
    n = len(obj["data"]) - 1
    with pytest.raises(ValueError, match=rf"dup.json, record {n}, .*duplicate record"):
        fl.read_if022(tmp_path / "dup.json")
    (tmp_path / "nan.json").write_text('{"data": [{"loadShapePeriodValue": NaN}]}')
    with pytest.raises(fl.LoadShapeError, match="nan.json: expected valid JSON, got the non-standard constant NaN"):
        fl.read_if022(tmp_path / "nan.json")
    (tmp_path / "obj.json").write_text('{"records": []}')
    with pytest.raises(ValueError, match="obj.json: expected an object with 'data'"):
        fl.read_if022(tmp_path / "obj.json")
    with pytest.raises(ValueError, match="record 0, field 'loadShapeDayTotal': field is missing"):
        fl.parse_if023(obj)
