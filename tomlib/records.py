"""Key figures recorded by a notebook and read back from the executed ``.ipynb``.

A notebook calls :func:`record` for each figure a reader or a test needs (counts, residuals, the number
of periods per settlement day). The value travels as a display output with its own MIME type, so it is
stored in the executed notebook itself: no side files, and nothing to clean up. :func:`read_records`
reads them back; the report index and the notebook tests use it.

This replaces scrapbook, whose last release was 2021 (see the workbench guide §2.5). The empty
``text/plain`` part keeps nbconvert quiet and leaves no trace in the HTML report.

How numbers read in a report is set here too, once: :func:`readable_tables` (called in every
notebook's setup cell) makes pandas tables print :func:`format_number` text -- thousands separators,
decimals by magnitude, never ``1.378e+06`` -- and the report index uses the same function.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

MIME = "application/x-tomlib-record+json"

__all__ = ["MIME", "format_number", "jsonable", "read_records", "readable_tables", "record"]


def jsonable(value: Any, name: str = "value") -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON types.

    Parameters
    ----------
    value : Any
        A number, string, bool, None, date/time, numpy scalar or array, or a list/tuple/dict of these.
    name : str
        The record name, used in the error message.

    Returns
    -------
    Any
        The same value as Python ``int``/``float``/``str``/``bool``/``None``/``list``/``dict``;
        dates and datetimes become ISO strings, NaN becomes ``None`` (JSON has no NaN).

    Raises
    ------
    TypeError
        If a part of the value has no JSON form; the message names the record and the type.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return None if math.isnan(f) else f
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="s"))
    if isinstance(value, (dt.date, dt.datetime)):  # pandas Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return [jsonable(v, name) for v in value.tolist()]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, f"{name}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, name) for v in value]
    if hasattr(value, "tolist"):  # pandas Index/Series, xarray DataArray
        return jsonable(np.asarray(value), name)
    raise TypeError(f"record {name!r}: {type(value).__name__} has no JSON form; record numbers, strings, "
                    "lists or dicts")


def record(name: str, value: Any) -> None:
    """Attach a JSON value to the current notebook cell's outputs.

    Parameters
    ----------
    name : str
        Record name, e.g. ``"n_mpans"``; a later record with the same name wins.
    value : Any
        Anything :func:`jsonable` accepts.

    Raises
    ------
    TypeError
        If the value has no JSON form (see :func:`jsonable`).
    """
    from IPython.display import display

    data = jsonable(value, name)
    json.dumps(data, allow_nan=False)  # fail in the notebook, not later in the index
    display({MIME: {"name": name, "data": data}, "text/plain": ""}, raw=True)


def read_records(notebook: str | PathLike | Any) -> dict[str, Any]:
    """Read the records of an executed notebook.

    Parameters
    ----------
    notebook : str, PathLike or nbformat.NotebookNode
        Path of an executed ``.ipynb`` or the notebook already read.

    Returns
    -------
    dict
        Record name -> value, in the order recorded.
    """
    import nbformat

    nb = nbformat.read(Path(notebook), as_version=4) if isinstance(notebook, (str, PathLike)) else notebook
    out: dict[str, Any] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME)
            if payload is not None:
                out[payload["name"]] = payload["data"]
    return out


# --------------------------------------------------------------------------------------------------
# numbers for reading


def format_number(value: Any) -> str:
    """A number as a reader wants it in a report table.

    Integers (and integral floats below 10^15) get thousands separators, ``1,378,123``; other floats
    get decimals by magnitude: 0 from 10,000, 1 from 100, 3 from 1, 4 below 1, and two significant
    digits in ``e-`` notation below 0.0001 (rounding residuals such as ``8.9e-16`` stay visible rather
    than print as 0). Large numbers never print in ``e+`` notation. Anything else (text, booleans,
    dates) is ``str(value)``; NaN is ``"NaN"``, as pandas prints it.

    Parameters
    ----------
    value : Any

    Returns
    -------
    str
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return str(x)
    ax = abs(x)
    if x == round(x) and ax < 1e15:
        return f"{x:,.0f}"
    if ax >= 1e4:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:,.1f}"
    if ax >= 1:
        return f"{x:,.3f}"
    if ax >= 1e-4:
        return f"{x:.4f}"
    return f"{x:.1e}"


def _frame_html(frame: Any) -> str | None:
    """HTML of a DataFrame as pandas shows it in a notebook, with :func:`format_number` in its
    numeric columns (pandas has a display option for floats only, none for integers)."""
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if not pd.get_option("display.notebook_repr_html"):
        return None
    numeric = {c: format_number for c, dtype in frame.dtypes.items() if is_numeric_dtype(dtype) and
               not is_bool_dtype(dtype)}
    if frame.columns.has_duplicates:  # formatters go by column label: a duplicated label is ambiguous
        numeric = {}
    return frame.to_html(notebook=True, formatters=numeric, float_format=format_number, bold_rows=True,
                         max_rows=pd.get_option("display.max_rows"), max_cols=pd.get_option("display.max_columns"),
                         show_dimensions=pd.get_option("display.show_dimensions") is True)


def readable_tables() -> None:
    """Make every pandas table of this process print numbers with :func:`format_number`.

    Sets ``display.float_format`` (text and HTML output of DataFrames and Series) and
    ``styler.format.formatter`` (``df.style`` tables); in an IPython kernel also the HTML formatter of
    DataFrames, so integer columns get thousands separators too. Each notebook calls it once, in
    its setup cell.
    """
    import pandas as pd

    pd.set_option("display.float_format", format_number)
    pd.set_option("styler.format.formatter", format_number)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with the notebook dependencies
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, _frame_html)
