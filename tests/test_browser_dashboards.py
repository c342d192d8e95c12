"""Every dashboard in headless Chromium, served by ``tom serve`` and saved as a static HTML file.

For each page of :data:`tomlib.dashboards.DASHBOARDS`, served (one Panel server on the tiny market,
the run-based pages on run SF) and saved (:func:`tomlib.dashboards.save_dashboard`, every widget
state embedded), the page must:

- render: Bokeh holds a document with figures and the page shows drawn plot canvases (walked
  through the shadow DOM Panel puts them in) -- an empty page does not pass;
- have a widget: a ``<select>`` with more than one option;
- log no JavaScript error (console errors and uncaught exceptions);
- change its plot when the widget changes: the data of every ColumnDataSource and the plot titles,
  hashed before and after a real ``select_option`` in the page, must differ. Served, the change
  travels to the Python process over the websocket and back; saved, Panel replays the embedded
  state.

Each dashboard and the static views the notebooks print from it also pass Bokeh's own validation
(no W-1005 FIXED_SIZING_MODE logged into a report), and the views fit an A4 page: printed
718 CSS px wide, no plot canvas, legend or title reaches beyond.

Saving embeds every combination of widget states, seconds each, so the saved pages embed two: two
options of the first select, every other widget at its value (:func:`two_states`); the dashboards
themselves are the full ones.
"""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tomlib import reports

TINY = Path(__file__).resolve().parents[1] / "datasets" / "scenarios" / "tiny.yaml"
PAGES = ["market", "smart", "advanced", "unmetered_supplies", "load_shaping", "volume_allocation",
         "settlement_runs"]

# plot canvases drawn in the page: Panel and Bokeh put them inside (open) shadow roots
CANVASES_JS = """() => {
  let n = 0;
  const walk = root => {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS' && el.width > 0 && el.height > 0) n++;
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return n;
}"""
# rendered: a document with at least one figure, every root view finished (but the non-visual
# roots of a saved page, which never finish; see tomlib.reports.BOKEH_RENDERED_JS), canvases drawn
RENDERED_JS = """() => {
  if (!window.Bokeh || !Bokeh.documents || Bokeh.documents.length === 0 || !Bokeh.index) return false;
  const figures = [...Bokeh.documents[0].all_models].filter(m => m.type === 'Figure');
  const views = Object.values(Bokeh.index);
  const invisible = /(CommManager|\\.State)$/;
  return figures.length > 0 && views.length > 0
    && views.every(v => invisible.test(v.model.type) || v.has_finished()) && (COUNT_CANVASES)() > 0;
}""".replace("COUNT_CANVASES", CANVASES_JS)
# A4 less the report's 10 mm side margins: 190 mm at 96 CSS px per inch (tomlib.reports.PDF_MARGIN)
A4_CSS_PX = 718
# the box of every drawn part of a plot [CSS px]: canvases, and what Bokeh 3 draws as HTML
# beside them (legends, titles, toolbars), everything inside the shadow roots of Bokeh's views
PLOT_BOXES_JS = """() => {
  const out = [];
  const walk = (root, inView) => {
    for (const el of root.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const drawn = el.tagName === 'CANVAS' ? el.width > 0 && el.height > 0 : inView;
      if (drawn && r.width > 0 && r.height > 0)
        out.push({tag: el.tagName, cls: String(el.className || '').slice(0, 40), left: Math.round(r.left),
                  right: Math.round(r.right), width: Math.round(r.width)});
      if (el.shadowRoot) walk(el.shadowRoot, true);
    }
  };
  walk(document, false);
  return out;
}"""
# what there is when a page does not render (for the failure message)
RENDER_STATE_JS = """() => {
  if (!window.Bokeh || !Bokeh.documents) return 'no BokehJS';
  if (Bokeh.documents.length === 0) return 'no Bokeh document';
  const models = [...Bokeh.documents[0].all_models];
  const views = Object.values(Bokeh.index || {});
  return {roots: Bokeh.documents[0].roots().map(r => r.type), models: models.length,
          figures: models.filter(m => m.type === 'Figure').length,
          unfinished: views.filter(v => !v.has_finished()).map(v => v.model.type), canvases: (COUNT_CANVASES)()};
}""".replace("COUNT_CANVASES", CANVASES_JS)
# what the plots show: every data source's columns and every title, hashed
PLOT_STATE_JS = """() => {
  const parts = [];
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type === 'ColumnDataSource') {
      const entries = m.data instanceof Map ? [...m.data.entries()] : Object.entries(m.data);
      for (const [k, v] of entries) {
        const a = Array.from(v ?? []);
        parts.push(k + ':' + a.length + ':' + a.map(x => typeof x === 'number' ? x.toPrecision(8) : String(x)).join(','));
      }
    } else if (m.type === 'Title') {
      parts.push('title:' + m.text);
    }
  }
  parts.sort();
  const s = parts.join('|');
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return parts.length + '/' + h;
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny():
    from tomlib.market import generate
    from tomlib.scenario import load_scenario

    scenario = load_scenario(TINY)
    return scenario, generate(scenario)


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory):
    """Where the served scenario form writes."""
    return tmp_path_factory.mktemp("scenarios")


@pytest.fixture(scope="module")
def server(tiny, scenario_dir):
    """``serve_all`` on the tiny market in a thread, as ``tom serve --scenario tiny`` runs it."""
    from tomlib.dashboards import serve_all

    scenario, market = tiny
    port = _free_port()
    srv = serve_all(market, port=port, scenario=scenario, runs=["SF"], threaded=True, scenario_dir=scenario_dir)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    srv.stop()


def two_states(layout) -> dict:
    """Embed two states only: the first select's current option and another; every other widget at
    its current value.

    Saving embeds every combination of widget values, seconds each on a busy machine; the notebooks
    save the full dashboards (the market's is checked in test_reports), this test needs one widget
    with two states.
    """
    import panel as pn

    states, changed = {}, False
    for widget in layout.select(pn.widgets.Widget):
        options = list(getattr(widget, "values", None) or [])
        if not changed and isinstance(widget, pn.widgets.Select) and len(options) > 1:
            states[widget] = [widget.value, next(v for v in reversed(options) if v != widget.value)]
            changed = True
        elif hasattr(widget, "value"):
            states[widget] = [widget.value]
    return states


def _issues(models) -> list[str]:
    from bokeh.core.validation import check_integrity

    found = check_integrity(models)
    return [f"{kind}-{i.code} {i.name}: {i.text}" for kind, issues in (("E", found.error), ("W", found.warning))
            for i in issues]


def validation_issues(obj) -> list[str]:
    """Bokeh's own validation of the models of a Panel object: what Bokeh would log as W-xxxx/E-xxxx."""
    import panel as pn
    from bokeh.document import Document

    doc = Document()
    doc.add_root(pn.panel(obj).get_root(doc))
    return _issues(doc.models)


@contextlib.contextmanager
def validated_saves():
    """Collect Bokeh's validation issues of every root Panel renders while saving (the page's root
    and those made for each embedded widget state), without rendering anything twice."""
    from panel.viewable import Viewable

    found: list[str] = []

    def hook(viewable, root):
        found.extend(i for i in _issues(root.references()) if i not in found)

    Viewable._preprocessing_hooks.append(hook)
    try:
        yield found
    finally:
        Viewable._preprocessing_hooks.remove(hook)


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    """Each dashboard built once by the builder the server uses, its report views saved on one static
    page and the dashboard saved, with the Bokeh validation issues of both."""
    import panel as pn
    from bokeh.resources import INLINE

    from tomlib.dashboards import dashboard_apps, save_dashboard

    out = tmp_path_factory.mktemp("dashboards")
    found = {}
    for name, build in dashboard_apps(tiny[1], tiny[0], runs=["SF"]).items():
        dash = build()
        with validated_saves() as issues:
            # the views carry every layout the notebooks print; widths as in the dashboard
            pn.Column(*[dash.view(v) for v in dash.VIEWS]).save(out / f"{name}_views.html", resources=INLINE,
                                                                 title=name)
            layout = pn.panel(dash)
            page = save_dashboard(layout, out / f"{name}.html", embed_states=two_states(layout))
        found[name] = {"issues": issues, "views": out / f"{name}_views.html", "dashboard": page}
    return found


def _check_page(browser, url: str) -> dict:
    """Open a page, wait for it to render, change its first multi-option select; what was seen."""
    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(url, wait_until="load", timeout=120_000)
        try:
            page.wait_for_function(RENDERED_JS, timeout=120_000)
        except Exception as err:
            state = page.evaluate(RENDER_STATE_JS)
            raise AssertionError(f"{url} did not render: {state}; errors {errors}") from err
        canvases = page.evaluate(CANVASES_JS)
        selects = [s for s in page.locator("select").all() if s.locator("option").count() > 1]
        assert selects, f"{url}: no select widget with more than one option"
        select = selects[0]
        options = select.locator("option").all()
        current = select.input_value()
        choice = next(v for v in reversed([o.get_attribute("value") for o in options]) if v != current)
        before = page.evaluate(PLOT_STATE_JS)
        select.select_option(choice)
        # served, the new plot data come back over the websocket: poll, the assertion judges
        deadline, after = time.monotonic() + 60, before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(200)
            after = page.evaluate(PLOT_STATE_JS)
        page.wait_for_timeout(300)  # late errors of the update
    finally:
        page.close()
    return {"canvases": canvases, "choice": choice, "before": before, "after": after, "errors": errors}


def test_every_registered_dashboard_is_tested():
    from tomlib.dashboards import available_dashboards

    assert list(available_dashboards()) == PAGES


def test_server_apps_are_plain_functions(tiny, server):
    """Panel's server calls only functions: anything else (a functools.partial) is shown as its repr."""
    import types

    from tomlib.dashboards import dashboard_apps

    apps = dashboard_apps(tiny[1], tiny[0], runs=["SF"])
    assert all(isinstance(app, types.FunctionType) for app in apps.values()), apps
    index = urllib.request.urlopen(f"{server}/", timeout=10).read().decode()
    assert all(f"/{name}" in index for name in PAGES), index


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_served_dashboard_renders_and_its_widget_changes_the_plot(server, browser, name):
    seen = _check_page(browser, f"{server}/{name}")
    assert seen["errors"] == [], seen["errors"]
    assert seen["canvases"] > 0
    assert seen["after"] != seen["before"], f"{name}: selecting {seen['choice']!r} left the plots unchanged"


@pytest.mark.browser
def test_served_scenario_form_writes_a_valid_scenario_file(server, browser, scenario_dir):
    """An analyst's path without YAML: change two fields in the browser, write, load the file back."""
    from tomlib.scenario import load_scenario

    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server}/scenario", wait_until="load", timeout=120_000)
        name = page.get_by_label("name (also the file name)")
        name.fill("tiny_dcc995")
        name.press("Enter")
        rate = page.get_by_label("DCC retrieval: success of one daily attempt [-]")
        rate.fill("0.995")
        rate.press("Enter")
        page.get_by_role("button", name="Write scenario").click()
        page.get_by_text("Written:").wait_for(timeout=60_000)
    finally:
        page.close()
    written = load_scenario(scenario_dir / "tiny_dcc995.yaml")
    assert written.name == "tiny_dcc995" and written.retrieval.success_rate == 0.995
    assert errors == []


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_saved_dashboard_renders_and_its_widget_changes_the_plot(saved, browser, name):
    seen = _check_page(browser, saved[name]["dashboard"].resolve().as_uri())
    assert seen["errors"] == [], seen["errors"]
    assert seen["canvases"] > 0
    assert seen["after"] != seen["before"], f"{name}: selecting {seen['choice']!r} left the plots unchanged"


@pytest.mark.parametrize("name", PAGES)
def test_dashboard_and_its_report_views_pass_bokeh_validation(saved, name):
    """No W-1005 FIXED_SIZING_MODE and the like: Bokeh logs them into the report when it saves."""
    assert saved[name]["issues"] == []


def test_validation_check_sees_a_fixed_column_without_height():
    """Negative control: the layout the smart dashboard had, a method's pane given a width only."""
    import pandas as pd
    import panel as pn
    import param

    class Table(param.Parameterized):
        run = param.Integer(1)

        @param.depends("run")
        def view(self):
            return pn.pane.DataFrame(pd.DataFrame({"kWh": [1.0]}), width=300, height=100)

    assert any(i.startswith("W-1005") for i in validation_issues(pn.Column(pn.panel(Table().view, width=300))))
    assert validation_issues(pn.Column(pn.panel(Table().view, width=300, height=120))) == []


@pytest.mark.browser
@pytest.mark.parametrize("name", PAGES)
def test_report_views_fit_an_a4_page(saved, browser, name):
    """The views the notebooks print, at the width of an A4 page less margins: no canvas, legend or
    title beyond it."""
    assert canvases_beyond(browser, saved[name]["views"]) == []


def canvases_beyond(browser, html_path: Path, width: int = A4_CSS_PX) -> list[dict]:
    """Drawn parts of plots (canvases, legends, titles) of a page printed ``width`` CSS px wide that
    reach beyond that width."""
    page = browser.new_page(viewport={"width": width, "height": 1100})
    try:
        page.emulate_media(media="print")
        page.goto(Path(html_path).resolve().as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_function(reports.BOKEH_RENDERED_JS, timeout=120_000)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        boxes = page.evaluate(PLOT_BOXES_JS)
    finally:
        page.close()
    assert any(b["tag"] == "CANVAS" for b in boxes), f"{html_path.name}: no canvas drawn"
    return [b for b in boxes if b["right"] > width]


@pytest.mark.browser
def test_notebook_charts_fit_an_a4_page(browser, tmp_path):
    """The load-shaping notebook's bar charts, with the real method names and a category per key."""
    import numpy as np
    import pandas as pd
    import panel as pn
    from bokeh.resources import INLINE

    from tomlib.dashboards.load_shaping import accuracy_bars, estimate_bars

    methods = ["MHHS load shape x AC", "legacy profile x EAC", "MHHS load shape, day total known",
               "legacy profile, day total known", "MHHS settled value (processing)"]
    runs = ["II", "SF", "R1", "RF"]
    estimates = pd.DataFrame({"run": np.repeat(runs, len(methods)), "group": "all", "method": methods * len(runs),
                              "mae_pct": np.linspace(20, 60, len(runs) * len(methods))})
    categories = [f"{g}|W|S|{d}|{q}" for g in ("_C", "_P") for d in "TF" for q in ("AI", "AE")]
    accuracy = pd.DataFrame({"mae_pct": np.linspace(5, 30, len(categories)), "legacy_mae_pct": 12.0},
                            index=pd.Index(categories, name="category"))
    path = tmp_path / "charts.html"
    pn.Column(pn.pane.HoloViews(accuracy_bars(accuracy)), pn.pane.HoloViews(estimate_bars(estimates))).save(
        path, resources=INLINE)
    assert canvases_beyond(browser, path) == []
