"""Load shapes and estimation steps of the smart processing service, on hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib.services import processing_estimation as pe


def _standing(n, gsp="_C", domestic=True, mq="AI"):
    return pd.DataFrame({"gsp_group": gsp, "connection_type": "W", "market_segment": "S", "domestic": domestic,
                         "measurement_quantity": mq}, index=range(n))


def test_category_labels():
    st_ = pd.concat([_standing(1), _standing(1, "_P", False, "AE")], ignore_index=True)
    assert pe.category_labels(st_).tolist() == ["_C|W|S|D|AI", "_P|W|S|N|AE"]


def test_shape_advance_golden_case_of_the_domain_notes():
    # mhhs-domain.md §5: advance 10 kWh over LS [0.1, 0.3, 0.6] -> [1, 3, 6]
    assert pe.shape_advance(10.0, [0.1, 0.3, 0.6]) == pytest.approx([1.0, 3.0, 6.0])


def test_shape_advance_flat_when_the_shape_is_zero():
    assert pe.shape_advance(6.0, [0.0, 0.0, 0.0]) == pytest.approx([2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="no periods"):
        pe.shape_advance(1.0, [])


@settings(max_examples=60, deadline=None)
@given(advance=st.floats(0, 1e5), weights=st.lists(st.floats(0, 10), min_size=1, max_size=60))
def test_shaping_conserves_energy(advance, weights):
    out = pe.shape_advance(advance, weights)
    assert out.sum() == pytest.approx(advance, rel=1e-9, abs=1e-9)
    assert (out >= 0).all()


def test_interim_shape_is_the_mean_of_actual_data_only():
    # mhhs-domain.md §5: three actual MPANs 0.2, 0.3, 0.4 and one estimated 0.9 -> LS = 0.3
    times = cal.time_axis("2026-03-23", "2026-03-23")
    e = np.array([[0.2], [0.3], [0.4], [0.9]]) * np.ones((1, len(times)))
    valid = np.array([True, True, True, False])[:, None] * np.ones((1, len(times)), dtype=bool)
    cat = np.full(4, "_C|W|S|D|AI")
    ls = pe.interim_load_shapes(e, valid, cat, times, np.full(4, 3000.0), min_mpans=3)
    assert ls.sel(category="_C|W|S|D|AI").values == pytest.approx(0.3)
    assert not ls["default_shape"].any()
    assert "interim" in ls.attrs["source"]
    assert ls["annual_total"].values == pytest.approx(3000.0)


def test_interim_shape_falls_back_to_the_national_category_then_to_a_profile():
    times = cal.time_axis("2026-03-28", "2026-03-29")  # a 48- and the 46-period day
    n_t = len(times)
    cat = np.array(["_C|W|S|D|AI"] * 3 + ["_P|W|S|D|AI"] + ["_P|W|S|N|AI"])
    e = np.full((5, n_t), 0.25)
    valid = np.ones((5, n_t), dtype=bool)
    valid[4] = False  # no actual data at all for the non-domestic category
    ls = pe.interim_load_shapes(e, valid, cat, times, np.full(5, 2000.0), min_mpans=3)
    assert (ls["shape_source"].sel(category="_C|W|S|D|AI") == 0).all()
    assert (ls["shape_source"].sel(category="_P|W|S|D|AI") == 1).all()  # national: 4 MPANs
    assert (ls["shape_source"].sel(category="_P|W|S|N|AI") == 3).all()  # profile class 3
    assert ls["default_shape"].sel(category="_P|W|S|N|AI").all()
    assert ls.sizes["time"] == 94 and np.isfinite(ls.values).all()


def test_shape_ratio_is_shape_over_annual_total():
    times = cal.time_axis("2026-03-23", "2026-03-23")
    e = np.full((3, len(times)), 0.2)
    valid = np.ones_like(e, dtype=bool)
    cat = np.full(3, "_C|W|S|D|AI")
    ls = pe.interim_load_shapes(e, valid, cat, times, np.array([1000.0, 2000.0, 3000.0]), min_mpans=1)
    r = pe.shape_ratio(ls, cat, times)
    assert r == pytest.approx(np.full((3, len(times)), 0.2 / 2000.0))
    no_total = ls.drop_vars("annual_total")
    assert pe.shape_ratio(no_total, cat, times, e, valid, [1000.0, 2000.0, 3000.0]) == pytest.approx(r)
    with pytest.raises(ValueError, match="lack category"):
        pe.shape_ratio(ls, ["_Z|W|S|D|AI"], times)


def test_shaped_spans_subtract_known_energy_and_respect_the_register():
    # one meter, two registers (alternate periods), 6 periods; the span covers all of them
    active = np.array([[True, False] * 3, [False, True] * 3])
    ratio = np.tile([1.0, 2.0, 1.0, 2.0, 1.0, 2.0], (2, 1))
    known = np.full((2, 6), np.nan)
    known[0, 0] = 1.5  # register 1 has an actual value in period 0
    spans = pd.DataFrame({"register": [0, 1], "b1": [0, 0], "b2": [6, 6], "advance": [3.5, 6.0],
                          "remote": [False, False]})
    values, out, cell = pe.shaped_spans(spans, ratio, active, known)
    assert out["status"].tolist() == ["shaped", "shaped"]
    # register 1: 3.5 - 1.5 = 2 over periods 2 and 4 (equal shape)
    assert values[0].tolist()[2] == pytest.approx(1.0) and values[0].tolist()[4] == pytest.approx(1.0)
    assert np.isnan(values[0, [0, 1, 3, 5]]).all()
    # register 2: 6 over periods 1, 3, 5
    assert np.nansum(values[1]) == pytest.approx(6.0) and np.isnan(values[1, [0, 2, 4]]).all()
    assert cell[1, 1] == 1 and cell[0, 0] == -1


def test_shaped_spans_inconsistent_and_resolution():
    active = np.ones((1, 4), dtype=bool)
    known = np.array([[2.0, 2.0, np.nan, np.nan]])
    base = pd.DataFrame({"register": [0], "b1": [0], "b2": [4], "remote": [False]})
    # advance 3.4 < known 4: within the 1 kWh register resolution -> remainder 0
    _, out, _ = pe.shaped_spans(base.assign(advance=3.4), np.ones((1, 4)), active, known)
    assert out["status"].item() == "shaped" and out["remainder"].item() == 0.0
    values, out, _ = pe.shaped_spans(base.assign(advance=2.0), np.ones((1, 4)), active, known)
    assert out["status"].item() == "inconsistent" and np.isnan(values).all()


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_shaped_spans_conserve_the_remainder(data):
    n_t = data.draw(st.integers(2, 30))
    cut = sorted(set(data.draw(st.lists(st.integers(0, n_t), min_size=2, max_size=5))))
    if len(cut) < 2:
        cut = [0, n_t]
    ratio = np.array([data.draw(st.lists(st.floats(0, 5), min_size=n_t, max_size=n_t))])
    active = np.array([data.draw(st.lists(st.booleans(), min_size=n_t, max_size=n_t))])
    known = np.where(np.array([data.draw(st.lists(st.booleans(), min_size=n_t, max_size=n_t))]), 0.1, np.nan)
    adv = data.draw(st.lists(st.floats(0, 100), min_size=len(cut) - 1, max_size=len(cut) - 1))
    spans = pd.DataFrame({"register": 0, "b1": cut[:-1], "b2": cut[1:], "advance": adv, "remote": False})
    values, out, cell = pe.shaped_spans(spans, ratio, active, known, resolution_kwh=0.0)
    for i, row in out.iterrows():
        sel = cell[0] == i
        if row["status"] == "shaped":
            assert values[0, sel].sum() == pytest.approx(row["remainder"], rel=1e-9, abs=1e-9)
            assert (values[0, sel] >= 0).all()
            known_in = np.nansum(np.where(active[0], known[0], np.nan)[row["b1"]:row["b2"]])
            assert row["remainder"] == pytest.approx(row["advance"] - known_in)
        else:
            assert not sel.any()


def test_span_of_cells():
    cell = pe.span_of_cells(np.array([0, 0, 1]), np.array([0, 3, 1]), np.array([3, 5, 2]), 2, 6)
    assert cell.tolist() == [[0, 0, 0, 1, 1, -1], [-1, 2, -1, -1, -1, -1]]


def test_read_rate_history_uses_the_nearest_earlier_span():
    # a 4-day span advancing 40 kWh over a flat shape, then nothing: 10 kWh per day afterwards
    n_t = 6 * 48
    ratio = np.full((1, n_t), 1.0 / (365 * 48))
    active = np.ones((1, n_t), dtype=bool)
    spans = pd.DataFrame({"register": [0], "b1": [0], "b2": [4 * 48], "advance": [40.0], "remote": [False]})
    _, out, _ = pe.shaped_spans(spans, ratio, active, np.full((1, n_t), np.nan))
    fill = np.zeros((1, n_t), dtype=bool)
    fill[0, 4 * 48:] = True
    days = np.arange(n_t + 1) / 48
    est = pe.read_rate_history(out, ratio, active, fill, days, min_span_days=3)
    assert est[0, 4 * 48:].sum() == pytest.approx(20.0)
    assert np.isnan(est[0, : 4 * 48]).all()
    assert np.isnan(pe.read_rate_history(out, ratio, active, fill, days, min_span_days=5)).all()


def test_hh_history_same_day_type_on_46_and_50_period_days():
    for first, last in (("2026-03-21", "2026-03-29"), ("2026-10-17", "2026-10-25")):
        times = cal.time_axis(first, last)  # Sat .. Sun; the last Sunday has 46 / 50 periods
        k = cal.local_clock_index(times)
        e = (0.1 + 0.01 * k)[None, :].repeat(2, axis=0)
        dates, _ = cal.from_utc(times)
        valid = np.ones(e.shape, dtype=bool)
        valid[:, dates == pd.Timestamp(last)] = False  # the clock-change Sunday is missing
        est = pe.hh_history(e, valid, times, ["england_wales", "scotland"])
        miss = dates == pd.Timestamp(last)
        # the Sunday before has the same local half hours: the estimate is the same clock profile
        assert est[:, miss] == pytest.approx(e[:, miss])
        assert miss.sum() == cal.periods_in_day(pd.Timestamp(last))


def test_hh_history_needs_same_day_type():
    times = cal.time_axis("2026-03-23", "2026-03-28")  # Mon .. Sat
    e = np.ones((1, len(times)))
    valid = np.ones(e.shape, dtype=bool)
    dates, _ = cal.from_utc(times)
    valid[0, dates == pd.Timestamp("2026-03-28")] = False
    est = pe.hh_history(e, valid, times, ["england_wales"])
    assert np.isnan(est[0, dates == pd.Timestamp("2026-03-28")]).all()  # no other Saturday
    assert (est[0, dates == pd.Timestamp("2026-03-23")] == 1.0).all()


def test_per_mpan_puts_disjoint_registers_together():
    v = np.array([[1.0, np.nan, 3.0], [np.nan, 2.0, np.nan], [5.0, 5.0, np.nan]])
    out = pe.per_mpan(v, np.array([0, 0, 1]), 3)
    assert np.array_equal(out, np.array([[1.0, 2.0, 3.0], [5.0, 5.0, np.nan], [np.nan] * 3]), equal_nan=True)


def test_group_sum_is_exact():
    cats, sums = pe.group_sum(np.array(["b", "a", "b"]), np.array([[1.0], [2.0], [3.0]]))
    assert cats.tolist() == ["a", "b"] and sums.ravel().tolist() == [2.0, 4.0]


def test_expected_energy_uses_the_meters_own_hh_data_where_valid():
    ratio = np.full((1, 4), 0.001)
    active = np.array([[True, True, True, False]])
    known = np.array([[5.0, np.nan, 7.0, 9.0]])
    cum = pe.expected_cumulative(ratio, active, [1000.0], known)
    # 5 (HH) + 1 (AC x r) + 7 (HH); the inactive period counts nothing
    assert cum[0].tolist() == pytest.approx([0.0, 5.0, 6.0, 13.0, 13.0])
    assert pe.expected_cumulative(ratio, active, [1000.0])[0, -1] == pytest.approx(3.0)


def test_label_codes_are_numpys_unique_and_inverse():
    lab = np.array(["_P|W|S|D|AI", "_C|W|S|N|AE", "_P|W|S|D|AI", "é|W", "_C|W|S|N|AE"])
    for labels in (lab, lab[:3]):  # with a non-ASCII label (coded by np.unique) and without
        cats, codes = pe._label_codes(labels)
        ref_cats, ref_codes = np.unique(labels, return_inverse=True)
        assert cats.tolist() == ref_cats.tolist() and codes.tolist() == ref_codes.ravel().tolist()


def test_column_major_copy_sums_as_the_row_major_array():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2500, 7)) * 10.0 ** rng.integers(-6, 6, (2500, 7))
    f = pe.column_major(a, rows_per_block=64)
    assert f.flags.f_contiguous and np.array_equal(f, a)
    starts = np.array([0, 5, 1300])
    assert np.array_equal(np.add.reduceat(f, starts, axis=0), np.add.reduceat(a, starts, axis=0))
    assert pe.column_major(f) is f


def test_mean_by_category_and_national_sums():
    rng = np.random.default_rng(1)
    n, t = 300, 5
    lab = rng.choice(np.array(["_A|W|S|D|AI", "_A|W|S|N|AI", "_B|W|S|D|AI"]), n)
    e = rng.random((n, t))
    ok = rng.random((n, t)) < 0.7
    ac = rng.random(n) * 4000
    cats, mean, cnt, w = pe._mean_by(lab, e, ok, ac)
    for i, c in enumerate(cats):  # the sums np.add.reduceat gives over each label's rows, in row order
        rows = np.flatnonzero(lab == c)
        assert np.array_equal(cnt[i], ok[rows].sum(axis=0).astype(float))
        assert np.array_equal(mean[i], np.add.reduceat(np.where(ok[rows], e[rows], 0.0), [0], axis=0)[0] / cnt[i])
        assert np.array_equal(w[i], np.add.reduceat(np.where(ok[rows], ac[rows, None], 0.0), [0], axis=0)[0] / cnt[i])


def test_category_labels_of_many_rows_keep_numpys_width():
    st_ = pd.concat([_standing(3), _standing(2, "_P", False, "AE"), _standing(1, "_C", False, "AI")],
                    ignore_index=True)
    ref = np.char.add(np.char.add(st_["gsp_group"].to_numpy().astype(str), "|"), "W|S|")
    ref = np.char.add(np.char.add(ref, np.where(st_["domestic"].to_numpy(dtype=bool), "D", "N")), "|")
    ref = np.char.add(ref, st_["measurement_quantity"].to_numpy().astype(str))
    got = pe.category_labels(st_)
    assert got.dtype == ref.dtype and got.tolist() == ref.tolist()


def test_one_day_without_repeats():
    assert pe.one_day_without_repeats(cal.time_axis(pd.Timestamp("2026-03-23"), pd.Timestamp("2026-03-23")))
    assert pe.one_day_without_repeats(cal.time_axis(pd.Timestamp("2026-03-29"), pd.Timestamp("2026-03-29")))
    assert not pe.one_day_without_repeats(cal.time_axis(pd.Timestamp("2026-10-25"), pd.Timestamp("2026-10-25")))
    assert not pe.one_day_without_repeats(cal.time_axis(pd.Timestamp("2026-03-23"), pd.Timestamp("2026-03-24")))


def _bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.int64)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_masked_group_sums_are_numpys_reduceat_bit_for_bit(n, t, groups, seed):
    from tomlib.services._processing_kernel import masked_group_sums

    rng = np.random.default_rng(seed)
    groups = min(groups, n)
    values = rng.lognormal(0, 2, (n, t)) * rng.choice([1.0, -1.0, 0.0, -0.0], (n, t))
    ok = rng.random((n, t)) < 0.8
    values[~ok & (rng.random((n, t)) < 0.5)] = np.nan  # a cell that does not count may be anything
    weights = rng.lognormal(8, 1, n)
    codes = np.concatenate([np.arange(groups), rng.integers(0, groups, n - groups)])
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(groups))
    total, total_w, count = masked_group_sums(values, ok, weights, order, starts)
    # the NumPy formulation it replaces: reduceat down column-major copies
    ref = np.add.reduceat(np.asfortranarray(np.where(ok, values, 0.0)[order]), starts, axis=0)
    ref_w = np.add.reduceat(np.asfortranarray(np.where(ok, weights[:, None], 0.0)[order]), starts, axis=0)
    ends = np.append(starts[1:], n)
    assert np.array_equal(_bits(total), _bits(ref)) and np.array_equal(_bits(total_w), _bits(ref_w))
    assert np.array_equal(count, np.stack([ok[order][a:b].sum(axis=0) for a, b in zip(starts, ends)]))


def test_masked_group_sums_of_long_groups_and_signed_zeros():
    from tomlib.services._processing_kernel import masked_group_sums

    rng = np.random.default_rng(7)
    n, t = 50_000, 3  # groups long enough for several levels of pairwise halving
    values = rng.lognormal(0, 1, (n, t))
    values[:300] = -0.0
    ok = rng.random((n, t)) < 0.9
    codes = (rng.random(n) < 0.3).astype(np.int64)
    codes[:200] = 2  # a group of -0.0 only: numpy keeps the sign
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(3))
    counts = ok | (codes == 2)[:, None]
    total, _, _ = masked_group_sums(values, counts, np.ones(n), order, starts)
    x = np.where(counts, values, 0.0)
    ref = np.add.reduceat(np.asfortranarray(x[order]), starts, axis=0)
    assert np.array_equal(_bits(total), _bits(ref))
    with pytest.raises(ValueError, match="every group"):
        masked_group_sums(values, ok, np.ones(n), order, np.array([0, 0]))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_label_energy_sums_are_numpys_masked_sums_bit_for_bit(n, t, seed):
    from tomlib.services._processing_kernel import label_energy_sums

    rng = np.random.default_rng(seed)
    codes = [1, 2, 5, 9, 255]
    energy = np.asfortranarray(rng.lognormal(0, 2, (n, t)) * rng.choice([1.0, -1.0, 0.0, -0.0], (n, t)))
    energy[rng.random((n, t)) < 0.1] = np.nan
    quality = np.asfortranarray(rng.choice(np.array([1, 2, 5, 7], dtype=np.uint8), (n, t)))
    counts, sums = label_energy_sums(energy, quality, codes)
    e0 = np.where(np.isnan(energy), 0.0, energy)
    for code, got in zip(codes, sums):  # the sum the service took: of a column-major masked copy
        assert _bits(got) == _bits(np.sum(np.where(quality == code, e0, 0.0)))
    assert np.array_equal(counts, np.bincount(quality.ravel(), minlength=256))


def test_label_energy_sums_of_a_block_sized_array():
    from tomlib.services._processing_kernel import label_energy_sums

    rng = np.random.default_rng(3)
    energy = np.asfortranarray(rng.lognormal(-1, 1, (20_011, 48)))
    quality = np.asfortranarray(rng.choice(np.array([1, 2], dtype=np.uint8), energy.shape, p=[0.97, 0.03]))
    _, sums = label_energy_sums(energy, quality, [1, 2, 3])
    assert [_bits(s) for s in sums] == [_bits(np.sum(np.where(quality == c, energy, 0.0))) for c in (1, 2, 3)]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 50), st.integers(1, 300), st.booleans(), st.integers(0, 2**32 - 1))
def test_masked_row_sums_are_numpys_row_sums_bit_for_bit(n, t, finite, seed):
    from tomlib.services._processing_kernel import masked_row_sums

    rng = np.random.default_rng(seed)
    values = rng.lognormal(0, 2, (n, t)) * rng.choice([1.0, -1.0, 0.0, -0.0], (n, t))
    valid = rng.random((n, t)) < 0.8
    if finite:  # non-finite values summed as np.nan_to_num makes them
        values[rng.random((n, t)) < 0.05] = rng.choice([np.nan, np.inf, -np.inf])
        with np.errstate(over="ignore"):  # +-max added to a value: +-inf, as the service's sum gives
            ref = np.nan_to_num(np.where(valid, values, 0.0)).sum(axis=1)
    else:  # (NaN only where not valid: a sum holding NaN is NaN, whichever NaN's bits)
        values[~valid & (rng.random((n, t)) < 0.5)] = np.nan
        ref = np.where(valid, values, 0.0).sum(axis=1)
    assert np.array_equal(_bits(masked_row_sums(values, valid, finite=finite)), _bits(ref))


def test_profile_class_ratio_rows_are_their_class_rows_and_the_callers_own():
    times = cal.time_axis(pd.Timestamp("2026-03-28"), pd.Timestamp("2026-03-30"))
    classes = pe.profile_class_ratio([1, 3, 8], times)
    got = pe.profile_class_ratio([8, 1, 1, 3], times)
    assert np.array_equal(got, classes[[2, 0, 0, 1]])
    got[:] = 0.0  # the caller's array: the remembered rows are not changed
    assert np.array_equal(pe.profile_class_ratio([8, 1, 1, 3], times), classes[[2, 0, 0, 1]])
    one_day = pe.profile_class_ratio([1], times[:48])
    assert np.array_equal(one_day, classes[:1, :48])


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(1, 50), st.integers(0, 2**32 - 1))
def test_fill_scaled_rows_is_the_services_fill_of_those_rows(n, t, seed):
    from tomlib.services._processing_kernel import fill_scaled_rows, nan_rows

    rng = np.random.default_rng(seed)
    energy = np.where(rng.random((n, t)) < 0.7, rng.random((n, t)), np.nan)
    quality = rng.integers(0, 3, (n, t)).astype(np.uint8)
    scale = np.where(rng.random(n) < 0.9, rng.lognormal(8, 1, n), np.nan)
    ratio = rng.choice([1e-4, 2e-4, np.inf, np.nan, 0.0], (n, t))
    rows = nan_rows(energy)
    assert rows.tolist() == np.flatnonzero(np.isnan(energy).any(axis=1)).tolist()
    # the NumPy formulation: fill where still NaN and the product is finite, on the rows' copies
    ref_e, ref_q = energy.copy(), quality.copy()
    values = scale[rows, None] * ratio[rows]
    e, q = ref_e[rows], ref_q[rows]
    take = np.isnan(e) & np.isfinite(values)
    np.copyto(e, values, where=take)
    np.copyto(q, np.uint8(9), where=take)
    ref_e[rows], ref_q[rows] = e, q
    still = fill_scaled_rows(energy, quality, rows, scale, ratio, 9)
    assert np.array_equal(_bits(energy), _bits(ref_e)) and np.array_equal(quality, ref_q)
    assert still.tolist() == rows[np.isnan(ref_e[rows]).any(axis=1)].tolist()
    with pytest.raises(ValueError, match="C-contiguous"):
        fill_scaled_rows(np.zeros((3, 4), order="F"), np.zeros((3, 4), np.uint8), np.arange(3), np.ones(3),
                         np.ones((3, 4)), 9)
