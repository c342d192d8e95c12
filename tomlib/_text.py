"""Text columns without a Python string per row.

pandas 3 keeps text in Arrow (``str``); NumPy keeps it as fixed-width UCS-4 (``<U``). Converting a
national block's identifiers (MPAN cores, meter serials, register ids) between the two string by
string cost more than the settlement arithmetic, so these helpers write one from the other's
buffers where the text allows (fixed-width ASCII), gather text by Arrow takes, and key identifiers
as integers. Each gives exactly what the plain conversion would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["STR_DTYPE", "arrow_text", "int_keys", "is_text_array", "label_text", "numpy_text", "take_text",
           "text_column", "tight"]

#: pandas' default string dtype (Arrow-backed "str"), the dtype of every text column of the tables.
STR_DTYPE = pd.array([], dtype="str").dtype


def arrow_text(text) -> pd.api.extensions.ExtensionArray:
    """``pd.array(text, dtype="str")`` of a numpy text array; when every value is ASCII the Arrow
    buffers are written directly (one byte per code point) instead of converting string by string:
    with fixed offsets when every value has the array's full width (MPAN cores, meter serials),
    else each value up to its last non-NUL code point, which is where numpy's strings end (linked
    MPANs, most of them empty)."""
    text = np.asarray(text)
    if text.dtype.kind == "U" and text.size and text.dtype.itemsize:
        width = text.dtype.itemsize // 4
        points = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, width)
        if int(points.max()) < 128:
            if int(points.min()) > 0:
                offsets = np.arange(text.size + 1, dtype=np.int64) * width
                data = points.astype(np.uint8)
            else:
                used = points != 0
                length = np.where(used.any(axis=1), width - np.argmax(used[:, ::-1], axis=1), 0)
                offsets = np.zeros(text.size + 1, dtype=np.int64)
                np.cumsum(length, out=offsets[1:])
                data = points[np.arange(width)[None, :] < length[:, None]].astype(np.uint8)
            return pd.array(pa.LargeStringArray.from_buffers(text.size, pa.py_buffer(offsets), pa.py_buffer(data)),
                            dtype="str")
    return pd.array(text, dtype="str")


def label_text(labels, codes) -> pd.api.extensions.ExtensionArray:
    """``pd.array(labels[codes], dtype="str")`` without converting every row: the few distinct labels
    are converted once and gathered (an Arrow take), which is what makes the tables cheap to build."""
    return pd.array(np.asarray(labels).astype(str), dtype="str").take(np.asarray(codes, dtype=np.intp))


def text_column(x, n: int) -> pd.api.extensions.ExtensionArray:
    """A "str" column of ``n`` rows from a scalar (repeated), a "str" array (as is) or an array."""
    if np.ndim(x) == 0:
        return label_text([str(x)], np.zeros(n, dtype=np.intp))
    if is_text_array(x):
        return x
    return arrow_text(np.asarray(x).astype(str))


def is_text_array(x) -> bool:
    """Whether ``x`` is a pandas "str" array without missing values (gathering from it gives what
    converting its numpy text would give)."""
    return isinstance(x, pd.api.extensions.ExtensionArray) and x.dtype == STR_DTYPE and not x.isna().any()


def take_text(frame: pd.DataFrame, column: str, rows: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Rows of a text column as a "str" array: an Arrow take when the column already is one."""
    values = frame[column].array
    if is_text_array(values):
        return values.take(np.asarray(rows, dtype=np.intp))
    return pd.array(frame[column].to_numpy(dtype=str)[rows], dtype="str")


def numpy_text(column) -> np.ndarray:
    """``column.to_numpy(dtype=str)`` of a text Series or array, read straight from the Arrow buffers
    when every value has the same number of ASCII characters (MPAN cores, meter serials, register
    ids): no Python string per row."""
    values = column.array if isinstance(column, pd.Series) else column
    data = getattr(values, "_pa_array", None)
    if data is not None and len(values) and data.null_count == 0:
        chunk = data.combine_chunks() if hasattr(data, "combine_chunks") else data
        kind = {"large_string": np.int64, "string": np.int32}.get(str(chunk.type))
        if kind is not None:
            offsets = np.frombuffer(chunk.buffers()[1], dtype=kind)[chunk.offset : chunk.offset + len(chunk) + 1]
            width = int(offsets[1] - offsets[0])
            if width > 0 and (np.diff(offsets) == width).all():
                raw = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
                if raw.max() < 128 and raw.min() > 0:  # ASCII without NUL (numpy drops trailing NULs)
                    return raw.astype(np.uint32).view(f"<U{width}")  # ASCII byte = code point
    return np.asarray(column.to_numpy(dtype=str))


#: Characters of identifiers packed into integers by :func:`int_keys`, in code point order after
#: the padding (0): space, digits, upper and lower case letters.
_KEY_CHARS = " 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_LUT = np.full(128, 255, dtype=np.uint8)
_KEY_LUT[0] = 0
_KEY_LUT[np.frombuffer(_KEY_CHARS.encode(), dtype=np.uint8)] = np.arange(1, len(_KEY_CHARS) + 1)
_DIGIT_LUT = np.full(128, 255, dtype=np.uint8)
_DIGIT_LUT[0] = 0
_DIGIT_LUT[np.frombuffer(b"0123456789", dtype=np.uint8)] = np.arange(1, 11)


def int_keys(text: np.ndarray, width: int | None = None) -> np.ndarray | None:
    """One int64 per identifier, equal for equal text and ordered as the text sorts: digit strings
    of up to 17 characters in base 11, strings of spaces, digits and letters of up to 10 characters
    in base 64 (0 = padding past the end). None when the text does not fit either.

    ``width`` (characters, at least the array's) keys two arrays of different widths alike."""
    if text.dtype.kind != "U":
        return None
    have = text.dtype.itemsize // 4
    w = have if width is None else width
    if w == 0 or w < have:
        return None
    points = np.ascontiguousarray(text).view(np.uint32).reshape(text.size, have)
    if text.size and int(points.max()) >= 128:
        return None
    for lut, base, most in ((_DIGIT_LUT, 11, 17), (_KEY_LUT, 64, 10)):
        if w > most:
            continue
        digits = lut[points]
        if text.size and int(digits.max()) == 255:
            continue
        key = np.zeros(text.size, dtype=np.int64)
        for j in range(have):  # a few characters
            key *= base
            key += digits[:, j]
        key *= base ** (w - have)  # padding to the common width
        return key * 2 + (base == 64)  # the base is part of the key: keys of both bases never meet
    return None


def tight(text: np.ndarray) -> np.ndarray:
    """Text array in the narrowest ``<U`` width holding it, at least 1 (as numpy gives for converted
    text): the last character position any value uses. Always a new array; when a value uses the
    array's last position it is already the narrowest and only copied."""
    text = np.ascontiguousarray(text)
    if not text.size or not text.dtype.itemsize:
        return text.astype("<U1")
    points = text.view(np.uint32).reshape(text.size, -1)
    if points[:, -1].any():
        return text.copy()
    used = np.flatnonzero(points.any(axis=0))
    return text.astype(f"<U{int(used[-1]) + 1 if used.size else 1}")
