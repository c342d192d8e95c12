"""Helpers shared by several test modules: hand-made markets, small generated scenarios, clock-change
days and the comparison of saved stores.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``, as for the other
cross-module imports of this suite). Nothing here is a fixture: each test module wraps what it needs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib import mpan as mpan_mod
from tomlib.market import Market

#: Attributes that legitimately differ between two processes running the same code on the same input:
#: ``code_version`` is tomlib's version plus the git commit and ``.dirty`` flag of the checkout that ran
#: (provenance). Byte-for-byte comparisons of stores written by different processes leave these out.
VOLATILE_ATTRS = ("code_version",)


# ------------------------------------------------------------------------------------------ hand-made markets


def hand_market(first, last, n: int = 6, *, gsp_group: str = "_C", kwh: float = 0.5, export: int = 0,
                seed: int = 7, pclass: int | None = None, domestic: bool = True,
                energy: Callable[[int, int], np.ndarray] | None = None) -> Market:
    """A hand-made market of ``n`` smart-segment import MPANs of one supplier in one GSP group.

    The first ``export`` imports have a linked export MPAN (rows ``n..n+export-1``). There are no line
    loss factors, unaccounted energy or GSP group take (empty arrays): enough for the smart input
    services (metering, retrieval, meter reading, processing), not for aggregation.

    Parameters
    ----------
    first, last : date-like
        Settlement days (inclusive).
    n : int
        Import MPANs.
    gsp_group : str
        GSP group of every MPAN (the MPAN cores get its distributor id).
    kwh : float
        Constant true energy of every MPAN and period [kWh], unless ``energy`` is given.
    export : int
        Export MPANs, linked to the first imports.
    seed : int
        Seed of the MPAN cores and of the market.
    pclass : int, optional
        Profile class of the imports (default 1).
    domestic : bool
    energy : callable, optional
        ``energy(n_mpans, n_periods) -> ndarray`` of true energy [kWh] (replaces ``kwh``).
    """
    times = cal.time_axis(first, last)
    n_all = n + export
    cores = mpan_mod.generate_cores([gsp_group] * n_all, np.random.default_rng(seed)).astype(str)
    values = np.full((n_all, len(times)), float(kwh)) if energy is None else np.asarray(
        energy(n_all, len(times)), dtype=float)
    linked = np.full(n_all, "", dtype=object)
    linked[:export] = cores[n:]
    linked[n:] = cores[:export]
    standing = pd.DataFrame(
        {
            "gsp_group": gsp_group,
            "market_segment": "S",
            "connection_type": "W",
            "domestic": domestic,
            "supplier": "ALFA",
            "bm_unit": f"2__{gsp_group.lstrip('_')}ALFA001",
            "llfc": "001",
            "measurement_quantity": ["AI"] * n + ["AE"] * export,
            "annual_consumption": 3000.0,
            "profile_class": [1 if pclass is None else pclass] * n + [0] * export,
            "linked_mpan": linked.astype(str),
        },
        index=pd.Index(cores, name="mpan"),
    )
    meters = cube.meter_cube(values, times, cores, standing)
    empty = xr.DataArray(np.zeros((0, len(times))), dims=("gsp_group", "time"))
    return Market(scenario_name="hand", seed=seed, meters=meters, line_loss_factors=empty,
                  unaccounted_energy=empty, gsp_group_take=empty)


# ------------------------------------------------------------------------------------------ days and scenarios


def last_sunday(year: int, month: int) -> dt.date:
    """Last Sunday of a month: the UK clock change is on the last Sunday of March (46 settlement periods)
    and of October (50)."""
    day = dt.date(year, month, 31)
    return day - dt.timedelta(days=(day.weekday() + 1) % 7)


def small_scenario(first: dt.date, last: dt.date | None = None, *, mpans: tuple[int, int] = (4, 3), seed: int = 1,
                   name: str | None = None, base: str = "tiny", **overrides):
    """A scenario like ``tiny`` (GSP groups _C and _P) over other days, with few MPANs.

    Parameters
    ----------
    first, last : date
        Settlement days (``last`` defaults to ``first``).
    mpans : (int, int)
        Import MPANs in _C and _P.
    seed : int
    name : str, optional
        Scenario name (output folder); default the base scenario's.
    **overrides
        Further dotted-key overrides (``"retrieval.duplicate_rate": 0.01``, ``segments={...}``).
    """
    from tomlib import scenario as scenario_mod

    settings = {"first_date": first, "last_date": last or first, "mpans": {"_C": mpans[0], "_P": mpans[1]},
                "seed": seed, **overrides}
    if name is not None:
        settings["name"] = name
    return scenario_mod.load_scenario(base).with_overrides(settings)


def periods_per_day(times) -> np.ndarray:
    """Number of settlement periods of each settlement day of a UTC time axis (46, 48 or 50)."""
    dates = cal.from_utc(pd.DatetimeIndex(np.asarray(times)))[0]
    return np.unique(dates.to_numpy(), return_counts=True)[1]


# ------------------------------------------------------------------------------------------ stores


def store_digests(path: str | Path, volatile: Iterable[str] = VOLATILE_ATTRS) -> dict[str, str]:
    """SHA-256 of every file of a saved store (a Zarr directory or a single file), by relative path.

    In Zarr metadata documents (``zarr.json``) the ``attributes`` named in ``volatile`` are left out,
    so stores written by two processes compare equal when they differ only in provenance that names
    the process's code checkout (:data:`VOLATILE_ATTRS`).
    """
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    drop = set(volatile)
    out = {}
    for f in files:
        data = f.read_bytes()
        if f.name == "zarr.json" and drop:
            meta = json.loads(data)
            attrs = meta.get("attributes") or {}
            if drop & set(attrs):
                meta["attributes"] = {k: v for k, v in attrs.items() if k not in drop}
                data = json.dumps(meta, sort_keys=True).encode()
        out[str(f.relative_to(path)) if f != path else f.name] = hashlib.sha256(data).hexdigest()
    return out


def visible_entries(folder: str | Path) -> list[str]:
    """Names in a folder that readers see (hidden temporaries of the atomic writers start with '.')."""
    return sorted(p.name for p in Path(folder).iterdir() if not p.name.startswith("."))


def hidden_entries(folder: str | Path) -> list[str]:
    """Hidden names in a folder (temporaries of :mod:`tomlib._io`)."""
    return sorted(p.name for p in Path(folder).iterdir() if p.name.startswith("."))


def open_offline(browser, path: str | Path):
    """Open a saved page in Chromium with every request other than file/data/blob aborted.

    Returns the page (still open), the URLs of failed requests and the console and page errors,
    both lists filling while the page runs."""
    failed, errors = [], []
    page = browser.new_page()
    page.route("**/*", lambda route: route.continue_()
               if route.request.url.startswith(("file:", "data:", "blob:")) else route.abort())
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(Path(path).resolve().as_uri(), wait_until="load")
    return page, failed, errors
