"""Tests of tomlib.mpan: check digit, validation, GSP group lookup, generation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import mpan, reference

# Official DIP API v2.1.0 example (IF-021 and others): the MPAN of the examples, which passes the check digit.
# Source: /work/shared/data/mhhs-interface-samples/elexon-dip-api-v2.1.0/Examples-unresolved.yaml
#   (sha256 62da91dd37f6d6201188479ff8e027656a19baceaf09e2d6fc4e8b13d26973b1).
IF021_MPAN = "2000056535971"

# The 11 MPAN cores (026 records) of the D0010 setter's sample; its README says all pass the check digit.
# Source: /work/shared/data/d0010-samples/DTC5259515123502080915D0010.uff
#   (sha256 69df2734257d65998152a187a708ffcd0fea7b2ccd51dff8a299903fcb1b219c).
D0010_VALID = [
    "1200023305967", "1900001059816", "1200033197420", "1200031039874", "1591055549625", "2200031930792",
    "1200022664056", "1900005260419", "1013044353630", "1900005281720", "2000055433806",
]

# Cores the sample READMEs say FAIL the check digit:
#   d0010-samples/DTC5259515123502080915D0010x.uff line 2 (hand-edited 1200023305967);
#   Examples-unresolved.yaml: 2000056535972, 2000056535991, 4000056535972;
#   mhhs-interface-samples/third-party/sureserve-mhhs-simulator/if-033.json: 1234567890123, 1315001165123.
FAKE_CORES = ["1204023305967", "2000056535972", "2000056535991", "4000056535972", "1234567890123",
              "1315001165123"]

# Passes the check digit although hand-edited (DTC5259515123502080915D0010x.uff line 8, from 1200033197420):
# the README notes "both sums give a check digit of 0" — the mod 11 = 10 / mod 11 = 0 collision.
D0010X_UNDETECTED_EDIT = "1200033997420"

# Passes the check digit but distributor id 60 is no GSP-group distributor (Examples-unresolved.yaml).
UNKNOWN_DISTRIBUTOR = "6000056535972"

PRIMES = [3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43]


def reference_check_digit(stem: str) -> int:
    """Plain-Python statement of the algorithm, independent of the vectorised code."""
    return sum(int(d) * p for d, p in zip(stem, PRIMES)) % 11 % 10


def weighted_mod11(stem: str) -> int:
    return sum(int(d) * p for d, p in zip(stem, PRIMES)) % 11


digits12 = st.text(alphabet="0123456789", min_size=12, max_size=12)


# ------------------------------------------------------------------------------------------ golden cases

def test_if021_example_is_valid_and_in_southern():
    assert mpan.is_valid(IF021_MPAN) is np.True_
    assert mpan.check_digit(IF021_MPAN[:12]) == 1
    assert mpan.distributor_id_of(IF021_MPAN) == 20
    assert mpan.gsp_group_of(IF021_MPAN) == "_H"
    mpan.validate([IF021_MPAN], where="IF-021 example")


def test_d0010_sample_cores_are_valid():
    assert mpan.is_valid(D0010_VALID).all()
    mpan.validate(D0010_VALID, where="D0010 sample")
    assert sorted(set(mpan.distributor_id_of(D0010_VALID))) == [10, 12, 15, 19, 20, 22]
    assert list(mpan.gsp_group_of(["1013044353630", "1591055549625", "2200031930792"])) == ["_A", "_F", "_L"]


def test_fake_cores_fail():
    assert not mpan.is_valid(FAKE_CORES).any()
    for core in FAKE_CORES:
        with pytest.raises(ValueError, match="bad check digit"):
            mpan.validate(core)


def test_undetected_single_digit_edit_from_sample():
    original = "1200033197420"
    assert sum(a != b for a, b in zip(original, D0010X_UNDETECTED_EDIT)) == 1
    assert mpan.is_valid(D0010X_UNDETECTED_EDIT)
    assert {weighted_mod11(original[:12]), weighted_mod11(D0010X_UNDETECTED_EDIT[:12])} == {0, 10}


def test_unknown_distributor():
    assert mpan.is_valid(UNKNOWN_DISTRIBUTOR)  # structurally fine ...
    with pytest.raises(ValueError, match=r"sample: MPAN core at index 1 is '6000056535972': unknown distributor id 60"):
        mpan.validate([IF021_MPAN, UNKNOWN_DISTRIBUTOR], where="sample")
    with pytest.raises(ValueError, match="unknown distributor id 60"):
        mpan.gsp_group_of(UNKNOWN_DISTRIBUTOR)


# ------------------------------------------------------------------------------------------- behaviour

def test_shapes_scalars_and_integer_input():
    grid = np.array([[IF021_MPAN, FAKE_CORES[0]], [D0010_VALID[0], D0010_VALID[1]]])
    assert mpan.is_valid(grid).tolist() == [[True, False], [True, True]]
    assert mpan.is_valid(int(IF021_MPAN))
    assert mpan.check_digit(200005653597) == 1
    assert mpan.check_digit(np.array([200005653597, 120002330596])).tolist() == [1, 7]
    assert mpan.gsp_group_of(grid[:, :1]).tolist() == [["_H"], ["_C"]]


@pytest.mark.parametrize("bad", ["", "200005653597", "20000565359710", " 2000056535971", "200005653597a",
                                 "2000056535971\n"])
def test_malformed_cores_are_invalid(bad):
    assert not mpan.is_valid(bad)
    with pytest.raises(ValueError, match="expected 13 digits"):
        mpan.validate([IF021_MPAN, bad], where="cores")


def test_missing_values_are_not_silently_accepted():
    arr = np.array([IF021_MPAN, None, float("nan")], dtype=object)
    assert mpan.is_valid(arr).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="index 1 is 'None': expected 13 digits"):
        mpan.validate(arr)


def test_validate_message_names_where_index_core_and_expected_digit():
    with pytest.raises(ValueError) as info:
        mpan.validate([IF021_MPAN, IF021_MPAN, "2000056535972", "2000056535991"], where="meters.csv mpan")
    msg = str(info.value)
    assert msg.startswith("meters.csv mpan: MPAN core at index 2 is '2000056535972'")
    assert "bad check digit 2, expected 1" in msg
    assert "(1 more bad cores)" in msg


def test_check_digit_rejects_wrong_length():
    with pytest.raises(ValueError, match="cores12: index 1 is '12345'; expected 12 digits"):
        mpan.check_digit(["200005653597", "12345"])


def test_gsp_group_of_every_distributor():
    table = reference.gsp_groups()
    stems = [f"{d:02d}0000000001" for d in table["distributor_id"]]
    cores = [s + str(reference_check_digit(s)) for s in stems]
    assert mpan.gsp_group_of(cores).tolist() == table.index.tolist()


def test_generate_cores_basic():
    groups = np.array(["_C", "_P", "_C", "_N", "_A"] * 200)
    cores = mpan.generate_cores(groups, np.random.default_rng(7))
    assert cores.shape == groups.shape and cores.dtype.kind == "U"
    assert np.all(np.char.str_len(cores) == 13)
    assert len(np.unique(cores)) == cores.size
    assert mpan.is_valid(cores).all()
    assert (mpan.gsp_group_of(cores) == groups).all()
    mpan.validate(cores, where="generated")
    again = mpan.generate_cores(groups, np.random.default_rng(7))
    assert (again == cores).all()
    assert not (mpan.generate_cores(groups, np.random.default_rng(8)) == cores).all()


def test_generate_cores_many_in_one_group_are_unique():
    cores = mpan.generate_cores(np.full(200_000, "_C"), np.random.default_rng(0))
    assert len(np.unique(cores)) == 200_000
    assert mpan.is_valid(cores).all()


def test_generate_cores_unknown_group_and_empty():
    with pytest.raises(ValueError, match=r"gsp_groups: index 1 is '_I'; expected one of _A"):
        mpan.generate_cores(["_A", "_I"], np.random.default_rng(0))
    assert mpan.generate_cores([], np.random.default_rng(0)).size == 0


# ------------------------------------------------------------------------------------------ properties

@given(st.lists(digits12, min_size=1, max_size=20))
def test_check_digit_matches_reference(stems):
    assert mpan.check_digit(stems).tolist() == [reference_check_digit(s) for s in stems]


@given(digits12)
def test_exactly_one_check_digit_completes_a_stem(stem):
    valid = mpan.is_valid([stem + str(d) for d in range(10)])
    assert valid.sum() == 1
    assert valid[mpan.check_digit(stem)]


@given(digits12, st.integers(0, 12), st.integers(1, 9))
def test_single_digit_change(stem, pos, shift):
    core = stem + str(reference_check_digit(stem))
    changed = core[:pos] + str((int(core[pos]) + shift) % 10) + core[pos + 1:]
    if pos == 12:
        assert not mpan.is_valid(changed)
        return
    # No prime weight is a multiple of 11 and |digit change| < 11, so the mod-11 sum always moves ...
    assert weighted_mod11(changed[:12]) != weighted_mod11(core[:12])
    # ... and the change goes undetected exactly when the final mod 10 folds 10 onto 0.
    undetected = {weighted_mod11(changed[:12]), weighted_mod11(core[:12])} == {0, 10}
    assert bool(mpan.is_valid(changed)) == undetected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(list("ABCDEFGHJKLMNP")), min_size=1, max_size=300),
       st.integers(0, 2**32 - 1))
def test_generated_cores_always_valid_and_unique(letters, seed):
    groups = np.array(["_" + c for c in letters])
    cores = mpan.generate_cores(groups, np.random.default_rng(seed))
    assert mpan.is_valid(cores).all()
    assert len(set(cores.tolist())) == len(cores)
    assert (mpan.gsp_group_of(cores) == groups).all()


# ------------------------------------------------------------------------------------------ numbers


@settings(max_examples=80, deadline=None)
@given(known=st.lists(st.from_regex(r"\d{13}", fullmatch=True), unique=True, max_size=30),
       extra=st.lists(st.one_of(st.from_regex(r"\d{13}", fullmatch=True), st.text(max_size=14)), max_size=10),
       as_arrow=st.booleans())
def test_positions_equal_a_string_index_lookup(known, extra, as_arrow):
    """Joins on the cores' numbers equal joins on the strings, whatever the values (non-cores fall
    back to the strings), for NumPy and pandas/Arrow strings alike."""
    import pandas as pd

    wanted = known[::-1] + extra
    want = pd.Index(np.array(known, dtype=str)).get_indexer(np.array(wanted, dtype=str))
    k = np.array(known, dtype=str)
    w = pd.Series(wanted, dtype=str) if as_arrow else np.array(wanted, dtype=str)
    np.testing.assert_array_equal(mpan.positions(k, w), want)
    numbers = mpan.core_numbers(w)
    if numbers is not None:  # every value a core: one number each, the same as the string's
        assert [f"{n:013d}" for n in numbers] == wanted


def test_core_numbers_refuse_what_is_not_a_core():
    import pandas as pd

    for values in (["123456789012"], ["12345678901234"], ["123456789012 "], ["+234567890123"], [None]):
        assert mpan.core_numbers(pd.Series(values, dtype=str)) is None, values
    assert mpan.core_numbers(np.array(["0000000000001", "2300000000041"])).tolist() == [1, 2300000000041]
    assert mpan.core_numbers(pd.Series([], dtype=str)).size == 0


# ------------------------------------------------------------------------------------------ compiled digits


def _numpy_code_points(stem: np.ndarray) -> np.ndarray:
    """The NumPy formulation :func:`tomlib._market_kernels.core_code_points` replaced."""
    digits = (stem[:, None] // 10 ** np.arange(11, -1, -1, dtype=np.int64)) % 10
    points = np.empty((stem.size, 13), dtype=np.uint32)
    points[:, :12] = digits + ord("0")
    points[:, 12] = (digits @ mpan.PRIMES) % 11 % 10 + ord("0")
    return points


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 10**12 - 1), max_size=50))
def test_core_code_points_kernel_matches_numpy(stems):
    from tomlib._market_kernels import core_code_points

    stem = np.array(stems, dtype=np.int64)
    got = core_code_points(stem)
    assert got.dtype == np.uint32 and np.array_equal(got, _numpy_code_points(stem))
    text = got.view("<U13").reshape(stem.size)
    assert text.tolist() == [f"{s:012d}{reference_check_digit(f'{s:012d}')}" for s in stems]


def test_core_code_points_refuses_stems_out_of_range():
    from tomlib._market_kernels import core_code_points

    with pytest.raises(ValueError, match="12-digit"):
        core_code_points(np.array([10**12]))
    with pytest.raises(ValueError, match="12-digit"):
        core_code_points(np.array([-1]))


def _numpy_core_numbers(arr: np.ndarray):
    """The NumPy formulation core_numbers had for numpy text (before the compiled pass)."""
    width = arr.dtype.itemsize // 4
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if width < 13:
        return None
    points = np.ascontiguousarray(arr).view(np.uint32).reshape(arr.size, width)
    digits = points[:, :13]
    if not ((digits >= ord("0")) & (digits <= ord("9"))).all() or (width > 13 and points[:, 13:].any()):
        return None
    return (digits.astype(np.int64) - ord("0")) @ (10 ** np.arange(12, -1, -1, dtype=np.int64))


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"\d{13}", fullmatch=True), st.from_regex(r"\d{12,14}", fullmatch=True),
                          st.text(alphabet="0123456789 a/\u0660", max_size=15)), max_size=12))
def test_core_numbers_kernel_matches_numpy(values):
    arr = np.array(values, dtype=str) if values else np.zeros(0, dtype="<U13")
    got, expect = mpan.core_numbers(arr), _numpy_core_numbers(arr)
    if expect is None:
        assert got is None
    else:
        assert got is not None and got.dtype == np.int64
        np.testing.assert_array_equal(got, expect)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.one_of(st.from_regex(r"\d{13}", fullmatch=True), st.from_regex(r"[+-]?\d{12,13}", fullmatch=True),
                          st.text(alphabet="0123456789 a\u0660", min_size=13, max_size=13), st.none()), max_size=12),
       st.integers(0, 3), st.booleans())
def test_core_numbers_of_arrow_text_match_the_strings(values, cut, large):
    """The Arrow path (bytes read from the buffer, any slice offset) gives the numbers of the strings."""
    import pyarrow as pa

    arr = pa.array(values, type=pa.large_string() if large else pa.string())[cut:]
    got = mpan.core_numbers(pd.Series(pd.arrays.ArrowStringArray(arr)))
    text = arr.to_pylist()
    if any(v is None or not (len(v) == 13 and v.isascii() and v.isdigit()) for v in text):
        assert got is None
    else:
        assert got is not None
        np.testing.assert_array_equal(got, np.array([int(v) for v in text], dtype=np.int64).reshape(-1))
