"""Half-hourly consumption files (tomlib.flows.hh_consumption): the three layouts, identical round trips
on clock-change days, streaming in blocks, and what the writer refuses. Bad input files are in
tests/test_bad_inputs.py."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib import cube
from tomlib import mpan as mpan_mod
from tomlib.flows import hh_consumption as hh

SPRING, AUTUMN = pd.Timestamp("2026-03-29"), pd.Timestamp("2026-10-25")  # 46 and 50 periods
LABELS = np.array(list(cube.QUALITY_CODES))
REASONS = np.array(list(cube.ESTIMATION_REASONS))


def _standing(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = np.array(["_C", "_P", "_A"])[np.arange(n) % 3]
    cores = mpan_mod.generate_cores(groups, rng).astype(str)
    return pd.DataFrame({"gsp_group": groups, "market_segment": "S", "connection_type": "W", "domestic": True,
                         "supplier": "ALFA", "bm_unit": "2__CALFA001", "llfc": "001",
                         "measurement_quantity": np.where(np.arange(n) % 4 == 3, "AE", "AI"),
                         "annual_consumption": 3100.0}, index=pd.Index(cores, name="mpan"))


def _cube(times, n: int = 3, seed: int = 1, missing: float = 0.1) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    st_ = _standing(n, seed)
    e = rng.gamma(2.0, 0.2, (n, len(times)))
    q = rng.integers(1, len(LABELS), e.shape).astype(np.uint8)
    gone = rng.random(e.shape) < missing
    q[gone] = cube.MISSING
    e[gone] = np.nan
    r = np.where(rng.random(e.shape) < 0.2, rng.integers(1, len(REASONS), e.shape), 0).astype(np.uint8)
    return cube.meter_cube(e, times, st_.index.to_numpy(), st_, quality=q, estimation_reason=r)


@pytest.fixture(scope="module")
def clock_change_cube():
    # the spring and the autumn clock-change days and a 48-period day between them
    a = _cube(cal.time_axis(SPRING - pd.Timedelta(days=1), SPRING), seed=1)
    b = _cube(cal.time_axis(AUTUMN, AUTUMN + pd.Timedelta(days=1)), seed=1)
    return a, b


@pytest.mark.parametrize("layout", hh.LAYOUTS)
def test_round_trip_is_identical_on_clock_change_days(tmp_path, clock_change_cube, layout):
    for ds in clock_change_cube:
        path = hh.write_hh_consumption(ds, tmp_path / f"hh.{layout}", layout=layout)
        back = hh.read_hh_consumption(path, hh.standing_of(ds))
        xr.testing.assert_identical(back, ds)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_files_say_what_the_module_docstring_says(tmp_path, clock_change_cube):
    spring, autumn = clock_change_cube
    mp = str(spring["mpan"].values[0])
    text = hh.write_hh_consumption(spring, tmp_path / "a.csv").read_text()
    rows = [r for r in text.splitlines() if r.startswith(mp + ",2026-03-29,")]
    assert text.startswith("mpan,settlement_date,settlement_period,energy_kwh,quality,estimation_reason\n")
    assert len(rows) == 46 and rows[-1].split(",")[2] == "46"
    utc = hh.write_hh_consumption(spring, tmp_path / "b.csv", layout="csv_utc").read_text().splitlines()
    # period 3 of the spring day starts at 01:00 UTC (02:00 BST): no period is skipped in UTC
    day = [r for r in utc if r.startswith((mp + ",2026-03-29T", mp + ",2026-03-28T23"))]
    assert day[0].split(",")[1] == "2026-03-28T23:00:00Z" and day[2].split(",")[1] == "2026-03-29T00:00:00Z"
    hhc = hh.write_hh_consumption(autumn, tmp_path / "c.hhc", layout="hhc").read_text().splitlines()
    assert hhc[0] == "ZHV|1|HHC001|D|TOMD|X|TOMS|20261027000000|TEST|"
    assert hhc[1] == f"MPD|{autumn['mpan'].values[0]}|_C|AI|kWh|" and hhc[2] == "SDY|20261025|50|"
    assert hhc[2 + 50].startswith("HHV|50|") and hhc[2 + 51] == "SDY|20261026|48|"
    assert hhc[-1] == f"ZPT|1|{len(hhc) - 2}|3|20261027000000|"
    e = autumn["energy"].values[0, 4]
    label = cube.quality_label(autumn["quality"].values[0, 4])
    assert hhc[3 + 4].split("|")[2:4] == ([repr(float(e)), str(label)] if np.isfinite(e) else ["", ""])


@pytest.mark.parametrize("layout", hh.LAYOUTS)
def test_reading_in_many_small_blocks_gives_the_same_cube(tmp_path, clock_change_cube, layout):
    ds = clock_change_cube[1]
    path = hh.write_hh_consumption(ds, tmp_path / "x.txt", layout=layout)
    standing = hh.standing_of(ds)
    blocks = list(hh.iter_hh_records(path, standing, block_size=2000))
    assert len(blocks) >= 4  # several blocks: the file was streamed
    assert sum(len(b.line) for b in blocks) == ds["energy"].size
    for size in (333, 4096, 10**8):
        xr.testing.assert_identical(hh.read_hh_consumption(path, standing, block_size=size), ds)


def test_gzip_files_stream_too(tmp_path, clock_change_cube):
    ds = clock_change_cube[0]
    plain = hh.write_hh_consumption(ds, tmp_path / "x.csv")
    packed = tmp_path / "x.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    xr.testing.assert_identical(hh.read_hh_consumption(packed, ds, block_size=1000), ds)


def test_cells_the_file_does_not_hold_are_missing_and_quality_is_optional(tmp_path):
    st_ = _standing(2)
    a, b = st_.index
    path = tmp_path / "sparse.csv"
    path.write_text("settlement_period,mpan,settlement_date,energy_kwh\n"
                    f"46,{a},2026-03-29,0.5\n1,{b},2026-03-29,1.25\n3,{b},2026-03-29,\n")
    ds = hh.read_hh_consumption(path, st_)
    assert ds.sizes == {"mpan": 2, "time": 46} and list(ds["mpan"].values) == [a, b]
    assert ds["energy"].values[0, 45] == 0.5 and ds["energy"].values[1, 0] == 1.25
    q = ds["quality"].values
    assert q[0, 45] == q[1, 0] == cube.QUALITY_CODES["A"]
    assert (q == cube.MISSING).sum() == 2 * 46 - 2 and np.isnan(ds["energy"].values[1, 2])


def test_a_part_day_round_trips_in_csv(tmp_path):
    times = cal.time_axis(AUTUMN, AUTUMN)[3:20]  # the repeated hour of the 50-period day, not whole days
    ds = _cube(times, n=2, missing=0.0)
    for layout in ("csv_period", "csv_utc"):
        path = hh.write_hh_consumption(ds, tmp_path / f"{layout}.csv", layout=layout)
        xr.testing.assert_identical(hh.read_hh_consumption(path, ds), ds)


def test_the_writer_refuses_what_it_cannot_write_and_writes_nothing(tmp_path):
    ds = _cube(cal.time_axis(SPRING, SPRING), n=2, missing=0.0)
    neg = ds.copy(deep=True)
    neg["energy"].values[1, 7] = -0.2
    with pytest.raises(hh.HhConsumptionError, match=r"neg.csv: energy must be >= 0 kWh to be written, got -0.2"):
        hh.write_hh_consumption(neg, tmp_path / "neg.csv")
    part = ds.isel(time=slice(1, None))
    with pytest.raises(hh.HhConsumptionError, match="the hhc layout carries whole settlement days"):
        hh.write_hh_consumption(part, tmp_path / "part.hhc", layout="hhc")
    bad = ds.copy(deep=True)
    bad["quality"].values[0, 0] = 99
    with pytest.raises(hh.HhConsumptionError, match="quality must hold DI-083 quality codes"):
        hh.write_hh_consumption(bad, tmp_path / "bad.csv")
    assert list(tmp_path.iterdir()) == []


def test_a_file_keeps_its_target_when_writing_fails(tmp_path):
    ds = _cube(cal.time_axis(SPRING, SPRING), n=2)
    path = hh.write_hh_consumption(ds, tmp_path / "x.csv")
    before = path.read_bytes()
    neg = ds.copy(deep=True)
    neg["energy"].values[0, 0] = -1.0
    neg["quality"].values[0, 0] = cube.QUALITY_CODES["A"]
    with pytest.raises(hh.HhConsumptionError):
        hh.write_hh_consumption(neg, path)
    assert path.read_bytes() == before


_DAYS = st.sampled_from([SPRING - pd.Timedelta(days=1), SPRING, AUTUMN, AUTUMN - pd.Timedelta(days=1),
                         pd.Timestamp("2024-03-31"), pd.Timestamp("2025-10-26"), pd.Timestamp("2026-06-01")])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=_DAYS, n_days=st.integers(1, 2), n=st.integers(1, 4), seed=st.integers(0, 2**16),
       layout=st.sampled_from(hh.LAYOUTS), missing=st.sampled_from([0.0, 0.3, 1.0]),
       block=st.sampled_from([512, 10**6]))
def test_write_then_read_is_the_identity(tmp_path_factory, first, n_days, n, seed, layout, missing, block):
    times = cal.time_axis(first, first + pd.Timedelta(days=n_days - 1))
    ds = _cube(times, n=n, seed=seed, missing=missing)
    path = hh.write_hh_consumption(ds, tmp_path_factory.mktemp("hh") / "x", layout=layout)
    if missing == 1.0 and layout != "hhc":
        # a cube without a single value: every row is written (empty energy), so it still reads back
        assert path.read_text().count("\n") == ds["energy"].size + 1
    xr.testing.assert_identical(hh.read_hh_consumption(path, hh.standing_of(ds), block_size=block), ds)
