"""Aggregation: settled MPAN energy -> volumes per GSP group x supplier x BM unit x CCC x period (§2.9)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import calendar, cube
from tomlib import registration as reg
from tomlib.services import aggregation as agg

SHORT_DAY = pd.Timestamp("2026-03-29")  # 46 periods
LONG_DAY = pd.Timestamp("2026-10-25")  # 50 periods
Q = cube.QUALITY_CODES


def _mpans(n: int) -> np.ndarray:
    return np.char.zfill((1_200_000_000_000 + np.arange(n)).astype(str), 13)


def _meters(energy, quality, gsp, seg, mq, dom=None, ac=None, times=None):
    n = len(gsp)
    standing = pd.DataFrame({
        "gsp_group": gsp, "market_segment": seg, "connection_type": "W",
        "domestic": np.ones(n, bool) if dom is None else np.asarray(dom, bool),
        "supplier": "XXXX", "bm_unit": "ignored", "llfc": "ignored", "measurement_quantity": mq,
        "annual_consumption": np.full(n, 3000.0) if ac is None else np.asarray(ac, float)},
        index=pd.Index(_mpans(n), name="mpan"))
    energy = np.array(energy, dtype=float)
    energy[np.asarray(quality) == cube.MISSING] = np.nan
    return cube.meter_cube(energy, times, _mpans(n), standing, quality=np.asarray(quality, np.uint8))


def _events(mpans, rows):
    """rows: (mpan index, effective_from, supplier, bm_unit, llfc, energised, notified_at)."""
    return pd.DataFrame({
        "mpan": [mpans[r[0]] for r in rows],
        "effective_from": pd.to_datetime([r[1] for r in rows]).as_unit("ns"),
        "supplier": [r[2] for r in rows], "bm_unit": [r[3] for r in rows], "llfc": [r[4] for r in rows],
        "energised": np.array([r[5] for r in rows], dtype=bool),
        "notified_at": pd.to_datetime([r[6] for r in rows]).as_unit("ns"),
        "change": "test"})


def _llf(llfcs, times, values=None):
    values = np.full((len(llfcs), len(times)), 1.05) if values is None else values
    return xr.DataArray(values, dims=("llfc", "time"), coords={"llfc": list(llfcs), "time": np.asarray(times)})


def _reference(meters, force: reg.RegistrationInForce, llf: xr.DataArray, cccs):
    """Brute force in long format (pandas groupby is fine in a test): what aggregate() must give."""
    mpans = meters["mpan"].values
    n_t = meters.sizes["time"]
    reg_ds = force.to_dataset()
    long = pd.DataFrame({
        "m": np.repeat(np.arange(mpans.size), n_t), "t": np.tile(np.arange(n_t), mpans.size),
        "energy": meters["energy"].values.ravel(), "quality": meters["quality"].values.ravel(),
        "supplier": reg_ds["supplier"].values.ravel(), "bm_unit": reg_ds["bm_unit"].values.ravel(),
        "llfc": reg_ds["llfc"].values.ravel(), "active": reg_ds["energised"].values.ravel()})
    long = long[long["active"] & (long["quality"] != cube.MISSING)].copy()
    long["gsp_group"] = meters["gsp_group"].values[long["m"]]
    long["mq"] = meters["measurement_quantity"].values[long["m"]]
    long["seg"] = meters["market_segment"].values[long["m"]]
    long["dq"] = np.where(np.isin(long["quality"], [Q[a] for a in agg.ACTUAL_QUALITY]), "actual", "estimated")
    llf_values = llf.to_pandas()
    long["llf"] = llf_values.to_numpy()[llf_values.index.get_indexer(long["llfc"]), long["t"]]
    long["loss"] = long["energy"] * (long["llf"] - 1)
    table = cccs.reset_index()
    key = ["gsp_group", "supplier", "bm_unit", "mq", "seg", "dq", "t"]
    grouped = long.groupby(key).agg(energy=("energy", "sum"), loss=("loss", "sum"), n=("m", "size")).reset_index()
    out = []
    for comp, col in (("consumption", "energy"), ("losses", "loss")):
        sub = table[table["component"] == comp]
        g = grouped.merge(sub, left_on=["mq", "seg", "dq"],
                          right_on=["measurement_quantity", "market_segment", "data_quality"])
        out.append(g[["gsp_group", "supplier", "bm_unit", "ccc", "t", col, "n"]].rename(columns={col: "value"}))
    return pd.concat(out).set_index(["gsp_group", "supplier", "bm_unit", "ccc", "t"]).sort_index()


def _as_long(result: xr.Dataset) -> pd.DataFrame:
    n_t = result.sizes["time"]
    idx = pd.MultiIndex.from_arrays([np.repeat(result[c].values, n_t) for c in ("gsp_group", "supplier", "bm_unit",
                                                                                 "ccc")]
                                    + [np.tile(np.arange(n_t), result.sizes["aggregate"])],
                                    names=["gsp_group", "supplier", "bm_unit", "ccc", "t"])
    df = pd.DataFrame({"value": result["energy"].values.ravel(), "n": result["mpan_count"].values.ravel()}, index=idx)
    return df[df["n"] > 0].sort_index()


@st.composite
def _cases(draw):
    n = draw(st.integers(1, 8))
    day = draw(st.sampled_from([SHORT_DAY, LONG_DAY]))
    times = calendar.period_starts(day)[:draw(st.integers(1, 6))] if draw(st.booleans()) else \
        calendar.period_starts(day)
    n_t = len(times)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = rng.integers(0, 3, n)
    seg = np.array(["S", "A", "S"])[kind]
    mq = np.array(["AI", "AI", "AE"])[kind]
    gsp = rng.choice(["_C", "_P"], n)
    quality = rng.choice([Q["A"], Q["E"], Q["E5"], Q["A2"], Q["EA3"]], (n, n_t)).astype(np.uint8)
    energy = rng.gamma(2.0, 0.2, (n, n_t))
    meters = _meters(energy, quality, gsp, seg, mq, times=times)
    mpans = meters["mpan"].values
    rows = []
    for i in range(n):  # a handful of MPANs in a test
        rows.append((i, times[0], "ALFA", f"2__{gsp[i][1]}ALFA", "L1" if mq[i] == "AI" else "X1", True,
                     times[0] - pd.Timedelta(days=9)))
        if rng.random() < 0.5:
            t = times[rng.integers(0, n_t)]
            rows.append((i, t, rng.choice(["BRVO", "ALFA"]), f"2__{gsp[i][1]}BRVO", rng.choice(["L1", "L2"]),
                         bool(rng.random() < 0.7), t))
    events = _events(mpans, rows)
    if rng.random() < 0.3:  # an MPAN without registration at first
        events = events[~((events["mpan"] == mpans[0]) & (events["effective_from"] == times[0]))]
    llf = _llf(["L1", "L2", "X1"], times, 1.0 + rng.uniform(0, 0.1, (3, n_t)))
    return meters, reg.in_force(events, mpans, times), llf


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cases())
def test_aggregates_equal_the_sum_of_their_mpans(case):
    """Every aggregate = sum of its MPANs' energy; every losses CCC = sum of energy x (LLF - 1)."""
    from tomlib import reference

    meters, force, llf = case
    result = agg.aggregate(meters, force, llf)
    got = _as_long(result)
    want = _reference(meters, force, llf, reference.consumption_component_classes())
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["value"].to_numpy(), want["value"].to_numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got["n"].to_numpy(), want["n"].to_numpy())
    # completeness: every MPAN-period has exactly one status
    np.testing.assert_array_equal(result["mpan_periods"].sum(["gsp_group_id", "status"]).values,
                                  meters.sizes["mpan"])


def test_losses_are_energy_times_llf_minus_one():
    times = calendar.period_starts(LONG_DAY)
    meters = _meters(np.full((2, 50), 10.0), np.full((2, 50), Q["A"]), ["_C", "_C"], ["S", "S"], ["AI", "AI"],
                     times=times)
    mpans = meters["mpan"].values
    events = _events(mpans, [(0, times[0], "ALFA", "B1", "L1", True, times[0]),
                             (1, times[0], "ALFA", "B1", "L2", True, times[0])])
    llf = _llf(["L1", "L2"], times, np.array([[1.08] * 50, [1.02] * 50]))
    out = agg.aggregate(meters, reg.in_force(events, mpans, times), llf)
    losses = out["energy"].where(out["component"] == "losses", drop=True)
    np.testing.assert_allclose(losses.values, 10.0 * 0.08 + 10.0 * 0.02)  # G-5: 100 kWh at LLF 1.08 -> 8 kWh losses
    assert list(out["ccc"].values) == ["AI-S-A-C", "AI-S-A-L"]
    assert out.sizes["time"] == 50


def test_change_of_supplier_takes_effect_from_its_period():
    times = calendar.period_starts(SHORT_DAY)
    meters = _meters(np.ones((1, 46)), np.full((1, 46), Q["A"]), ["_C"], ["S"], ["AI"], times=times)
    mpans = meters["mpan"].values
    events = _events(mpans, [(0, times[0], "ALFA", "BA", "L1", True, times[0]),
                             (0, times[20], "BRVO", "BB", "L1", True, times[0])])
    out = agg.aggregate(meters, reg.in_force(events, mpans, times), _llf(["L1"], times))
    cons = out.where(out["component"] == "consumption", drop=True)
    by_supplier = cons["mpan_count"].groupby("supplier").sum("aggregate")
    np.testing.assert_array_equal(by_supplier.sel(supplier="ALFA").values, [1] * 20 + [0] * 26)
    np.testing.assert_array_equal(by_supplier.sel(supplier="BRVO").values, [0] * 20 + [1] * 26)


def test_missing_values_are_defaulted_and_counted():
    """LS x AC / mean AC of the category where actuals exist; flat AC/8766 h x 0.5 h where none do."""
    times = calendar.period_starts(SHORT_DAY)[:2]
    q = np.array([[Q["A"], Q["A"]], [Q["A"], Q["MISSING"]], [Q["MISSING"], Q["E"]], [Q["MISSING"], Q["A"]]])
    energy = np.array([[1.0, 2.0], [3.0, 0.0], [0.0, 5.0], [0.0, 7.0]])
    meters = _meters(energy, q, ["_C"] * 4, ["S"] * 4, ["AI"] * 4, dom=[True, True, True, False],
                     ac=[1000.0, 3000.0, 2000.0, 8766.0], times=times)
    mpans = meters["mpan"].values
    events = _events(mpans, [(i, times[0], "ALFA", "BA", "L1", True, times[0]) for i in range(4)])
    out = agg.aggregate(meters, reg.in_force(events, mpans, times), _llf(["L1"], times, np.ones((1, 2))))
    est = out.sel(aggregate=(out["data_quality"] == "estimated") & (out["component"] == "consumption"))
    # domestic category: mean AC 2000; t0 actual mean (1+3)/2 = 2 -> mpan 2 default 2 x 2000/2000 = 2
    # t1: actual mean of the domestic MPANs = 2 (only mpan 0) -> mpan 1 default 2 x 3000/2000 = 3
    # non-domestic mpan 3 at t0: no actual in its category -> flat 8766 x 0.5 / 8766 = 0.5
    np.testing.assert_allclose(est["default_energy"].sum("aggregate").values, [2.0 + 0.5, 3.0])
    np.testing.assert_allclose(est["energy"].sum("aggregate").values, [2.5, 3.0 + 5.0])
    np.testing.assert_array_equal(est["default_count"].sum("aggregate").values, [2, 1])
    status = out["mpan_periods"].sel(gsp_group_id="_C").to_pandas()
    assert status.loc["default"].tolist() == [1, 1] and status.loc["default_flat"].tolist() == [1, 0]
    assert status.loc["actual"].tolist() == [2, 2] and status.loc["estimated"].tolist() == [0, 1]


def test_de_energised_and_unregistered_do_not_contribute():
    times = calendar.period_starts(LONG_DAY)[:4]
    meters = _meters(np.ones((3, 4)), np.full((3, 4), Q["A"]), ["_P"] * 3, ["S"] * 3, ["AI"] * 3, times=times)
    mpans = meters["mpan"].values
    events = _events(mpans, [(0, times[0], "ALFA", "BA", "L1", True, times[0]),
                             (1, times[0], "ALFA", "BA", "L1", True, times[0]),
                             (1, times[2], "ALFA", "BA", "L1", False, times[0]),
                             (2, times[1], "ALFA", "BA", "L1", True, times[0])])
    out = agg.aggregate(meters, reg.in_force(events, mpans, times), _llf(["L1"], times))
    cons = out.sel(aggregate=out["component"] == "consumption")
    np.testing.assert_allclose(cons["energy"].sum("aggregate").values, [2, 3, 2, 2])
    status = out["mpan_periods"].sel(gsp_group_id="_P").to_pandas()
    assert status.loc["de_energised"].tolist() == [0, 0, 1, 1]
    assert status.loc["not_registered"].tolist() == [1, 0, 0, 0]


def test_missing_llf_and_missing_ccc_raise():
    times = calendar.period_starts(SHORT_DAY)[:3]
    meters = _meters(np.ones((1, 3)), np.full((1, 3), Q["A"]), ["_C"], ["S"], ["AI"], times=times)
    mpans = meters["mpan"].values
    force = reg.in_force(_events(mpans, [(0, times[0], "ALFA", "BA", "L9", True, times[0])]), mpans, times)
    with pytest.raises(ValueError, match=r"LLFC L9 has no line loss factors.*not 1.0"):
        agg.aggregate(meters, force, _llf(["L1"], times))
    with pytest.raises(ValueError, match=r"LLFC L9 has no finite LLF in period 2026-03-29 00:30"):
        agg.aggregate(meters, force, _llf(["L9"], times, np.array([[1.05, np.nan, 1.05]])))
    ums_export = _meters(np.ones((1, 3)), np.full((1, 3), Q["A"]), ["_C"], ["U"], ["AE"], times=times)
    with pytest.raises(ValueError, match=r"no consumption component class for measurement quantity AE, market "
                                         r"segment U, data quality actual \(e.g. mpan 1200000000000\)"):
        agg.aggregate(ums_export, force, _llf(["L9"], times))


def test_registration_time_axis_must_match():
    times = calendar.period_starts(SHORT_DAY)[:3]
    meters = _meters(np.ones((1, 3)), np.full((1, 3), Q["A"]), ["_C"], ["S"], ["AI"], times=times)
    mpans = meters["mpan"].values
    force = reg.in_force(_events(mpans, [(0, times[0], "A", "B", "L1", True, times[0])]), mpans, times[:2])
    with pytest.raises(ValueError, match="time axis differs"):
        agg.aggregate(meters, force, _llf(["L1"], times))


def test_quality_classes_are_data():
    lut = agg.quality_classes()
    assert lut[Q["MISSING"]] == 0 and lut[Q["A"]] == 1 and lut[Q["A3"]] == 1 and lut[Q["E"]] == 2
    assert agg.quality_classes(("A",))[Q["A3"]] == 2
    with pytest.raises(ValueError, match="unknown DI-083 label"):
        agg.quality_classes(("Z9",))


def test_bench_inputs_are_consistent():
    inputs = agg.bench_inputs(mpan_days=1400, days=7)
    out = agg.aggregate(**inputs)
    meters = inputs["meters"]
    assert meters.sizes["mpan"] == 200 and meters.sizes["time"] == 7 * 48 - 2
    active = inputs["registration"].energised
    settled_cells = active.sum()
    assert int(out["mpan_count"].where(out["component"] == "consumption", 0).sum()) == settled_cells


def test_group_sum():
    groups, sums = agg.group_sum(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
                                 [np.array(["b", "a", "b"]), np.array([1, 1, 1])])
    assert groups["k0"].tolist() == ["a", "b"]
    np.testing.assert_allclose(sums, [[3.0, 4.0], [6.0, 8.0]])


@st.composite
def _cells(draw):
    """A cube of random quality and energy, registration events per cell (some rows change, some start
    unregistered) and random groups of events."""
    n = draw(st.integers(1, 25))
    n_t = draw(st.sampled_from([1, 2, 46, 50]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels = ["MISSING", "A", "E", "A2", "A3", "EA3", "ZE1", "E5"]
    quality = np.array([Q[x] for x in labels], np.uint8)[rng.integers(0, len(labels), (n, n_t))]
    energy = rng.gamma(2.0, 0.3, (n, n_t)).astype(draw(st.sampled_from([np.float64, np.float32])))
    energy[quality == Q["MISSING"]] = np.nan
    # events in force: one per row, a second from a random period on for some rows, none before the
    # first event for others; positions never decrease along a row (tomlib.registration.in_force)
    starts = np.where(rng.random(n) < 0.2, rng.integers(1, n_t + 1, n), 0)
    change = np.where(rng.random(n) < 0.4, rng.integers(1, n_t + 1, n), n_t)
    first_event = np.cumsum(np.r_[0, np.full(n - 1, 2)])
    t = np.arange(n_t)
    event = np.where(t < starts[:, None], -1, np.where(t < change[:, None], first_event[:, None],
                                                       first_event[:, None] + 1)).astype(np.int32)
    n_groups = draw(st.integers(1, 6))
    group = rng.integers(0, n_groups, 2 * n + 1)  # last entry: the group of event -1
    actual = draw(st.sampled_from([agg.ACTUAL_QUALITY, ("A",), ("E", "A2")]))
    return energy, quality, event, group, n_groups, actual


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cells())
def test_compiled_group_sums_equal_a_naive_groupby(case):
    """The hot path of aggregate() = a pandas groupby of every cell by (group of its event, class, period)."""
    energy, quality, event, group, n_groups, actual = case
    n, n_t = quality.shape
    sums, counts, missing, missing_bin = agg._group_class_sums(
        energy, quality, agg._actual_ranges(actual), event, group, n_groups)
    codes = np.array([Q[x] for x in actual])
    cls = np.where(np.isin(quality, codes), 0, np.where(quality == Q["MISSING"], 2, 1))
    long = pd.DataFrame({"g": group[event].ravel(), "cls": cls.ravel(), "t": np.tile(np.arange(n_t), n),
                         "energy": energy.astype(float).ravel()})
    want = long.groupby(["g", "cls", "t"])["energy"].agg(["sum", "size"])
    want_sum = np.zeros((n_groups, 3, n_t))
    want_n = np.zeros((n_groups, 3, n_t), np.int64)
    g, c, t = (want.index.get_level_values(k).to_numpy() for k in ("g", "cls", "t"))
    want_sum[g, c, t], want_n[g, c, t] = want["sum"].to_numpy(), want["size"].to_numpy()
    np.testing.assert_array_equal(counts, want_n)
    np.testing.assert_allclose(sums[:, :2], want_sum[:, :2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.isnan(sums[:, 2]), want_n[:, 2] > 0)  # NaN, as a plain sum would give
    # every missing cell listed once, with its bin
    np.testing.assert_array_equal(np.sort(missing), np.flatnonzero(quality.ravel() == Q["MISSING"]))
    m, tt = np.divmod(missing, n_t)
    np.testing.assert_array_equal(missing_bin, (group[event[m, tt]] * 3 + 2) * n_t + tt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_cells(), data=st.data())
def test_compiled_cell_sums_equal_the_numpy_masks_and_bincounts(case, data):
    """The one pass behind settlement.cell_sums = the masks, gather and bincounts it replaced."""
    from tomlib.services._aggregation_kernel import valued_cell_sums

    energy, quality, event, group, n_codes, _ = case
    energy = energy.astype(float)
    energised = (event >= 0) & data.draw(st.sampled_from([True, False])) | (event >= 0) & (event % 2 == 0)
    codes = np.where(event >= 0, group[event], -1)
    energy_by, cells_by, energised_energy = valued_cell_sums(energy, quality, energised, codes, n_codes,
                                                             Q["MISSING"])
    n_t = quality.shape[1]
    valued = energised & (quality != Q["MISSING"])
    cell_bin = (codes.astype(np.int64) * n_t + np.arange(n_t))[valued]
    size = n_codes * n_t
    np.testing.assert_array_equal(  # the same additions in the same order: equal to the bit
        energy_by, np.bincount(cell_bin, weights=energy[valued], minlength=size).reshape(n_codes, n_t))
    np.testing.assert_array_equal(cells_by, np.bincount(cell_bin, minlength=size).reshape(n_codes, n_t))
    assert energised_energy == pytest.approx(np.where(energised & np.isfinite(energy), energy, 0.0).sum(),
                                             rel=1e-12, abs=1e-12)


def test_a_valued_cell_without_a_code_is_refused():
    from tomlib.services._aggregation_kernel import valued_cell_sums

    ones = np.ones((2, 3))
    codes = np.array([[0, 0, 0], [0, -1, 0]])
    with pytest.raises(ValueError, match=r"row 1, period 1\) has no code"):
        valued_cell_sums(ones, np.full((2, 3), Q["A"], np.uint8), ones > 0, codes, 1, Q["MISSING"])
