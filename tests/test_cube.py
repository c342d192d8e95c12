"""Tests of tomlib.cube: code lists, meter cubes and their validation, the grid view, save/open."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tomlib import _io, calendar, cube

# ---- fixtures -------------------------------------------------------------------------------

MPANS = np.array(["1200000000016", "1200000000025", "2300000000041"])


def standing(mpans=MPANS) -> pd.DataFrame:
    n = len(mpans)
    return pd.DataFrame(
        {
            "gsp_group": (["_C", "_C", "_P"] * n)[:n],
            "market_segment": (["S", "S", "A"] * n)[:n],
            "connection_type": (["W", "W", "L"] * n)[:n],
            "domestic": ([True, True, False] * n)[:n],
            "supplier": (["ALFA", "BRVO", "ALFA"] * n)[:n],
            "bm_unit": (["2__CALFA000", "2__CBRVO000", "2__PALFA000"] * n)[:n],
            "llfc": (["001", "001", "512"] * n)[:n],
            "measurement_quantity": (["AI", "AI", "AI"] * n)[:n],
            "annual_consumption": ([3100.0, 2700.0, 61000.0] * n)[:n],
        },
        index=pd.Index(mpans, name="mpan"),
    )


def make_cube(first="2026-03-28", last="2026-03-30", seed=0) -> xr.Dataset:
    t = calendar.time_axis(first, last)
    rng = np.random.default_rng(seed)
    energy = rng.gamma(2.0, 0.2, size=(len(MPANS), len(t)))
    quality = np.full(energy.shape, "A", dtype=object)
    quality[0, 5] = "MISSING"
    energy[0, 5] = np.nan
    quality[1, 7:9] = "E0"
    reason = np.zeros(energy.shape, dtype=np.uint8)
    reason[1, 7:9] = cube.ESTIMATION_REASONS["CommsFault"]
    return cube.meter_cube(energy, t, MPANS, standing(), quality=quality, estimation_reason=reason)


@pytest.fixture(scope="module")
def spring() -> xr.Dataset:
    return make_cube()


# ---- code lists -----------------------------------------------------------------------------


def test_quality_codes_are_complete_and_one_to_one():
    expected = (["A", "E"] + [f"E{i}" for i in range(10)] + ["ZE", "ZE1", "ZE2", "ZE3", "A1", "A2", "A3"]
                + [f"AAE{i}" for i in range(1, 4)] + [f"EAE{i}" for i in range(1, 4)]
                + [f"EA{i}" for i in range(1, 14)])
    assert set(cube.QUALITY_CODES) == set(expected) | {"MISSING"}
    assert len(cube.QUALITY_CODES) == len(expected) + 1 == 39
    assert cube.QUALITY_CODES["MISSING"] == cube.MISSING == 0
    assert sorted(cube.QUALITY_CODES.values()) == list(range(39))  # one-to-one, dense, fits uint8
    assert {v: k for k, v in cube.QUALITY_CODES.items()} == cube.QUALITY_LABELS
    labels = np.array(list(cube.QUALITY_CODES))
    codes = cube.quality_code(labels)
    assert codes.dtype == np.uint8
    assert np.array_equal(cube.quality_label(codes), labels)


def test_quality_map_is_documented_in_module_docstring():
    doc = cube.__doc__
    table = doc[doc.index("Quality codes (DI-083"): doc.index("Estimation reason codes (DI-076)")]
    rows = {}
    for line in table.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0][0].isdigit():
            rows[parts[0]] = parts[1]
    assert rows == {"0": "MISSING", "1": "A", "2": "E", "3..12": "E0..E9", "13": "ZE", "14..16": "ZE1..ZE3",
                    "17..19": "A1..A3", "20..22": "AAE1..3", "23..25": "EAE1..3", "26..38": "EA1..13"}
    for code, label in rows.items():
        first = int(code.split("..")[0])
        assert cube.QUALITY_LABELS[first] == label.split("..")[0], code
    assert cube.QUALITY_CODES["E9"] == 12 and cube.QUALITY_CODES["ZE3"] == 16
    assert cube.QUALITY_CODES["A3"] == 19 and cube.QUALITY_CODES["EAE3"] == 25 and cube.QUALITY_CODES["EA13"] == 38


def test_estimation_reasons():
    assert cube.ESTIMATION_REASONS == {
        "NONE": 0, "OptOut": 1, "Missing": 2, "Invalid": 3, "CommsFault": 4, "LTV": 5, "Disabled": 6,
        "De-Energised": 7, "Disconnected": 8, "Consumption Amendment": 9, "NonSmart": 10,
    }
    codes = cube.estimation_reason_code([["OptOut", "NonSmart"], ["NONE", "LTV"]])
    assert codes.dtype == np.uint8 and codes.tolist() == [[1, 10], [0, 5]]
    assert cube.estimation_reason_label(codes).tolist() == [["OptOut", "NonSmart"], ["NONE", "LTV"]]


def test_code_errors():
    with pytest.raises(ValueError, match=r"unknown quality label\(s\) \['E10', 'X'\]"):
        cube.quality_code(["A", "X", "E10"])
    with pytest.raises(ValueError, match=r"quality codes must be integers 0..38, got \[39\]"):
        cube.quality_label([1, 39])
    with pytest.raises(ValueError, match=r"estimation reason codes must be integers 0..10, got \[11\]"):
        cube.estimation_reason_label(np.array([11], dtype=np.uint8))


# ---- meter_cube -----------------------------------------------------------------------------


def test_meter_cube_layout(spring):
    ds = spring
    assert ds["energy"].dims == ("mpan", "time") and ds.sizes == {"mpan": 3, "time": 48 + 46 + 48}
    assert ds["time"].dtype == np.dtype("datetime64[ns]") and ds["time"].attrs["timezone"] == "UTC"
    assert ds["settlement_period"].dtype == np.int8 and ds["settlement_date"].dtype == np.dtype("datetime64[ns]")
    assert ds["quality"].dtype == np.uint8 and ds["estimation_reason"].dtype == np.uint8
    assert ds["mpan"].dtype.kind == "U" and ds["gsp_group"].dtype.kind == "U" and ds["domestic"].dtype == bool
    assert ds["energy"].attrs["units"] == "kWh" and ds["annual_consumption"].attrs["units"] == "kWh/year"
    assert all("units" in v.attrs for v in ds.data_vars.values())
    assert int(ds["quality"][0, 5]) == cube.MISSING and int(ds["quality"][1, 7]) == cube.QUALITY_CODES["E0"]
    assert ds["settlement_period"].values.max() == 48
    assert (ds["settlement_period"].where(ds["settlement_date"] == pd.Timestamp("2026-03-29"), drop=True).max()
            == 46)


def test_meter_cube_default_quality_and_extra_standing_columns():
    t = calendar.period_starts("2026-10-25")
    energy = np.ones((3, 50))
    energy[2, 0] = np.nan
    table = standing().reset_index().assign(solar_kwp=[3.5, np.nan, np.nan], note=["a", "b", "c"])
    ds = cube.meter_cube(energy, t, MPANS, table)
    assert int(ds["quality"][2, 0]) == cube.MISSING
    assert (ds["quality"].values != cube.MISSING).sum() == 149
    assert ds["quality"].values[0, 0] == cube.QUALITY_CODES["A"] and ds["estimation_reason"].values.max() == 0
    assert ds["solar_kwp"].dims == ("mpan",) and ds["note"].dtype.kind == "U"


def test_meter_cube_converts_aware_times_and_reorders_standing():
    t = calendar.period_starts("2026-06-01").tz_localize("UTC").tz_convert("Europe/London")
    ds = cube.meter_cube(np.zeros((3, 48)), t, MPANS, standing().iloc[::-1])
    assert ds["time"].values[0] == np.datetime64("2026-05-31T23:00", "ns")
    assert ds["gsp_group"].values.tolist() == ["_C", "_C", "_P"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"energy": np.zeros((3, 10))}, "meter_cube: energy must have shape (n_mpan, n_time) = (3, 48), got (3, 10)"),
        ({"standing": standing().drop(columns="llfc")}, "meter_cube: standing data lacks column(s) ['llfc']"),
        ({"standing": standing().iloc[:2]}, "meter_cube: standing data lacks 1 MPAN(s), e.g. ['2300000000041']"),
        ({"standing": standing().assign(bm_unit=["x", None, "y"])},
         "standing.bm_unit has 1 missing value(s), first at position 1; expected a string for every MPAN"),
        ({"standing": standing().assign(domestic=["y", "y", "n"])},
         "meter_cube: standing.domestic must be boolean, got dtype"),
        ({"quality": np.full((3, 48), "Q")}, "unknown quality label(s) ['Q']"),
        ({"quality": np.full((3, 48), 40)}, "meter_cube: quality must be labels or integer codes 0..38"),
        ({"energy": np.full((3, 48), "x")}, "meter_cube: energy must be numeric [kWh], got dtype <U1"),
    ],
)
def test_meter_cube_errors(kwargs, message):
    args = {"energy": np.zeros((3, 48)), "times": calendar.period_starts("2026-06-01"), "mpans": MPANS,
            "standing": standing(), **kwargs}
    with pytest.raises(ValueError) as info:
        cube.meter_cube(**args)
    assert message in str(info.value)


# ---- validate_meter_cube --------------------------------------------------------------------


def _set(var, i, j, value):
    def edit(ds):
        arr = ds[var].values.copy()
        arr[i, j] = value
        return ds.assign({var: ds[var].copy(data=arr)})

    return edit


def _coord(name, values, **attrs):
    def edit(ds):
        c = ds[name]
        return ds.assign_coords({name: (c.dims, np.asarray(values), attrs or c.attrs)})

    return edit


def _time_attrs(ds):
    ds = ds.copy()
    ds["time"].attrs = {}
    return ds


BAD_CUBES = [
    ("not_a_dataset", lambda ds: ds["energy"], "cube: expected an xarray.Dataset, got DataArray"),
    ("no_quality", lambda ds: ds.drop_vars("quality"),
     "cube: data variable 'quality' is missing; expected energy, quality and estimation_reason"),
    ("dims", lambda ds: ds.assign(energy=ds["energy"].T),
     "cube: energy must have dims ('mpan', 'time'), got ('time', 'mpan')"),
    ("time_dtype", lambda ds: ds.assign_coords(time=ds["time"].values.astype("datetime64[us]")),
     "cube: time must be datetime64[ns] (UTC, tz-naive), got datetime64[us]"),
    ("time_attrs", _time_attrs, "cube: time.attrs['timezone'] must be 'UTC', got None"),
    ("time_gap", lambda ds: ds.drop_isel(time=[10]),
     "cube: time must advance in contiguous 30-minute steps, got a step of 0 days 01:00:00 after 2026-03-28 04:30:00"),
    ("time_unsorted", lambda ds: ds.isel(time=np.r_[1, 0, 2:ds.sizes["time"]]),
     "cube: time must advance in contiguous 30-minute steps, got a step of -1 days +23:30:00"),
    ("time_offset", lambda ds: ds.assign_coords(time=("time", ds["time"].values + np.timedelta64(15, "m"), ds["time"].attrs)),
     "cube: time must start on a half hour, got 2026-03-28 00:15:00"),
    ("no_settlement_date", lambda ds: ds.drop_vars("settlement_date"),
     "cube: coordinate 'settlement_date' is missing; add it with add_settlement_coords"),
    ("period_dtype", lambda ds: ds.assign_coords(settlement_period=ds["settlement_period"].astype("int64")),
     "cube: settlement_period must be a coordinate on ('time',) of dtype int8, got int64"),
    ("period_values", lambda ds: ds.assign_coords(settlement_period=ds["settlement_period"] + np.int8(1)),
     "cube: settlement_period disagrees with time at 2026-03-28 00:00:00 UTC: expected 1, got 2"),
    ("duplicate_mpan", _coord("mpan", np.array(["1200000000016", "1200000000016", "2300000000041"])),
     "cube: mpan must be unique, got 1 duplicate(s), e.g. 1200000000016"),
    ("short_mpan", _coord("mpan", np.array(["1200000000016", "12", "2300000000041"])),
     "cube: mpan must be 13-digit MPAN cores, got '12'"),
    ("no_llfc", lambda ds: ds.drop_vars("llfc"), "cube: standing coordinate 'llfc' is missing"),
    ("domestic_str", _coord("domestic", np.array(["y", "y", "n"])), "cube: domestic must hold bool, got dtype <U1"),
    ("supplier_int", _coord("supplier", np.array([1, 2, 3])), "cube: supplier must hold strings, got dtype int64"),
    ("segment_value", _coord("market_segment", np.array(["S", "X", "A"])),
     "cube: market_segment must be one of ['S', 'A', 'U'], got 'X' (mpan 1200000000025)"),
    ("gsp_group_value", _coord("gsp_group", np.array(["_C", "_I", "_P"])),
     ("cube: gsp_group must be one of ['_A', '_B', '_C', '_D', '_E', '_F', '_G', '_H', '_J', '_K', '_L', '_M', "
     "'_N', '_P'], got '_I'")),
    ("mq_value", _coord("measurement_quantity", np.array(["AI", "AI", "XX"])),
     "cube: measurement_quantity must be one of ['AI', 'AE', 'RI', 'RE'], got 'XX'"),
    ("empty_bm_unit", _coord("bm_unit", np.array(["a", "", "c"])),
     "cube: bm_unit must not be empty, got '' for mpan 1200000000025"),
    ("eac_negative", _coord("annual_consumption", np.array([1.0, -5.0, 3.0]), units="kWh/year"),
     "cube: annual_consumption must be finite and >= 0 [kWh/year], got -5.0 (mpan 1200000000025)"),
    ("eac_units", _coord("annual_consumption", np.array([1.0, 5.0, 3.0]), units="MWh/year"),
     "cube: annual_consumption.attrs['units'] must be 'kWh/year', got 'MWh/year'"),
    ("energy_no_units", lambda ds: ds.assign(energy=ds["energy"].drop_attrs(deep=False)),
     "cube: energy.attrs['units'] is missing; every variable states its units"),
    ("energy_mwh", lambda ds: ds.assign(energy=ds["energy"].assign_attrs(units="MWh")),
     "cube: energy.attrs['units'] must be 'kWh', got 'MWh'"),
    ("energy_int", lambda ds: ds.assign(energy=ds["energy"].fillna(0).astype(int)),
     "cube: energy must be floating point [kWh], got dtype int64"),
    ("quality_dtype", lambda ds: ds.assign(quality=ds["quality"].astype("int64")),
     "cube: quality must be uint8 codes, got dtype int64"),
    ("quality_value", _set("quality", 2, 3, 77),
     ("cube: quality must hold DI-083 quality codes 0..38, got 77 (first at mpan 2300000000041, "
     "time 2026-03-28 01:30:00 UTC)")),
    ("reason_value", _set("estimation_reason", 0, 0, 11),
     ("cube: estimation_reason must hold DI-076 estimation reason codes 0..10, got 11 (first at mpan "
     "1200000000016, time 2026-03-28 00:00:00 UTC)")),
    ("energy_nan_but_actual", _set("energy", 1, 60, np.nan),
     ("cube: energy must be finite where quality is not MISSING, got 1 non-finite value(s) (first at mpan "
     "1200000000025, time 2026-03-29 06:00:00 UTC)")),
    ("energy_inf", _set("energy", 2, 0, np.inf), "cube: energy must be finite where quality is not MISSING"),
    ("energy_but_missing", _set("energy", 0, 5, 1.0),
     ("cube: energy must be NaN where quality is MISSING, got 1 value(s) (first at mpan 1200000000016, "
     "time 2026-03-28 02:30:00 UTC)")),
]


@pytest.mark.parametrize("edit, message", [pytest.param(e, m, id=i) for i, e, m in BAD_CUBES])
def test_validate_meter_cube_errors(spring, edit, message):
    bad = edit(spring)
    with pytest.raises(ValueError) as info:
        cube.validate_meter_cube(bad)
    assert message in str(info.value)


def test_validate_meter_cube_accepts_good_cube_and_uses_where(spring):
    cube.validate_meter_cube(spring)
    with pytest.raises(ValueError, match=r"^market.zarr: energy.attrs\['units'\] must be 'kWh'"):
        cube.validate_meter_cube(spring.assign(energy=spring["energy"].assign_attrs(units="Wh")), where="market.zarr")


# ---- grid view ------------------------------------------------------------------------------


@pytest.mark.parametrize("day, n", [("2026-03-29", 46), ("2026-06-01", 48), ("2026-10-25", 50)])
def test_to_grid_on_46_48_50_period_days(day, n):
    ds = make_cube(day, day)
    grid = cube.to_grid(ds)
    assert grid["energy"].dims == ("mpan", "settlement_date", "settlement_period")
    assert grid["energy"].shape == (3, 1, 50)
    assert grid["settlement_period"].values.tolist() == list(range(1, 51))
    assert int(grid["valid"].sum()) == n
    assert np.array_equal(grid["valid"].values[0], np.arange(1, 51) <= n)
    assert grid["energy"].isel(settlement_period=slice(n, None)).isnull().all()
    assert grid["quality"].dtype == np.uint8 and grid["utc"].dtype == np.dtype("datetime64[ns]")
    assert np.isnat(grid["utc"].values[0, n:]).all()
    assert np.array_equal(grid["utc"].values[0, :n], ds["time"].values)
    # Sums over valid cells equal sums along the time axis.
    assert float(grid["energy"].where(grid["valid"]).sum()) == pytest.approx(float(ds["energy"].sum()))
    assert np.array_equal(grid["quality"].where(grid["valid"], 0).sum().values, ds["quality"].sum().values)


def test_to_grid_span_with_both_clock_changes_and_gsp_first():
    t = calendar.time_axis("2026-03-28", "2026-10-26")
    da = xr.DataArray(np.arange(len(t) * 2, dtype=float).reshape(len(t), 2),
                      coords={"time": t, "gsp_group": ["_C", "_P"]}, dims=("time", "gsp_group"), name="take",
                      attrs={"units": "kWh"})
    grid = cube.to_grid(da)
    assert grid.dims == ("gsp_group", "settlement_date", "settlement_period")
    assert grid.name == "take" and grid.attrs == {"units": "kWh"}
    n = calendar.periods_in_day(grid["settlement_date"].values)
    assert np.array_equal(grid["valid"].values, grid["settlement_period"].values[None, :] <= n[:, None])
    np.testing.assert_allclose(grid.where(grid["valid"]).sum(["settlement_date", "settlement_period"]),
                               da.sum("time"))
    back = cube.from_grid(grid)
    xr.testing.assert_identical(back, cube.add_settlement_coords(da).transpose("gsp_group", "time"))


def test_grid_round_trip_of_meter_cube(spring):
    xr.testing.assert_identical(cube.from_grid(cube.to_grid(spring)), spring)


def test_grid_errors(spring):
    with pytest.raises(ValueError, match="from_grid: coordinate 'valid' is missing"):
        cube.from_grid(cube.to_grid(spring).drop_vars("valid"))
    with pytest.raises(ValueError, match="to_grid: the Dataset already has a 'utc' variable"):
        cube.to_grid(spring.assign_coords(utc=spring["time"]))
    with pytest.raises(ValueError, match="expected a 'time' dimension coordinate"):
        cube.to_grid(spring.isel(time=0, drop=True))


@settings(max_examples=40, deadline=None)
@given(
    first=st.dates(min_value=pd.Timestamp("2023-01-01").date(), max_value=pd.Timestamp("2028-12-31").date()),
    n_days=st.integers(1, 6),
    n_groups=st.integers(1, 3),
    start_cut=st.integers(0, 20),
    end_cut=st.integers(0, 20),
)
@example(first=pd.Timestamp("2026-03-29").date(), n_days=1, n_groups=1, start_cut=0, end_cut=0)
@example(first=pd.Timestamp("2026-10-24").date(), n_days=3, n_groups=2, start_cut=3, end_cut=5)
@example(first=pd.Timestamp("2028-02-28").date(), n_days=3, n_groups=1, start_cut=0, end_cut=0)
def test_grid_round_trip_property(first, n_days, n_groups, start_cut, end_cut):
    t = calendar.time_axis(first, pd.Timestamp(first) + pd.Timedelta(days=n_days - 1))
    t = t[start_cut: len(t) - end_cut]  # partial first and last days too
    rng = np.random.default_rng(len(t))
    ds = xr.Dataset(
        {"energy": (("gsp_group", "time"), rng.random((n_groups, len(t))), {"units": "kWh"}),
         "code": (("time",), rng.integers(0, 39, len(t)).astype(np.uint8), {"units": "1"})},
        coords={"time": t, "gsp_group": [f"_{c}" for c in "ABC"[:n_groups]]},
    )
    ds = cube.add_settlement_coords(ds)
    grid = cube.to_grid(ds)
    assert int(grid["valid"].sum()) == len(t)
    assert grid["code"].dtype == np.uint8
    assert float(grid["energy"].where(grid["valid"]).sum()) == pytest.approx(float(ds["energy"].sum()))
    xr.testing.assert_identical(cube.from_grid(grid), ds)


# ---- save / open ----------------------------------------------------------------------------


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
@pytest.mark.parametrize("first, last, n", [("2026-03-28", "2026-03-30", 46), ("2026-10-24", "2026-10-26", 50)])
def test_save_open_round_trip(tmp_path, suffix, first, last, n):
    ds = make_cube(first, last)
    ds.attrs.update(scenario="tiny", seed=1, digest="ab" * 32)
    path = tmp_path / f"meters{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. zarr's warning for string dtypes without a v3 spec
        assert cube.save(ds, path) == path
        back = cube.open(path)
    xr.testing.assert_identical(back, ds)
    for name, var in ds.variables.items():
        assert back[name].dtype == var.dtype, name
    assert int(back["settlement_period"].max()) == max(n, 48) and int((back["settlement_date"] == back[
        "settlement_date"][60]).sum()) == n  # the clock-change day is the middle one
    cube.validate_meter_cube(back, where=str(path))
    # The grid view, with its NaT pads and bool mask, survives too.
    grid = cube.to_grid(ds)
    cube.save(grid, tmp_path / f"grid{suffix}")
    xr.testing.assert_identical(cube.open(tmp_path / f"grid{suffix}"), grid)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_replaces_and_open_lazily(tmp_path, suffix):
    path = tmp_path / "sub" / f"x{suffix}"
    cube.save(make_cube(seed=1), path)
    new = make_cube(seed=2)
    cube.save(new, path)
    lazy = cube.open(path, chunks={})
    assert lazy["energy"].chunks is not None
    xr.testing.assert_identical(lazy.load(), new)
    lazy.close()
    assert _leftovers(path.parent) == []


def _boom(*args, **kwargs):
    raise RuntimeError("disk full")


@pytest.mark.parametrize("suffix, method", [(".zarr", "to_zarr"), (".nc", "to_netcdf")])
def test_failed_write_leaves_previous_file(tmp_path, monkeypatch, suffix, method):
    path = tmp_path / f"x{suffix}"
    old = make_cube(seed=1)
    cube.save(old, path)
    real = getattr(xr.Dataset, method)

    def half_write(self, target, *args, **kwargs):
        real(self.isel(time=slice(0, 3)), target, *args, **kwargs)  # something lands in the temporary...
        raise RuntimeError("disk full")  # ...then the writer dies

    monkeypatch.setattr(xr.Dataset, method, half_write)
    with pytest.raises(RuntimeError, match="disk full"):
        cube.save(make_cube(seed=2), path)
    monkeypatch.undo()
    xr.testing.assert_identical(cube.open(path), old)
    assert _leftovers(tmp_path) == []
    # A failure on a fresh target leaves nothing at all.
    monkeypatch.setattr(xr.Dataset, method, _boom)
    with pytest.raises(RuntimeError):
        cube.save(old, tmp_path / f"new{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"x{suffix}"]


def test_failed_zarr_swap_restores_previous(tmp_path, monkeypatch):
    path = tmp_path / "x.zarr"
    old = make_cube(seed=1)
    cube.save(old, path)
    real_rename = _io.os.rename

    def rename(src, dst):
        if ".tmp-" in str(src):
            raise OSError("rename failed")
        return real_rename(src, dst)

    monkeypatch.setattr(_io.os, "rename", rename)
    monkeypatch.setattr(_io, "_exchange", None)  # the two-rename swap of systems without an atomic exchange
    with pytest.raises(OSError, match="rename failed"):
        cube.save(make_cube(seed=2), path)
    monkeypatch.undo()
    xr.testing.assert_identical(cube.open(path), old)
    assert _leftovers(tmp_path) == []


def test_save_open_errors(tmp_path, spring):
    with pytest.raises(ValueError, match=r"x.csv: unknown file type '.csv'; expected .zarr or .nc"):
        cube.save(spring, tmp_path / "x.csv")
    with pytest.raises(TypeError, match="save: expected an xarray.Dataset, got DataArray"):
        cube.save(spring["energy"], tmp_path / "x.nc")
    with pytest.raises(FileNotFoundError, match="nothing.zarr: no such file or directory"):
        cube.open(tmp_path / "nothing.zarr")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "A", "_B", "xyz", "é", "GSP_P"])), max_size=12))
def test_string_standing_column_converted_per_distinct_value_as_row_by_row(values):
    """A pandas string column converted once per distinct value gives the array (dtype included) and
    the refusal of nulls that the row-by-row conversion gives."""
    column = pd.Series(values, dtype="str")

    def outcome(convert):
        try:
            got = convert()
        except ValueError as e:
            return str(e)
        return got.dtype, got.tolist()

    assert (outcome(lambda: cube._column_strings(column, "w"))
            == outcome(lambda: cube._strings(cube._column_values(column), "w")))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["", "A", "S", "U", "AI", "AE", "RE", "_A", "_P", "x", "é", "ab", "ABC"]),
                max_size=20))
def test_not_in_allowed_values_is_not_isin(values):
    """The validator's allowed-value check (code points compared as integers) is ~np.isin."""
    v = np.array(values, dtype=str) if values else np.zeros(0, dtype="<U1")
    for allowed in (("S", "A", "U"), ("AI", "AE", "RI", "RE"), cube._GSP_GROUP_IDS, ("W", "L", "H", "E", "U")):
        assert np.array_equal(cube._not_in(v, allowed), ~np.isin(v, allowed))


@pytest.mark.parametrize("cores, ok", [
    (["1000000000001", "1000000000002"], True),
    (["1000000000001", "1000000000001"], False),   # a duplicate: left to _mpan_core_problem
    (["1000000000001", "100000000000"], False),    # 12 digits
    (["1000000000001", "10000000000x2"], False),
    (["1000000000001", "١٠٠٠٠٠٠٠٠٠٠٠٢"], False),  # non-ASCII digits are no core
])
def test_cores_known_ok_only_where_the_core_check_finds_no_problem(cores, ok):
    ds = xr.Dataset(coords={"mpan": pd.Index(pd.array(cores, dtype="str"))})
    assert cube._cores_ok(ds) is ok
    if ok:
        assert cube._mpan_core_problem(np.array(cores)) is None
    else:
        assert cube._mpan_core_problem(np.array(cores)) is not None


# ---------------------------------------------------------------------------------------------
# the compiled energy/quality check
# ---------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 1.5, -2.0, np.nan, np.inf, -np.inf]),
                          st.sampled_from([cube.MISSING, cube.QUALITY_CODES["A"], 3])), min_size=0, max_size=24),
       st.integers(1, 4), st.booleans())
def test_energy_quality_mismatches_kernel_matches_numpy(cells, n_t, fortran):
    from tomlib._cube_kernel import energy_quality_mismatches

    n = len(cells) // n_t
    cells = cells[:n * n_t]
    energy = np.array([c[0] for c in cells], dtype=float).reshape(n, n_t)
    quality = np.array([c[1] for c in cells], dtype=np.uint8).reshape(n, n_t)
    if fortran:  # another layout: the NumPy path
        energy, quality = np.asfortranarray(energy), np.asfortranarray(quality)
    present = quality != cube.MISSING
    expect = (int((present & ~np.isfinite(energy)).sum()), int((~present & ~np.isnan(energy)).sum()))
    assert energy_quality_mismatches(energy, quality, cube.MISSING) == expect


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, 1.5, -2.0, np.nan, np.inf]), max_size=24), st.integers(1, 4), st.booleans())
def test_quality_of_energy_kernel_matches_numpy(values, n_t, fortran):
    from tomlib._cube_kernel import quality_of_energy

    n = len(values) // n_t
    energy = np.array(values[:n * n_t], dtype=float).reshape(n, n_t)
    if fortran:
        energy = np.asfortranarray(energy)
    got = quality_of_energy(energy, cube.MISSING, cube.QUALITY_CODES["A"])
    expect = np.where(np.isnan(energy), cube.MISSING, cube.QUALITY_CODES["A"]).astype(np.uint8)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expect)
