"""The workbench around the services: report index, combined PDF, failure handling, serving.

One report build on the tiny scenario (``market_overview`` and ``compare_scenarios``, two workers,
the comparison on one run) feeds the index and PDF assertions; a second, failing run into a copy
of that report checks that the earlier files and the index survive. The served and saved dashboards
are opened in Chromium by ``test_browser_dashboards.py``; a notebook failing over its own earlier
report is ``test_reports.py``'s.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from helpers import open_offline

from tomlib import reports
from tomlib.reports import NOTEBOOKS_DIR

TINY = Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
BUILT = ["market_overview", "compare_scenarios"]
BROKEN_MESSAGE = "deliberate failure for the workbench test"


# ------------------------------------------------------------------------------------------------
# static checks of the committed notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_report_says_its_purpose_inputs_outputs_checks_and_records_figures(path):
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert any(re.search(r"^#+ .*Checks", m, re.MULTILINE) or "Checks" in m for m in markdown), \
        f"{path.name}: no markdown cell mentions 'Checks'"
    # reads on its own: what the service is for (the second markdown cell), its inputs and outputs
    assert re.search(r"^## ", markdown[1], re.MULTILINE), f"{path.name}: no purpose section after the title"
    text = "\n".join(markdown)
    assert re.search(r"\*\*Inputs[.:]?\*\*", text) and re.search(r"\*\*Outputs[.:]?\*\*", text), path.name
    assert re.search(r"\brecord\(", code), f"{path.name}: records no figure (tomlib.records.record)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_sets_readable_numbers_in_its_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    setup = next(c for c in nb.cells if c.cell_type == "code" and "pn.extension(" in c.source)
    assert re.search(r"^readable_tables\(\)", setup.source, re.MULTILINE), f"{path.name}: setup cell"


def test_default_notebooks_follow_the_chain():
    names = [p.stem for p in reports.default_notebooks()]
    known = [n for n in reports.CHAIN_ORDER if n in names]
    assert names[: len(known)] == known
    assert reports.chain_order(["compare_scenarios", "zzz", "settlement_runs", "market_overview",
                                "smart_data_services"]) == [
        "market_overview", "smart_data_services", "settlement_runs", "compare_scenarios", "zzz"]


def test_key_figures_pick_the_headline_records():
    records = {"n": 1, "gcf_range": {"SF": {"import": [0.9, 1.1]}}, "mae_pct_by_run": {"SF": 3.0},
               "checks_ok": True}
    figs = reports.key_figures(records)
    assert [name for _, name, _ in figs] == ["mae_pct_by_run", "gcf_range", "checks_ok"]
    assert "<table" in reports._figure_html({"SF": {"import": 1.0}}) and "import" in reports._figure_html(
        {"SF": {"import": 1.0}})


# ------------------------------------------------------------------------------------------------
# one report build


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return reports.run_reports(TINY, notebooks=list(reversed(BUILT)), out_root=out, max_workers=2,
                               pdf=reports.find_chromium() is not None, progress=False,
                               parameters={"compare_scenarios": {"runs": ["SF"]}})


def test_build_succeeds_in_chain_order(build):
    assert build.ok, build.failures
    assert [nb.name for nb in build.notebooks] == BUILT  # asked for in reverse: listed in chain order


def test_index_shows_key_figures_and_every_link_resolves(build):
    text = build.index_path.read_text(encoding="utf-8")
    assert "Key figures" in text and "settlement error difference between scenarios by run" in text
    assert text.index("<h3>market_overview</h3>") < text.index("<h3>compare_scenarios</h3>")
    hrefs = re.findall(r'href="([^"#]+)"', text)
    for name in BUILT:
        assert f"{name}/{name}.html" in hrefs and f"{name}/dashboard.html" in hrefs or name == "compare_scenarios"
    assert "compare_scenarios/compare_scenarios.html" in hrefs
    if build.combined_pdf is not None:
        assert reports.COMBINED_PDF in hrefs
    assert hrefs and all((build.out_dir / h).is_file() for h in hrefs), hrefs
    assert json.loads((build.out_dir / "index.json").read_text())["ok"] is True


def test_report_tables_and_index_print_no_scientific_notation(build):
    from test_reports import E_PLUS, table_cells

    pages = [build[n].html for n in BUILT] + [build.index_path]
    cells = {p.name: table_cells(p.read_text(encoding="utf-8")) for p in pages}
    assert all(cells.values()), {k: len(v) for k, v in cells.items()}
    assert {k: [c for c in v if E_PLUS.search(c)] for k, v in cells.items()} == {k: [] for k in cells}


# what Bokeh's validation logs (e.g. "W-1005 (FIXED_SIZING_MODE): ...") when a notebook saves or shows
BOKEH_VALIDATION = re.compile(r"\b[WE]-\d{4} \([A-Z_]+\)")


def test_exported_pages_carry_no_bokeh_validation_message(build):
    pages = [p for n in BUILT for p in (build[n].html, build[n].dashboard) if p is not None]
    assert len(pages) >= 3
    for page in pages:
        text = re.sub(r"<script.*?</script>", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        assert not BOKEH_VALIDATION.findall(text), page
    assert BOKEH_VALIDATION.search("W-1005 (FIXED_SIZING_MODE): 'fixed' sizing mode requires width")


# a Bokeh document model that would fetch a stylesheet from the network when the page opens
REMOTE_STYLESHEET = re.compile(r'"name":"ImportedStyleSheet","id":"[^"]+","attributes":\{"url":"(https?:)?//')


def test_report_pages_link_no_remote_stylesheet(build):
    # compare_scenarios shows Panel widgets, whose theme CSS Panel links from its CDN unless inlined
    pages = [p for n in BUILT for p in (build[n].html, build[n].dashboard) if p is not None]
    assert any('"name":"InlineStyleSheet"' in p.read_text(encoding="utf-8") for p in pages)
    assert {p.name: REMOTE_STYLESHEET.findall(p.read_text(encoding="utf-8")) for p in pages} == {
        p.name: [] for p in pages}


@pytest.mark.browser
@pytest.mark.parametrize("name", BUILT)
def test_report_pages_request_nothing_from_the_network(build, browser, name):
    page, failed, errors = open_offline(browser, build[name].html)
    page.wait_for_function(reports.BOKEH_RENDERED_JS, timeout=60_000)
    page.wait_for_timeout(300)
    page.close()
    assert (failed, errors) == ([], [])


@pytest.mark.browser
def test_report_charts_fit_the_printed_page(build, browser):
    from test_browser_dashboards import canvases_beyond

    for name in BUILT:
        assert canvases_beyond(browser, build[name].html) == [], name


def test_comparison_writes_both_scenarios_that_load_back(build):
    from tomlib.scenario import load_scenario

    written = sorted((build.out_dir / "compare_scenarios").glob("*.yaml"))
    assert [p.stem for p in written] == ["dcc95", "dcc995"]
    assert load_scenario(written[1]).retrieval.success_rate == 0.995
    assert build["compare_scenarios"].records["checks_ok"] is True


@pytest.mark.browser
def test_combined_pdf_holds_every_report_with_its_charts(build, tmp_path):
    from test_reports import CHART_PIXELS, _coloured_pixels_per_page

    combined = build.combined_pdf
    assert combined is not None and combined.name == reports.COMBINED_PDF

    def pages(pdf):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        return int(re.search(r"Pages:\s+(\d+)", info).group(1))

    assert pages(combined) == sum(pages(build[n].pdf) for n in BUILT)
    text = subprocess.run(["pdftotext", str(combined), "-"], capture_output=True, text=True, check=True).stdout
    assert text.index("Market overview") < text.index("Scenario comparison")
    assert text.count("Checks") >= 2
    counts = _coloured_pixels_per_page(combined, tmp_path / "all")
    assert sum(n > CHART_PIXELS for n in counts) >= 3, counts  # market charts and the comparison bars


def test_a_failing_notebook_fails_the_command_and_keeps_the_earlier_report(build, tmp_path, capsys):
    from tomlib import cli

    out_root = tmp_path / "reports"
    shutil.copytree(build.out_dir, out_root / "tiny")
    before = {p.relative_to(out_root): p.read_bytes() for p in (out_root / "tiny" / "market_overview").iterdir()}
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Broken"),
                nbformat.v4.new_code_cell('scenario = "tiny"  # s\nmarket_path = None  # m\noutput_dir = "."  # o',
                                          metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f"raise ValueError({BROKEN_MESSAGE!r})")]
    nbformat.write(nb, src / "broken.ipynb")

    code = cli.main(["report", "--scenario", str(TINY), "--notebook", str(src), "--out-root", str(out_root),
                     "--no-pdf"])
    err = capsys.readouterr().err
    assert code == 1
    assert "broken failed in cell In [" in err and BROKEN_MESSAGE in err and "raise ValueError" in err
    after = {p.relative_to(out_root): p.read_bytes() for p in (out_root / "tiny" / "market_overview").iterdir()}
    assert after == before  # the other notebooks' files are untouched
    index = (out_root / "tiny" / "index.html").read_text(encoding="utf-8")
    for name in (*BUILT, "broken"):
        assert f"<h3 id='{name}'>" in index, name
    assert "(earlier run)" in index and BROKEN_MESSAGE in index
    for href in re.findall(r'href="([^"#]+)"', index):
        assert (out_root / "tiny" / href).is_file(), href
    data = json.loads((out_root / "tiny" / "index.json").read_text())
    assert data["ok"] is False
    assert [(n["name"], n["ok"], n["previous"]) for n in data["notebooks"]] == [
        ("market_overview", True, True), ("compare_scenarios", True, True), ("broken", False, False)]


# ------------------------------------------------------------------------------------------------
# tom serve (the pages themselves are opened in Chromium by test_browser_dashboards.py)


def test_registry_skips_a_dashboard_whose_module_is_absent(caplog):
    from tomlib import dashboards

    registry = {"market": dashboards.DASHBOARDS["market"],
                "nowhere": (("tomlib.services.no_such_service",), lambda inputs: None)}
    with caplog.at_level("WARNING", logger="tomlib.dashboards"):
        found = dashboards.available_dashboards(registry)
    assert list(found) == ["market"]
    assert "nowhere" in caplog.text and "tomlib.services.no_such_service" in caplog.text
