"""The report pipeline: one real build on the tiny scenario, shared by the assertions below.

The build runs ``market_overview`` and a deliberately broken notebook side by side (two workers),
exports HTML and PDF, and writes the index. The PDF check renders the pages with ``pdftoppm`` and
counts coloured pixels: chart glyphs (curves, the heatmap) are the only saturated colour on a
report page, so a page whose Bokeh canvases were printed blank would count (almost) none. A
negative control prints the same HTML with JavaScript off, i.e. with exactly such blank boxes, and
must fail the same test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest
from helpers import open_offline

from tomlib import reports
from tomlib.records import MIME, jsonable, read_records, record

TINY = Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml"
MARKET_NB = reports.NOTEBOOKS_DIR / "market_overview.ipynb"
BROKEN_MESSAGE = "deliberate failure for the report test"
# a page "has a chart" above this many saturated pixels at 100 dpi; calibrated on the tiny report:
# the consumption page has ~3,000, the grid page ~30,000, text pages 0, the logo page ~300
CHART_PIXELS = 1_500


def _notebook(path: Path, cells: list) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    nbformat.write(nb, path)
    return path


def _params_cell() -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        'scenario = "tiny"  # scenario\nmarket_path = None  # store\noutput_dir = "."  # outputs',
        metadata={"tags": ["parameters"]})


def broken_notebook(folder: Path) -> Path:
    return _notebook(folder / "broken.ipynb", [
        nbformat.v4.new_markdown_cell("# Broken"),
        _params_cell(),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(f"raise ValueError({BROKEN_MESSAGE!r})"),
    ])


@pytest.fixture(scope="module")
def saved_market(tmp_path_factory) -> Path:
    """The tiny market in a store, so the build exercises ``market_path`` (the notebook tests generate)."""
    from tomlib.market import generate
    from tomlib.scenario import load_scenario

    return generate(load_scenario(TINY)).save(tmp_path_factory.mktemp("market") / "market.zarr")


@pytest.fixture(scope="module")
def build(tmp_path_factory, saved_market):
    src = tmp_path_factory.mktemp("notebooks")
    out = tmp_path_factory.mktemp("reports")
    return reports.run_reports(TINY, notebooks=[MARKET_NB, broken_notebook(src)], out_root=out,
                               market_path=saved_market, max_workers=2,
                               pdf=reports.find_chromium() is not None, progress=False)


@pytest.fixture(scope="module")
def market_nb(build):
    return build["market_overview"]


# ------------------------------------------------------------------------------------------------
# outcome and files


def test_one_failure_makes_the_run_fail_but_not_the_others(build, market_nb):
    assert not build.ok and build.exit_code == 1
    assert market_nb.ok, market_nb.summary
    assert [nb.name for nb in build.failed] == ["broken"]
    (line,) = build.failures
    assert "broken failed in cell" in line and f"ValueError: {BROKEN_MESSAGE}" in line
    assert "raise ValueError" in line  # the failing cell's source is named


def test_failed_notebook_gets_a_failed_page_and_nothing_else(build):
    broken = build["broken"]
    assert broken.stage == "execute" and broken.cell.startswith("In [")
    assert broken.failed_html.name == "broken.FAILED.html" and broken.failed_html.exists()
    text = broken.failed_html.read_text(encoding="utf-8")
    assert BROKEN_MESSAGE in text
    assert not (broken.out_dir / "broken.html").exists()
    assert not (broken.out_dir / "broken.pdf").exists()


def test_artefacts_are_written_and_no_temporary_file_is_left(build, market_nb):
    out = market_nb.out_dir
    assert out == build.out_dir / "market_overview"
    assert build.out_dir.name == "tiny"
    for path in (market_nb.notebook, market_nb.html, market_nb.dashboard, build.index_path):
        assert path is not None and path.exists() and path.stat().st_size > 0
    assert not [p for p in build.out_dir.rglob("*") if ".tmp-" in p.name]


def test_records_reach_the_result(market_nb, saved_market):
    from tomlib.market import Market

    rec = market_nb.records
    assert rec["n_mpans"] == Market.open(saved_market).meters.sizes["mpan"]
    assert 46 in rec["periods_per_day"].values()
    assert rec["checks_ok"] is True and rec["scenario"] == "tiny"
    assert rec["n_mpans"] == rec["n_import_mpans"] + rec["n_export_mpans"]


def test_html_report_has_no_code_and_no_remote_resource(market_nb):
    text = market_nb.html.read_text(encoding="utf-8")
    assert "True consumption by segment" in text and "Checks" in text
    assert "market_mod.generate" not in text  # code cells are excluded
    assert MIME not in text and "checks_ok" not in text  # the record cell is removed
    assert _remote_references(text) == []
    assert "BokehJS" in text or "Bokeh" in text  # BokehJS is inline


def _imported_stylesheet(model_id: str, url: str) -> str:
    return f'{{"type":"object","name":"ImportedStyleSheet","id":"{model_id}","attributes":{{"url":"{url}"}}}}'


def test_panel_cdn_stylesheets_become_inline_with_the_installed_css():
    from panel.io.resources import CDN_DIST, DIST_DIR

    theme = _imported_stylesheet("p1", f"{CDN_DIST}bundled/theme/default.css")
    loading = _imported_stylesheet("p2", f"{CDN_DIST}css/loading.css?v=1")
    other = _imported_stylesheet("p3", "https://example.org/site.css")
    page = f'<script type="application/javascript">var docs_json = {{"roots":[{theme},{loading},{other}]}};</script>'
    out = reports.inline_panel_stylesheets(page)
    models = json.loads(out[out.index("{"):out.rindex("}") + 1])["roots"]
    assert [(m["name"], m["id"]) for m in models] == [
        ("InlineStyleSheet", "p1"), ("InlineStyleSheet", "p2"), ("ImportedStyleSheet", "p3")]
    assert models[0]["attributes"]["css"] == (Path(DIST_DIR) / "bundled/theme/default.css").read_text()
    assert models[1]["attributes"]["css"] == (Path(DIST_DIR) / "css/loading.css").read_text()
    assert CDN_DIST not in out and "example.org/site.css" in out  # only Panel's own files are inlined


def test_css_inlined_into_a_script_cannot_close_it(tmp_path, monkeypatch):
    import panel.io.resources as panel_resources

    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "x.css").write_text("a::after { content: '</script><b>'; }")
    monkeypatch.setattr(panel_resources, "DIST_DIR", tmp_path)
    out = reports.inline_panel_stylesheets(_imported_stylesheet("p1", f"{panel_resources.CDN_DIST}css/x.css"))
    assert "</script>" not in out and json.loads(out)["attributes"]["css"] == "a::after { content: '</script><b>'; }"


def test_a_panel_stylesheet_missing_from_the_install_is_named_not_dropped():
    from panel.io.resources import CDN_DIST

    page = _imported_stylesheet("p1", f"{CDN_DIST}css/no_such_file.css")
    with pytest.warns(UserWarning, match=r"report\.html: stylesheet .*no_such_file\.css is not in the installed"):
        assert reports.inline_panel_stylesheets(page, source="report.html") == page


def test_html_report_prints_no_library_logos(market_nb):
    # hv.extension prints the HoloViews and Bokeh logos as output images unless told not to; in a report
    # they are noise at the top of page one (the charts are Bokeh canvases, not images)
    text = market_nb.html.read_text(encoding="utf-8")
    assert "No description has been provided for this image" not in text


def test_dashboard_and_index_are_offline_too(build, market_nb):
    for path in (market_nb.dashboard, build.index_path):
        assert _remote_references(path.read_text(encoding="utf-8")) == [], path


def test_index_lists_scenario_status_figures_and_links(build, market_nb):
    text = build.index_path.read_text(encoding="utf-8")
    from tomlib.scenario import load_scenario

    scn = load_scenario(TINY)
    for expected in ("tiny", scn.digest()[:12], "2026-03-28", "2026-03-30", "_C, _P",
                     f"{market_nb.records['n_mpans']} (import and export)", "FAILED",
                     BROKEN_MESSAGE, "take_identity_max_abs_residual_kwh"):
        assert expected in text, expected
    hrefs = re.findall(r'href="([^"#]+)"', text)
    assert {"market_overview/market_overview.html", "market_overview/dashboard.html",
            "broken/broken.FAILED.html"} <= set(hrefs)
    for href in hrefs:
        assert (build.out_dir / href).exists(), href
    assert "<script" not in text
    data = json.loads((build.out_dir / "index.json").read_text())
    assert data["ok"] is False and [n["ok"] for n in data["notebooks"]] == [True, False]


# ------------------------------------------------------------------------------------------------
# PDF


@pytest.mark.browser
def test_pdf_has_the_text_and_the_charts_drawn(market_nb, tmp_path):
    assert market_nb.pdf.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(["pdftotext", str(market_nb.pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Market overview" in text and "Checks" in text
    counts = _coloured_pixels_per_page(market_nb.pdf, tmp_path / "report")
    chart_pages = [i for i, n in enumerate(counts) if n > CHART_PIXELS]
    text_pages = [n for n in counts if n <= CHART_PIXELS]
    # the consumption curves and the take/grid charts: at least two pages with charts drawn,
    # each with far more colour than any page of text
    assert len(chart_pages) >= 2, counts
    assert min(counts[i] for i in chart_pages) > 5 * max(text_pages, default=0), counts


@pytest.mark.browser
def test_pixel_check_fails_on_blank_chart_boxes(market_nb, browser, tmp_path):
    """Negative control: with JavaScript off, Bokeh draws nothing: the check must see no chart."""
    blank = tmp_path / "blank.pdf"
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.emulate_media(media="print")
    page.goto(market_nb.html.resolve().as_uri(), wait_until="load")
    page.pdf(path=str(blank), format="A4", print_background=True, margin=reports.PDF_MARGIN)
    context.close()
    counts = _coloured_pixels_per_page(blank, tmp_path / "blank")
    assert max(counts) <= CHART_PIXELS, counts


@pytest.mark.browser
@pytest.mark.parametrize("page_name", ["report", "dashboard", "index"])
def test_pages_load_offline_without_errors_and_bokeh_renders(build, market_nb, browser, page_name):
    """Open each page with every non-file request aborted; nothing may fail, Bokeh must render."""
    path = {"report": market_nb.html, "dashboard": market_nb.dashboard, "index": build.index_path}[page_name]
    page, failed, errors = open_offline(browser, path)
    if page_name != "index":
        page.wait_for_function(reports.BOKEH_RENDERED_JS, timeout=60_000)
        assert page.evaluate("() => Bokeh.documents.length") > 0
        assert page.evaluate("() => document.querySelectorAll('[data-root-id]').length") > 0
    page.wait_for_timeout(300)
    page.close()
    assert failed == [] and errors == []


@pytest.mark.browser
def test_dashboard_widgets_replay_their_embedded_states(market_nb, browser):
    titles_js = "() => [...Bokeh.documents[0].all_models].filter(m => m.type == 'Title').map(m => m.text)"
    page = browser.new_page()
    page.goto(market_nb.dashboard.resolve().as_uri(), wait_until="load")
    page.wait_for_function(reports.BOKEH_RENDERED_JS, timeout=60_000)
    before = page.evaluate(titles_js)
    page.locator("select").first.select_option("_P")
    page.get_by_role("button", name="A", exact=True).click()
    page.wait_for_timeout(500)
    after = page.evaluate(titles_js)
    page.close()
    assert any("all GSP groups" in t for t in before)
    assert any("GSP group _P, segment A" in t for t in after), after


# ------------------------------------------------------------------------------------------------
# cheap cases (no kernel, no browser)


def test_notebook_without_parameters_fails_before_running(tmp_path):
    bad = _notebook(tmp_path / "noparams.ipynb", [nbformat.v4.new_markdown_cell("# No parameters"),
                                                  nbformat.v4.new_code_cell("x = 1")])
    result = reports.run_reports(TINY, notebooks=[bad], out_root=tmp_path / "out", pdf=False, progress=False)
    (nb,) = result.notebooks
    assert not result.ok and nb.stage == "parameters"
    assert "scenario" in nb.error and nb.failed_html.exists()
    assert "noparams" in result.index_path.read_text()


def test_unknown_notebook_and_missing_chromium_are_clear_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no_such_notebook"):
        reports.run_reports(TINY, notebooks=["no_such_notebook"], out_root=tmp_path, progress=False)
    monkeypatch.setattr(reports, "find_chromium", lambda: None)
    with pytest.raises(RuntimeError, match="apt-get install chromium"):
        reports.run_reports(TINY, notebooks=[MARKET_NB], out_root=tmp_path, pdf=True, progress=False)
    assert not (tmp_path / "tiny").exists()  # nothing ran


def test_atomic_target_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.html"
    target.write_text("old")
    with pytest.raises(RuntimeError), reports._atomic_target(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_records_round_trip_through_a_notebook(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    record("n", np.int64(3))
    record("days", {"2026-10-25": np.int8(50)})
    record("nan", float("nan"))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("", outputs=[
        nbformat.v4.new_output("display_data", data=d) for d in shown])]
    assert all(d["text/plain"] == "" for d in shown)
    assert read_records(nb) == {"n": 3, "days": {"2026-10-25": 50}, "nan": None}
    nbformat.write(nb, tmp_path / "r.ipynb")
    assert read_records(tmp_path / "r.ipynb")["days"] == {"2026-10-25": 50}


def test_jsonable_refuses_what_json_cannot_hold():
    assert jsonable(np.array([1.5, np.nan])) == [1.5, None]
    with pytest.raises(TypeError, match="record 'bad'"):
        jsonable(object(), "bad")


# ------------------------------------------------------------------------------------------------
# numbers for reading


# scientific notation in a table cell: 1.378e+06, 2E+05 (a hash like 19e4fedd is not a number)
E_PLUS = re.compile(r"(?<![0-9a-f])\d(?:\.\d+)?[eE]\+\d+(?![0-9a-f])")


def table_cells(html_text: str) -> list[str]:
    """Text of every <td>/<th> of a page, scripts left out."""
    text = re.sub(r"<script.*?</script>", "", html_text, flags=re.DOTALL)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", text, re.DOTALL)]


def test_e_plus_pattern_finds_scientific_notation_only():
    assert [c for c in ["1.378e+06", "2E+05", "1,378,000", "19e4feddc796", "8.9e-16", "0.1.0+gca"]
            if E_PLUS.search(c)] == ["1.378e+06", "2E+05"]


@pytest.mark.parametrize(("value", "text"), [
    (1.378e6, "1,378,000"), (1378123, "1,378,123"), (np.int64(7), "7"), (123.456, "123.5"), (-12.3456, "-12.346"),
    (0.98765, "0.9877"), (8.88e-16, "8.9e-16"), (0.0, "0"), (7100.0, "7,100"), (2.5e16, "25,000,000,000,000,000"),
    (float("nan"), "NaN"), (True, "True"), ("x", "x"), (None, "None")])
def test_format_number_reads_without_e_plus(value, text):
    from tomlib.records import format_number

    assert format_number(value) == text


def test_readable_tables_format_frames_styles_and_the_index():
    import pandas as pd

    from tomlib.records import readable_tables

    before = pd.DataFrame({"kwh": [1.378e6, 8.9e-16]})._repr_html_()
    assert E_PLUS.search(" ".join(table_cells(before)))  # pandas alone prints 1.378000e+06
    try:
        readable_tables()
        cells = table_cells(pd.DataFrame({"kwh": [1.378e6, 8.9e-16]})._repr_html_())
        styled = table_cells(pd.DataFrame({"kwh": [1.378e6, 0.5]}).style.to_html())
    finally:
        pd.reset_option("display.float_format")
        pd.reset_option("styler.format.formatter")
    assert "1,378,000" in cells and "8.9e-16" in cells and "1,378,000" in styled and "0.5000" in styled
    assert reports._figure(1.378e6) == "1,378,000" and "e+" not in reports._figure({"SF": [2.5e6, 1]})


# ------------------------------------------------------------------------------------------------
# helpers


class _Remote(HTMLParser):
    """Collects src/href attributes of tags that would fetch a remote resource."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":  # links are navigation, not loads
            return
        for name, value in attrs:
            if name in ("src", "href") and value and re.match(r"(https?:)?//", value.strip()):
                self.found.append(f"<{tag} {name}={value}>")


def _remote_references(html_text: str) -> list[str]:
    """Tags with remote src/href. Script bodies are not parsed as tags, so BokehJS's own code,
    which mentions CDN URLs in strings it never loads here, does not count."""
    parser = _Remote()
    parser.feed(html_text)
    return parser.found


def _coloured_pixels_per_page(pdf: Path, prefix: Path, dpi: int = 100) -> list[int]:
    """Saturated pixels (max - min of RGB > 60) per PDF page: chart glyphs, not text or axes."""
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(prefix)], check=True)
    counts = []
    for png in sorted(prefix.parent.glob(f"{prefix.name}-*.png")):
        rgb = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
        counts.append(int(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 60).sum()))
    return counts


def test_pdftoppm_is_available_for_the_pdf_check():
    assert shutil.which("pdftoppm"), "apt-get install poppler-utils"
