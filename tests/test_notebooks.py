"""The notebooks: their static contract (checked on the committed files) and a real papermill run.

Static rules (workbench guide §1.7, §2.1): cell 1 a markdown H1, exactly one cell tagged
``parameters`` holding only literal assignments each with a trailing help comment, no outputs in
git, kernelspec ``python3``, no function longer than a few lines, the offline extensions loaded
(holoviews imported before ``pn.extension``).

The papermill run injects the tiny spring (46-period day) and autumn (50-period day) scenarios
through the real parameter path, both at once, and asserts on the records the notebook writes.
"""

from __future__ import annotations

import ast
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from tomlib.records import read_records
from tomlib.reports import NOTEBOOKS_DIR, REQUIRED_PARAMETERS

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SCENARIOS = Path(__file__).resolve().parents[1] / "datasets" / "scenarios"
MAX_FUNCTION_LINES = 5


def test_there_are_notebooks():
    assert [p.stem for p in NOTEBOOKS].count("market_overview") == 1


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def nb(request) -> nbformat.NotebookNode:
    return nbformat.read(request.param, as_version=4)


def _parameters_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def test_first_cell_is_an_h1_title(nb):
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert re.match(r"# \S", first.source.lstrip()), first.source[:40]


def test_second_cell_is_the_only_parameters_cell(nb):
    params = _parameters_cells(nb)
    assert len(params) == 1 and params[0] is nb.cells[1] and params[0].cell_type == "code"


def test_parameters_are_commented_literals(nb):
    (cell,) = _parameters_cells(nb)
    lines = [line for line in cell.source.splitlines() if line.strip()]
    names = []
    for line in lines:
        assert re.search(r"\S.*#\s*\S", line), f"no trailing help comment: {line!r}"
        tree = ast.parse(line)
        (stmt,) = tree.body
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, line
        ast.literal_eval(stmt.value)  # literals only: papermill overrides, nothing derived
        names.append(stmt.targets[0].id)
    assert set(REQUIRED_PARAMETERS) <= set(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_the_parameters_the_report_runner_injects(path):
    # papermill only warns about unknown parameter names, so check them here
    params = pm.inspect_notebook(str(path))
    assert set(REQUIRED_PARAMETERS) <= set(params)
    # and it skips, with a warning, a line it cannot parse (e.g. a second "=" in the help comment)
    (cell,) = _parameters_cells(nbformat.read(path, as_version=4))
    assigned = [ast.parse(line).body[0].targets[0].id for line in cell.source.splitlines() if line.strip()]
    assert list(params) == assigned
    assert all(p["help"] for p in params.values())


def test_committed_without_outputs(nb):
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert "papermill" not in nb.metadata


def test_kernelspec_is_python3(nb):
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_no_long_functions_in_notebooks(nb):
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= MAX_FUNCTION_LINES, f"{node.name} is {length} lines: move it to tomlib"


def test_offline_extensions_are_loaded_in_order(nb):
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert 'hv.extension("bokeh", inline=True, logo=False)' in code  # inline JS, and no logo images in reports
    assert "pn.extension(inline=True)" in code
    assert code.index("import holoviews") < code.index("pn.extension(")


def test_notebook_has_a_checks_section(nb):
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("#")]
    assert "## Checks" in headings


# ------------------------------------------------------------------------------------------------
# papermill run


def _run(name: str, out: Path) -> Path:
    executed = out / "market_overview.ipynb"
    pm.execute_notebook(str(NOTEBOOKS_DIR / "market_overview.ipynb"), str(executed),
                        parameters={"scenario": str(SCENARIOS / f"{name}.yaml"), "market_path": None,
                                    "output_dir": str(out)},
                        kernel_name="python3", progress_bar=False, start_timeout=120, execution_timeout=600)
    return executed


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Path]:
    """Both tiny scenarios through papermill at once (one kernel each)."""
    outs = {name: tmp_path_factory.mktemp(name) for name in ("tiny", "tiny_autumn")}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(_run, name, out) for name, out in outs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.notebook
@pytest.mark.parametrize(("name", "day", "n"), [("tiny", "2026-03-29", 46), ("tiny_autumn", "2026-10-25", 50)])
def test_market_overview_records_the_clock_change_day(executed, name, day, n):
    rec = read_records(executed[name])
    assert rec["scenario"] == name
    assert rec["periods_per_day"][day] == n
    assert n in rec["periods_per_day"].values() and 48 in rec["periods_per_day"].values()
    assert rec["periods_per_day"] == rec["periods_per_day_expected"]
    assert rec["n_periods"] == sum(rec["periods_per_day"].values())


@pytest.mark.notebook
@pytest.mark.parametrize("name", ["tiny", "tiny_autumn"])
def test_market_overview_checks_held(executed, name):
    rec = read_records(executed[name])
    assert rec["checks_ok"] is True
    assert rec["take_identity_max_abs_residual_kwh"] < 1e-6
    assert rec["n_nan_energy"] == 0
    assert rec["n_import_mpans"] == 60  # the tiny scenarios' mpans: {_C: 40, _P: 20}
    assert rec["n_mpans"] == rec["n_import_mpans"] + rec["n_export_mpans"]
    assert set(rec["mpans_by_gsp_group"]) == {"_C", "_P"}
    assert 0 < rec["loss_and_unaccounted_share"] < 0.2


@pytest.mark.notebook
def test_market_overview_saves_its_dashboard_to_output_dir(executed):
    dashboard = executed["tiny_autumn"].parent / "dashboard.html"
    assert dashboard.stat().st_size > 1_000_000  # BokehJS inline
    assert "tiny_autumn" in dashboard.read_text(encoding="utf-8")[:2000]
