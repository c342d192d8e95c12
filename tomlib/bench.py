"""The benchmark behind ``tom bench`` / ``make bench``: throughput and peak memory of every stage.

Each service module that wants a row exposes ``bench_inputs(mpan_days, days, seed) -> dict`` — the
keyword arguments of its main function, built from synthetic data so the benchmark does not depend on
the market generator — and is listed in :data:`STAGES`. A stage whose module is absent is reported as
skipped with the reason, never left out silently.

How numbers are taken
---------------------
- *Wall time*: best of ``repeats`` calls (the minimum is the least noisy estimate on a shared machine).
- *Peak memory*: one further call under :mod:`tracemalloc`, which also sees NumPy's buffers; it is the
  extra memory the call itself allocates above what was already live [bytes].
- *Throughput*: meter-periods (MPAN × settlement period cells the stage processed) per second.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import platform
import time
import tracemalloc
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from tomlib._io import atomic_write_text


@dataclass(frozen=True)
class Stage:
    """One benchmarked function.

    Attributes
    ----------
    name : str
        Row label (the service's name).
    module : str
        Module holding ``bench_inputs`` and the function.
    function : str
        Function timed with the keyword arguments ``bench_inputs`` returns.
    max_mpan_days : int, optional
        Largest size worth timing; above it the row says skipped and why (a stage whose cost per
        meter-period is high would otherwise hold the whole benchmark for half an hour).
    """

    name: str
    module: str
    function: str
    max_mpan_days: int | None = None


STAGES: tuple[Stage, ...] = (
    Stage("market generation", "tomlib.market", "generate"),
    Stage("metering", "tomlib.services.metering", "build_metering"),
    Stage("retrieval", "tomlib.services.retrieval", "retrieve"),
    Stage("meter reading", "tomlib.services.meter_reading", "read_meters"),
    Stage("processing (smart)", "tomlib.services.processing", "process"),
    Stage("advanced (ADS)", "tomlib.services.advanced", "process"),
    Stage("load shaping", "tomlib.services.load_shaping", "load_shapes"),
    Stage("aggregation", "tomlib.services.aggregation", "aggregate"),
    Stage("GSP group correction", "tomlib.services.volume_allocation", "allocate"),
    Stage("DIP IF-021 (write + validate)", "tomlib.dip", "write_if021", max_mpan_days=100_000),
)


@dataclass
class StageResult:
    """One row of the benchmark table (times in seconds, memory in bytes)."""

    stage: str
    mpan_days: int
    meter_periods: int | None = None
    seconds: float | None = None
    meter_periods_per_second: float | None = None
    peak_memory_bytes: int | None = None
    skipped: str | None = None


def _mpan_time_size(value) -> int | None:
    """Cells of an MPAN × time array held by ``value`` (a Market, Dataset or DataArray), else None."""
    meters = getattr(value, "meters", None)  # a Market
    if isinstance(meters, xr.Dataset) and "energy" in meters:
        return int(meters["energy"].size)
    if isinstance(value, xr.DataArray) and "mpan" in value.dims and value.ndim >= 2:
        return int(value.size)
    if isinstance(value, xr.Dataset):
        for var in value.data_vars.values():
            if "mpan" in var.dims and var.ndim >= 2:
                return int(var.size)
    return None


def _meter_periods(kwargs: dict) -> int:
    """Meter-periods in a stage's inputs: the size of the first MPAN × time array found [-].

    Looks at the keyword arguments and, one level down, at the fields of container objects (such as
    the smart data a processing run receives); stages downstream of aggregation have no MPAN axis and
    state the meter-periods they stand for in ``attrs["meter_periods"]``.
    """
    values = list(kwargs.values())
    nested = [(name, v) for value in values
              if hasattr(value, "__dict__") and not isinstance(value, xr.Dataset | xr.DataArray)
              for name, v in vars(value).items()]
    for value in values + [v for _, v in nested]:
        size = _mpan_time_size(value)
        if size is not None:
            return size
    for name, value in nested:  # plain MPAN x period arrays, named by what they hold
        if name in {"hh", "energy"} and isinstance(value, np.ndarray) and value.ndim == 2:
            return int(value.size)
    for value in values:
        if isinstance(value, xr.Dataset | xr.DataArray) and "meter_periods" in value.attrs:
            return int(value.attrs["meter_periods"])
    raise ValueError("bench_inputs returned no MPAN x time array to count meter-periods from")


def _market_bench_inputs(mpan_days: int, days: int, seed: int) -> dict:
    """A demo-like scenario of ``mpan_days // days`` MPANs over ``days`` days from 2026-03-23."""
    import pandas as pd

    from tomlib import scenario as scenario_mod

    demo = scenario_mod.load_scenario(scenario_mod.default_scenario_path("demo"))
    n_mpans = max(mpan_days // days, 2)
    first = pd.Timestamp("2026-03-23")
    overrides = {
        "mpans": {"_C": n_mpans - n_mpans // 3, "_P": n_mpans // 3},
        "first_date": first.date().isoformat(),
        "last_date": (first + pd.Timedelta(days=days - 1)).date().isoformat(),
        "seed": seed,
    }
    return {"scenario": demo.with_overrides(overrides)}


def _inputs(stage: Stage, module, mpan_days: int, days: int, seed: int) -> dict:
    if stage.module == "tomlib.market":
        return _market_bench_inputs(mpan_days, days, seed)
    return module.bench_inputs(mpan_days=mpan_days, days=days, seed=seed)


def measure(stage: Stage, mpan_days: int, *, days: int = 7, seed: int = 0, repeats: int = 2) -> StageResult:
    """Time one stage at one size.

    Parameters
    ----------
    stage : Stage
    mpan_days : int
        MPANs × settlement days of the synthetic input [-].
    days : int
        Settlement days (a week from 2026-03-23 holds the 46-period day 2026-03-29).
    seed : int
    repeats : int
        Timed calls; the fastest counts.

    Returns
    -------
    StageResult
    """
    if stage.max_mpan_days is not None and mpan_days > stage.max_mpan_days:
        return StageResult(stage.name, mpan_days,
                           skipped=f"timed up to {stage.max_mpan_days:,} MPAN-days only (cost grows linearly)")
    try:
        module = importlib.import_module(stage.module)
    except ModuleNotFoundError as err:
        return StageResult(stage.name, mpan_days, skipped=f"{stage.module} is not installed ({err.name})")
    if stage.module != "tomlib.market" and not hasattr(module, "bench_inputs"):
        return StageResult(stage.name, mpan_days, skipped=f"{stage.module} has no bench_inputs()")
    function = getattr(module, stage.function)
    kwargs = _inputs(stage, module, mpan_days, days, seed)
    periods = _meter_periods(kwargs) if stage.module != "tomlib.market" else None

    best = float("inf")
    result = None
    for _ in range(max(repeats, 1)):
        gc.collect()
        started = time.perf_counter()
        result = function(**kwargs)
        best = min(best, time.perf_counter() - started)
    if periods is None:
        periods = int(result.meters["energy"].size)
    del result
    gc.collect()
    tracemalloc.start()
    try:
        function(**kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return StageResult(stage.name, mpan_days, periods, best, periods / best, int(peak))


def run(sizes=(100_000, 1_000_000), out: str | Path = "reports/bench/bench.json", stages=STAGES,
        days: int = 7, repeats: int = 2) -> list[StageResult]:
    """Run every stage at every size and write the results as JSON (atomically).

    Parameters
    ----------
    sizes : sequence of int
        MPAN-days per run [-].
    out : path
        JSON file written; a readable table is returned by :func:`format_table`.
    stages : sequence of Stage
    days : int
    repeats : int

    Returns
    -------
    list of StageResult
    """
    results = [measure(stage, int(size), days=days, repeats=repeats) for size in sizes for stage in stages]
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.machine(),
                    "cpus": os.cpu_count(), "numpy": np.__version__},
        "results": [asdict(r) for r in results],
    }
    atomic_write_text(out, json.dumps(payload, indent=2))
    return results


def format_table(results: list[StageResult]) -> str:
    """A fixed-width text table of benchmark results."""
    header = f"{'stage':<22}{'MPAN-days':>12}{'meter-periods':>15}{'seconds':>10}{'Mperiods/s':>12}{'peak MB':>10}"
    lines = [header, "-" * len(header)]
    for r in results:
        if r.skipped:
            lines.append(f"{r.stage:<22}{r.mpan_days:>12,}  skipped: {r.skipped}")
            continue
        lines.append(
            f"{r.stage:<22}{r.mpan_days:>12,}{r.meter_periods:>15,}{r.seconds:>10.3f}"
            f"{r.meter_periods_per_second / 1e6:>12.2f}{r.peak_memory_bytes / 2**20:>10.1f}"
        )
    return "\n".join(lines)
