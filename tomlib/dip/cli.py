"""``tom export`` and ``tom import``: DIP message files from the command line.

``tom export --interface IF-021 --scenario tiny --run SF --out out/if021`` settles the scenario's
market (opened from ``<data-root>/<scenario>/market.zarr`` when ``tom generate`` saved it, else
generated) with the service that produces the interface, and writes its messages; ``--input`` takes a
saved Dataset instead (``.zarr``/``.nc``: a meter cube for IF-021, load shapes for IF-022, totals
for IF-023, a settlement run for REP-003). ``tom import FILES... --out cube.zarr`` reads messages
back (``.zarr``/``.nc`` for Datasets, ``.csv`` for tables) and prints the checks.

Exit codes: 0 success; 2 bad arguments or input (a message failing its schema, a file that is not
DIP JSON), with the error on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]

_FROM = {
    "IF-021": "settled smart-segment meter cube (processing)",
    "IF-022": "load shapes (LSS)",
    "IF-023": "load-shape totals (LSS)",
    "IF-033": "changes of supplier (registration) with MTDs (metering)",
    "IF-041": "meter reads (Meter Reading Service)",
    "REP-003": "settlement run (volume allocation)",
}


def register(subparsers) -> None:
    """Add the ``export`` and ``import`` subcommands to an ``argparse`` subparsers object."""
    from tomlib.dip.files import INTERFACES, LAYOUTS

    p = subparsers.add_parser("export", help="write a service's DIP messages (validated against the DIP API schemas)")
    p.add_argument("--interface", required=True, choices=INTERFACES,
                   help="; ".join(f"{k}: {v}" for k, v in _FROM.items()))
    p.add_argument("--out", required=True, help="a .jsonl file (JSON lines) or a folder (a file per day)")
    p.add_argument("--layout", choices=LAYOUTS, help="default: jsonl for a .jsonl path, else daily")
    p.add_argument("--input", help="a saved Dataset (.zarr/.nc) to export instead of settling a scenario")
    p.add_argument("--scenario", default="tiny", help="scenario name in datasets/scenarios or a YAML path")
    p.add_argument("--data-root", default="data", help="folder of generated markets")
    p.add_argument("--run", default="SF", help="settlement run (II, SF, R1, R2, R3, RF, DF)")
    p.add_argument("--validate", choices=("fast", "full", "none"), default="fast")
    p.add_argument("--environment", default="DEV", help="S1.environmentTag (PRD, SITB, SIT, UIT, DEV)")
    p.add_argument("--sent-at", help="S1.senderTimestamp (ISO 8601, UTC); default now")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser("import", help="read DIP message files back into tomlib data")
    p.add_argument("paths", nargs="+", help=".json / .jsonl files or folders of them")
    p.add_argument("--interface", choices=INTERFACES, help="default: the first message's")
    p.add_argument("--sp-convention", choices=("end", "start", "auto"), default="end",
                   help="IF-021/IF-022 sp: period end (DI-082, default), start, or decide per day")
    p.add_argument("--validate", choices=("full", "fast", "none"), default="full")
    p.add_argument("--on-invalid", choices=("raise", "reject"), default="raise",
                   help="a message failing its schema stops the import, or is refused and listed")
    p.add_argument("--out", help="save the result: .zarr/.nc (Datasets) or .csv (tables)")
    p.add_argument("--rejected", help="write the refused items as CSV")
    p.set_defaults(func=_cmd_import)


def _scenario_and_market(args):
    from tomlib import market as market_mod
    from tomlib import scenario as scenario_mod

    path = Path(args.scenario)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = scenario_mod.default_scenario_path(args.scenario)
    sc = scenario_mod.load_scenario(path)
    store = Path(args.data_root) / sc.name / "market.zarr"
    market = market_mod.Market.open(store) if store.exists() else market_mod.generate(sc)
    return sc, market


def _source(args) -> tuple[object, dict]:
    """What the interface is made from, and extra writer options."""
    if args.input:
        from tomlib import cube

        if args.interface in ("IF-033", "IF-041"):
            raise ValueError(f"--input takes a Dataset; {args.interface} is made from a scenario (--scenario)")
        return cube.open(args.input), {}
    sc, market = _scenario_and_market(args)
    if args.interface in ("IF-021", "IF-022", "IF-023"):
        from tomlib.services import processing

        meters = processing.settle_run(market, args.run, config=sc).meters
        if args.interface == "IF-021":
            return meters, {}
        from tomlib.services import load_shaping

        shapes = load_shaping.load_shapes(meters, args.run)
        return (shapes, {}) if args.interface == "IF-022" else (load_shaping.load_shape_totals(shapes), {})
    if args.interface in ("IF-041", "IF-033"):
        from tomlib.services import metering as metering_mod

        metering = metering_mod.build_metering(market, sc)
        if args.interface == "IF-041":
            from tomlib.services import meter_reading

            return meter_reading.read_meters(market, metering, sc).reads, {"registers": metering.registers}
        from tomlib import registration

        events = registration.generate_events(market, registration.RegistrationSettings.from_scenario(sc))
        return events, {"standing": market.meters, "metering": metering}
    from tomlib import settlement

    return settlement.settle_run(market, args.run, scenario=sc), {}


def _cmd_export(args: argparse.Namespace) -> int:
    from tomlib.dip import DipConfig, export_messages

    try:
        source, options = _source(args)
        if args.sent_at and args.interface in ("IF-021", "IF-022", "IF-023", "REP-003"):
            options["sent_at"] = args.sent_at
        summary = export_messages(source, args.out, interface=args.interface, layout=args.layout,
                                  validate=args.validate, config=DipConfig(environment=args.environment), **options)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"tom export: {err}", file=sys.stderr)
        return 2
    files = summary.pop("files")
    print(f"tom export: {summary['messages']:,} {args.interface} messages, validated ({args.validate}), in "
          f"{len(files)} file(s) under {args.out} ({summary['bytes']:,} bytes, {summary['seconds']:.1f} s)")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("seconds",)}, default=str))
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    import pandas as pd
    import xarray as xr

    from tomlib.dip import import_messages

    options = {}
    if args.interface in (None, "IF-021", "IF-022") and args.sp_convention != "end":
        options["sp_convention"] = args.sp_convention
    try:
        result = import_messages(args.paths, interface=args.interface, validate=args.validate,
                                 on_invalid=args.on_invalid, **options)
    except TypeError as err:  # sp_convention given for an interface without sp
        print(f"tom import: {err}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as err:
        print(f"tom import: {err}", file=sys.stderr)
        return 2
    data = next(getattr(result, a) for a in ("meters", "reads", "appointments", "data", "allocation")
                if hasattr(result, a))
    print(f"tom import: {type(result).__name__}: " + json.dumps(result.checks))
    if getattr(data, "attrs", {}).get("sp_convention"):
        print(f"sp read as: {data.attrs['sp_convention']}")
    if len(result.rejected):
        print(f"refused: {len(result.rejected)} item(s)", file=sys.stderr)
    if args.rejected:
        result.rejected.to_csv(args.rejected, index=False)
    if args.out:
        out = Path(args.out)
        if isinstance(data, xr.Dataset):
            from tomlib import cube

            cube.save(data, out)
        elif isinstance(data, pd.DataFrame):
            if out.suffix != ".csv":
                print(f"tom import: {out}: a table is written as .csv", file=sys.stderr)
                return 2
            data.to_csv(out, index=False)
        print(f"written: {out}")
    return 0
