"""The advanced services notebook through papermill on the tiny scenarios (46- and 50-period days), with
the CT fault on in one and off in the other, and its records."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from tomlib.records import read_records
from tomlib.reports import NOTEBOOKS_DIR

NOTEBOOK = NOTEBOOKS_DIR / "advanced_services.ipynb"
SCENARIOS = Path(__file__).resolve().parents[1] / "datasets" / "scenarios"
RUNS = {
    "tiny": {"ct_fault": True, "runs": ["II", "R1"]},
    "tiny_autumn": {"ct_fault": False, "runs": ["II", "SF"]},
}


def test_notebook_parameters():
    params = pm.inspect_notebook(str(NOTEBOOK))
    assert {"scenario", "market_path", "output_dir", "runs", "ct_fault"} == set(params)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[0].source.startswith("# ")
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


def _run(name: str, out: Path) -> Path:
    executed = out / "advanced_services.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(executed),
        parameters={
            "scenario": str(SCENARIOS / f"{name}.yaml"),
            "market_path": None,
            "output_dir": str(out),
            **RUNS[name],
        },
        kernel_name="python3",
        progress_bar=False,
        start_timeout=120,
        execution_timeout=900,
    )
    return executed


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Path]:
    outs = {name: tmp_path_factory.mktemp(name) for name in RUNS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, name, out) for name, out in outs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("name", "day", "n"), [("tiny", "2026-03-29", 46), ("tiny_autumn", "2026-10-25", 50)]
)
def test_records_of_the_runs(executed, name, day, n):
    rec = read_records(executed[name])
    assert rec["scenario"] == name and rec["checks_ok"] is True
    assert rec["periods_per_day"][day] == n
    assert rec["runs"] == RUNS[name]["runs"]
    for checks in rec["checks"].values():
        assert checks["in_minus_out"] == 0 and checks["mpan_periods_in_minus_out"] == 0
        assert abs(checks["energy_in_minus_out [kWh]"]) < 1e-6
    assert (executed[name].parent / "dashboard.html").stat().st_size > 1_000_000


@pytest.mark.notebook
def test_ct_fault_settled_then_reconciled(executed):
    on, off = read_records(executed["tiny"]), read_records(executed["tiny_autumn"])
    assert on["ct_fault"] is True and on["ct_fault_mpan"]
    err = on["ct_site_error_pct_by_run"]
    assert err["II"] < -10 and abs(err["R1"]) < 1
    assert off["ct_fault"] is False and off["ct_fault_mpan"] == "" and off["ct_site_error_pct_by_run"] == {}
