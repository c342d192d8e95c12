"""HH validation rules (tomlib.services.validation): each rule on small hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib.services import validation as v
from tomlib.services.base import REJECTED_COLUMNS

CODE = {r: i for i, r in enumerate(v.HH_REASONS)}


def _day(n_periods=48, level=0.3):
    return np.full(n_periods, level)


def test_negative_values_refused_for_import_and_export():
    e = np.array([[0.2, -0.1, 0.3], [0.0, -2.0, 0.5]])
    reason = v.validate_hh(e, max_energy=[10.0, 10.0], zero_run_rows=False)
    assert v.hh_reason_label(reason[:, 1]).tolist() == ["negative_value", "negative_value"]
    assert (reason[:, [0, 2]] == 0).all()


def test_above_physical_maximum():
    mx = v.physical_maximum(["W", "W"], ["AI", "AE"], capacity_kw=[0.0, 4.0])
    # whole current 69 kW -> 34.5 kWh per half hour; 4 kWp export x 1.2 -> 2.4 kWh
    assert mx == pytest.approx([34.5, 2.4])
    e = np.array([[34.5, 34.6], [2.4, 2.5]])
    reason = v.validate_hh(e, max_energy=mx, zero_run_rows=False)
    assert v.hh_reason_label(reason).tolist() == [["", "above_maximum"], ["", "above_maximum"]]


def test_physical_maximum_unknown_connection_type_names_it():
    with pytest.raises(ValueError, match=r"connection type\(s\) \['X'\]"):
        v.physical_maximum(["X"], ["AI"])


def test_consumption_while_de_energised():
    e = np.array([[0.0, 0.1, 0.0]])
    reason = v.validate_hh(e, max_energy=10.0, zero_run_rows=False, energised=[[True, False, False]])
    assert v.hh_reason_label(reason[0]).tolist() == ["", "de_energised", ""]


def test_zero_run_on_a_meter_that_always_consumes():
    e = _day(48)[None, :].copy()
    e[0, 10:14] = 0.0  # 4 zeros: suspicious
    e2 = _day(48)[None, :].copy()
    e2[0, 10:13] = 0.0  # 3 zeros: below the minimum run
    reason = v.validate_hh(np.vstack([e, e2]), max_energy=10.0, zero_run_rows=True, min_zero_run=4)
    assert (v.hh_reason_label(reason[0, 10:14]) == "zero_run").all()
    assert (reason[0, :10] == 0).all() and (reason[0, 14:] == 0).all()
    assert (reason[1] == 0).all()


def test_zero_run_not_flagged_where_zeros_are_normal_or_not_checked():
    often_zero = _day(48)[None, :].copy()
    often_zero[0, ::3] = 0.0  # a third of the values are zero: a meter whose data are often zero
    often_zero[0, 20:26] = 0.0
    export = np.zeros((1, 48))  # export at night
    reason = v.validate_hh(np.vstack([often_zero, export]), max_energy=10.0, zero_run_rows=[True, False])
    assert (reason == 0).all()


def test_gap_breaks_a_zero_run_and_gaps_are_not_refused():
    e = _day(48)[None, :].copy()
    e[0, 10:12] = 0.0
    e[0, 12] = np.nan
    e[0, 13:15] = 0.0
    reason = v.validate_hh(e, max_energy=10.0, zero_run_rows=True, min_zero_run=4)
    assert (reason == 0).all()


def test_zero_run_rule_on_the_46_and_50_period_days():
    for day in ("2026-03-29", "2026-10-25"):
        n = cal.periods_in_day(pd.Timestamp(day))
        e = _day(n)[None, :].copy()
        e[0, n - 6:] = 0.0  # the run ends with the day
        reason = v.validate_hh(e, max_energy=10.0, zero_run_rows=True)
        assert (v.hh_reason_label(reason[0, n - 6:]) == "zero_run").all(), day
        assert (reason[0, : n - 6] == 0).all()


def test_first_failing_rule_wins():
    e = np.array([[-1.0, 50.0]])
    reason = v.validate_hh(e, max_energy=34.5, zero_run_rows=True, energised=[[False, False]])
    assert v.hh_reason_label(reason[0]).tolist() == ["negative_value", "above_maximum"]


def test_duplicates_same_and_different_values():
    dups = pd.DataFrame({"energy": [0.5, 0.7], "available_at": pd.to_datetime(["2026-03-25", "2026-03-25"])})
    why, kill = v.screen_duplicates(dups, [0.5, 0.4])
    assert why.tolist() == ["duplicate", "conflicting_duplicate"]
    assert not kill.any()
    why, kill = v.screen_duplicates(dups, [0.5, 0.4], keep="neither")
    assert kill.tolist() == [False, True]
    with pytest.raises(ValueError, match="keep"):
        v.screen_duplicates(dups, [0.5, 0.4], keep="last")


def test_rejected_rows_one_per_refused_value():
    e = np.array([[0.2, -0.1], [99.0, 0.3]])
    reason = v.validate_hh(e, max_energy=34.5, zero_run_rows=False)
    times = pd.date_range("2026-03-29", periods=2, freq="30min").to_numpy()
    rej = v.rejected_hh(reason, e, ["1000000000001", "1000000000002"], times)
    assert list(rej.columns[: len(REJECTED_COLUMNS)]) == list(REJECTED_COLUMNS)
    assert len(rej) == 2 == int((reason > 0).sum())
    assert set(rej["reason"]) == {"negative_value", "above_maximum"}
    assert rej.loc[rej["reason"] == "negative_value", "value"].item() == "-0.1"


def test_validate_hh_shape_errors():
    with pytest.raises(ValueError, match="2-D"):
        v.validate_hh(np.zeros(3), max_energy=1.0)
    with pytest.raises(ValueError, match="max_energy"):
        v.validate_hh(np.zeros((1, 3)), max_energy=np.nan)


def _zero_runs_by_labels(e, check, min_zero_run, max_zero_share):
    """The rule written out with validation._runs (labels over every cell), as zero_runs had it."""
    zero = (e == 0) & np.broadcast_to(np.asarray(check, bool).reshape(e.shape[0], -1), e.shape)
    run_id, length = v._runs(zero)
    if length.size == 0:
        return np.zeros(e.shape, dtype=bool)
    n_values, n_zero = np.isfinite(e).sum(axis=1), (e == 0).sum(axis=1)
    row_of_run = np.zeros(length.size, dtype=np.int64)
    cells = run_id >= 0
    row_of_run[run_id[cells]] = np.nonzero(cells)[0]
    share = (n_zero[row_of_run] - length) / np.maximum(n_values[row_of_run] - length, 1)
    return cells & ((length >= min_zero_run) & (share < max_zero_share))[np.maximum(run_id, 0)]


def test_zero_runs_on_the_zero_cells_alone_as_on_every_cell():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, t = rng.integers(1, 12), rng.integers(1, 30)
        e = rng.random((n, t))
        e[rng.random((n, t)) < rng.random()] = 0.0
        e[rng.random((n, t)) < 0.1] = np.nan
        check = rng.random(n) < 0.8
        for min_run, share in ((2, 0.5), (4, 0.01), (3, 1.0)):
            assert np.array_equal(v.zero_runs(e, check, min_run, share), _zero_runs_by_labels(e, check, min_run, share))


def _validate_hh_by_masks(e, max_energy, zero_run_rows, energised, min_zero_run, max_zero_share):
    """validate_hh as the masked NumPy passes had it (before the compiled pass)."""
    shape = e.shape
    mx = np.broadcast_to(np.asarray(max_energy, float).reshape(shape[0], -1), shape)
    on = None if energised is None else np.broadcast_to(np.asarray(energised, bool).reshape(shape[0], -1), shape)
    has = np.isfinite(e)
    reason = np.zeros(shape, dtype=np.uint8)

    def flag(mask, why):
        np.copyto(reason, np.uint8(CODE[why]), where=mask & has & (reason == 0))

    with np.errstate(invalid="ignore"):
        flag(e < 0, "negative_value")
        flag(e > mx, "above_maximum")
        if on is not None:
            flag(~on & (e > 0), "de_energised")
    clean = np.where(reason == 0, e, np.nan)
    checked = np.broadcast_to(np.asarray(zero_run_rows, bool).reshape(shape[0], -1), shape)
    if on is not None:
        checked = checked & on
    flag(v.zero_runs(clean, checked, min_zero_run, max_zero_share), "zero_run")
    return reason


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 8), st.integers(1, 60), st.integers(0, 2**32 - 1), st.booleans(), st.booleans(),
       st.integers(1, 6), st.sampled_from([0.0, 0.01, 0.2, 1.0]))
def test_validate_hh_compiled_equals_the_masked_passes(n, t, seed, with_energised, per_cell, min_run, share):
    rng = np.random.default_rng(seed)
    e = rng.random((n, t))
    e[rng.random((n, t)) < rng.random()] = 0.0
    e[rng.random((n, t)) < 0.1] = np.nan
    e[rng.random((n, t)) < 0.05] = -0.2
    e[rng.random((n, t)) < 0.03] = np.inf
    e[rng.random((n, t)) < 0.05] = 5.0
    mx = rng.choice([0.9, 2.0, 10.0], size=(n, t) if per_cell else n)
    rows = rng.random((n, t) if per_cell else n) < 0.8
    on = (rng.random((n, t) if per_cell else n) < 0.9) if with_energised else None
    got = v.validate_hh(e, max_energy=mx, zero_run_rows=rows, energised=on, min_zero_run=min_run,
                        max_zero_share=share)
    assert got.dtype == np.uint8
    assert np.array_equal(got, _validate_hh_by_masks(e, mx, rows, on, min_run, share))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(1, 50), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 0.01, 0.5, 1.0]))
def test_refused_cells_are_numpy_nonzero(m, n_t, seed, share):
    rng = np.random.default_rng(seed)
    reason = np.where(rng.random((m, n_t)) < share, rng.integers(1, 6, (m, n_t)), 0).astype(np.uint8)
    for r in (reason, reason.astype(np.int64), np.asfortranarray(reason)):
        i, j = v._refused_cells(r)
        want_i, want_j = np.nonzero(r > 0)
        assert i.tolist() == want_i.tolist() and j.tolist() == want_j.tolist()
