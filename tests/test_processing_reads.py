"""Register-read checks of the smart processing service (tomlib.services.processing_reads)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib.services.processing_reads import ReadRules, advance, validate_reads


def _expected(per_boundary: float, n_boundaries: int, n_registers: int = 1) -> np.ndarray:
    """Cumulative expected energy growing by ``per_boundary`` kWh per period."""
    return np.tile(np.arange(n_boundaries, dtype=float) * per_boundary, (n_registers, 1))


def _validate(values, boundaries, *, digits=5, deemed=None, per_period=0.25, n_b=500, rules=None, register=None):
    n = len(values)
    return validate_reads(
        np.zeros(n, dtype=int) if register is None else register, boundaries, values, np.full(n, digits),
        np.zeros(n, dtype=bool) if deemed is None else deemed, np.zeros(n, dtype=bool),
        _expected(per_period, n_b, 1 if register is None else int(max(register)) + 1), rules)


def test_advance_and_rollover_given_the_digits():
    adv, rolled = advance([99_990.0, 100.0, 999_990.0], [12.0, 130.0, 5.0], [5, 5, 6])
    assert adv.tolist() == [22.0, 30.0, 15.0]
    assert rolled.tolist() == [True, False, True]


def test_consecutive_actual_reads_give_spans():
    rv = _validate([1000.0, 1012.0, 1030.0], [0, 48, 96])
    assert (rv.reason == "").all()
    assert rv.spans[["b1", "b2", "advance"]].values.tolist() == [[0, 48, 12.0], [48, 96, 18.0]]
    assert rv.spans["expected"].tolist() == [12.0, 12.0]


def test_rollover_accepted_when_plausible():
    rv = _validate([99_995.0, 7.0], [0, 48])
    assert (rv.reason == "").all()
    assert rv.spans["advance"].item() == 12.0 and rv.spans["rollover"].item()


def test_negative_advance_refused_when_rollover_is_implausible():
    # 1000 -> 900: a rollover would mean 99,900 kWh in a day
    rv = _validate([1000.0, 900.0, 1030.0], [0, 48, 96])
    assert rv.reason.tolist() == ["", "negative_advance", ""]
    assert rv.spans[["b1", "b2", "advance"]].values.tolist() == [[0, 96, 30.0]]


def test_twice_expected_refuses_the_mistyped_read_not_its_neighbours():
    # true 12345 -> 12360 -> 12371; the middle read keyed with transposed digits 21360
    rv = _validate([12345.0, 21360.0, 12371.0, 12390.0], [0, 48, 96, 144])
    assert rv.reason.tolist() == ["", "above_twice_expected", "", ""]
    assert rv.spans["advance"].tolist() == [26.0, 19.0]


def test_transposed_downward_is_a_negative_advance():
    rv = _validate([12345.0, 12360.0, 12306.0, 12390.0], [0, 48, 96, 144])
    # 12306 is below 12360: a rollover of ~99,946 kWh is implausible, the next pair jumps back
    assert rv.reason.tolist() == ["", "", "negative_advance", ""]


def test_last_read_too_high_is_refused():
    rv = _validate([100.0, 112.0, 900.0], [0, 48, 96])
    assert rv.reason.tolist() == ["", "", "above_twice_expected"]


def test_zero_consumption_only_when_consumption_was_expected():
    # 2 kWh expected over the day: a zero advance is plausible (whole-kWh register)
    rv = _validate([500.0, 500.0], [0, 48], per_period=2 / 48)
    assert (rv.reason == "").all()
    # 48 kWh expected: a zero advance fails the zero-consumption check
    rv = _validate([500.0, 500.0, 560.0], [0, 48, 96], per_period=1.0)
    assert rv.reason.tolist() == ["", "zero_consumption", ""]


def test_deemed_reads_never_bound_an_advance_f33():
    # actual 100, deemed 150 (too high), actual 130: the advance runs from the previous *actual*
    # read, so the negative advance after the deemed read is valid (F-33) and nothing is refused
    rv = _validate([100.0, 150.0, 130.0], [0, 48, 96], deemed=np.array([False, True, False]))
    assert (rv.reason == "").all()
    assert rv.spans[["b1", "b2", "advance"]].values.tolist() == [[0, 96, 30.0]]


def test_registers_are_checked_separately_and_order_of_input_does_not_matter():
    values = [20.0, 1010.0, 10.0, 1000.0]  # two registers, shuffled
    rv = _validate(values, [48, 48, 0, 0], register=np.array([1, 0, 1, 0]))
    assert (rv.reason == "").all()
    assert sorted(rv.spans[["register", "advance"]].values.tolist()) == [[0, 10.0], [1, 10.0]]


def test_margin_and_passes_are_configurable():
    rv = _validate([0.0, 30.0], [0, 48], rules=ReadRules(margin_kwh=0.0))
    assert rv.reason.tolist() == ["", "above_twice_expected"]
    with pytest.raises(ValueError, match="max_passes"):
        ReadRules(max_passes=0)


def test_lookup_of_pandas_strings_and_numpy_strings_agree():
    from pandas.errors import InvalidIndexError

    from tomlib.services._processing_keys import joint_codes, lookup, str_codes

    left = [np.array(["1000000000001", "1000000000002", "1000000000003"]), np.array(["M1", "M22", "M1"])]
    right = [np.array(["1000000000003", "1000000000009", "1000000000001", "1000000000002"]),
             np.array(["M1", "M1", "M1", "M2"])]
    lk, rk, _ = joint_codes(left, right)
    expected = pd.Index(lk).get_indexer(rk)
    assert expected.tolist() == [2, -1, 0, -1]
    as_str = [pd.Series(c, dtype="str") for c in left]
    assert lookup(left, right).tolist() == expected.tolist()
    assert lookup(as_str, right).tolist() == expected.tolist()
    assert lookup(as_str, [pd.Series(c, dtype="str") for c in right]).tolist() == expected.tolist()
    assert lookup([np.array(["é", "a"])], [pd.Series(["a", "é", "b"], dtype="str")]).tolist() == [1, 0, -1]
    with pytest.raises(InvalidIndexError):
        lookup([pd.Series(["a", "a"], dtype="str")], [np.array(["a"])])
    codes, distinct = str_codes(pd.Series(["_C", "_P", "_C"], dtype="str"))
    assert distinct[codes].tolist() == ["_C", "_P", "_C"] and distinct.dtype == np.dtype("<U2")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1000000000001", "1000000000002", "2000000000007", "9"]),
                          st.sampled_from(["M1", "M22", "", "LONGMETERID7"]), st.sampled_from(["01", "2"])),
                max_size=30),
       st.lists(st.tuples(st.sampled_from(["1000000000001", "2000000000007", "3"]),
                          st.sampled_from(["M1", "M22", ""]), st.sampled_from(["01", "2"])), max_size=30))
def test_lookup_by_hashed_words_is_pandas_get_indexer(left_rows, right_rows):
    from pandas.errors import InvalidIndexError

    from tomlib.services._processing_keys import lookup

    def columns(rows, as_series):
        cols = [np.array([r[k] for r in rows], dtype=str) if rows else np.zeros(0, dtype="<U1") for k in range(3)]
        return [pd.Series(c, dtype="str") for c in cols] if as_series else cols

    left, right = columns(left_rows, True), columns(right_rows, False)
    if len(set(left_rows)) < len(left_rows):
        with pytest.raises(InvalidIndexError):
            lookup(left, right)
        return
    expected = pd.MultiIndex.from_tuples(left_rows, names=list("abc")).get_indexer(
        pd.MultiIndex.from_tuples(right_rows, names=list("abc"))) if left_rows and right_rows \
        else np.full(len(right_rows), -1)
    assert lookup(left, right).tolist() == expected.tolist()


def test_word_lookup_of_many_rows():
    from tomlib.services._processing_kernel import word_lookup

    rng = np.random.default_rng(0)
    left = rng.integers(0, 2**63, (50_000, 3), dtype=np.int64).astype(np.uint64)
    left[:, 1] = 7  # many rows alike in a word
    take = rng.integers(-1000, 50_000, 60_000)
    right = np.where((take >= 0)[:, None], left[np.maximum(take, 0)], np.uint64(2**63 + 5))
    rows, duplicate = word_lookup(left, right)
    assert not duplicate and rows.tolist() == np.where(take >= 0, take, -1).tolist()
    in_order = np.sort(take)  # rows in the left side's order, repeated and skipped: matched by the next-row guess
    right = np.where((in_order >= 0)[:, None], left[np.maximum(in_order, 0)], np.uint64(2**63 + 5))
    assert word_lookup(left, right)[0].tolist() == np.where(in_order >= 0, in_order, -1).tolist()
    assert word_lookup(np.vstack([left, left[:1]]), right[:3])[1]


def test_word_lookup_switching_between_rows_in_order_and_rows_at_random():
    """Batches of rows in the left side's order (found without hashing, no read-ahead) alternating with
    batches at random and misses (read ahead): every row found as by a dictionary."""
    from tomlib.services._processing_kernel import word_lookup

    rng = np.random.default_rng(1)
    left = rng.integers(0, 2**63, (5_000, 2), dtype=np.int64).astype(np.uint64)
    parts = []
    for k in range(40):  # runs of 1-100 rows, in order or at random, some not in left
        n = int(rng.integers(1, 100))
        if k % 2:
            start = int(rng.integers(0, 5_000 - n))
            parts.append(np.arange(start, start + n))
        else:
            parts.append(rng.integers(-50, 5_000, n))
    take = np.concatenate(parts)
    right = np.where((take >= 0)[:, None], left[np.maximum(take, 0)], np.uint64(2**63 + 11))
    rows, duplicate = word_lookup(left, right)
    assert not duplicate and rows.tolist() == np.where(take >= 0, take, -1).tolist()


def test_expected_rows_give_what_the_full_expected_table_gives():
    """Registers reading their expected energy through expected_rows (a compact table, one shared row)
    get the reasons and spans of the full per-register table."""
    rng = np.random.default_rng(3)
    n_reg, n_b = 6, 20
    register = rng.integers(0, n_reg, 40)
    boundary = rng.integers(0, n_b, 40)
    value = rng.integers(0, 99_999, 40).astype(float)
    full = np.cumsum(rng.random((n_reg, n_b)), axis=1)
    full[[1, 4]] = 0.0  # the registers left on the shared row of zeros
    rows = np.array([0, 4, 1, 2, 4, 3])
    compact = np.vstack([full[[0, 2, 3, 5]], np.zeros((1, n_b))])
    args = (register, boundary, value, np.full(40, 5), np.zeros(40, bool), rng.random(40) < 0.5)
    want = validate_reads(*args, full)
    got = validate_reads(*args, compact, expected_rows=rows)
    assert got.reason.tolist() == want.reason.tolist() and (got.passes, got.unresolved) == (want.passes, want.unresolved)
    pd.testing.assert_frame_equal(got.spans, want.spans)
