"""Strict reader for the reference CSV tables (shared by the loaders in :mod:`tomlib.reference`).

File format: optional leading comment lines starting with ``#`` (provenance), then a header line whose
column names must equal the schema exactly, then one record per line. Every field is checked; the first
bad one raises ``ValueError("<file>, line <n>, field '<col>': expected ..., got '...'")``.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Col:
    """Schema of one CSV column.

    Parameters
    ----------
    name : str
        Header name.
    kind : str
        ``"str"``, ``"int"`` or ``"float"``.
    choices : tuple of str, optional
        Allowed values (``kind="str"``).
    pattern : str, optional
        Regular expression the whole value must match (``kind="str"``).
    lo, hi : float, optional
        Inclusive bounds (``kind="int"``/``"float"``).
    optional : bool
        Empty field allowed; it becomes NA (nullable ``Int64`` for ints, NaN for floats).
    """

    name: str
    kind: str = "str"
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    lo: float | None = None
    hi: float | None = None
    optional: bool = False

    def expectation(self) -> str:
        if self.kind == "str":
            if self.choices is not None:
                text = "one of " + ", ".join(self.choices)
            elif self.pattern is not None:
                text = f"text matching {self.pattern}"
            else:
                text = "non-empty text"
        else:
            text = "an integer" if self.kind == "int" else "a finite number"
            if self.lo is not None and self.hi is not None:
                text += f" in [{self.lo:g}, {self.hi:g}]"
            elif self.lo is not None:
                text += f" >= {self.lo:g}"
            elif self.hi is not None:
                text += f" <= {self.hi:g}"
        return text + (" or empty" if self.optional else "")

    def parse(self, text: str):
        """Return the parsed value, None for an allowed empty field; raise ValueError if invalid."""
        if text == "":
            if self.optional:
                return None
            raise ValueError
        if self.kind == "str":
            if self.choices is not None and text not in self.choices:
                raise ValueError
            if self.pattern is not None and not re.fullmatch(self.pattern, text):
                raise ValueError
            return text
        if self.kind == "int":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError
            value = int(text)
        else:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise ValueError
        return value


class TableRows:
    """Parsed records of a table with the file line number of each (for cross-row error messages)."""

    def __init__(self, path: Path, columns: Sequence[Col], values: dict[str, list], lines: list[int]):
        self.path = path
        self.columns = columns
        self.values = values
        self.lines = lines

    def fail(self, row: int, field: str, message: str) -> ValueError:
        return ValueError(f"{self.path.name}, line {self.lines[row]}, field '{field}': {message}")

    def frame(self, index: str | Sequence[str] | None = None) -> pd.DataFrame:
        data = {}
        for col in self.columns:
            vals = self.values[col.name]
            if col.kind == "int":
                if col.optional:
                    data[col.name] = pd.array(vals, dtype="Int64")
                else:
                    data[col.name] = np.asarray(vals, dtype=np.int64)
            elif col.kind == "float":
                data[col.name] = np.asarray([np.nan if v is None else v for v in vals], dtype=np.float64)
            else:
                data[col.name] = pd.array(vals, dtype="str")
        df = pd.DataFrame(data)
        if index is not None:
            df = df.set_index(index)
        return df


def read_table(path: Path, columns: Sequence[Col], key: Sequence[str] = ()) -> TableRows:
    """Read and validate a reference CSV.

    Parameters
    ----------
    path : Path
        File to read.
    columns : sequence of Col
        Exact expected header (names and order) and per-field rules.
    key : sequence of str
        Columns whose combination must be unique.

    Returns
    -------
    TableRows
        Parsed values per column, with line numbers.

    Raises
    ------
    ValueError
        Naming the file, line and field, on a missing file, wrong header, wrong field count, bad value,
        blank line or duplicate key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read reference table ({exc.strerror})") from exc
    lines = text.splitlines()
    first = 0
    while first < len(lines) and lines[first].startswith("#"):
        first += 1
    names = [c.name for c in columns]
    if first == len(lines):
        raise ValueError(f"{path.name}: no header line; expected columns {','.join(names)}")
    header = next(csv.reader([lines[first]]))
    if header != names:
        raise ValueError(
            f"{path.name}, line {first + 1}: header {','.join(header)!r} does not match the expected "
            f"columns {','.join(names)!r}"
        )
    values: dict[str, list] = {n: [] for n in names}
    line_numbers: list[int] = []
    seen: dict[tuple, int] = {}
    for offset, raw in enumerate(lines[first + 1:], start=first + 2):
        if raw.strip() == "" or raw.startswith("#"):
            raise ValueError(f"{path.name}, line {offset}: blank or comment line inside the table")
        fields = next(csv.reader([raw]))
        if len(fields) != len(columns):
            raise ValueError(f"{path.name}, line {offset}: expected {len(columns)} fields, got {len(fields)}")
        parsed = {}
        for col, field in zip(columns, fields):
            try:
                parsed[col.name] = col.parse(field)
            except ValueError:
                raise ValueError(
                    f"{path.name}, line {offset}, field '{col.name}': expected {col.expectation()}, "
                    f"got {field!r}"
                ) from None
        if key:
            k = tuple(parsed[n] for n in key)
            if k in seen:
                raise ValueError(
                    f"{path.name}, line {offset}, field '{','.join(key)}': duplicate key {k!r} "
                    f"(first on line {seen[k]})"
                )
            seen[k] = offset
        for n in names:
            values[n].append(parsed[n])
        line_numbers.append(offset)
    if not line_numbers:
        raise ValueError(f"{path.name}: table has a header but no rows")
    return TableRows(path, columns, values, line_numbers)
