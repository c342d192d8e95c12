"""The ``tom`` command: generate a market, settle it, build the reports, serve the dashboards, benchmark.

Each subcommand is a thin shell over a tomlib function, so whatever the command line does a notebook or
a test can do through the same call. Heavy imports happen inside the subcommands to keep ``tom --help``
instant.

Exit codes: 0 success; 1 a run or a report failed (the message says which); 2 bad arguments or input
(argparse's convention, also used for a scenario file that fails validation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DATA_ROOT = Path("data")
REPORTS_ROOT = Path("reports")


def market_store_path(scenario_name: str, data_root: Path = DATA_ROOT) -> Path:
    """Where ``tom generate`` keeps a scenario's market.

    Parameters
    ----------
    scenario_name : str
        The scenario's ``name``.
    data_root : Path
        Folder of generated data (git-ignored).

    Returns
    -------
    Path
        ``<data_root>/<scenario_name>/market.zarr``.
    """
    return Path(data_root) / scenario_name / "market.zarr"


def _load_scenario(spec: str):
    from tomlib import scenario as scenario_mod

    path = Path(spec)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = scenario_mod.default_scenario_path(spec)
    return scenario_mod.load_scenario(path), path


def _cmd_generate(args: argparse.Namespace) -> int:
    import time

    from tomlib import market as market_mod

    scenario, path = _load_scenario(args.scenario)
    started = time.perf_counter()
    out = Path(args.out) if args.out else market_store_path(scenario.name, Path(args.data_root))
    from tomlib import scale

    if scale.wants_chunked(scenario, args.engine):  # national scale: block by block (tomlib.scale)
        done = scale.generate_store(scenario, out, block_mpans=args.block_mpans, **_runner_options(args))
        print(f"generated scenario {scenario.name!r} from {path} in {len(done.plan)} blocks on {done.runner}: "
              f"{done.rows:,} MPANs in {done.seconds:.1f} s -> {out}")
        return 0
    market = market_mod.generate(scenario)
    out.parent.mkdir(parents=True, exist_ok=True)
    market.save(out)
    meters = market.meters
    print(
        f"generated scenario {scenario.name!r} from {path}: {meters.sizes['mpan']:,} MPANs x "
        f"{meters.sizes['time']:,} settlement periods in {time.perf_counter() - started:.1f} s -> {out}"
    )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from tomlib import reports

    scenario, path = _load_scenario(args.scenario)
    store = market_store_path(scenario.name, Path(args.data_root))
    result = reports.run_reports(
        path,
        notebooks=args.notebook or None,
        out_root=Path(args.out_root),
        market_path=store if store.exists() else None,
        pdf=not args.no_pdf,
    )
    print(f"index: {result.index_path}")
    if not result.ok:
        for failure in result.failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from tomlib import dashboards
    from tomlib import market as market_mod

    scenario, _ = _load_scenario(args.scenario)
    store = market_store_path(scenario.name, Path(args.data_root))
    market = market_mod.Market.open(store) if store.exists() else market_mod.generate(scenario)
    # the scenario asked for, not one looked up by the market's name (a YAML path may be anywhere)
    dashboards.serve_all(market, port=args.port, address=args.address, show=False, scenario=scenario,
                         scenario_dir=Path(args.scenario_dir or Path(args.data_root) / "scenarios"))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from tomlib import bench

    if not args.no_stages:
        results = bench.run(sizes=args.sizes, out=Path(args.out))
        print(bench.format_table(results))
    if args.scale or args.gb:  # the chunked engine (tomlib.scale.bench), into the same JSON
        from tomlib.scale import bench as scale_bench

        options = {"block_mpans": args.block_mpans, "workers": args.workers, "memory_limit": args.memory_limit,
                   "scheduler": args.scheduler, "data_root": args.data_root, "store_market": args.with_store}
        for key, wanted, rows_of in (("scale", args.scale, lambda: scale_bench.run(args.scale_sizes, **options)),
                                     ("gb_day", args.gb, lambda: scale_bench.gb_day(args.gb_scenario, **options))):
            if wanted:
                rows = rows_of()
                scale_bench.merge_into(args.out, rows, key=key)
                print(scale_bench.format_table(rows))
    print(f"written: {args.out}")
    return 0


def _runner_options(args: argparse.Namespace) -> dict:
    """Where the chunked engine runs its blocks (tomlib.scale.open_runner)."""
    return {"scheduler": args.scheduler, "workers": args.workers, "memory_limit": args.memory_limit}


def _cmd_settle(args: argparse.Namespace) -> int:
    from tomlib import scale, settlement

    scenario, _ = _load_scenario(args.scenario)
    runs = None if args.run.lower() == "all" else [r.strip().upper() for r in args.run.split(",")]
    store = market_store_path(scenario.name, Path(args.data_root))
    if args.engine != "memory" and (scale.wants_chunked(scenario, args.engine) or scale.is_market_store(store)):
        chunked = scale.settle_chunked(scenario, runs, data_root=Path(args.data_root), block_mpans=args.block_mpans,
                                       **_runner_options(args))
        print(f"settled {len(chunked.plan)} blocks ({chunked.source}) on {chunked.runner} in "
              f"{sum(chunked.seconds.values()):.1f} s")
        result = chunked.result
    else:
        result = settlement.settle_all(scenario, runs, data_root=Path(args.data_root))
    for name, run in result.runs.items():
        print(f"{name}: {run.path}")
    print(f"reconciliation: {result.path}")
    checks = settlement.check_table(result)
    failed = checks[~checks["ok"]]
    if len(failed):
        print(failed.to_string(), file=sys.stderr)
        return 1
    print(f"all {len(checks)} checks held")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tom`` (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="tom",
        description="tomlib: an executable model of the GB MHHS Target Operating Model.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def scenario_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scenario", default="demo", help="scenario name in datasets/scenarios or a YAML path")
        p.add_argument("--data-root", default=str(DATA_ROOT), help="folder of generated markets")

    def scale_args(p: argparse.ArgumentParser, engine: bool = True) -> None:  # tomlib.scale, README "National scale"
        from tomlib.scale import CHUNKED_ABOVE_MPANS, DEFAULT_BLOCK_MPANS
        from tomlib.scale.cluster import DEFAULT_MEMORY_LIMIT, DEFAULT_WORKERS

        if engine:
            p.add_argument("--engine", choices=("auto", "memory", "chunked"), default="auto",
                           help=f"in memory, or chunked in GSP group x MPAN blocks on dask; auto: chunked above "
                                f"{CHUNKED_ABOVE_MPANS:,} import MPANs (or when the market store is a chunked one)")
        p.add_argument("--block-mpans", type=int, default=DEFAULT_BLOCK_MPANS,
                       help="chunked: most import MPANs per block")
        p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="chunked: local worker processes")
        p.add_argument("--memory-limit", default=DEFAULT_MEMORY_LIMIT, help="chunked: memory limit per local worker")
        p.add_argument("--scheduler", help="chunked: address of a dask scheduler (tcp://host:8786) to run the blocks "
                                           "on a cluster instead of local workers")

    p = sub.add_parser("generate", help="generate a scenario's true-world market and save it")
    scenario_arg(p)
    p.add_argument("--out", help="store path (.zarr or .nc); default data/<scenario>/market.zarr")
    scale_args(p)
    p.set_defaults(func=_cmd_generate)

    p = sub.add_parser("settle", help="settlement runs on a scenario's market, saved with their reconciliation")
    scenario_arg(p)
    p.add_argument("--run", default="all",
                   help="settlement run(s): II, SF, R1, R2, R3, RF, DF, a comma-separated list, or 'all' "
                        "(every run of the scenario's timetable)")
    scale_args(p)
    p.set_defaults(func=_cmd_settle)

    p = sub.add_parser("report", help="run the service notebooks and write HTML/PDF reports and an index")
    scenario_arg(p)
    p.add_argument("--out-root", default=str(REPORTS_ROOT), help="reports folder")
    p.add_argument("--notebook", action="append", help="only this notebook (repeatable); default all")
    p.add_argument("--no-pdf", action="store_true", help="skip the PDF export (HTML only)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("serve", help="serve the dashboards with a Panel server")
    scenario_arg(p)
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--scenario-dir", help="folder the page 'scenario' writes new scenario files to; "
                                          "default <data-root>/scenarios")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("bench", help="measure throughput and peak memory; writes JSON and a table")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000],
                   help="input sizes in MPAN-days (a week of settlement days each); each size also runs the "
                        "aggregation + correction comparison with DuckDB, pandas and a plain sum")
    p.add_argument("--out", default=str(REPORTS_ROOT / "bench" / "bench.json"))
    p.add_argument("--no-stages", action="store_true", help="skip the in-memory stages (only --scale / --gb)")
    p.add_argument("--scale", action="store_true",
                   help="also the chunked engine per stage at --scale-sizes (tomlib.scale.bench)")
    p.add_argument("--scale-sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000],
                   help="chunked engine sizes in MPAN-days (one settlement day each)")
    p.add_argument("--gb", action="store_true", help="also the GB day end to end (30 million MPANs; long)")
    p.add_argument("--gb-scenario", default="gb", help="scenario of the GB day (gb, gb_spring, gb_autumn)")
    p.add_argument("--with-store", action="store_true",
                   help="--scale / --gb as tom generate (market store written) + tom settle (store read), instead "
                        "of one pass in which each block task generates and settles its block")
    p.add_argument("--data-root", default=str(DATA_ROOT), help="chunked: folder of the temporary market stores")
    scale_args(p, engine=False)
    p.set_defaults(func=_cmd_bench)

    from tomlib.dip import register_cli  # tom export / tom import of DIP messages

    register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tom`` console script."""
    args = build_parser().parse_args(argv)
    from tomlib.scenario import ScenarioError

    try:
        return args.func(args)
    except ScenarioError as err:
        print(f"tom {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
