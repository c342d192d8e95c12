"""NESO historic demand files (tomlib.flows.neso_demand): the real 2022 copy (golden numbers, 46- and
50-period days, byte-faithful round trip), streaming in blocks, and the writer. Bad input files are in
tests/test_bad_inputs.py."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib.flows import neso_demand as nd

NESO_2022 = Path(__file__).parent / "data" / "neso_demand_2022_nd.csv.gz"


@pytest.fixture(scope="module")
def demand():
    return nd.read_neso_demand(NESO_2022)


def test_the_2022_copy_reads_with_its_golden_numbers(demand):
    assert list(demand.data_vars) == ["ND"] and demand["ND"].attrs["units"] == "MW"
    assert demand.sizes["time"] == 17_520
    mwh = demand["ND"] * 0.5  # MW, mean over the half hour -> MWh
    assert float(mwh.sum()) == 233_209_660.0
    by_day = mwh.groupby("settlement_date").sum()
    assert float(by_day.sel(settlement_date="2022-03-27")) == 570_908.5
    assert float(by_day.sel(settlement_date="2022-10-30")) == 564_320.0
    per_day = demand["settlement_period"].groupby("settlement_date").max()
    assert int(per_day.sel(settlement_date="2022-03-27")) == 46 and int(per_day.sel(settlement_date="2022-10-30")) == 50
    # period 3 of the spring day starts at 01:00 UTC; period 50 of the autumn day at 23:30 UTC
    t = demand["time"].to_index()
    sel = (demand["settlement_date"] == np.datetime64("2022-03-27")) & (demand["settlement_period"] == 3)
    assert t[sel.values][0] == pd.Timestamp("2022-03-27 01:00")
    sel = (demand["settlement_date"] == np.datetime64("2022-10-30")) & (demand["settlement_period"] == 50)
    assert t[sel.values][0] == pd.Timestamp("2022-10-30 23:30")
    assert (np.diff(t.values) == np.timedelta64(30, "m")).all()


def test_round_trip_gives_the_copy_back_byte_for_byte(tmp_path, demand):
    out = nd.write_neso_demand(demand, tmp_path / "demand.csv.gz")
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(NESO_2022.read_bytes())
    xr.testing.assert_identical(nd.read_neso_demand(out).drop_attrs(), demand.drop_attrs())
    assert [p.name for p in tmp_path.iterdir()] == ["demand.csv.gz"]


def test_reading_in_blocks_gives_the_same_dataset(demand):
    parts = list(nd.iter_neso_demand(NESO_2022, block_size=20_000))
    assert len(parts) > 10 and sum(len(p) for p in parts) == 17_520
    xr.testing.assert_identical(nd.read_neso_demand(NESO_2022, block_size=7_000), demand)


def test_quoted_fields_older_date_form_and_column_choice(tmp_path):
    path = tmp_path / "demanddata_2019.csv"
    path.write_text('"SETTLEMENT_DATE","SETTLEMENT_PERIOD","ND","TSD","IFA_FLOW"\n'
                    + "".join(f'"31-MAR-2019",{j},{25000 + j},{26000 + j},{-100 * j}\n' for j in range(1, 47)))
    ds = nd.read_neso_demand(path, ["ND", "IFA_FLOW"])
    assert list(ds.data_vars) == ["ND", "IFA_FLOW"] and ds.sizes["time"] == 46
    assert ds["time"].values[0] == np.datetime64("2019-03-31T00:00") and float(ds["IFA_FLOW"][-1]) == -4600.0
    with pytest.raises(nd.NesoDemandError, match=r"line 1, field EMBEDDED_WIND_GENERATION: expected a column"):
        nd.read_neso_demand(path, ["EMBEDDED_WIND_GENERATION"])


def test_the_writer_refuses_what_would_not_read_back(tmp_path, demand):
    day = demand.isel(time=slice(0, 48)).copy(deep=True)
    day["ND"].values[5] = np.nan
    with pytest.raises(nd.NesoDemandError, match=r"x.csv, line 7, field ND: expected a number \[MW\], got 'nan'"):
        nd.write_neso_demand(day, tmp_path / "x.csv")
    gw = demand.isel(time=slice(0, 48)) / 1000
    gw["ND"].attrs["units"] = "GW"
    with pytest.raises(nd.NesoDemandError, match="variable ND is in 'GW'; the file holds MW"):
        nd.write_neso_demand(gw, tmp_path / "x.csv")
    part = demand.isel(time=slice(0, 40))
    with pytest.raises(nd.NesoDemandError, match="2022-01-01 has 48 periods but the file ends at period 40"):
        nd.write_neso_demand(part, tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.sampled_from(["2022-03-26", "2022-03-27", "2022-10-30", "2025-10-25", "2026-03-29"]),
       n_days=st.integers(1, 3), seed=st.integers(0, 2**16), block=st.sampled_from([300, 10**6]))
def test_write_then_read_is_the_identity(tmp_path_factory, first, n_days, seed, block):
    times = cal.time_axis(first, pd.Timestamp(first) + pd.Timedelta(days=n_days - 1))
    rng = np.random.default_rng(seed)
    ds = xr.Dataset({"ND": ("time", rng.integers(15_000, 45_000, len(times)).astype(float), {"units": "MW"}),
                     "NEMO_FLOW": ("time", np.round(rng.normal(0, 500, len(times)), 1), {"units": "MW"})},
                    coords={"time": times.to_numpy()})
    path = nd.write_neso_demand(ds, tmp_path_factory.mktemp("neso") / "d.csv")
    back = nd.read_neso_demand(path, block_size=block)
    assert np.array_equal(back["time"].values, times.to_numpy())
    for v in ("ND", "NEMO_FLOW"):
        assert np.array_equal(back[v].values, ds[v].values)
    assert int(back["settlement_period"].max()) == max(cal.periods_in_day(pd.DatetimeIndex(
        pd.date_range(first, periods=n_days))))
