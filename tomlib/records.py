"""Key figures recorded by a notebook and read back from the executed ``.ipynb``.

A notebook calls :func:`record` for each figure a reader or a test needs (counts, residuals, the number
of periods per settlement day). The value travels as a display output with its own MIME type, so it is
stored in the executed notebook itself: no side files, and nothing to clean up. :func:`read_records`
reads them back; the report index and the notebook tests use it.

This replaces scrapbook, whose last release was 2021 (see the workbench guide §2.5). The empty
``text/plain`` part keeps nbconvert quiet and leaves no trace in the HTML report.
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

__all__ = ["MIME", "jsonable", "read_records", "record"]


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
