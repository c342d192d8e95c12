"""MPAN cores: check digit, validation, GSP group lookup and generation of unique valid cores.

An MPAN core (Metering Point Administration Number, the 13-digit MSID) is a 2-digit distributor id
(10..23 for the 14 GSP-group distributors, see :func:`tomlib.reference.gsp_groups`), a 10-digit unique
identifier and a check digit. The check digit is the sum of the first 12 digits times the primes
3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43, taken mod 11 and then mod 10. Because of the final mod 10, a
remainder of 10 and a remainder of 0 both give check digit 0, so some single-digit errors go undetected
(e.g. the D0010 sample edit 1200033197420 -> 1200033997420).

All functions are vectorised over numpy arrays of strings (or integers); a scalar input gives a scalar
result.
"""

from __future__ import annotations

import numpy as np

from tomlib import reference

__all__ = [
    "PRIMES",
    "check_digit",
    "core_numbers",
    "distributor_id_of",
    "generate_cores",
    "gsp_group_of",
    "is_valid",
    "positions",
    "validate",
]

#: Weights of the first 12 digits in the MPAN check digit.
PRIMES = np.array([3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43], dtype=np.int64)


def _as_text(values) -> np.ndarray:
    """Input as a numpy unicode array; integers are written in decimal without padding."""
    arr = np.asarray(values)
    if arr.dtype.kind == "U":
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(str)
    # object arrays (e.g. pandas string columns): None/NaN become "None"/"nan" and then fail the digit check.
    return arr.astype(str)


def _digits(text: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Digit matrix (n, width) of a flat unicode array and a mask of entries that are exactly `width` digits."""
    flat = text.reshape(-1)
    ok = np.char.str_len(flat) == width
    # astype would silently truncate longer strings: those are already marked not ok by the length test.
    codes = np.ascontiguousarray(flat.astype(f"<U{width}")).view(np.uint32).reshape(-1, width).astype(np.int64)
    digits = codes - ord("0")
    ok &= np.all((digits >= 0) & (digits <= 9), axis=1)
    digits[~ok] = 0
    return digits, ok


def _check_from_digits(digits12: np.ndarray) -> np.ndarray:
    return (digits12 @ PRIMES) % 11 % 10


def _scalar_or(shape: tuple, flat: np.ndarray):
    return flat.reshape(shape)[()] if shape == () else flat.reshape(shape)


def check_digit(cores12):
    """Check digit of 12-digit MPAN core stems.

    Parameters
    ----------
    cores12 : str, int or array-like of str/int
        The first 12 digits (distributor id + unique id).

    Returns
    -------
    int or ndarray of int
        Check digit 0..9, same shape.

    Raises
    ------
    ValueError
        Naming the index and value of the first entry that is not exactly 12 digits.
    """
    text = _as_text(cores12)
    digits, ok = _digits(text, 12)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"cores12: index {i} is {str(text.reshape(-1)[i])!r}; expected 12 digits")
    return _scalar_or(text.shape, _check_from_digits(digits))


def is_valid(core13):
    """Whether each value is a well-formed MPAN core: exactly 13 digits with a correct check digit.

    The distributor id is not checked here (see :func:`validate`); malformed entries give False.

    Parameters
    ----------
    core13 : str, int or array-like of str/int

    Returns
    -------
    bool or ndarray of bool
        Same shape as the input.
    """
    text = _as_text(core13)
    digits, ok = _digits(text, 13)
    good = ok & (_check_from_digits(digits[:, :12]) == digits[:, 12])
    return _scalar_or(text.shape, good)


def distributor_id_of(core13):
    """Distributor id (first two digits, int) of 13-digit MPAN cores; ValueError if not 13 digits."""
    text = _as_text(core13)
    digits, ok = _digits(text, 13)
    if not np.all(ok):
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"core13: index {i} is {str(text.reshape(-1)[i])!r}; expected 13 digits")
    return _scalar_or(text.shape, digits[:, 0] * 10 + digits[:, 1])


def _distributor_lookup() -> tuple[np.ndarray, np.ndarray]:
    """(gsp_group by distributor id 0..99 with "" for unknown, sorted known ids)."""
    gsp = reference.gsp_groups()
    lookup = np.full(100, "", dtype="<U2")
    lookup[gsp["distributor_id"].to_numpy()] = gsp.index.to_numpy(dtype=str)
    return lookup, np.sort(gsp["distributor_id"].to_numpy())


def gsp_group_of(core13):
    """GSP group of each MPAN core from its distributor id (the check digit is not checked).

    Parameters
    ----------
    core13 : str, int or array-like of str/int

    Returns
    -------
    str or ndarray of str
        GSP group id ("_A".."_P"), same shape.

    Raises
    ------
    ValueError
        For an entry that is not 13 digits or whose distributor id is not one of the 14 GSP-group distributors.
    """
    text = _as_text(core13)
    dist = np.asarray(distributor_id_of(text)).reshape(-1)
    lookup, known = _distributor_lookup()
    groups = lookup[dist]
    bad = groups == ""
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"core13: index {i} is {str(text.reshape(-1)[i])!r}: unknown distributor id {dist[i]:02d}; "
                         f"expected one of {', '.join(map(str, known))}")
    return _scalar_or(text.shape, groups)


def validate(core13, where: str = "mpan") -> None:
    """Raise if any value is not a valid MPAN core of a known distributor.

    Parameters
    ----------
    core13 : str, int or array-like of str/int
        MPAN cores.
    where : str
        Name of the data being checked, used at the start of the message (e.g. a file or column).

    Raises
    ------
    ValueError
        ``"<where>: MPAN core at index <i> is '<core>': expected 13 digits"`` (or "bad check digit, expected
        <d>", or "unknown distributor id <dd> ..."), with the number of further bad cores.
    """
    text = _as_text(core13).reshape(-1)
    digits, ok = _digits(text, 13)
    expected = _check_from_digits(digits[:, :12])
    check_ok = ok & (expected == digits[:, 12])
    lookup, known = _distributor_lookup()
    dist_ok = check_ok & (lookup[digits[:, 0] * 10 + digits[:, 1]] != "")
    bad = np.flatnonzero(~dist_ok)
    if bad.size == 0:
        return
    i = int(bad[0])
    if not ok[i]:
        reason = "expected 13 digits"
    elif not check_ok[i]:
        reason = f"bad check digit {digits[i, 12]}, expected {expected[i]}"
    else:
        reason = (f"unknown distributor id {digits[i, 0]}{digits[i, 1]}, expected one of "
                  f"{', '.join(map(str, known))}")
    more = f" ({bad.size - 1} more bad cores)" if bad.size > 1 else ""
    raise ValueError(f"{where}: MPAN core at index {i} is {str(text[i])!r}: {reason}{more}")


def _distinct_short(text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a NumPy text array of at most two characters, and each value's position
    among them: hashed as the integers their code points make (no string sort)."""
    import pandas as pd

    arr = np.ascontiguousarray(text)
    codes, uniques = pd.factorize(arr.view(f"u{arr.dtype.itemsize}"))
    return np.asarray(uniques).view(arr.dtype), codes


def generate_cores(gsp_groups, rng: np.random.Generator, id_range: tuple[int, int] | None = None) -> np.ndarray:
    """Unique valid MPAN cores for the given GSP groups.

    Parameters
    ----------
    gsp_groups : array-like of str
        GSP group id per core to make ("_A".."_P").
    rng : numpy.random.Generator
        Source of randomness (results are deterministic for a given generator state).
    id_range : (int, int), optional
        Draw the 10-digit unique part of the cores from ``[lo, hi)`` only (default the whole
        ``[0, 10**10)``): generators that make a market in independent blocks give each block its
        own range, so cores are unique across blocks by construction.

    Returns
    -------
    ndarray of str
        13-digit cores ('<U13'), same length and order as ``gsp_groups``; all distinct and valid, with the
        distributor id of their GSP group.
    """
    groups = np.asarray(gsp_groups).astype(str).reshape(-1)
    table = reference.gsp_groups()
    # looked up per distinct GSP group (14), not per core
    distinct, inverse = np.unique(groups, return_inverse=True) if groups.dtype.itemsize > 8 else _distinct_short(groups)
    known = np.isin(distinct, table.index.to_numpy(dtype=str))
    if not known.all():
        i = int(np.flatnonzero(~known[inverse])[0])
        raise ValueError(f"gsp_groups: index {i} is {str(groups[i])!r}; expected one of {', '.join(table.index)}")
    dist_of = table["distributor_id"].reindex(distinct).to_numpy(np.int64)
    dist = dist_of[inverse]
    lo, hi = (0, 10**10) if id_range is None else (int(id_range[0]), int(id_range[1]))
    if not 0 <= lo < hi <= 10**10:
        raise ValueError(f"id_range must satisfy 0 <= lo < hi <= 10**10, got {id_range}")
    unique_id = np.empty(groups.size, dtype=np.int64)
    present = np.unique(dist_of)  # the distributors of the distinct groups: those of the cores, sorted
    for d in present:
        # one distributor (a block of one GSP group): every core, without comparing each
        where = np.arange(groups.size) if present.size == 1 else np.flatnonzero(dist == d)
        if where.size > hi - lo:
            raise ValueError(f"generate_cores: {where.size} cores asked for distributor {d}, but id_range {id_range} "
                             f"holds only {hi - lo}")
        # Sampling without replacement within a distributor makes the cores unique by construction.
        unique_id[where] = lo + rng.choice(hi - lo, size=where.size, replace=False) if id_range is not None \
            else rng.choice(10**10, size=where.size, replace=False)
    from tomlib._market_kernels import core_code_points

    # the text written from its code points (digits and check digit in one compiled pass): the same
    # '<U13' as converting the numbers, 50x quicker
    points = core_code_points(dist * 10**10 + unique_id)
    return points.view("<U13").reshape(groups.size)


def _arrow_fixed_width(chunked, width: int) -> np.ndarray | None:
    """The bytes (n, width) of an Arrow string array without nulls whose every value is ``width``
    bytes long, as a view of its data buffer; None otherwise (the caller decides the slow way)."""
    chunk = chunked.combine_chunks() if hasattr(chunked, "combine_chunks") else chunked
    if chunk.null_count:
        return None
    offset_type = {"large_string": np.int64, "string": np.int32}.get(str(chunk.type))
    if offset_type is None:
        return None
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type)[chunk.offset:chunk.offset + len(chunk) + 1]
    if (np.diff(offsets) != width).any():
        return None
    raw = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[int(offsets[0]):int(offsets[-1])]
    return raw.reshape(len(chunk), width)


def core_numbers(cores) -> np.ndarray | None:
    """13-digit MPAN cores as int64 numbers, or None if any value is not exactly 13 digits.

    A core and its number map one to one (leading zeros kept by the fixed width), so joins on
    numbers equal joins on the strings -- and cost a hundredth: pandas 3 keeps strings in Arrow, and
    matching 100,000 of them against a string index took 0.3 s, against an int64 index 5 ms.

    Parameters
    ----------
    cores : array-like of str
        NumPy unicode, object, or pandas/Arrow strings.

    Returns
    -------
    ndarray of int64 or None
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    values = cores.array if isinstance(cores, (pd.Series, pd.Index)) else cores
    chunked = getattr(values, "_pa_array", None)  # pandas' Arrow-backed strings: read where they are
    if chunked is not None and (pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)):
        if len(chunked) == 0:
            return np.zeros(0, dtype=np.int64)
        fixed = _arrow_fixed_width(chunked, 13)
        if fixed is not None:  # every value 13 bytes: their digits read from the buffer in one pass
            from tomlib._market_kernels import core_numbers_of_points

            return core_numbers_of_points(fixed)
        if chunked.null_count or not pc.all(pc.match_substring_regex(chunked, r"^\d{13}$")).as_py():
            return None
        return np.asarray(pc.cast(chunked, pa.int64()), dtype=np.int64)
    arr = np.asarray(values)
    if arr.dtype.kind != "U":
        if arr.dtype.kind != "O":
            return None
        try:
            arr = arr.astype(str)
        except (TypeError, ValueError):
            return None
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    width = arr.dtype.itemsize // 4
    if width < 13:
        return None
    from tomlib._market_kernels import core_numbers_of_points

    # checked and read in one compiled pass over the code points (no digit matrix, no integer matmul)
    return core_numbers_of_points(np.ascontiguousarray(arr).view(np.uint32).reshape(arr.size, width))


def positions(known, wanted) -> np.ndarray:
    """Position of each of ``wanted`` MPAN cores among ``known`` ones (unique), -1 where absent.

    The same as ``pd.Index(known).get_indexer(wanted)`` on the strings, computed on the cores'
    numbers (:func:`core_numbers`) when both sides are 13-digit cores.

    Parameters
    ----------
    known : array-like of str
        Unique cores.
    wanted : array-like of str

    Returns
    -------
    ndarray of int64
    """
    import pandas as pd

    known_n, wanted_n = core_numbers(known), core_numbers(wanted)
    if known_n is None or wanted_n is None:  # not all cores (an error path): compare the strings
        return np.asarray(pd.Index(np.asarray(known, dtype=str)).get_indexer(np.asarray(wanted, dtype=str)),
                          dtype=np.int64)
    return np.asarray(pd.Index(known_n).get_indexer(wanted_n), dtype=np.int64)
