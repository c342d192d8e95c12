"""Load Shaping Service (LSS): load shapes from actual settlement data, their totals, and their accuracy.

The LSS (mhhs-domain.md §2.10) derives, per load-shape **category** and settlement period, the mean
ACTUAL energy of the MPANs of the category; the Smart processing service (§2.5) uses the shapes to
turn register advances into settlement-period volumes and to estimate periods without data. It
replaces the legacy profile coefficients (:mod:`tomlib.services.legacy_profiling`).

Categories (data: ``tomlib/reference/data/load_shape_categories.csv``)
----------------------------------------------------------------------
GSP group x connection type x market segment x domestic premise x measurement quantity, the
category fields of IF022/IF023 (F-15). :class:`Categories` holds the definition: which standing-data
keys split categories (a key not splitting is shown as ``*``) and the fallback levels of the default
shape. :meth:`Categories.coarsen` / :meth:`Categories.refine` make other definitions. A category's
label joins its key values with ``|``, e.g. ``"_C|W|S|D|AI"`` (domestic ``D`` / non-domestic ``N``),
the labels :func:`tomlib.services.processing_estimation.category_labels` gives, so the shapes of the
default definition plug into processing as they are.

Calculation of one run (F-16, [INF] where the Method Statement's algebra is not public)
--------------------------------------------------------------------------------------
For category c and period j (UTC period start; 46/48/50 per settlement day)::

    LS[c, j] = sum_{m in A(c, j)} E[m, j] / N[c, j]          [kWh per MPAN per period]

with A(c, j) the MPANs of c whose value in j is ACTUAL (DI-083 quality in ``actual_quality``;
estimates excluded) and N = |A| the **population** (option: import MPANs with generation behind
them left out, ``LoadShapeConfig.exclude_generation_imports``). Where N < ``min_population`` (Q2), the value
comes from the first fallback level whose population reaches it -- the same category over all GSP
groups ("national"), then a coarser category -- with IF022 ``defaultLoadShapeFlag`` (DI-154) ``D``
(standard default). Where no level has enough actual data, the **back stop** ``E`` is the 1997
profile class shape (class 1 for domestic, 3 for non-domestic categories, [INF]) scaled to the
category's mean annual consumption; an export category without data gets 0 with flag ``B`` (no data).

``annual_total(category, time)`` [kWh/year] is what processing divides by (§5 G-9:
``E_j = LS_j / T x AC``): the IF023 rolling annual total where a full year of shapes is covered,
otherwise the mean annual consumption of the MPANs behind the value -- a window of days cannot
give a rolling annual total, and we do not invent the missing history.

Totals (IF023, :func:`load_shape_totals`)
-----------------------------------------
Day total = sum of the day's 46/48/50 values; peak and off-peak totals over the peak / off-peak
periods (``load_shape_peak_periods.csv``, by local clock half hour; DI-044/DI-045); 7-day rolling
totals over the days D-6..D and the rolling annual total over the days after D minus one year up to
D (365 days, 366 when 29 February is inside; Q4: window ends on D inclusive). The rolling totals sum
the days that are available (the window of the run, plus ``history`` if given) and record the
coverage -- ``rolling_7day_days`` and ``rolling_annual_days`` -- instead of inventing data.

Measuring against the truth
---------------------------
:func:`true_shapes` is the mean TRUE energy over every MPAN of each category (estimated MPANs
included); :func:`shape_accuracy` compares the two per category. The estimate comparison with
legacy profiles is in :mod:`tomlib.services.legacy_profiling`.

Inputs and hooks
----------------
The settled input is any meter cube (:func:`tomlib.cube.meter_cube`) with ``energy`` and ``quality``,
e.g. ``SegmentResult.meters`` of :func:`tomlib.services.processing.settle_run`.
:func:`example_settled_input` is a stand-in for tests and demos only. :func:`to_processing` and
:func:`shape_provider` hand the shapes to processing; :func:`bench_inputs` feeds the benchmark.
File I/O (IF022/IF023 JSON) is in :mod:`tomlib.flows.load_shapes`.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib.reference._io import Col, read_table

__all__ = [
    "ACTUAL_QUALITY",
    "AGGREGATED",
    "CATEGORIES_PATH",
    "FLAGS",
    "PEAK_PERIODS_PATH",
    "RUN_NUMBERS",
    "Categories",
    "CategoryKey",
    "LoadShapeConfig",
    "as_cube",
    "bench_inputs",
    "category_of",
    "example_settled_input",
    "group_sums",
    "invariants",
    "load_categories",
    "load_shape_totals",
    "load_shapes",
    "peak_bands",
    "regions_of",
    "settled_summary",
    "shape_accuracy",
    "shape_provider",
    "standing_table",
    "to_processing",
    "true_shapes",
]

#: Category definition and peak-period table shipped with tomlib.
CATEGORIES_PATH = reference.DATA_DIR / "load_shape_categories.csv"
PEAK_PERIODS_PATH = reference.DATA_DIR / "load_shape_peak_periods.csv"
#: DI-083 quality labels that count as actual data (smart "A", ADS "A1".."A3").
ACTUAL_QUALITY = ("A", "A1", "A2", "A3")
#: Text of an aggregated key in labels and key coordinates.
AGGREGATED = "*"
#: DI-154 defaultLoadShapeFlag values: own actual data, standard default, back stop, no data.
FLAGS = {"actual": "A", "default": "D", "back_stop": "E", "no_data": "B"}
#: runNumber of each settlement run in IF022/IF023 ([INF]: the run's place in the timetable).
RUN_NUMBERS = {run: i + 1 for i, run in enumerate(reference.RUNS)}
#: Bands a peak-period table must name.
_BANDS = ("off_peak", "peak")
_NO_LEVEL = np.uint8(255)
_HALF_HOUR_H = 0.5


# ------------------------------------------------------------------------------------------ categories


@dataclass(frozen=True)
class CategoryKey:
    """One standing-data key of the load-shape categories (a row of the categories table).

    Attributes
    ----------
    key : str
        Standing-data coordinate of the meter cube (``gsp_group``, ``domestic``, ...).
    if022_field : str
        IF022/IF023 field carrying it ("" = not published).
    true_label, false_label : str
        Label text of a boolean key ("" for a non-boolean key).
    true_wire, false_wire : str
        IF022 value of a boolean key (DI-031: ``T`` / ``F``).
    description : str
    """

    key: str
    if022_field: str = ""
    true_label: str = ""
    false_label: str = ""
    true_wire: str = ""
    false_wire: str = ""
    description: str = ""

    @property
    def boolean(self) -> bool:
        """Whether the key is a boolean coordinate."""
        return bool(self.true_label)


@dataclass(frozen=True)
class Categories:
    """A load-shape category definition.

    Attributes
    ----------
    keys : tuple of CategoryKey
        Every known key, in label order.
    split : tuple of str
        Keys that split categories; the others are aggregated (``*``).
    fallbacks : tuple of (str, tuple of str)
        Default levels in order: (name, keys kept); kept keys are a subset of ``split``.
    """

    keys: tuple[CategoryKey, ...]
    split: tuple[str, ...]
    fallbacks: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        names = [k.key for k in self.keys]
        if len(set(names)) != len(names):
            raise ValueError(f"Categories: duplicate key in {names}")
        unknown = [k for k in self.split if k not in names]
        if unknown:
            raise ValueError(f"Categories.split: unknown key(s) {unknown}; known {names}")
        for name, kept in self.fallbacks:
            extra = [k for k in kept if k not in self.split]
            if extra:
                raise ValueError(f"Categories: fallback level {name!r} keeps {extra}, which do not split "
                                 f"categories ({list(self.split)})")
        object.__setattr__(self, "split", tuple(k for k in names if k in self.split))

    @property
    def names(self) -> tuple[str, ...]:
        """All key names, in label order."""
        return tuple(k.key for k in self.keys)

    @property
    def levels(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Own category first, then the fallback levels: (name, keys kept)."""
        return (("own", self.split),) + self.fallbacks

    def coarsen(self, *keys: str) -> Categories:
        """The same definition with ``keys`` aggregated (also in every fallback level)."""
        unknown = [k for k in keys if k not in self.names]
        if unknown:
            raise ValueError(f"Categories.coarsen: unknown key(s) {unknown}; known {list(self.names)}")
        return Categories(self.keys, tuple(k for k in self.split if k not in keys),
                          tuple((n, tuple(k for k in kept if k not in keys)) for n, kept in self.fallbacks))

    def refine(self, key: str, *, if022_field: str = "", in_fallbacks: bool = True,
               description: str = "") -> Categories:
        """The same definition split further by the standing coordinate ``key``.

        A key without an IF022 field cannot be written to IF022/IF023 files. ``in_fallbacks``: the
        fallback levels keep the key too (the default level of a category refined by, e.g., profile
        class is the national category of the same profile class).
        """
        keys = self.keys if key in self.names else self.keys + (CategoryKey(key, if022_field,
                                                                            description=description),)
        return Categories(keys, self.split + (key,),
                          tuple((n, kept + ((key,) if in_fallbacks else ())) for n, kept in self.fallbacks))

    def table(self) -> pd.DataFrame:
        """The definition as a table: one row per key; columns ``if022_field``, ``category`` and one
        per fallback level (True = the key splits at that level)."""
        rows = {k.key: {"if022_field": k.if022_field, "category": k.key in self.split,
                        **{name: k.key in kept for name, kept in self.fallbacks}, "description": k.description}
                for k in self.keys}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("key")

    def describe(self) -> str:
        """One line: the keys of the category and of each fallback level."""
        parts = [f"{name}: {' x '.join(kept) if kept else 'all MPANs'}" for name, kept in self.levels]
        return "; ".join(parts)


_FALLBACK_COLUMN = re.compile(r"fallback_(\d+)_([a-z][a-z0-9_]*)")


def load_categories(path: str | Path | None = None) -> Categories:
    """Read a load-shape category definition table (format: ``load_shape_categories.csv``).

    Parameters
    ----------
    path : path, optional
        Default :data:`CATEGORIES_PATH`.

    Returns
    -------
    Categories

    Raises
    ------
    ValueError
        Naming the file, line and field of a bad value, or the header that does not fit.
    """
    return _load_categories(Path(path) if path is not None else CATEGORIES_PATH)


@lru_cache(maxsize=8)
def _load_categories(path: Path) -> Categories:
    header = _header(path)
    fixed = ["key", "if022_field", "true_label", "false_label", "true_wire", "false_wire", "category"]
    fallback_cols = header[len(fixed):-1]
    if header[:len(fixed)] != fixed or header[-1:] != ["description"] or not all(
            _FALLBACK_COLUMN.fullmatch(c) for c in fallback_cols):
        raise ValueError(f"{path.name}: header {','.join(header)!r} does not match the expected columns "
                         f"{','.join(fixed)},fallback_<n>_<name>...,description")
    numbers = [int(_FALLBACK_COLUMN.fullmatch(c).group(1)) for c in fallback_cols]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"{path.name}: fallback columns must be numbered 1, 2, ... in order, got {fallback_cols}")
    flag = {"kind": "int", "lo": 0, "hi": 1}
    text = {"pattern": r"[A-Za-z0-9_]{0,8}"}
    cols = [Col("key", pattern=r"[a-z][a-z0-9_]*"), Col("if022_field", pattern=r"[A-Za-z0-9]+", optional=True),
            *[Col(c, optional=True, **text) for c in fixed[2:6]], Col("category", **flag),
            *[Col(c, **flag) for c in fallback_cols], Col("description", optional=True)]
    rows = read_table(path, cols, key=("key",))
    v = rows.values
    keys = []
    for i in range(len(rows.lines)):  # a handful of keys
        labels = [v[c][i] or "" for c in fixed[2:6]]
        if any(labels) and not all(labels):
            raise rows.fail(i, "true_label", "a boolean key needs all of true_label, false_label, true_wire, "
                                             "false_wire; a non-boolean key none")
        if labels[0] and labels[0] == labels[1]:
            raise rows.fail(i, "false_label", f"expected a label other than true_label {labels[0]!r}")
        keys.append(CategoryKey(v["key"][i], v["if022_field"][i] or "", *labels, description=v["description"][i] or ""))
        for c in fallback_cols:
            if v[c][i] and not v["category"][i]:
                raise rows.fail(i, c, "a fallback level cannot keep a key that does not split categories "
                                      "(category 0)")
    split = tuple(k.key for k, s in zip(keys, v["category"]) if s)
    fallbacks = tuple((_FALLBACK_COLUMN.fullmatch(c).group(2), tuple(k.key for k, s in zip(keys, v[c]) if s))
                      for c in fallback_cols)
    return Categories(tuple(keys), split, fallbacks)


def _header(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read table ({exc.strerror})") from exc
    body = [ln for ln in lines if not ln.startswith("#")]
    if not body:
        raise ValueError(f"{path.name}: no header line")
    return next(csv.reader([body[0]]))


def peak_bands(path: str | Path | None = None) -> np.ndarray:
    """Band (``"peak"`` / ``"off_peak"``) of each local clock half hour 0..47.

    Parameters
    ----------
    path : path, optional
        A table in the format of ``load_shape_peak_periods.csv`` (band, start_local, end_local; local
        clock, [start, end), tiling 00:00-24:00); default :data:`PEAK_PERIODS_PATH`.

    Returns
    -------
    ndarray of str (48,)
    """
    return _peak_bands(Path(path) if path is not None else PEAK_PERIODS_PATH).copy()


@lru_cache(maxsize=8)
def _peak_bands(path: Path) -> np.ndarray:
    hhmm = r"([01]\d|2[0-3]):(00|30)|24:00"
    rows = read_table(path, (Col("band", choices=_BANDS), Col("start_local", pattern=hhmm),
                             Col("end_local", pattern=hhmm)))
    out = np.full(48, "", dtype=object)
    for i in range(len(rows.lines)):  # a few bands
        start, end = (_half_hour(rows.values[c][i]) for c in ("start_local", "end_local"))
        if end <= start:
            raise rows.fail(i, "end_local", f"expected later than start_local {rows.values['start_local'][i]}")
        clash = [j for j in range(start, end) if out[j]]
        if clash:
            raise rows.fail(i, "start_local", f"overlaps band {str(out[clash[0]])!r} at half hour {clash[0]}")
        out[start:end] = rows.values["band"][i]
    if (out == "").any():
        j = int(np.flatnonzero(out == "")[0])
        raise ValueError(f"{path.name}: local half hour {j // 2:02d}:{30 * (j % 2):02d} is in no band; expected the "
                         "bands to cover 00:00-24:00")
    return out.astype(str)


def _half_hour(text: str) -> int:
    return int(text[:2]) * 2 + int(text[3:]) // 30


# ------------------------------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class LoadShapeConfig:
    """Knobs of the Load Shaping Service ([INF] defaults; mhhs-domain.md Q2-Q4).

    Attributes
    ----------
    min_population : int
        Fewest MPANs with actual data for a category's own value in a period [-] (Q2).
    categories : Categories, optional
        Category definition; default :func:`load_categories`.
    actual_quality : tuple of str
        DI-083 labels that count as actual data.
    back_stop_profile_class : tuple of (str, int)
        Profile class of the back-stop shape for ``domestic`` and ``non_domestic`` categories.
    peak_periods : path, optional
        Peak-period table (:func:`peak_bands`); default the package table.
    energy_var : str
        Energy variable of the settled cube.
    exclude_generation_imports : bool
        Leave out of the means the import MPANs with on-site generation behind them (a ``linked_mpan``
        export MPAN): their import is demand net of generation while their standing annual
        consumption is the household's demand. Default False: F-16 takes all actual data of the
        category; True matches the interim shapes of :mod:`tomlib.services.processing`.
    chunk_cells : int
        MPAN-periods reduced at a time (bounds the memory of the group means) [-].
    """

    min_population: int = 5
    categories: Categories | None = None
    actual_quality: tuple[str, ...] = ACTUAL_QUALITY
    back_stop_profile_class: tuple[tuple[str, int], ...] = (("domestic", 1), ("non_domestic", 3))
    peak_periods: str | Path | None = None
    energy_var: str = "energy"
    exclude_generation_imports: bool = False
    chunk_cells: int = 1 << 23

    def __post_init__(self) -> None:
        if int(self.min_population) < 1:
            raise ValueError(f"LoadShapeConfig.min_population must be >= 1 MPAN, got {self.min_population}")
        cube.quality_code(list(self.actual_quality))  # raises on an unknown label
        pcs = dict(self.back_stop_profile_class)
        if set(pcs) != {"domestic", "non_domestic"} or not all(1 <= int(p) <= 8 for p in pcs.values()):
            raise ValueError("LoadShapeConfig.back_stop_profile_class must give domestic and non_domestic a "
                             f"profile class 1..8, got {pcs}")
        if int(self.chunk_cells) < 1:
            raise ValueError(f"LoadShapeConfig.chunk_cells must be >= 1, got {self.chunk_cells}")

    @property
    def definition(self) -> Categories:
        """The category definition in force."""
        return self.categories if self.categories is not None else load_categories()

    @classmethod
    def coerce(cls, config: Any = None, **overrides) -> LoadShapeConfig:
        """A config from None (defaults), a LoadShapeConfig or a mapping of field values."""
        if config is None:
            config = cls()
        elif isinstance(config, dict):
            config = cls(**config)
        elif not isinstance(config, cls):
            raise TypeError(f"LoadShapeConfig.coerce: expected None, a dict or a LoadShapeConfig, got "
                            f"{type(config).__name__}")
        return dataclasses.replace(config, **overrides) if overrides else config


# ------------------------------------------------------------------------------------------ helpers


def standing_table(standing: Any, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Standing data as a DataFrame indexed by MPAN, from a DataFrame or a meter cube (``columns``: only those,
    when present)."""
    if isinstance(standing, (xr.Dataset, xr.DataArray)):
        coords = [c for c in standing.coords if standing[c].dims == ("mpan",) and c != "mpan"
                  and (columns is None or c in columns)]
        return pd.DataFrame({c: standing[c].to_numpy() for c in coords},
                            index=pd.Index(np.asarray(standing["mpan"].values).astype(str), name="mpan"))
    if isinstance(standing, pd.DataFrame):
        table = standing.set_index("mpan") if "mpan" in standing.columns else standing
        return table if columns is None else table[[c for c in columns if c in table.columns]]
    raise TypeError(f"expected standing data as a DataFrame or a meter cube, got {type(standing).__name__}")


def _key_codes(key: CategoryKey, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct label texts of one key and the index of each MPAN's text in them."""
    v = np.asarray(values)
    if key.boolean:
        if v.dtype != bool:
            raise ValueError(f"category key {key.key!r} must be boolean, got dtype {v.dtype}")
        return np.array([key.false_label, key.true_label]), v.astype(np.int64)
    # hashing (factorize) is O(n); sorting the few distinct values keeps the codes deterministic
    inv, uniq = pd.factorize(v, use_na_sentinel=True)
    if (inv < 0).any():
        raise ValueError(f"category key {key.key!r} has {int((inv < 0).sum())} missing value(s)")
    text = np.array([str(u) for u in uniq], dtype=str)  # distinct values only: a few
    order = np.argsort(text, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    text, inv = text[order], rank[inv]
    bad = (text == "") | (text == AGGREGATED) | (np.char.find(text, "|") >= 0)
    if bad.any():
        raise ValueError(f"category key {key.key!r}: value {str(text[bad][0])!r} cannot be part of a category label "
                         "(empty, '*' or containing '|')")
    return text, inv.astype(np.int64).ravel()


def _category_codes(standing: Any, categories: Categories) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct category labels, index of each MPAN's label), without building a string per MPAN."""
    if isinstance(standing, (xr.Dataset, xr.DataArray)):  # straight from the coordinates: no DataFrame
        columns = {k: standing[k].to_numpy() for k in categories.split
                   if k in standing.coords and standing[k].dims == ("mpan",)}
        n = standing.sizes["mpan"]
    else:
        table = standing_table(standing, categories.split)
        columns, n = {k: table[k].to_numpy() for k in table.columns}, len(table)
    missing = [k for k in categories.split if k not in columns]
    if missing:
        raise ValueError(f"category_of: standing data lack the category key(s) {missing}")
    texts, codes = [], []
    for k in categories.keys:  # a handful of keys
        t, c = _key_codes(k, columns[k.key]) if k.key in categories.split else \
            (np.array([AGGREGATED]), np.zeros(n, dtype=np.int64))
        texts.append(t)
        codes.append(c)
    if n == 0:
        return np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64)
    combined = np.ravel_multi_index(codes, [t.size for t in texts]) if len(codes) > 1 else codes[0]
    combos, inv = np.unique(combined, return_inverse=True)
    parts = np.unravel_index(combos, [t.size for t in texts])
    labels = np.array(["|".join(str(texts[i][p[j]]) for i, p in enumerate(parts)) for j in range(combos.size)],
                      dtype=str)  # one label per distinct category
    order = np.argsort(labels, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return labels[order], rank[inv.ravel()]


def category_of(standing: Any, categories: Categories | None = None) -> np.ndarray:
    """Load-shape category label of each MPAN.

    Parameters
    ----------
    standing : DataFrame or Dataset
        Standing data indexed by MPAN (columns = the category keys), or a meter cube.
    categories : Categories, optional
        Default :func:`load_categories` (then the labels equal
        :func:`tomlib.services.processing_estimation.category_labels`).

    Returns
    -------
    ndarray of str (n_mpan,)
        E.g. ``"_C|W|S|D|AI"``; ``*`` for a key that does not split categories.
    """
    labels, code = _category_codes(standing, categories if categories is not None else load_categories())
    return labels[code]


def _level_labels(labels: np.ndarray, categories: Categories, kept: Sequence[str]) -> np.ndarray:
    """Category labels with every key not in ``kept`` aggregated (operates on unique labels: few)."""
    names = categories.names
    split = np.array([lab.split("|") for lab in labels], dtype=object).reshape(len(labels), len(names))
    for i, name in enumerate(names):
        if name not in kept:
            split[:, i] = AGGREGATED
    return np.array(["|".join(row) for row in split], dtype=str)


def _key_coords(labels: np.ndarray, categories: Categories) -> dict[str, tuple]:
    """Per-category key coordinates (IF022 wire values; ``*`` aggregated)."""
    split = np.array([lab.split("|") for lab in labels], dtype=object).reshape(len(labels), len(categories.keys))
    out = {}
    for i, k in enumerate(categories.keys):
        col = split[:, i].astype(str)
        if k.boolean:
            col = np.where(col == k.true_label, k.true_wire, np.where(col == k.false_label, k.false_wire, col))
        out[k.key] = ("category", col.astype(str), {"long_name": k.description or k.key,
                                                     "if022_field": k.if022_field})
    return out


def group_sums(values: np.ndarray, code: np.ndarray, n_groups: int, use: np.ndarray | None = None,
               weights: np.ndarray | None = None, chunk_cells: int = 1 << 23) -> tuple[np.ndarray, ...]:
    """Per group and period: sum of the used values, count of used rows, and sum of the row weights.

    Parameters
    ----------
    values : ndarray (n_row, n_time)
    code : ndarray of int (n_row,)
        Group of each row, 0..n_groups-1; every group must have at least one row.
    n_groups : int
    use : ndarray of bool (n_row, n_time), optional
        Cells to include (default: the finite values).
    weights : ndarray (n_row,), optional
        Row weights summed over the used cells (e.g. annual consumption).
    chunk_cells : int
        Cells handled at once: the rows are sorted by group once and reduced with ``np.add.reduceat``
        in blocks of whole periods, so memory stays bounded and the sums are exact and deterministic
        (no BLAS, no thread-dependent order).

    Returns
    -------
    sums : ndarray (n_groups, n_time)
    counts : ndarray of int64 (n_groups, n_time)
    weight_sums : ndarray (n_groups, n_time) or None
    """
    values = np.asarray(values)
    code = np.asarray(code, dtype=np.int64)
    n_row, n_time = values.shape
    order = np.argsort(code, kind="stable")
    starts = np.searchsorted(code[order], np.arange(n_groups))
    if n_groups and (np.diff(np.append(starts, n_row)) <= 0).any():
        raise ValueError("group_sums: every group needs at least one row")
    sums = np.zeros((n_groups, n_time))
    counts = np.zeros((n_groups, n_time), dtype=np.int64)
    wsums = np.zeros((n_groups, n_time)) if weights is not None else None
    if n_row == 0 or n_time == 0 or n_groups == 0:
        return sums, counts, wsums
    w_sorted = np.asarray(weights, dtype=float)[order][:, None] if weights is not None else None
    step = max(1, int(chunk_cells) // max(n_row, 1))
    for t0 in range(0, n_time, step):  # blocks of periods (memory bound); each block fully vectorised
        t1 = min(n_time, t0 + step)
        v = values[order, t0:t1]
        ok = np.isfinite(v) if use is None else (np.asarray(use[order, t0:t1], dtype=bool) & np.isfinite(v))
        sums[:, t0:t1] = np.add.reduceat(np.where(ok, v, 0.0), starts, axis=0)
        counts[:, t0:t1] = np.add.reduceat(ok, starts, axis=0, dtype=np.int64)
        if wsums is not None:
            wsums[:, t0:t1] = np.add.reduceat(np.where(ok, w_sorted, 0.0), starts, axis=0)
    return sums, counts, wsums


def as_cube(settled: Any) -> xr.Dataset:
    """A meter cube from a Dataset, a SegmentResult, or a sequence of them (joined on mpan)."""
    if hasattr(settled, "meters") and isinstance(settled.meters, xr.Dataset):
        return settled.meters
    if isinstance(settled, xr.Dataset):
        return settled
    if isinstance(settled, (list, tuple)) and settled:
        parts = [as_cube(s) for s in settled]
        return xr.concat(parts, dim="mpan", coords="minimal", compat="override", combine_attrs="drop_conflicts",
                         join="exact")
    raise TypeError(f"expected a meter cube (Dataset), a SegmentResult or a list of them, got {type(settled).__name__}")


def regions_of(gsp_group: np.ndarray) -> np.ndarray:
    """Bank-holiday region (``england_wales`` / ``scotland``) of each GSP group id."""
    table = reference.gsp_groups()["region"]
    g = np.asarray(gsp_group).astype(str)
    out = table.reindex(g).to_numpy()
    if pd.isna(out).any():
        raise ValueError(f"unknown GSP group {str(g[pd.isna(out)][0])!r}")
    return out.astype(str)


def _profile_share(profile_class: np.ndarray, region: np.ndarray, times: pd.DatetimeIndex) -> np.ndarray:
    """Share of a year's consumption per period of a profile class shape [1/year], (n, n_time)."""
    from tomlib.market import profile_class_energy

    if len(times) == 0 or np.size(profile_class) == 0:
        return np.zeros((np.size(profile_class), len(times)))
    year = int(cal.from_utc(times[:1])[0][0].year)
    return profile_class_energy(reference.profile_class_shapes(), np.asarray(profile_class, dtype=int),
                                np.ones(np.size(profile_class)), np.asarray(region), times, reference_year=year)


# ------------------------------------------------------------------------------------------ the service


def load_shapes(settled: Any, run: str = "SF", config: Any = None) -> xr.Dataset:
    """Load shapes of one settlement run from settled (actual and estimated) data.

    Parameters
    ----------
    settled : Dataset, SegmentResult or list of them
        Meter cube(s) over whole settlement days with ``energy`` [kWh], ``quality`` (DI-083 codes) and
        the standing coordinates (category keys, ``annual_consumption`` [kWh/year]).
    run : str
        Settlement run (II, SF, R1, R2, R3, RF, DF).
    config : LoadShapeConfig or dict, optional

    Returns
    -------
    Dataset
        ``load_shape(category, time)`` [kWh per MPAN per period], the DataArray processing uses,
        carrying the coordinates ``population``, ``default_flag`` (DI-154), ``default_shape``,
        ``fallback_level`` (0 own, 1.. fallback levels, then back stop, no data),
        ``source_population`` (MPANs behind the value) and ``annual_total`` [kWh/year] on
        (category, time); per category the key coordinates (IF022 values, ``*`` aggregated) and
        ``category_mpans``. attrs: source, run, run_number, min_population, categories, levels.
    """
    cfg = LoadShapeConfig.coerce(config)
    if run not in RUN_NUMBERS:
        raise ValueError(f"load_shapes: run must be one of {', '.join(RUN_NUMBERS)}, got {run!r}")
    ds = as_cube(settled)
    for need in (cfg.energy_var, "quality", "annual_consumption"):
        if need not in ds.variables:
            raise ValueError(f"load_shapes: the settled cube has no {need!r}")
    cats = cfg.definition
    times = pd.DatetimeIndex(ds["time"].to_numpy())
    _check_whole_days(times, "load_shapes")
    uniq, code = _category_codes(ds, cats)
    if code.size == 0:
        raise ValueError("load_shapes: the settled cube has no MPANs")
    energy = ds[cfg.energy_var].transpose("mpan", "time").to_numpy()
    quality = ds["quality"].transpose("mpan", "time").to_numpy()
    ac = ds["annual_consumption"].to_numpy().astype(float)
    sums, counts, ac_sums = group_sums(energy, code, uniq.size, use=_used_cells(ds, quality, cfg), weights=ac,
                                       chunk_cells=cfg.chunk_cells)

    value = np.full(sums.shape, np.nan)
    annual = np.full(sums.shape, np.nan)
    source_pop = np.zeros(sums.shape, dtype=np.int64)
    level = np.full(sums.shape, _NO_LEVEL, dtype=np.uint8)
    for i, (_, kept) in enumerate(cats.levels):  # own category, then each fallback level
        grp, inv = np.unique(_level_labels(uniq, cats, kept), return_inverse=True)
        s, n, a = (np.zeros((grp.size, sums.shape[1]), dtype=x.dtype) for x in (sums, counts, ac_sums))
        for acc, x in ((s, sums), (n, counts), (a, ac_sums)):
            np.add.at(acc, inv, x)
        s, n, a = s[inv], n[inv], a[inv]
        take = (level == _NO_LEVEL) & (n >= cfg.min_population)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(take, s / n, value)
            annual = np.where(take, a / n, annual)
        source_pop = np.where(take, n, source_pop)
        level = np.where(take, np.uint8(i), level)

    # back stop and no data
    n_levels = len(cats.levels)
    keys = _key_coords(uniq, cats)
    rest = level == _NO_LEVEL
    if rest.any():
        st = standing_table(ds, ["domestic", "gsp_group"])
        cat_ac = pd.Series(ac).groupby(code).mean().reindex(range(uniq.size)).to_numpy()
        mq = keys["measurement_quantity"][1] if "measurement_quantity" in keys else np.full(uniq.size, "AI")
        dom = st["domestic"].to_numpy(dtype=bool) if "domestic" in st else np.zeros(len(st), bool)
        dom_share = pd.Series(dom.astype(float)).groupby(code).mean().reindex(range(uniq.size)).to_numpy()
        pcs = dict(cfg.back_stop_profile_class)
        pc = np.where(dom_share >= 0.5, pcs["domestic"], pcs["non_domestic"])
        regions = pd.Series(regions_of(st["gsp_group"].to_numpy())).groupby(code).agg(
            lambda r: r.mode().iloc[0]).reindex(range(uniq.size)).to_numpy().astype(str)
        back = _profile_share(pc, regions, times) * cat_ac[:, None]
        export = (mq == "AE")[:, None]
        value = np.where(rest, np.where(export, 0.0, back), value)
        annual = np.where(rest, cat_ac[:, None], annual)
        level = np.where(rest, np.where(export, n_levels + 1, n_levels), level).astype(np.uint8)

    flag = np.full(level.shape, FLAGS["default"], dtype="<U1")
    flag[level == 0] = FLAGS["actual"]
    flag[level == n_levels] = FLAGS["back_stop"]
    flag[level == n_levels + 1] = FLAGS["no_data"]
    level_names = [name for name, _ in cats.levels] + ["back_stop", "no_data"]
    out = xr.Dataset(
        {"load_shape": (("category", "time"), value, {
            "units": "kWh", "long_name": "load shape: mean actual energy per MPAN in the period (IF022 "
                                         "loadShapePeriodValue)"})},
        coords={
            "category": ("category", uniq, {"long_name": "load-shape category label"}),
            "time": ("time", times.to_numpy(), dict(cube.TIME_ATTRS)),
            **keys,
            "category_mpans": ("category", np.bincount(code, minlength=uniq.size).astype(np.int64),
                               {"long_name": "MPANs of the category in the settled input", "units": "1"}),
            "population": (("category", "time"), counts, {
                "long_name": "MPANs of the category with an actual value in the period", "units": "1"}),
            "default_flag": (("category", "time"), flag, {
                "long_name": "defaultLoadShapeFlag (DI-154): A actual, D standard default, E back stop, B no data"}),
            "default_shape": (("category", "time"), flag != FLAGS["actual"], {"long_name": "value is a default"}),
            "fallback_level": (("category", "time"), level, {
                "long_name": "level the value comes from", "flag_values": np.arange(len(level_names), dtype=np.uint8),
                "flag_meanings": " ".join(level_names)}),
            "source_population": (("category", "time"), source_pop, {
                "long_name": "MPANs with actual data behind the value", "units": "1"}),
            "annual_total": (("category", "time"), annual, {
                "long_name": "annual total behind the value (rolling annual total where a full year is covered, "
                             "else the mean annual consumption of the MPANs behind it)", "units": "kWh/year"}),
        },
        attrs={
            "source": f"tomlib.services.load_shaping (LSS), run {run}: mean of actual data per category, "
                      f"min population {cfg.min_population}",
            "run": run, "run_number": RUN_NUMBERS[run], "min_population": int(cfg.min_population),
            "categories": cats.describe(), "category_keys": "|".join(cats.names),
            "category_split": "|".join(cats.split), "levels": " ".join(level_names),
            "as_of": str(ds.attrs.get("as_of", "")),
        },
    )
    out = cube.add_settlement_coords(out)
    # the DataArray travels alone into processing: it carries the provenance too
    out["load_shape"].attrs.update({k: v for k, v in out.attrs.items()})
    totals = load_shape_totals(out, cfg)
    full = (totals["rolling_annual_days"] >= totals["rolling_annual_window"]).to_numpy()
    if full.any():
        day = np.unique(cal.from_utc(times)[0].to_numpy(), return_inverse=True)[1]
        rolling = totals["rolling_annual_total"].to_numpy()[:, day]
        out["annual_total"].values = np.where(full[:, day], rolling, out["annual_total"].to_numpy())
    return out


def _used_cells(ds: xr.Dataset, quality: np.ndarray, cfg: LoadShapeConfig) -> np.ndarray:
    """(mpan, time) cells whose value enters the means: actual data, less the excluded MPANs."""
    is_actual = np.zeros(256, dtype=bool)
    is_actual[cube.quality_code(list(cfg.actual_quality))] = True
    use = is_actual[quality]
    if cfg.exclude_generation_imports and "linked_mpan" in ds.coords:
        generation = (ds["measurement_quantity"].to_numpy().astype(str) == "AI") & (
            ds["linked_mpan"].to_numpy().astype(str) != "")
        use &= ~generation[:, None]
    return use


def _check_whole_days(times: pd.DatetimeIndex, where: str) -> None:
    if len(times) == 0:
        raise ValueError(f"{where}: the time axis is empty")
    if len(times) > 1 and (np.diff(times.asi8) != cal.PERIOD.value).any():
        raise ValueError(f"{where}: the time axis must be contiguous 30-minute periods")
    dates, periods = cal.from_utc(times)
    if periods[0] != 1:
        raise ValueError(f"{where}: the time axis must start at settlement period 1, got period {periods[0]} of "
                         f"{dates[0]:%Y-%m-%d}")
    last = dates[-1]
    if periods[-1] != cal.periods_in_day(last):
        raise ValueError(f"{where}: the time axis must end with a whole settlement day, got period {periods[-1]} "
                         f"of {last:%Y-%m-%d} (which has {cal.periods_in_day(last)})")


def load_shape_totals(shapes: xr.Dataset, config: Any = None, history: xr.Dataset | None = None) -> xr.Dataset:
    """IF023 load-shape totals per category and settlement day.

    Parameters
    ----------
    shapes : Dataset
        Of :func:`load_shapes` (whole settlement days).
    config : LoadShapeConfig, optional
        Its ``peak_periods`` table sets the peak / off-peak periods.
    history : Dataset, optional
        Earlier day totals (``day_total``, ``day_peak_total``, ``day_off_peak_total`` over
        (category, settlement_date), e.g. an earlier call's output) counted in the rolling windows;
        days also in ``shapes`` are taken from ``shapes``.

    Returns
    -------
    Dataset
        Over (category, settlement_date) for the days of ``shapes``: ``day_total``,
        ``day_peak_total``, ``day_off_peak_total``, ``rolling_7day_total`` (+ ``_peak_`` /
        ``_off_peak_``), ``rolling_annual_total`` [kWh per MPAN]; coverage ``rolling_7day_days``,
        ``rolling_annual_days`` and the window lengths ``rolling_annual_window`` [days];
        ``periods`` (46/48/50) and ``default_periods`` (periods with a default value) per day.
    """
    cfg = LoadShapeConfig.coerce(config)
    ls = shapes["load_shape"].transpose("category", "time")
    times = pd.DatetimeIndex(ls["time"].to_numpy())
    _check_whole_days(times, "load_shape_totals")
    values = ls.to_numpy()
    band = peak_bands(cfg.peak_periods)[cal.local_clock_index(times)]
    dates = cal.from_utc(times)[0].to_numpy()
    days, starts = np.unique(dates, return_index=True)
    day_total = np.add.reduceat(values, starts, axis=1)
    peak = np.add.reduceat(np.where(band == "peak", values, 0.0), starts, axis=1)
    off = np.add.reduceat(np.where(band == "off_peak", values, 0.0), starts, axis=1)
    default = np.add.reduceat(ls["default_shape"].transpose("category", "time").to_numpy()
                              if "default_shape" in ls.coords else np.zeros(values.shape, bool), starts, axis=1)
    cats = ls["category"].to_numpy().astype(str)

    all_days, tables = days, (day_total, peak, off)
    if history is not None:
        h = history.reindex(category=cats)
        h_days = h["settlement_date"].to_numpy().astype("datetime64[ns]")
        keep = ~np.isin(h_days, days)
        all_days = np.concatenate([h_days[keep], days])
        tables = tuple(np.concatenate([np.nan_to_num(h[v].transpose("category", "settlement_date").to_numpy()[:, keep]),
                                       own], axis=1)
                       for v, own in zip(("day_total", "day_peak_total", "day_off_peak_total"), tables))
        order = np.argsort(all_days, kind="stable")
        all_days = all_days[order]
        tables = tuple(t[:, order] for t in tables)
        present = np.concatenate([np.isfinite(h["day_total"].transpose("category", "settlement_date").to_numpy()
                                              [:, keep]), np.ones((cats.size, days.size), bool)], axis=1)[:, order]
    else:
        present = np.ones((cats.size, days.size), bool)
    day_no = (all_days.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    own_no = (days.astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    annual_start = (pd.DatetimeIndex(days) - pd.DateOffset(years=1)).to_numpy().astype("datetime64[D]")
    annual_len = own_no - (annual_start - np.datetime64("1970-01-01", "D")).astype(np.int64)
    rolled = {}
    for name, t in zip(("", "_peak", "_off_peak"), tables):  # three totals
        rolled[f"rolling_7day{name}_total"], n7 = _window_sums(t, present, day_no, own_no, np.full(days.size, 7))
        if name == "":
            rolled["rolling_annual_total"], n_annual = _window_sums(t, present, day_no, own_no, annual_len)
    dims = ("category", "settlement_date")
    kwh = {"units": "kWh"}
    out = xr.Dataset(
        {
            "day_total": (dims, day_total, {**kwh, "long_name": "loadShapeDayTotal"}),
            "day_peak_total": (dims, peak, {**kwh, "long_name": "loadShapeDayPeakTotal"}),
            "day_off_peak_total": (dims, off, {**kwh, "long_name": "loadShapeDayOffPeakTotal"}),
            "rolling_7day_total": (dims, rolled["rolling_7day_total"],
                                   {**kwh, "long_name": "loadShape7DayRollingTotal"}),
            "rolling_7day_peak_total": (dims, rolled["rolling_7day_peak_total"],
                                        {**kwh, "long_name": "loadShape7DayRollingPeakTotal"}),
            "rolling_7day_off_peak_total": (dims, rolled["rolling_7day_off_peak_total"],
                                            {**kwh, "long_name": "loadShape7DayRollingOffPeakTotal"}),
            "rolling_annual_total": (dims, rolled["rolling_annual_total"],
                                     {**kwh, "long_name": "loadShapeRollingAnnualTotal (over the days available)"}),
            "rolling_7day_days": (dims, n7, {"units": "days", "long_name": "days available in the 7-day window"}),
            "rolling_annual_days": (dims, n_annual, {"units": "days",
                                                     "long_name": "days available in the annual window"}),
        },
        coords={
            "category": ("category", cats),
            **{c: ("category", ls[c].to_numpy()) for c in ls.coords if ls[c].dims == ("category",) and c != "category"},
            "settlement_date": ("settlement_date", days.astype("datetime64[ns]")),
            "rolling_annual_window": ("settlement_date", annual_len, {"units": "days"}),
            "periods": ("settlement_date", np.diff(np.append(starts, len(times))).astype(np.int64)),
            "default_periods": (dims, default.astype(np.int64)),
        },
        attrs={**{k: v for k, v in shapes.attrs.items() if k in ("run", "run_number", "source", "as_of",
                                                                  "categories", "min_population")},
               "peak_periods": str(cfg.peak_periods or PEAK_PERIODS_PATH.name)},
    )
    return out


def _window_sums(table: np.ndarray, present: np.ndarray, day_no: np.ndarray, own_no: np.ndarray,
                 length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of ``table`` columns over the days (own - length, own] that are present, and their count."""
    csum = np.concatenate([np.zeros((table.shape[0], 1)), np.cumsum(np.where(present, table, 0.0), axis=1)], axis=1)
    cnt = np.concatenate([np.zeros((table.shape[0], 1), np.int64), np.cumsum(present, axis=1)], axis=1)
    hi = np.searchsorted(day_no, own_no, side="right")
    lo = np.searchsorted(day_no, own_no - length, side="right")
    return csum[:, hi] - csum[:, lo], cnt[:, hi] - cnt[:, lo]


# ------------------------------------------------------------------------------------------ processing hooks


def to_processing(shapes: xr.Dataset | xr.DataArray, standing: Any) -> xr.DataArray:
    """The load shape re-labelled with processing's category labels of the given MPANs.

    For the default category definition this is the shape itself; for a coarsened definition each
    of processing's full categories takes its coarse category's values.

    Parameters
    ----------
    shapes : Dataset or DataArray
        Of :func:`load_shapes`.
    standing : DataFrame or Dataset
        Standing data of the MPANs processing settles.

    Raises
    ------
    ValueError
        If a refined definition gives one processing category several shapes, or a category is
        missing from ``shapes``.
    """
    from tomlib.services.processing_estimation import category_labels

    da = shapes["load_shape"] if isinstance(shapes, xr.Dataset) else shapes
    defn = _definition_of(da)
    table = standing_table(standing)
    plab = category_labels(table)
    mlab = category_of(table, defn)
    pairs = pd.DataFrame({"p": plab, "m": mlab}).drop_duplicates()
    clash = pairs["p"].duplicated(keep=False)
    if clash.any():
        p = pairs.loc[clash, "p"].iloc[0]
        raise ValueError(f"to_processing: processing category {str(p)!r} has several load shapes "
                         f"({sorted(pairs.loc[pairs['p'] == p, 'm'])}); processing cannot use a refined definition")
    rows = pd.Index(da["category"].to_numpy().astype(str)).get_indexer(pairs["m"].to_numpy(dtype=str))
    if (rows < 0).any():
        raise ValueError(f"to_processing: the load shapes lack category "
                         f"{str(pairs['m'].to_numpy(dtype=str)[rows < 0][0])!r}")
    out = da.isel(category=rows).assign_coords(category=("category", pairs["p"].to_numpy(dtype=str)))
    return out.sortby("category")


def _definition_of(da: xr.DataArray) -> Categories:
    """The category definition behind a load shape (attrs ``category_keys`` / ``category_split``, written
    by :func:`load_shapes`; else the shipped keys, aggregated where the key coordinate is all ``*``)."""
    base = load_categories()
    keys = str(da.attrs.get("category_keys", "|".join(base.names))).split("|")
    for k in keys:
        if k not in base.names:
            base = base.refine(k)
    if "category_split" in da.attrs:
        split = str(da.attrs["category_split"]).split("|")
    else:
        split = [k for k in base.split if k not in da.coords
                 or (np.asarray(da[k].values).astype(str) != AGGREGATED).any()]
    return base.coarsen(*[k for k in base.split if k not in split])


def shape_provider(config: Any = None, processing_config: Any = None):
    """A ``load_shapes`` callable for :class:`tomlib.services.processing.ProcessingConfig`.

    ``f(market, as_of, run)`` takes the actual (quality A) data processing holds at ``as_of`` over the
    market's whole window -- they do not depend on load shapes -- and returns this service's shapes,
    re-labelled for processing (:func:`to_processing`).
    """
    cfg = LoadShapeConfig.coerce(config)

    def provide(market, as_of, run):
        from tomlib.services import processing

        pcfg = processing_config
        if pcfg is None or not isinstance(pcfg, processing.ProcessingConfig):
            pcfg = processing.ProcessingConfig.from_scenario(pcfg)
        pcfg = dataclasses.replace(pcfg, load_shapes=None)
        days = np.unique(np.asarray(market.meters["settlement_date"].values))
        res = processing.settle_segment(market, as_of, run=run, settlement_dates=days, config=pcfg)
        da = to_processing(load_shapes(res.meters, run=run, config=cfg), res.meters)
        da.attrs["as_of"] = str(pd.Timestamp(as_of))
        return da

    return provide


# ------------------------------------------------------------------------------------------ the truth


def true_shapes(market: Any, shapes: xr.Dataset, settled: Any = None, config: Any = None) -> xr.DataArray:
    """The true mean shape of each category: mean TRUE energy over all its MPANs (estimated ones included).

    Parameters
    ----------
    market : Market
        The truth (``market.meters["energy"]``).
    shapes : Dataset
        Of :func:`load_shapes`; gives the categories and periods.
    settled : Dataset or SegmentResult, optional
        The settled input of ``shapes`` (its MPANs make the categories); default every MPAN of the
        market whose category is in ``shapes``.
    config : LoadShapeConfig, optional
        The config ``shapes`` was made with (category definition).

    Returns
    -------
    DataArray ``true_shape`` (category, time) [kWh per MPAN per period]
    """
    cfg = LoadShapeConfig.coerce(config)
    meters = market.meters if settled is None else market.meters.sel(mpan=as_cube(settled)["mpan"].values)
    times = shapes["time"].to_numpy()
    truth = meters["energy"].sel(time=times)
    labels = category_of(meters, cfg.definition)
    cats = shapes["category"].to_numpy().astype(str)
    code = pd.Index(cats).get_indexer(labels)
    keep = code >= 0
    sums, counts, _ = group_sums(truth.transpose("mpan", "time").to_numpy()[keep], code[keep], cats.size,
                                 chunk_cells=cfg.chunk_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return xr.DataArray(mean, dims=("category", "time"), coords={"category": cats, "time": times},
                        name="true_shape", attrs={"units": "kWh", "long_name": "true mean energy per MPAN"})


def shape_accuracy(shapes: xr.Dataset, truth: xr.DataArray, legacy: xr.DataArray | None = None) -> pd.DataFrame:
    """Error of each category's load shape against its true mean shape (and of the legacy profile).

    Parameters
    ----------
    shapes : Dataset
        Of :func:`load_shapes`.
    truth : DataArray
        Of :func:`true_shapes`.
    legacy : DataArray, optional
        Legacy profile of each category (:func:`tomlib.services.legacy_profiling.category_profiles`),
        compared the same way.

    Returns
    -------
    DataFrame
        Index ``category`` plus a last row ``all`` (every category, weighted by its MPANs): key
        columns, ``category_mpans``, ``mean_population``, ``default_share`` (periods with a default
        value) [-], ``true_kwh`` (per MPAN over the window), ``mae_pct`` (sum |LS - truth| / sum truth),
        ``bias_pct``, ``shape_mae_pct`` (the same after scaling each day's LS to the true day total:
        the error of the shape alone) [%]; with ``legacy``, ``legacy_mae_pct``, ``legacy_bias_pct``,
        ``legacy_shape_mae_pct``. The ``all`` row's errors cover the categories that every method
        compared has values for (with ``legacy``: the import categories), weighted by their MPANs.
    """
    ls = shapes["load_shape"].transpose("category", "time")
    cats = ls["category"].to_numpy().astype(str)
    t = truth.transpose("category", "time").sel(category=cats).to_numpy()
    w = shapes["category_mpans"].to_numpy().astype(float)
    day_starts = np.unique(cal.from_utc(ls["time"].to_numpy())[0].to_numpy(), return_index=True)[1]
    frame = pd.DataFrame({k: ls[k].to_numpy().astype(str) for k in load_categories().names if k in ls.coords},
                         index=pd.Index(cats, name="category"))
    frame["category_mpans"] = w.astype(np.int64)
    frame["mean_population"] = ls["population"].to_numpy().mean(axis=1)
    frame["default_share"] = ls["default_shape"].to_numpy().mean(axis=1)
    frame["true_kwh"] = t.sum(axis=1)
    errors = {"": ls.to_numpy()}
    if legacy is not None:
        errors["legacy_"] = legacy.transpose("category", "time").sel(category=cats).to_numpy()
    rows_all = {"category_mpans": int(w.sum()), "mean_population": float((frame["mean_population"]).sum()),
                "default_share": float(np.average(frame["default_share"], weights=w)),
                "true_kwh": float((t.sum(axis=1) * w).sum() / w.sum())}
    # the "all" row compares every method on the same categories: those each method has values for
    common = np.logical_and.reduce([np.isfinite(x).all(axis=1) for x in errors.values()])
    for prefix, x in errors.items():  # MHHS, legacy
        day_x = np.add.reduceat(np.nan_to_num(x), day_starts, axis=1)
        day_t = np.add.reduceat(t, day_starts, axis=1)
        reps = np.diff(np.append(day_starts, t.shape[1]))
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = x * np.repeat(np.where(day_x > 0, day_t / day_x, np.nan), reps, axis=1)
        # a category without a value somewhere (legacy: export) has no error; "all" covers the others
        ok = np.isfinite(x).all(axis=1)
        abs_e = np.where(ok, np.abs(x - t).sum(axis=1), np.nan)
        e = np.where(ok, (x - t).sum(axis=1), np.nan)
        shape_e = np.where(ok, np.nansum(np.abs(scaled - t), axis=1), np.nan)
        tot = t.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            frame[f"{prefix}mae_pct"] = 100 * abs_e / tot
            frame[f"{prefix}bias_pct"] = 100 * e / tot
            frame[f"{prefix}shape_mae_pct"] = 100 * shape_e / tot
        denom = (tot * w)[common].sum()
        for name, err in (("mae_pct", abs_e), ("bias_pct", e), ("shape_mae_pct", shape_e)):
            rows_all[f"{prefix}{name}"] = 100 * float((err * w)[common].sum() / denom) if denom else np.nan
    frame.loc["all"] = pd.Series(rows_all)
    return frame


# ------------------------------------------------------------------------------------------ summaries and checks


def settled_summary(settled: dict[str, Any], config: Any = None) -> pd.DataFrame:
    """What each run's settled input holds: MPANs, MPAN-periods, and the actual share of each.

    Parameters
    ----------
    settled : mapping run -> Dataset or SegmentResult
    config : LoadShapeConfig, optional
        Gives the quality labels that count as actual.

    Returns
    -------
    DataFrame
        Index ``run``: ``mpans``, ``mpan_periods``, ``actual_share_periods`` and
        ``actual_share_energy`` [-] (of the settled energy).
    """
    cfg = LoadShapeConfig.coerce(config)
    codes = cube.quality_code(list(cfg.actual_quality))
    rows = {}
    for run, s in settled.items():  # a handful of runs
        ds = as_cube(s)
        actual = np.isin(ds["quality"].to_numpy(), codes)
        e = ds[cfg.energy_var].to_numpy()
        rows[run] = {"mpans": ds.sizes["mpan"], "mpan_periods": int(actual.size),
                     "actual_share_periods": float(actual.mean()),
                     "actual_share_energy": float(np.nansum(np.where(actual, e, 0.0)) / np.nansum(e))}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("run")


def invariants(shapes: xr.Dataset, totals: xr.Dataset, settled: Any, config: Any = None) -> pd.DataFrame:
    """Invariants of one run's load shapes and totals, with their numbers.

    Returns
    -------
    DataFrame
        Columns ``check``, ``value``, ``limit`` and ``ok`` (value <= limit).
    """
    cfg = LoadShapeConfig.coerce(config)
    ds = as_cube(settled)
    ls = shapes["load_shape"].transpose("category", "time")
    v, pop = ls.to_numpy(), ls["population"].to_numpy()
    own = ls["fallback_level"].to_numpy() == 0
    code = pd.Index(ls["category"].to_numpy().astype(str)).get_indexer(category_of(ds, cfg.definition))
    sums, _, _ = group_sums(ds[cfg.energy_var].transpose("mpan", "time").to_numpy(), code, ls.sizes["category"],
                            use=_used_cells(ds, ds["quality"].transpose("mpan", "time").to_numpy(), cfg),
                            chunk_cells=cfg.chunk_cells)
    scale = max(float(np.abs(sums).max()), 1.0)
    dates = cal.from_utc(ls["time"].to_numpy())[0].to_numpy()
    day_sum = np.add.reduceat(v, np.unique(dates, return_index=True)[1], axis=1)
    days = pd.DatetimeIndex(totals["settlement_date"].to_numpy())
    expected_n = np.atleast_1d(cal.periods_in_day(days.to_numpy()))
    rows = [
        ("non-finite load-shape values", float((~np.isfinite(v)).sum()), 0.0),
        ("own-category values with population below the minimum", float((own & (pop < cfg.min_population)).sum()),
         0.0),
        ("population above the category's MPANs", float((pop > ls["category_mpans"].to_numpy()[:, None]).sum()), 0.0),
        ("max |LS x population - sum of actual energy| on own values [kWh]",
         float(np.abs(np.where(own, v * pop - sums, 0.0)).max()), 1e-9 * scale),
        ("values whose flag is not A/D/E/B", float((~np.isin(ls["default_flag"].to_numpy(), list(FLAGS.values())))
                                                   .sum()), 0.0),
        ("max |day total - sum of the day's values| [kWh]",
         float(np.abs(totals["day_total"].transpose("category", "settlement_date").to_numpy() - day_sum).max()), 1e-9),
        ("max |peak + off-peak - day total| [kWh]",
         float(np.abs(totals["day_peak_total"] + totals["day_off_peak_total"] - totals["day_total"]).max()), 1e-9),
        ("days whose period count differs from the calendar (46/48/50)",
         float((totals["periods"].to_numpy() != expected_n).sum()), 0.0),
        ("7-day windows covering more than 7 days", float((totals["rolling_7day_days"] > 7).sum()), 0.0),
    ]
    out = pd.DataFrame(rows, columns=["check", "value", "limit"])
    out["ok"] = out["value"] <= out["limit"]
    return out


# ------------------------------------------------------------------------------------------ stand-ins and bench


def example_settled_input(market: Any, actual_share: float = 0.8, seed: int = 0) -> xr.Dataset:
    """TEST/DEMO STAND-IN for a settled meter cube, made from the market's truth.

    Each MPAN-day is actual with probability ``actual_share`` (a deterministic draw from ``seed``):
    its periods carry the TRUE energy with quality ``A``. The other MPAN-days carry a deliberately
    naive estimate -- the annual consumption spread flat over the year (``AC / 365.25 / 48`` per
    period) -- with quality ``E9`` and estimation reason ``Missing``, so that a load shape that wrongly
    used estimates would show it. Real runs use :func:`tomlib.services.processing.settle_run`.

    Parameters
    ----------
    market : Market
    actual_share : float
        Share of MPAN-days with actual data [-], within [0, 1].
    seed : int

    Returns
    -------
    Dataset
        A meter cube over every MPAN and period of the market.
    """
    if not 0.0 <= actual_share <= 1.0:
        raise ValueError(f"example_settled_input: actual_share must be within [0, 1], got {actual_share}")
    meters = market.meters
    times = pd.DatetimeIndex(meters["time"].to_numpy())
    day = np.unique(cal.from_utc(times)[0].to_numpy(), return_inverse=True)[1]
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
    actual = (rng.random((meters.sizes["mpan"], int(day.max()) + 1)) < actual_share)[:, day]
    truth = meters["energy"].transpose("mpan", "time").to_numpy()
    ac = meters["annual_consumption"].to_numpy()
    energy = np.where(actual, truth, (ac / 365.25 / 48)[:, None])
    quality = np.where(actual, cube.QUALITY_CODES["A"], cube.QUALITY_CODES["E9"]).astype(np.uint8)
    reason = np.where(actual, 0, cube.ESTIMATION_REASONS["Missing"]).astype(np.uint8)
    out = cube.meter_cube(energy, times, meters["mpan"].to_numpy(), standing_table(meters), quality=quality,
                          estimation_reason=reason)
    out.attrs.update(stand_in="tomlib.services.load_shaping.example_settled_input: truth where actual, flat AC "
                              "estimate elsewhere", actual_share=float(actual_share), seed=int(seed))
    return out


def bench_inputs(mpan_days: int = 1_000_000, days: int = 7, seed: int = 0) -> dict:
    """Synthetic inputs of :func:`load_shapes` for the benchmark (no market generator needed).

    A week from 2026-03-23 (it holds the 46-period day 2026-03-29) and ``mpan_days // days`` MPANs over
    the 14 GSP groups: 85 % domestic, 10 % of them with an export MPAN, 15 % of MPAN-days estimated.

    Returns
    -------
    dict
        Keyword arguments of :func:`load_shapes`: ``settled`` (meter cube), ``run`` and ``config``.
        Throughput = ``load_shape.size`` (categories x periods) per second; MPAN-periods = ``settled
        ["energy"].size``.
    """
    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 2)
    first = pd.Timestamp("2026-03-23")
    times = cal.time_axis(first, first + pd.Timedelta(days=days - 1))
    groups = reference.gsp_groups().index.to_numpy().astype(str)
    dom = rng.random(n) < 0.85
    export = dom & (rng.random(n) < 0.1)
    ac = np.where(dom, rng.lognormal(np.log(2700), 0.5, n), rng.lognormal(np.log(15000), 0.6, n))
    standing = pd.DataFrame({
        "gsp_group": groups[rng.integers(0, groups.size, n)], "market_segment": "S", "connection_type": "W",
        "domestic": dom, "supplier": "ALFA", "bm_unit": "2__AALFA001", "llfc": "100",
        "measurement_quantity": np.where(export, "AE", "AI"), "annual_consumption": ac,
    }, index=pd.Index(np.char.zfill((10**12 + np.arange(n)).astype(str), 13), name="mpan"))
    k = cal.local_clock_index(times)
    base = 0.6 + 0.5 * np.sin((k - 14) / 48 * 2 * np.pi) ** 2 + (k >= 34) * (k <= 42) * 0.8
    energy = (ac / 365.0 / base.sum() * days)[:, None] * base[None, :] * rng.lognormal(0, 0.3, (n, len(times)))
    day = np.unique(cal.from_utc(times)[0].to_numpy(), return_inverse=True)[1]
    estimated = (rng.random((n, days)) < 0.15)[:, day]
    quality = np.where(estimated, cube.QUALITY_CODES["E9"], cube.QUALITY_CODES["A"]).astype(np.uint8)
    settled = cube.meter_cube(energy, times, standing.index.to_numpy(), standing, quality=quality)
    return {"settled": settled, "run": "SF", "config": LoadShapeConfig()}
