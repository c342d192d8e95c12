"""The benchmark of the chunked engine: per stage at 10^5, 10^6 and 10^7 MPAN-days, and the GB day.

``tom bench --scale`` (``make bench``) and ``tom bench --gb`` (``make bench-gb``) call this module;
its rows go into the same JSON file as the in-memory benchmark (key ``"scale"``) and a table.

Sizes
-----
A size of N MPAN-days is one settlement day of the ``gb`` scenario's settings with N import MPANs
in one GSP group (``_A``), so blocks are full size (500,000 import MPANs by default) from 10^6 up
and the cost can be compared across sizes: 10^5 is one block, 10^6 two, 10^7 twenty. Export MPANs
of solar homes come on top (about 1.4 %); meter-periods count every MPAN x period.

What is measured, per size
--------------------------
- by default one pass: ``tom settle --run SF`` with no market store
  (:func:`tomlib.scale.settle.settle_chunked`), each block task generating its block's market from
  its seed and settling it -- the whole chain, truth included; with ``store_market``
  (``tom bench --with-store``) ``tom generate`` (:func:`tomlib.scale.generate.generate_store`)
  and ``tom settle`` reading that store, timed apart;
- on a local cluster of ``workers`` processes: wall time [s] and the peak resident memory of the
  whole process tree (driver, scheduler, nannies, workers; :class:`~tomlib.scale.cluster.PeakMemory`)
  [bytes];
- per stage of the block tasks (:data:`tomlib.scale.settle.STAGES`): CPU seconds summed over the
  blocks (one core's worth of work; on a shared machine steadier than wall time), meter-periods
  per CPU second, and the largest worker RSS seen during the stage [bytes];
- linearity: cost per MPAN-day at each size over that at the smallest, and a least-squares fit
  ``wall = a + b x N``.

The GB day runs the same on the ``gb`` scenario (30 million MPANs), then checks one block of the
result against the in-memory path (:func:`tomlib.scale.settle.check_sample`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tomlib.scale.cluster import DEFAULT_MEMORY_LIMIT, DEFAULT_WORKERS, PeakMemory, open_runner
from tomlib.scale.plan import DEFAULT_BLOCK_MPANS

__all__ = ["SIZES", "ScaleRow", "format_table", "gb_day", "linearity", "merge_into", "run", "size_scenario",
           "warm_up"]

#: MPAN-days of the benchmark sizes.
SIZES = (100_000, 1_000_000, 10_000_000)

_GEN_STAGES = ("market generation", "market write")


@dataclass
class ScaleRow:
    """One row: a stage (or a whole command) at one size.

    Attributes
    ----------
    stage : str
        A block-task stage, or ``tom generate`` / ``tom settle`` / ``end to end`` (whole commands).
    mpan_days : int
        Import MPAN-days of the size (the GB day: the scenario's import MPANs).
    mpans : int
        MPANs settled (imports, exports, UMS).
    meter_periods : int
        Meter-periods the stage handled (its segment's for the segment services).
    wall_seconds : float, optional
        Wall time of a whole command [s].
    cpu_seconds : float, optional
        CPU time of a stage summed over the blocks [s].
    meter_periods_per_second : float
        Per wall second for commands, per CPU second (one core) for stages.
    peak_memory_bytes : int
        Process-tree peak for commands; the largest worker RSS during the stage for stages.
    blocks : int
    """

    stage: str
    mpan_days: int
    mpans: int
    meter_periods: int
    wall_seconds: float | None = None
    cpu_seconds: float | None = None
    meter_periods_per_second: float | None = None
    peak_memory_bytes: int | None = None
    blocks: int = 0
    notes: dict = field(default_factory=dict)


def size_scenario(mpan_days: int, base: str = "gb"):
    """The benchmark scenario of one size: ``base``'s settings, one day, ``mpan_days`` import MPANs in
    its first GSP group."""
    from tomlib import scenario as scenario_mod

    sc = scenario_mod.load_scenario(base)
    group = sc.gsp_groups[0]
    return sc.with_overrides({"name": f"bench_{mpan_days}", "gsp_groups": [group], "mpans": {group: int(mpan_days)},
                              "last_date": sc.first_date.date().isoformat()})


def _stage_rows(blocks_stats: list[tuple[dict, dict, dict, dict]], mpan_days: int, mpans: int, n_blocks: int,
                order) -> list[ScaleRow]:
    """Rows of the block stages from (cpu_seconds, seconds, peak_rss, cells) per block."""
    rows = []
    for stage in order:
        cpu = sum(b[0].get(stage, 0.0) for b in blocks_stats)
        if not any(stage in b[0] for b in blocks_stats):
            continue
        seg = {"processing (smart)": "S", "smart inputs (metering, retrieval, reading)": "S", "advanced (ADS)": "A",
               "unmetered (UMSDS)": "U"}.get(stage, "all")
        cells = int(sum(b[3].get(seg, 0) for b in blocks_stats))
        rows.append(ScaleRow(stage=stage, mpan_days=mpan_days, mpans=mpans, meter_periods=cells, cpu_seconds=cpu,
                             meter_periods_per_second=cells / cpu if cpu > 0 else None,
                             peak_memory_bytes=max(b[2].get(stage, 0) for b in blocks_stats), blocks=n_blocks,
                             notes={"wall_seconds_summed_over_blocks": sum(b[1].get(stage, 0.0)
                                                                            for b in blocks_stats)}))
    return rows


def _one(scenario, mpan_days: int, root: Path, *, runner, block_mpans: int, runs=("SF",), sample: bool = False,
         store_market: bool = True, log=print) -> list[ScaleRow]:
    """Generate and settle one scenario into ``root``; the rows of both commands and of every stage.

    With ``store_market`` False the market is not written: ``tom settle`` regenerates each block
    from its seed inside the block task (:func:`_one_pass`)."""
    from tomlib.scale.generate import generate_store
    from tomlib.scale.settle import STAGES, check_sample, settle_chunked

    if not store_market:
        return _one_pass(scenario, mpan_days, root, runner=runner, block_mpans=block_mpans, runs=runs,
                         sample=sample, log=log)

    store = root / scenario.name / "market.zarr"
    started = time.perf_counter()
    with PeakMemory() as mem_gen:
        done = generate_store(scenario, store, block_mpans=block_mpans, runner=runner)
    gen_wall = time.perf_counter() - started
    log(f"  generated {done.rows:,} MPANs in {len(done.plan)} blocks: {gen_wall:.1f} s, "
        f"peak {mem_gen.peak_bytes / 2**30:.2f} GiB")
    started = time.perf_counter()
    with PeakMemory() as mem_set:
        chunked = settle_chunked(scenario, list(runs), store=store, data_root=root, runner=runner)
    set_wall = time.perf_counter() - started
    log(f"  settled {', '.join(runs)}: {set_wall:.1f} s, peak {mem_set.peak_bytes / 2**30:.2f} GiB "
        f"(driver: {', '.join(f'{k} {v:.1f} s' for k, v in chunked.seconds.items())})")
    mpans = done.rows
    cells = int(sum(b["cells"] for b in done.blocks))
    n_b = len(done.plan)
    notes = {**_checks_notes(chunked.result), "runner": chunked.runner}
    gen_cpu = sum(sum(b["cpu_seconds"].values()) for b in done.blocks)
    set_cpu = sum(sum(b.cpu_seconds.values()) for b in chunked.blocks)
    if sample:
        ds = chunked.result.runs[runs[0]].dataset
        smallest = int(np.argmin([b.import_mpans for b in done.plan.blocks]))
        notes["sample_check"] = check_sample(ds, scenario, smallest, store=store)
        log(f"  sample block {notes['sample_check']['block']} against the in-memory path: {notes['sample_check']}")
    rows = [
        ScaleRow("tom generate", mpan_days, mpans, cells, wall_seconds=gen_wall, cpu_seconds=gen_cpu,
                 meter_periods_per_second=cells / gen_wall, peak_memory_bytes=mem_gen.peak_bytes, blocks=n_b),
        ScaleRow(f"tom settle --run {','.join(runs)}", mpan_days, mpans, cells, wall_seconds=set_wall,
                 cpu_seconds=set_cpu, meter_periods_per_second=cells / set_wall, peak_memory_bytes=mem_set.peak_bytes,
                 blocks=n_b, notes={**notes, "driver_seconds": chunked.seconds}),
        ScaleRow("end to end", mpan_days, mpans, cells, wall_seconds=gen_wall + set_wall, cpu_seconds=gen_cpu + set_cpu,
                 meter_periods_per_second=cells / (gen_wall + set_wall),
                 peak_memory_bytes=max(mem_gen.peak_bytes, mem_set.peak_bytes), blocks=n_b),
    ]
    gen_stats = [(b["cpu_seconds"], b["seconds"], b["peak_rss"], {"all": b["cells"]}) for b in done.blocks]
    rows += _stage_rows(gen_stats, mpan_days, mpans, n_b, _GEN_STAGES)
    set_stats = [(b.cpu_seconds, b.seconds, b.peak_rss, b.cells) for b in chunked.blocks]
    rows += _stage_rows(set_stats, mpan_days, mpans, n_b, [s for s in STAGES if s not in _GEN_STAGES])
    return rows


def _one_pass(scenario, mpan_days: int, root: Path, *, runner, block_mpans: int, runs=("SF",),
              sample: bool = False, log=print) -> list[ScaleRow]:
    """Settle one scenario with no market store: every block task generates its block's market from
    its seed, settles it and keeps only its partials -- the whole chain in one pass, which is what
    ``tom settle`` does when no ``market.zarr`` exists. Rows: the command (= end to end) and its stages."""
    from tomlib.scale.settle import STAGES, check_sample, settle_chunked

    started = time.perf_counter()
    with PeakMemory() as mem:
        chunked = settle_chunked(scenario, list(runs), store=None, data_root=root, block_mpans=block_mpans,
                                 runner=runner)
    wall = time.perf_counter() - started
    log(f"  generated and settled {', '.join(runs)} in one pass: {wall:.1f} s, peak {mem.peak_bytes / 2**30:.2f} GiB "
        f"(driver: {', '.join(f'{k} {v:.1f} s' for k, v in chunked.seconds.items())})")
    mpans = int(sum(b.mpans for b in chunked.blocks))
    cells = int(sum(b.cells["all"] for b in chunked.blocks))
    n_b = len(chunked.plan)
    cpu = sum(sum(b.cpu_seconds.values()) for b in chunked.blocks)
    notes = {**_checks_notes(chunked.result), "runner": chunked.runner, "driver_seconds": chunked.seconds,
             "market": "regenerated from the block seeds inside the block tasks (no market store)",
             "blocks": _block_timings(chunked.blocks)}
    if sample:
        ds = chunked.result.runs[runs[0]].dataset
        smallest = int(np.argmin([b.import_mpans for b in chunked.plan.blocks]))
        notes["sample_check"] = check_sample(ds, scenario, smallest)
        log(f"  sample block {notes['sample_check']['block']} against the in-memory path: {notes['sample_check']}")
    rows = [ScaleRow(f"tom settle --run {','.join(runs)} (no store)", mpan_days, mpans, cells, wall_seconds=wall,
                     cpu_seconds=cpu, meter_periods_per_second=cells / wall, peak_memory_bytes=mem.peak_bytes,
                     blocks=n_b, notes=notes),
            ScaleRow("end to end", mpan_days, mpans, cells, wall_seconds=wall, cpu_seconds=cpu,
                     meter_periods_per_second=cells / wall, peak_memory_bytes=mem.peak_bytes, blocks=n_b,
                     notes={"market": notes["market"]})]
    stats = [(b.cpu_seconds, b.seconds, b.peak_rss, b.cells) for b in chunked.blocks]
    return rows + _stage_rows(stats, mpan_days, mpans, n_b, STAGES)


def _checks_notes(result) -> dict:
    """``checks_ok``, and each check that failed with its value and what was expected, so that a
    failure in a run nobody keeps can be read from the benchmark's JSON."""
    from tomlib import settlement

    table = settlement.check_table(result)
    failed = table.loc[~table["ok"], ["run", "check", "value", "expected"]]
    return {"checks_ok": bool(table["ok"].all()), "checks_failed": failed.to_dict("records"),
            "gsp_group_take_kwh": {run: res.checks["GSP group take [kWh]"] for run, res in result.runs.items()}}


def _block_timings(blocks) -> list[dict]:
    """Per block, in block order: name, MPANs, worker, start and end of its task [s from the first
    task's start], wall and CPU time summed over its stages [s], peak RSS [bytes] -- to see which
    blocks cost more than their size says, and how long a worker waited at the end."""
    first = min((b.span[0] for b in blocks), default=0.0)
    return [{"block": b.name, "mpans": b.mpans, "worker": b.worker, "start": round(b.span[0] - first, 3),
             "end": round(b.span[1] - first, 3), "seconds": round(sum(b.seconds.values()), 3),
             "cpu_seconds": round(sum(b.cpu_seconds.values()), 3), "peak_rss": max(b.peak_rss.values(), default=0)}
            for b in blocks]


def warm_up() -> None:
    """Import and load once what every block needs (modules, the LCL library, reference tables) by
    generating and settling a tiny block, so that the first size does not carry the workers' start."""
    from tomlib.scale.plan import plan_blocks
    from tomlib.scale.settle import settle_block

    sc = size_scenario(300).with_overrides({"name": "warm_up"})
    settle_block(0, sc.to_dict(), plan_blocks(sc).to_json(), ["SF"])


def run(sizes=SIZES, *, block_mpans: int = DEFAULT_BLOCK_MPANS, workers: int = DEFAULT_WORKERS,
        memory_limit: str = DEFAULT_MEMORY_LIMIT, scheduler: str | None = None, data_root: str | Path = "data",
        keep: bool = False, store_market: bool = False, log=print) -> list[ScaleRow]:
    """Rows of the chunked engine at each size (module docstring).

    Parameters
    ----------
    sizes : sequence of int
        MPAN-days.
    store_market : bool
        Write the market store and settle from it (``tom generate`` + ``tom settle``), instead of
        one pass in which each block task generates and settles its block.
    block_mpans, workers, memory_limit, scheduler
        As ``tom generate`` / ``tom settle``.
    data_root : path
        Where the temporary stores go (a folder ``bench-*`` inside, removed unless ``keep``).
    log : callable
        Progress lines.

    Returns
    -------
    list of ScaleRow
    """
    rows = []
    Path(data_root).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-", dir=data_root))
    try:
        with open_runner(scheduler=scheduler, workers=workers, memory_limit=memory_limit) as runner:
            runner.on_every_worker(warm_up)
            for size in sizes:  # three sizes
                log(f"{size:,} MPAN-days on {runner.description}")
                rows += _one(size_scenario(int(size)), int(size), root, runner=runner, block_mpans=block_mpans,
                             store_market=store_market, log=log)
                if not keep:
                    shutil.rmtree(root / f"bench_{int(size)}", ignore_errors=True)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def gb_day(scenario: str = "gb", *, block_mpans: int = DEFAULT_BLOCK_MPANS, workers: int = DEFAULT_WORKERS,
           memory_limit: str = DEFAULT_MEMORY_LIMIT, scheduler: str | None = None, data_root: str | Path = "data",
           keep: bool = False, store_market: bool = False, log=print) -> list[ScaleRow]:
    """The GB day end to end on a local cluster, then one block checked against the in-memory path.

    By default in one pass (``tom settle --run SF`` with no market store: each block task generates
    its market from its seed and settles it); with ``store_market``, ``tom generate`` writes the
    market store first and ``tom settle`` reads it. Rows as :func:`run`."""
    from tomlib import scenario as scenario_mod

    sc = scenario_mod.load_scenario(scenario)
    Path(data_root).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-gb-", dir=data_root))
    try:
        with open_runner(scheduler=scheduler, workers=workers, memory_limit=memory_limit) as runner:
            runner.on_every_worker(warm_up)
            log(f"GB day ({sc.name}, {sc.n_mpans:,} import MPANs) on {runner.description}")
            return _one(sc, sc.n_mpans, root, runner=runner, block_mpans=block_mpans, sample=True,
                        store_market=store_market, log=log)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def linearity(rows: list[ScaleRow], stage: str = "end to end", measure: str = "wall_seconds") -> dict:
    """How cost grows with size: per-MPAN-day cost at each size relative to the smallest, and a
    least-squares line ``cost = a + b x N`` with its R^2.

    Parameters
    ----------
    rows : list of ScaleRow
    stage : str
    measure : {"wall_seconds", "cpu_seconds"}
        Wall time, or CPU time summed over the blocks (steadier on a shared machine).

    Returns
    -------
    dict
        ``measure``, ``sizes``, ``seconds``, ``relative_cost_per_mpan_day`` [-], ``fixed_seconds``
        (a), ``seconds_per_million_mpan_days`` (b x 1e6), ``r2`` [-]; empty with fewer than two sizes.
    """
    pts = sorted((r.mpan_days, getattr(r, measure)) for r in rows if r.stage == stage and getattr(r, measure))
    if len(pts) < 2:
        return {}
    n = np.array([p[0] for p in pts], dtype=float)
    w = np.array([p[1] for p in pts], dtype=float)
    b, a = np.polyfit(n, w, 1)
    fit = a + b * n
    ss = float(((w - w.mean()) ** 2).sum())
    per = w / n
    return {"stage": stage, "measure": measure, "sizes": n.astype(int).tolist(), "seconds": w.tolist(),
            "relative_cost_per_mpan_day": (per / per[0]).tolist(), "fixed_seconds": float(a),
            "seconds_per_million_mpan_days": float(b * 1e6),
            "r2": 1.0 - float(((w - fit) ** 2).sum()) / ss if ss > 0 else 1.0}


def merge_into(out: str | Path, rows: list[ScaleRow], key: str = "scale") -> Path:
    """Add the rows (and their linearity) under ``key`` of the benchmark JSON file ``out``, atomically
    (the file is created if missing; other keys are kept)."""
    from tomlib.bench import machine_facts, update_json

    part = {"rows": [asdict(r) for r in rows],
            "linearity": {m: linearity(rows, measure=m) for m in ("wall_seconds", "cpu_seconds")},
            "load_average": list(os.getloadavg()), "written": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return update_json(out, {"machine": machine_facts(), key: part}, keep_machine=True)


def format_table(rows: list[ScaleRow]) -> str:
    """A fixed-width text table of scale rows, and the linearity line."""
    header = (f"{'stage':<46}{'MPAN-days':>12}{'meter-periods':>15}{'wall s':>9}{'cpu s':>9}"
              f"{'Mperiods/s':>11}{'peak GiB':>9}")
    lines = [header, "-" * len(header)]
    for r in rows:
        wall = f"{r.wall_seconds:9.1f}" if r.wall_seconds is not None else f"{'':9}"
        cpu = f"{r.cpu_seconds:9.1f}" if r.cpu_seconds is not None else f"{'':9}"
        rate = f"{r.meter_periods_per_second / 1e6:11.2f}" if r.meter_periods_per_second else f"{'':11}"
        peak = f"{r.peak_memory_bytes / 2**30:9.2f}" if r.peak_memory_bytes else f"{'':9}"
        lines.append(f"{r.stage[:45]:<46}{r.mpan_days:>12,}{r.meter_periods:>15,}{wall}{cpu}{rate}{peak}")
    for measure, word in (("wall_seconds", "wall"), ("cpu_seconds", "CPU")):
        lin = linearity(rows, measure=measure)
        if lin:
            rel = ", ".join(f"{n:,}: {c:.2f}" for n, c in zip(lin["sizes"], lin["relative_cost_per_mpan_day"]))
            lines.append(f"linearity (end to end, {word}): cost per MPAN-day relative to the smallest size {rel}; "
                         f"{word} = {lin['fixed_seconds']:.1f} s + {lin['seconds_per_million_mpan_days']:.1f} s per "
                         f"million MPAN-days (R^2 {lin['r2']:.4f})")
    lines.append("meter-periods/s: per wall second for commands, per CPU second (one core) for stages; peak: "
                 "process tree for commands, largest worker RSS in the stage for stages")
    return "\n".join(lines)
