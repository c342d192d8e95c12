"""The bad-input corpus (tests/data/bad_inputs): every file is refused by its reader with an error naming
the file, line and field and what was expected; nothing is returned and no writer leaves a file; the
services that settle refuse a market without an LLF or a GSP group take; docs/inputs.md lists exactly the
corpus.

``python tests/test_bad_inputs.py`` rewrites the generated table of docs/inputs.md from the corpus README.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tomlib import cube
from tomlib import registration as reg
from tomlib.flows import (
    FlowError,
    d0010,
    gcf,
    hh_consumption,
    load_shapes,
    market_inputs,
    neso_demand,
    ums_inventory,
)
from tomlib.market import Market
from tomlib.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "bad_inputs"
DOCS = ROOT / "docs" / "inputs.md"
MPAN_C, MPAN_P = "1200000000011", "1800000000028"  # the half-hourly corpus MPANs (make_corpus.py)
STANDING = pd.DataFrame({"gsp_group": ["_C", "_P"], "market_segment": "S", "connection_type": "W", "domestic": True,
                         "supplier": "ALFA", "bm_unit": ["2__CALFA001", "2__PALFA001"], "llfc": ["101", "201"],
                         "measurement_quantity": "AI", "annual_consumption": 3000.0},
                        index=pd.Index([MPAN_C, MPAN_P], name="mpan"))

#: Folder -> (reader, error class).
READERS = {
    "d0010": (d0010.read_d0010, d0010.D0010Error),
    "ums_inventory": (ums_inventory.read_ums_inventory, ums_inventory.UmsInventoryError),
    "if022": (load_shapes.read_if022, load_shapes.LoadShapeError),
    "if023": (load_shapes.read_if023, load_shapes.LoadShapeError),
    "gcf": (gcf.read_gcf, gcf.GcfError),
    "hh_hhc": (lambda p: hh_consumption.read_hh_consumption(p, STANDING), hh_consumption.HhConsumptionError),
    "hh_csv_period": (lambda p: hh_consumption.read_hh_consumption(p, STANDING), hh_consumption.HhConsumptionError),
    "hh_csv_utc": (lambda p: hh_consumption.read_hh_consumption(p, STANDING), hh_consumption.HhConsumptionError),
    "neso_demand": (neso_demand.read_neso_demand, neso_demand.NesoDemandError),
    "scenario": (load_scenario, ScenarioError),
    "market": (Market.open, market_inputs.MarketInputError),
}


@dataclass(frozen=True)
class Case:
    file: str
    fault: str
    line: str
    field: str
    expected: str

    @property
    def folder(self) -> str:
        return self.file.split("/")[0]


def _cells(row: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", row.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def corpus_cases() -> list[Case]:
    """The rows of the corpus README's file table."""
    cases = []
    for row in (CORPUS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = _cells(row) if row.startswith("| `") else []
        if len(cells) == 5 and "/" in cells[0]:
            cases.append(Case(cells[0].strip("`"), *cells[1:]))
    return cases


CASES = corpus_cases()


def test_the_corpus_readme_lists_every_file_and_only_files_that_exist():
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file()
               and p.name not in ("README.md", "make_corpus.py") and "__pycache__" not in p.parts}
    listed = [c.file for c in CASES]
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert set(listed) == on_disk
    assert {c.folder for c in CASES} == set(READERS)
    assert len(CASES) >= 90


def test_make_corpus_writes_exactly_these_files(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    monkeypatch.setattr(maker, "HERE", tmp_path)
    # the text files (the netCDF markets take seconds to write; make_corpus.py reproduces them too)
    for make in (maker.d0010, maker.ums, maker.if022, maker.gcf, maker.hh, maker.neso, maker.scenario):
        make()
    made = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert made.keys() == {c.file for c in CASES if c.folder != "market"}
    changed = [f for f, data in made.items() if data != (CORPUS / f).read_bytes()]
    assert changed == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_bad_input(case: Case):
    read, error = READERS[case.folder]
    path = CORPUS / case.file
    result = None
    with pytest.raises(error) as info:
        result = read(path)
    assert result is None  # nothing returned, nothing partly loaded
    message = str(info.value)
    assert path.name in message
    if case.line != "-":
        assert re.search(rf"\bline {case.line}\b", message), message
    if case.field != "-":
        assert case.field in message, message
    assert case.expected in message, message
    assert "expected" in message or "must be" in message  # says what was expected
    if isinstance(info.value, FlowError) and case.line != "-":
        assert info.value.line == int(case.line)


# ------------------------------------------------------------------------------------------ writers


def _good_cube():
    from tomlib import calendar as cal

    times = cal.time_axis("2026-03-29", "2026-03-29")
    return cube.meter_cube(np.full((2, 46), 0.25), times, STANDING.index.to_numpy(), STANDING)


def _writes(tmp_path):
    """(name, call that must raise) for every writer, each given something it cannot write."""
    neg = _good_cube()
    neg["energy"].values[0, 3] = -1.0
    setter = d0010.read_d0010(ROOT / "tests" / "data" / "d0010" / "DTC5259515123502080915D0010.uff")
    reads = d0010.d0010_to_reads(setter).assign(value=1.25)  # two decimals: not a D0010 reading
    inv = ums_inventory.parse_ums_inventory((ROOT / "datasets" / "ums" / "sample_inventory.txt").read_text())
    inv.inventory.loc[0, "location"] = "a|b"
    records = pd.DataFrame({"date": [pd.Timestamp("2026-03-29")], "run": ["SF"], "period": [47],
                            "gsp_group": ["_C"], "type": ["mhhs_import_gcf"], "value": [1.0]})
    from tomlib import calendar as cal

    demand = xr.Dataset({"ND": ("time", np.full(46, np.nan), {"units": "MW"})},
                        coords={"time": cal.time_axis("2026-03-29", "2026-03-29").to_numpy()})
    record = {"sourceFileName": "x", "sourceFileDatetime": "2026-03-31T00:00:00Z", "settlementDate": "2026-03-29",
              "settlementPeriodStartDateTime": "2026-03-29T01:00:00Z", "settlementPeriodEndDateTime":
              "2026-03-29T01:30:00Z", "settlementPeriod": 3, "gspGroupId": "_C", "connectionTypeIndicator": "W",
              "marketSegmentIndicator": "S", "domesticPremiseIndicator": "T", "measurementQuantityId": "AI",
              "runNumber": 2, "eventCode": "LSSPeriodData", "settlementPeriodDuration": 30,
              "loadShapePeriodValue": 0.2, "defaultLoadShapeFlag": "A"}
    shapes = load_shapes.parse_if022([record]).assign(loadShapePeriodValue=-0.2)
    return [
        ("hh.csv", lambda p: hh_consumption.write_hh_consumption(neg, p)),
        ("hh.hhc", lambda p: hh_consumption.write_hh_consumption(neg, p, layout="hhc")),
        ("reads.uff", lambda p: d0010.write_d0010(d0010.reads_to_d0010(
            reads, file_id="1", from_participant="TOMD", to_participant="ALFA", created_at="2026-04-01"), p)),
        ("inventory.txt", lambda p: ums_inventory.write_ums_inventory(inv, p)),
        ("gcf.csv", lambda p: gcf.write_gcf(records, p)),
        ("demand.csv", lambda p: neso_demand.write_neso_demand(demand, p)),
        ("if022.json", lambda p: load_shapes.write_if022(shapes, p)),
    ]


def test_no_writer_leaves_a_file_when_it_refuses(tmp_path):
    for name, write in _writes(tmp_path):
        with pytest.raises(ValueError):
            write(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ settlement's entry


def _unchecked(name: str) -> Market:
    """A corpus market as it is in the file, without Market.open's check: what a caller holding it in
    memory would hand to the services."""
    return Market.from_dataset(cube.open(CORPUS / "market" / f"{name}.nc"))


def _aggregate(market: Market):
    from tomlib.services import aggregation

    times = market.meters["time"].values
    events = reg.initial_events(market.meters, pd.Timestamp(times[0]), pd.Timestamp(times[0]) - pd.Timedelta(days=30))
    force = reg.in_force(events, market.meters["mpan"].values, times)
    return aggregation.aggregate(market.meters, force, market.line_loss_factors)


@pytest.mark.parametrize("name, message", [
    pytest.param("missing_llf", r"aggregate: LLFC 201 has no line loss factors; a missing LLF is an error, not 1\.0",
                 id="missing_llf"),
    pytest.param("llf_nan_period", r"aggregate: LLFC 201 has no finite LLF in period 2026-03-29 01:30:00 UTC",
                 id="llf_nan_period"),
])
def test_aggregation_refuses_a_missing_llf(name, message):
    with pytest.raises(ValueError, match=message):
        _aggregate(_unchecked(name))


@pytest.mark.parametrize("name, message", [
    pytest.param("missing_gsp_group_take", r"allocate: no GSP group take for GSP group _P \(the take covers _C\)",
                 id="missing_gsp_group_take"),
    pytest.param("take_nan_period", r"allocate: GSP group take of GSP group _C is missing \(not finite\) in period "
                                    r"2026-03-29 01:00:00 UTC", id="take_nan_period"),
])
def test_volume_allocation_refuses_a_missing_gsp_group_take(name, message):
    from tomlib.services import volume_allocation

    market = _unchecked(name)
    agg = _aggregate(market)
    with pytest.raises(ValueError, match=message):
        volume_allocation.allocate(agg, market.gsp_group_take)


def test_a_good_market_file_opens_and_settles(tmp_path):
    from tomlib.services import volume_allocation

    market = _unchecked("missing_llf")
    fixed = Market(market.scenario_name, market.seed, market.meters,
                   _unchecked("llf_nan_period").line_loss_factors.fillna(1.05), market.unaccounted_energy,
                   market.gsp_group_take)
    back = Market.open(fixed.save(tmp_path / "market.nc"))
    out = volume_allocation.allocate(_aggregate(back), back.gsp_group_take)
    assert np.isfinite(out["gcf"].values).all()


# ------------------------------------------------------------------------------------------ docs/inputs.md

BEGIN = "<!-- corpus table: generated from tests/data/bad_inputs/README.md by `python tests/test_bad_inputs.py` -->"
END = "<!-- end of corpus table -->"


def render_table() -> str:
    """The table of docs/inputs.md: one row per corpus file, grouped by input."""
    inputs = {}
    for row in (CORPUS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = _cells(row) if row.startswith("| `") else []
        if len(cells) == 4 and cells[0].strip("`") in READERS:
            inputs[cells[0].strip("`")] = (cells[1], cells[2], cells[3])
    out = [BEGIN, "", "| input | fault | file | behaviour | test |", "|---|---|---|---|---|"]
    for c in CASES:
        what, reader, error = inputs[c.folder]
        where = ", ".join(x for x in (f"line {c.line}" if c.line != "-" else "",
                                      f"field `{c.field}`" if c.field != "-" else "") if x)
        behaviour = f"{reader} raises {error}{' at ' + where if where else ''}: “{c.expected.replace('|', '&#124;')}”"
        out.append(f"| {what} | {c.fault} | `tests/data/bad_inputs/{c.file}` | {behaviour} | "
                   f"`tests/test_bad_inputs.py::test_bad_input[{c.file}]` |")
    return "\n".join(out + ["", END])


def test_docs_inputs_lists_exactly_the_corpus():
    text = DOCS.read_text(encoding="utf-8")
    assert BEGIN in text and END in text
    table = text[text.index(BEGIN): text.index(END) + len(END)]
    assert table == render_table(), "docs/inputs.md is out of date: run `python tests/test_bad_inputs.py`"
    named = set(re.findall(r"`tests/data/bad_inputs/([^`]+)`", text)) - {"README.md"}
    assert named == {c.file for c in CASES}


def _write_docs() -> None:
    text = DOCS.read_text(encoding="utf-8")
    text = text[: text.index(BEGIN)] + render_table() + text[text.index(END) + len(END):]
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(_write_docs())
