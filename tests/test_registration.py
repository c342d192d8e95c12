"""Registration history and the registration in force per MPAN x period as of a run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar, market, reference, scenario
from tomlib import registration as reg

SHORT_DAY = pd.Timestamp("2026-03-29")  # 46 periods
LONG_DAY = pd.Timestamp("2026-10-25")  # 50 periods
BUSY = reg.RegistrationSettings(change_of_supplier_rate=0.3, llfc_change_rate=0.2, deenergisation_rate=0.1,
                                late_notification_share=0.5)


@pytest.fixture(scope="module")
def tiny_market():
    return market.generate(scenario.load_scenario(scenario.default_scenario_path("tiny")))


def _events(rows):
    """rows: (mpan, effective_from, supplier, energised, notified_at)."""
    return pd.DataFrame({
        "mpan": [r[0] for r in rows],
        "effective_from": pd.to_datetime([r[1] for r in rows]).as_unit("ns"),
        "supplier": [r[2] for r in rows], "bm_unit": [f"B{r[2]}" for r in rows], "llfc": "L1",
        "energised": np.array([r[3] for r in rows], dtype=bool),
        "notified_at": pd.to_datetime([r[4] for r in rows]).as_unit("ns"), "change": "test"})


def test_generated_history_is_deterministic_and_consistent(tiny_market):
    ev = reg.generate_events(tiny_market, BUSY)
    again = reg.generate_events(tiny_market, BUSY)
    pd.testing.assert_frame_equal(ev, again)
    assert list(ev.columns) == list(reg.EVENT_COLUMNS)
    meters = tiny_market.meters
    initial = ev[ev["change"] == "initial"]
    assert sorted(initial["mpan"]) == sorted(meters["mpan"].values)
    assert set(ev["change"]) == set(reg.CHANGES)  # busy settings: every kind occurs
    # sorted by mpan order of the market, then effective_from
    assert (ev.groupby("mpan")["effective_from"].apply(lambda s: s.is_monotonic_increasing)).all()
    gsp = pd.Series(meters["gsp_group"].values, index=meters["mpan"].values)
    # BM units follow the supplier within the MPAN's GSP group (market: 2__<letter><supplier>001)
    expected_bmu = "2__" + gsp.reindex(ev["mpan"]).str[1].to_numpy() + ev["supplier"].to_numpy() + "001"
    assert (ev["bm_unit"].to_numpy() == expected_bmu).all()
    # a change of supplier changes the supplier; an LLFC change stays within GSP group, segment, MQ
    prev = ev.groupby("mpan").shift(1)
    cos = ev["change"] == "supplier"
    assert (ev.loc[cos, "supplier"] != prev.loc[cos, "supplier"]).all()
    table = reference.line_loss_factor_classes()
    ch = ev["change"] == "llfc"
    old, new = prev.loc[ch, "llfc"].to_numpy(dtype=str), ev.loc[ch, "llfc"].to_numpy(dtype=str)
    assert (old != new).all()
    for col in ("gsp_group", "market_segment", "measurement_quantity"):
        assert (table.loc[old, col].to_numpy() == table.loc[new, col].to_numpy()).all()
    assert set(new) <= set(tiny_market.line_loss_factors["llfc"].values)
    # late notifications exist and are notified after taking effect
    changes = ev[ev["change"] != "initial"]
    late = changes["notified_at"] > changes["effective_from"]
    assert 0 < late.sum() < len(changes)


def test_default_settings_and_seed_change_the_history(tiny_market):
    quiet = reg.generate_events(tiny_market, reg.RegistrationSettings(0.0, 0.0, 0.0))
    assert (quiet["change"] == "initial").all() and quiet["energised"].all()
    a = reg.generate_events(tiny_market, BUSY, seed=1)
    b = reg.generate_events(tiny_market, BUSY, seed=2)
    assert not a.equals(b)


def test_late_change_is_seen_only_after_notification():
    times = calendar.period_starts(SHORT_DAY)
    ev = _events([("1", times[0], "OLD", True, times[0] - pd.Timedelta(days=30)),
                  ("1", times[10], "NEW", True, SHORT_DAY + pd.Timedelta(days=8))])
    before = reg.in_force(ev, ["1"], times, as_of=SHORT_DAY + pd.Timedelta(days=7))
    after = reg.in_force(ev, ["1"], times, as_of=SHORT_DAY + pd.Timedelta(days=9))
    truth = reg.in_force(ev, ["1"], times)
    assert set(before.field("supplier")[0]) == {"OLD"}
    assert list(after.field("supplier")[0]) == ["OLD"] * 10 + ["NEW"] * 36
    np.testing.assert_array_equal(after.event, truth.event)


def test_as_of_per_period_and_not_registered_prefix():
    times = calendar.time_axis(LONG_DAY, LONG_DAY + pd.Timedelta(days=1))  # 50 + 48 periods
    ev = _events([("1", times[3], "A", True, times[0]),
                  ("1", times[60], "B", True, LONG_DAY + pd.Timedelta(days=5)),
                  ("2", times[0], "C", True, times[0]),
                  ("2", times[0], "D", False, times[1])])  # same effective time: later notified wins
    as_of = np.where(np.arange(98) < 50, LONG_DAY + pd.Timedelta(days=4), LONG_DAY + pd.Timedelta(days=6))
    force = reg.in_force(ev, ["1", "2", "3"], times, as_of=pd.DatetimeIndex(as_of))
    sup = force.field("supplier")
    assert list(sup[0]) == [""] * 3 + ["A"] * 57 + ["B"] * 38
    assert set(sup[1]) == {"D"} and not force.energised[1].any() and force.registered[1].all()
    assert not force.registered[2].any()
    ds = force.to_dataset()
    assert ds.sizes == {"mpan": 3, "time": 98}
    with pytest.raises(ValueError, match="non-decreasing"):
        reg.in_force(ev, ["1"], times, as_of=pd.DatetimeIndex(as_of[::-1]))
    with pytest.raises(ValueError, match="one per period"):
        reg.in_force(ev, ["1"], times, as_of=pd.DatetimeIndex(as_of[:5]))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_in_force_equals_the_definition(data):
    """Vectorised in_force == per-cell definition (latest effective visible event)."""
    times = calendar.period_starts(data.draw(st.sampled_from([SHORT_DAY, LONG_DAY])))[:8]
    t0 = times[0]
    n = data.draw(st.integers(1, 12))
    rows = []
    for _ in range(n):  # a dozen events in a test
        rows.append((data.draw(st.sampled_from(["1", "2", "3"])),
                     t0 + pd.Timedelta(minutes=30) * data.draw(st.integers(-2, 9)),
                     data.draw(st.sampled_from(["A", "B", "C"])), data.draw(st.booleans()),
                     t0 + pd.Timedelta(hours=1) * data.draw(st.integers(-2, 6))))
    ev = _events(rows)
    as_of = t0 + pd.Timedelta(hours=1) * data.draw(st.integers(-1, 7)) if data.draw(st.booleans()) else None
    force = reg.in_force(ev, ["1", "2", "3", "4"], times, as_of=as_of)
    got = force.field("supplier")
    for i, m in enumerate(["1", "2", "3", "4"]):
        for j, t in enumerate(times):
            ok = ev[(ev["mpan"] == m) & (ev["effective_from"] <= t)
                    & ((ev["notified_at"] <= as_of) if as_of is not None else True)]
            if ok.empty:
                assert got[i, j] == ""
            else:
                # latest effective; ties -> latest notified; full ties -> the later row
                best = ok.sort_values(["effective_from", "notified_at"], kind="stable").iloc[-1]
                assert got[i, j] == best["supplier"]
                assert force.energised[i, j] == best["energised"]


def test_event_validation():
    times = calendar.period_starts(SHORT_DAY)
    ev = _events([("1", times[0] + pd.Timedelta(minutes=10), "A", True, times[0])])
    with pytest.raises(ValueError, match="effective_from must be a settlement period start"):
        reg.in_force(ev, ["1"], times)
    ev = _events([("1", times[0], "A", True, times[0])])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['llfc'\]"):
        reg.in_force(ev.drop(columns="llfc"), ["1"], times)
    bad = ev.copy()
    bad["supplier"] = None
    with pytest.raises(ValueError, match="column supplier is empty in row 0"):
        reg.in_force(bad, ["1"], times)


def test_settings_validation():
    with pytest.raises(ValueError, match="late_notification_share must be within"):
        reg.RegistrationSettings(late_notification_share=1.5)
    with pytest.raises(ValueError, match="must be a finite number >= 0"):
        reg.RegistrationSettings(notice_days=-1)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['switch_rate'\]"):
        reg.RegistrationSettings.from_mapping({"switch_rate": 0.1})
    s = reg.RegistrationSettings.from_mapping({"change_of_supplier_rate": 0.01})
    assert s.change_of_supplier_rate == 0.01 and s.llfc_change_rate == reg.RegistrationSettings().llfc_change_rate
    assert reg.RegistrationSettings.from_scenario(object()) == reg.RegistrationSettings()


@pytest.mark.parametrize("bm_unit", [["B1", "B1", "B2", "B3", "B3"], ["B1", "B2", "B2", "B3", "B3"]])
def test_bm_unit_of_equals_the_groupby_of_every_row(bm_unit):
    """Grouping the distinct (GSP group, supplier, BM unit) triples gives the per-row mode of the
    BM unit (one BM unit per pair); a pair with several BM units falls back to every row."""
    gsp = np.array(["_A", "_A", "_A", "_B", "_B"])
    supplier = np.array(["S1", "S1", "S2", "S1", "S1"])
    bm_unit = np.asarray(bm_unit)
    direct = pd.DataFrame({"gsp": gsp, "supplier": supplier, "bm_unit": bm_unit}).groupby(
        ["gsp", "supplier"])["bm_unit"].agg(lambda x: x.value_counts().index[0])
    pd.testing.assert_series_equal(reg._bm_unit_of(gsp, supplier, bm_unit), direct)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["", "ALFA", "é", "2__AALFA001", "x"]), max_size=12), st.integers(0, 3),
       st.booleans())
def test_empty_text_matches_string_lengths(values, cut, large):
    import pyarrow as pa

    arr = pa.array(values, type=pa.large_string() if large else pa.string())[cut:]
    column = pd.Series(pd.arrays.ArrowStringArray(arr))
    expect = (column.astype(str).str.len() == 0).to_numpy(dtype=bool)
    np.testing.assert_array_equal(reg._empty_text(column), expect)
    np.testing.assert_array_equal(reg._empty_text(pd.Series(np.asarray(arr.to_pylist(), dtype=object))), expect)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 6), st.integers(1, 7), st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6)), max_size=25))
def test_latest_event_grid_kernel_matches_numpy(n_mpan, n_time, cells):
    from tomlib._registration_kernel import latest_event_grid

    cells = [(r, p) for r, p in cells if r < n_mpan and p < n_time]
    row = np.array([c[0] for c in cells], dtype=np.int64)
    place = np.array([c[1] for c in cells], dtype=np.int64)
    event = np.arange(row.size)
    expect = np.full(n_mpan * n_time, -1, dtype=np.int32)
    np.maximum.at(expect, row * n_time + place, event.astype(np.int32))
    expect = np.maximum.accumulate(expect.reshape(n_mpan, n_time), axis=1)
    got = latest_event_grid(row, place, event, n_mpan, n_time)
    assert got.dtype == np.int32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, expect)
