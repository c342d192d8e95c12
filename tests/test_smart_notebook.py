"""The smart data services notebook through papermill on the tiny scenarios (46- and 50-period days),
and its records: the checks held, later runs settle no less on actual data, the dashboard is saved."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from tomlib.records import read_records
from tomlib.reports import NOTEBOOKS_DIR

NOTEBOOK = NOTEBOOKS_DIR / "smart_data_services.ipynb"
SCENARIOS = Path(__file__).resolve().parents[1] / "datasets" / "scenarios"
# tiny with fewer successful retrievals (more estimates), tiny_autumn with the scenario's own settings
RUNS = {"tiny": {"retrieval_success_rate": 0.6, "run": "II"}, "tiny_autumn": {"run": "SF"}}


def test_notebook_parameters():
    params = pm.inspect_notebook(str(NOTEBOOK))
    assert {"scenario", "market_path", "output_dir", "run", "retrieval_success_rate", "read_interval_days"} <= set(params)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.cells[0].source.startswith("# ")
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")


def _run(name: str, out: Path) -> Path:
    executed = out / "smart_data_services.ipynb"
    pm.execute_notebook(str(NOTEBOOK), str(executed),
                        parameters={"scenario": str(SCENARIOS / f"{name}.yaml"), "market_path": None,
                                    "output_dir": str(out), "runs": ["II", "SF", "R1"], **RUNS[name]},
                        kernel_name="python3", progress_bar=False, start_timeout=120, execution_timeout=900)
    return executed


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Path]:
    outs = {name: tmp_path_factory.mktemp(name) for name in RUNS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, name, out) for name, out in outs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.notebook
@pytest.mark.parametrize(("name", "day", "n"), [("tiny", "2026-03-29", 46), ("tiny_autumn", "2026-10-25", 50)])
def test_records_of_the_runs(executed, name, day, n):
    rec = read_records(executed[name])
    assert rec["scenario"] == name and rec["checks_ok"] is True
    assert rec["periods_per_day"][day] == n
    share = rec["actual_share_by_run"]
    assert share["II"] <= share["SF"] <= share["R1"] and 0.5 < share["R1"] <= 1
    assert rec["checks"]["in_minus_out"] == 0 and rec["checks"]["mpan_periods_in_minus_out"] == 0
    assert set(rec["error_by_method"]["R1"]) >= {"A"}
    assert rec["mae_pct_by_run"]["R1"] <= rec["mae_pct_by_run"]["II"] + 1e-9
    assert "interim" in rec["load_shapes"]


@pytest.mark.notebook
def test_low_retrieval_rate_shows_estimates_and_refused_records(executed):
    rec = read_records(executed["tiny"])
    assert rec["run"] == "II"
    assert rec["checks"]["mpan_periods_A"] < rec["checks"]["mpan_periods"]
    assert len(rec["error_by_method"]["II"]) >= 3


@pytest.mark.notebook
def test_dashboard_saved(executed):
    page = executed["tiny_autumn"].parent / "dashboard.html"
    assert page.stat().st_size > 1_000_000  # BokehJS inline
    assert "tiny_autumn" in page.read_text(encoding="utf-8")
