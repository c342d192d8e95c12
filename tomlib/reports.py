"""Report pipeline: run the notebooks with papermill, export HTML and PDF, write an index.

For one scenario, every notebook in ``notebooks/`` (or the ones asked for) is executed with its
parameters injected (``scenario``, ``market_path``, ``output_dir``), two at a time. Each executed
notebook becomes::

    reports/<scenario>/<name>/<name>.ipynb        executed notebook (records inside, see tomlib.records)
    reports/<scenario>/<name>/<name>.html         no code cells, BokehJS inline, no CDN script
    reports/<scenario>/<name>/<name>.pdf          the same HTML printed by headless Chromium (A4)
    reports/<scenario>/<name>/dashboard.html      if the notebook saved its dashboard to output_dir
    reports/<scenario>/<name>/<name>.FAILED.html  when the notebook failed, beside the files above
                                                  of its last successful run, which are kept
    reports/<scenario>/<name>/<name>.FAILED.ipynb the executed notebook up to the failing cell
    reports/<scenario>/index.html                 scenario summary, status, key figures, links
    reports/<scenario>/index.json                 the same, for machines

A notebook runs in a hidden staging folder beside its report folder (its ``output_dir``); only when
it has executed and its HTML and PDF are written does the staging folder replace the report folder,
in one rename. A failure therefore never costs the last good report: the failure pages are put beside
it, and the index links both, the earlier report marked stale.

Everything is offline: the notebooks load BokehJS inline and the ``offline`` nbconvert template drops
nbconvert's require.js, MathJax, mermaid and widget-manager CDN scripts. Every file is written to a
temporary name in its folder and renamed into place, so a crash never leaves a half-written report.

Threads, not processes, run the notebooks: each papermill call starts its own kernel process, so the
work is parallel anyway, and papermill is thread-safe as long as ``cwd`` is not passed (papermill
#473). The PDFs are printed from the calling thread by one Chromium, because Playwright's sync API
belongs to the thread that started it; printing one notebook overlaps the execution of the next.
(The sync API also refuses to run inside a notebook kernel's event loop: call this module from a
plain Python process, e.g. ``tom report``.)

Examples
--------
>>> result = run_reports("tiny", out_root="reports")          # doctest: +SKIP
>>> result.ok, result.index_path, result.failures               # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import html
import json
import logging
import os
import re
import shutil
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from os import PathLike
from pathlib import Path
from typing import Any

from tomlib._io import (
    atomic_target,
    atomic_write_text,
    remove_path,
    remove_stale_siblings,
    swap_in_directory,
    temporary_sibling,
)
from tomlib.records import format_number, read_records

__all__ = [
    "CHAIN_ORDER",
    "CHROMIUM_ARGS",
    "KEY_FIGURES",
    "NOTEBOOKS_DIR",
    "TEMPLATES_DIR",
    "NotebookResult",
    "ReportResult",
    "chain_order",
    "combine_pdfs",
    "default_notebooks",
    "export_html",
    "find_chromium",
    "html_to_pdf",
    "inline_panel_stylesheets",
    "key_figures",
    "render_index",
    "run_reports",
    "scenario_summary",
]

log = logging.getLogger(__name__)

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
REQUIRED_PARAMETERS = ("scenario", "market_path", "output_dir")
#: The services in the order of the settlement chain: the index and the combined PDF follow it;
#: notebooks not listed come after these, by name.
CHAIN_ORDER = ("market_overview", "smart_data_services", "advanced_services", "unmetered_supplies",
               "load_shaping", "volume_allocation", "settlement_runs", "compare_scenarios")
COMBINED_PDF = "all_services.pdf"
#: The key figures the index shows first: (label, record names tried in turn). A notebook that
#: records none of them shows only its full record table.
KEY_FIGURES = (
    ("share of MPAN-periods settled on actual data, by run [-]", ("actual_share_by_run", "actual_share_periods")),
    ("load-shape error, MAE by run [%]", ("load_shape_mae_pct", "mae_pct_by_run")),
    ("load-shape estimate error, MHHS vs legacy profiles [%]", ("mhhs_estimate_mae_pct",)),
    ("unmetered supplies: energy error by equivalent-meter method [%]", ("method_error_pct",)),
    ("GSP group correction factor range by run [-]", ("gcf_range",)),
    ("allocation error by supplier and run, allocated - true [kWh]", ("allocation_error_by_supplier",)),
    ("absolute allocation error by run [kWh]", ("abs_error",)),
    ("settlement error difference between scenarios by run", ("error_difference_by_run",)),
    ("smart data retrieval by scenario, shares of DCC MPAN-days [-] and delay [days]", ("retrieval_by_scenario",)),
    ("checks held", ("checks_ok",)),
)

# Chromium must not phone home: on a closed network its background connections are refused, slowly.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A4 with 10 mm side margins leaves 190 mm = 718 CSS px; dashboards keep their plots narrower.
PDF_MARGIN = {"top": "12mm", "bottom": "12mm", "left": "10mm", "right": "10mm"}
# Bokeh renders after the page's load event. `Document.is_idle` never turns true for Panel output
# (its CommManager and embedded-State roots have no view that finishes), so wait instead until the
# root view of every embedded output (<div data-root-id>) exists and, unless it is one of those
# non-visual roots, reports has_finished().
BOKEH_RENDERED_JS = """() => {
  const ids = [...document.querySelectorAll('[data-root-id]')].map(e => e.dataset.rootId);
  if (ids.length === 0) return true;
  if (!window.Bokeh || !Bokeh.index) return false;
  const invisible = /(CommManager|\\.State)$/;
  return ids.every(id => Bokeh.index[id] !== undefined
    && (invisible.test(Bokeh.index[id].model.type) || Bokeh.index[id].has_finished()));
}"""


# --------------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass(frozen=True)
class NotebookResult:
    """The outcome of one notebook.

    Attributes
    ----------
    name : str
        Notebook name (file stem), also its folder under the scenario's report folder.
    ok : bool
        True if it executed and every export succeeded.
    out_dir : Path
        ``reports/<scenario>/<name>``.
    notebook, html, pdf, dashboard, failed_html : Path or None
        The files written (None when not written).
    records : dict
        Key figures recorded by the notebook (:func:`tomlib.records.read_records`).
    stage : str or None
        Where it failed: ``"parameters"``, ``"execute"``, ``"html"`` or ``"pdf"``.
    cell : str or None
        The failing cell, e.g. ``"In [7]"``, with its first source line.
    error : str or None
        ``"<ExceptionName>: <message>"``.
    seconds : float
        Wall time of execution and exports [s].
    previous : bool
        True for a notebook not run this time, whose files are kept from an earlier run (read back
        from the earlier ``index.json``); it does not count towards ``ReportResult.ok``.
    stale_since : str or None
        For a failed notebook whose earlier successful report is kept in its folder: when that
        report was written (ISO 8601, UTC), and ``notebook``, ``html``, ``pdf``, ``dashboard`` point
        at its files. None otherwise.
    """

    name: str
    ok: bool
    out_dir: Path
    notebook: Path | None = None
    html: Path | None = None
    pdf: Path | None = None
    dashboard: Path | None = None
    failed_html: Path | None = None
    records: dict[str, Any] = dataclasses.field(default_factory=dict)
    stage: str | None = None
    cell: str | None = None
    error: str | None = None
    seconds: float = 0.0
    previous: bool = False
    stale_since: str | None = None

    @property
    def summary(self) -> str:
        """One line: ``"<name>: ok"`` or ``"<name> failed in <cell>: <error>"``."""
        if self.ok:
            return f"{self.name}: ok ({self.seconds:.1f} s)"
        where = f" in cell {self.cell}" if self.cell else f" at {self.stage}"
        return f"{self.name} failed{where}: {self.error}"

    def __str__(self) -> str:
        return self.summary


@dataclasses.dataclass(frozen=True)
class ReportResult:
    """The outcome of :func:`run_reports`.

    Attributes
    ----------
    scenario : dict
        Scenario summary shown on the index (name, digest, dates, GSP groups, MPAN count, source).
    out_dir : Path
        ``<out_root>/<scenario name>``.
    index_path : Path
        The index page.
    notebooks : tuple of NotebookResult
        In chain order (:data:`CHAIN_ORDER`): the notebooks of this run, plus those kept from an
        earlier run into the same folder (``previous=True``).
    seconds : float
        Wall time of the whole run [s].
    combined_pdf : Path or None
        Every notebook's PDF in one file, in chain order (None when no PDF was made).
    """

    scenario: dict[str, Any]
    out_dir: Path
    index_path: Path
    notebooks: tuple[NotebookResult, ...]
    seconds: float = 0.0
    combined_pdf: Path | None = None

    @property
    def ok(self) -> bool:
        """True if every notebook of this run succeeded."""
        return all(nb.ok for nb in self.notebooks if not nb.previous)

    @property
    def failed(self) -> tuple[NotebookResult, ...]:
        """The notebooks of this run that failed."""
        return tuple(nb for nb in self.notebooks if not nb.ok and not nb.previous)

    @property
    def failures(self) -> list[str]:
        """One line per failed notebook, naming the cell and the error."""
        return [nb.summary for nb in self.failed]

    @property
    def exit_code(self) -> int:
        """0 if every notebook succeeded, else 1 (the ``tom report`` exit status)."""
        return 0 if self.ok else 1

    def __getitem__(self, name: str) -> NotebookResult:
        for nb in self.notebooks:
            if nb.name == name:
                return nb
        raise KeyError(f"no notebook {name!r} in this report (have: {[nb.name for nb in self.notebooks]})")


# --------------------------------------------------------------------------------------------------
# small file helpers


_atomic_target = atomic_target
_atomic_write_text = atomic_write_text


# --------------------------------------------------------------------------------------------------
# exports


def find_chromium() -> str | None:
    """The Chromium binary to print with: ``$TOMLIB_CHROMIUM``, else ``chromium`` on PATH.

    Returns
    -------
    str or None
        Path of the executable, or None when there is none.
    """
    return os.environ.get("TOMLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def export_html(notebook: str | PathLike, html_path: str | PathLike, include_input: bool = False) -> Path:
    """Export an executed notebook to a self-contained, offline HTML page.

    Parameters
    ----------
    notebook : path
        Executed ``.ipynb``.
    html_path : path
        Output ``.html``, written atomically.
    include_input : bool
        Show the code cells (used for ``.FAILED.html``, where the failing code matters).

    Returns
    -------
    Path
        ``html_path``.
    """
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    hide = not include_input
    c.HTMLExporter.exclude_input = hide
    c.HTMLExporter.exclude_input_prompt = hide
    c.HTMLExporter.exclude_output_prompt = True
    c.HTMLExporter.embed_images = True
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
    c.TagRemovePreprocessor.remove_input_tags = {"hide-input"}
    # an exporter per call: they hold per-export state and run in several threads at once
    exporter = HTMLExporter(config=c, extra_template_basedirs=[str(TEMPLATES_DIR)], template_name="offline")
    exporter.register_preprocessor(_drop_empty_outputs, enabled=True)
    body, _ = exporter.from_filename(str(notebook))
    return _atomic_write_text(Path(html_path), inline_panel_stylesheets(body, source=str(notebook)))


# A Bokeh document's reference to one of Panel's stylesheets on its CDN, as Panel writes it into the
# ``docs_json`` of a notebook output (serialised model: type, id, attributes).
_PANEL_CDN_STYLESHEET = re.compile(
    r'\{"type":"object","name":"ImportedStyleSheet","id":"(?P<id>[^"]+)",'
    r'"attributes":\{"url":"(?P<url>https?://[^"]+)"\}\}')


def inline_panel_stylesheets(page: str, source: str = "page") -> str:
    """Replace the Bokeh documents' links to Panel's CDN stylesheets by the same CSS, inline.

    Panel inlines the stylesheets of the widgets it renders in a notebook (``pn.extension(inline=True)``)
    but not those of its theme and loading spinner (``bundled/theme/*.css``, ``css/loading.css``,
    ``css/listpanel.css``), which stay ``ImportedStyleSheet`` models pointing at cdn.holoviz.org: opened
    offline, the page's widgets lose their styling. Each such model becomes an ``InlineStyleSheet`` with
    the same id and the CSS of the installed Panel's own file (the version the URL names).

    Parameters
    ----------
    page : str
        Exported HTML page.
    source : str
        Name of the page's source, for the warning below.

    Returns
    -------
    str
        The page, every Panel CDN stylesheet inline.

    Warns
    -----
    UserWarning
        A stylesheet URL under Panel's CDN with no file in the installed Panel (it is left as it is: the
        page still renders, without that styling) -- naming the page and the URL.
    """
    from panel.io.resources import CDN_DIST, DIST_DIR

    def inline(match: re.Match) -> str:
        url = match["url"]
        path = Path(DIST_DIR) / url.removeprefix(CDN_DIST).split("?")[0] if url.startswith(CDN_DIST) else None
        if path is None or not path.is_file():
            if "holoviz.org" in url:
                import warnings

                warnings.warn(f"{source}: stylesheet {url} is not in the installed Panel ({DIST_DIR}); "
                              "it stays a link and is not loaded offline", stacklevel=3)
            return match[0]
        # JSON-escaped as a string of the docs_json object literal; "</" escaped so that no CSS text
        # can close the <script> element the document sits in
        css = json.dumps(path.read_text(encoding="utf-8")).replace("</", "<\\/")
        return f'{{"type":"object","name":"InlineStyleSheet","id":"{match["id"]}","attributes":{{"css":{css}}}}}'

    return _PANEL_CDN_STYLESHEET.sub(inline, page)


def _drop_empty_outputs(nb: Any, resources: dict) -> tuple[Any, dict]:
    """Drop display outputs without data (Panel's comm placeholders) that nbconvert warns about."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if o.get("output_type") not in ("display_data", "execute_result") or o.get("data")]
    return nb, resources


def html_to_pdf(html_path: str | PathLike, pdf_path: str | PathLike, browser: Any = None,
                timeout_ms: int = 120_000) -> Path:
    """Print an HTML page to an A4 PDF with headless Chromium, after Bokeh has drawn.

    Parameters
    ----------
    html_path : path
        Page to print (opened as a ``file://`` URL).
    pdf_path : path
        Output ``.pdf``, written atomically.
    browser : playwright.sync_api.Browser, optional
        A browser from :func:`_launch`; None launches (and closes) one for this page.
    timeout_ms : int
        Limit for loading the page and for Bokeh to become idle [ms].

    Returns
    -------
    Path
        ``pdf_path``.
    """
    if browser is None:
        with _launch() as owned:
            return html_to_pdf(html_path, pdf_path, owned, timeout_ms)
    page = browser.new_page(device_scale_factor=2)  # canvases are rasterised: 2x keeps lines sharp
    try:
        page.emulate_media(media="print")
        page.goto(Path(html_path).resolve().as_uri(), wait_until="load", timeout=timeout_ms)
        page.wait_for_function(BOKEH_RENDERED_JS, timeout=timeout_ms)
        # two animation frames: finished views have laid out, this lets their canvases paint
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        with _atomic_target(Path(pdf_path)) as tmp:
            page.pdf(path=str(tmp), format="A4", print_background=True, margin=PDF_MARGIN)
    finally:
        page.close()
    return Path(pdf_path)


@contextlib.contextmanager
def _launch(chromium: str | None = None) -> Iterator[Any]:
    """Launch headless Chromium through Playwright's sync API (system browser, no download)."""
    from playwright.sync_api import sync_playwright

    executable = chromium or find_chromium()
    if executable is None:
        raise RuntimeError("PDF export needs Chromium: apt-get install chromium, or set TOMLIB_CHROMIUM "
                           "to its path, or run with pdf=False (tom report --no-pdf)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def combine_pdfs(pdfs: Sequence[str | PathLike], out: str | PathLike) -> Path:
    """Concatenate PDFs into one, in the order given, with poppler's ``pdfunite``.

    Parameters
    ----------
    pdfs : sequence of path
        The PDFs (at least one).
    out : path
        Output ``.pdf``, written atomically.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    RuntimeError
        If ``pdfunite`` (Debian package poppler-utils) is missing or fails; the message says which.
    """
    import subprocess

    if not pdfs:
        raise ValueError(f"{out}: no PDF to combine")
    exe = shutil.which("pdfunite")
    if exe is None:
        raise RuntimeError("the combined PDF needs pdfunite: apt-get install poppler-utils")
    with _atomic_target(Path(out)) as tmp:
        if len(pdfs) == 1:  # pdfunite wants at least two inputs
            shutil.copyfile(pdfs[0], tmp)
        else:
            # not check=True: a failure is reported below with pdfunite's own words
            done = subprocess.run([exe, *map(str, pdfs), str(tmp)], check=False, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"pdfunite failed on {[Path(p).name for p in pdfs]}: {done.stderr.strip()}")
    return Path(out)


# --------------------------------------------------------------------------------------------------
# notebooks


def chain_order(names: Sequence[str]) -> list[str]:
    """Sort notebook names in :data:`CHAIN_ORDER`; unknown names follow, by name."""
    rank = {n: i for i, n in enumerate(CHAIN_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


def default_notebooks(folder: str | PathLike | None = None) -> list[Path]:
    """Every notebook in ``folder`` (default the repository's ``notebooks/``), in chain order."""
    found = {p.stem: p for p in Path(folder or NOTEBOOKS_DIR).glob("*.ipynb")}
    return [found[n] for n in chain_order(list(found))]


def _resolve_notebooks(notebooks: Sequence[str | PathLike] | str | PathLike | None) -> list[Path]:
    if isinstance(notebooks, (str, PathLike)) and Path(notebooks).is_dir():
        found = default_notebooks(notebooks)
        if not found:
            raise FileNotFoundError(f"no notebooks in {notebooks}")
        return [p.resolve() for p in found]
    if notebooks is None:
        found = default_notebooks()
        if not found:
            raise FileNotFoundError(f"no notebooks in {NOTEBOOKS_DIR}")
        return found
    paths = []
    for spec in notebooks:
        path = Path(spec)
        if path.is_dir():  # a folder stands for all its notebooks
            paths.extend(p.resolve() for p in default_notebooks(path))
            continue
        if not path.exists():
            path = NOTEBOOKS_DIR / f"{Path(spec).stem}.ipynb"
        if not path.exists():
            names = [p.stem for p in default_notebooks()]
            raise FileNotFoundError(f"notebook {str(spec)!r}: neither a file nor a name in {NOTEBOOKS_DIR} "
                                    f"(have: {names})")
        paths.append(path.resolve())
    stems = [p.stem for p in paths]
    if len(set(stems)) != len(stems):
        raise ValueError(f"notebook names must be unique (they name the report folders), got {stems}")
    return paths


def _artefacts(out_dir: Path, name: str) -> dict[str, Path]:
    return {
        "notebook": out_dir / f"{name}.ipynb",
        "html": out_dir / f"{name}.html",
        "pdf": out_dir / f"{name}.pdf",
        "dashboard": out_dir / "dashboard.html",
        "failed_html": out_dir / f"{name}.FAILED.html",
        "failed_notebook": out_dir / f"{name}.FAILED.ipynb",
    }


def _failing_cell(nb: Any, err: BaseException) -> str | None:
    """Name the failing cell from papermill's error or, failing that, its per-cell status metadata."""
    exec_count, source = getattr(err, "exec_count", None), getattr(err, "source", None)
    if source is None and nb is not None:
        for cell in nb.cells:
            status = cell.get("metadata", {}).get("papermill", {})
            if status.get("exception") or status.get("status") == "running":
                exec_count, source = cell.get("execution_count"), cell.get("source", "")
                break
    if source is None:
        return None
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    label = f"In [{exec_count}]" if exec_count is not None else "(not numbered)"
    return f"{label} `{first[:80]}`"


def _error_text(err: BaseException) -> str:
    ename = getattr(err, "ename", None) or type(err).__name__
    evalue = getattr(err, "evalue", None)
    evalue = str(err) if evalue is None else evalue
    return f"{ename}: {evalue}".strip()


def _execute_one(path: Path, nb_dir: Path, parameters: dict[str, Any], execution_timeout: int
                 ) -> tuple[NotebookResult, Path]:
    """Execute one notebook in a staging folder and export its HTML (runs in a worker thread).

    Returns
    -------
    (NotebookResult, Path)
        The outcome, its files in the staging folder, and that folder (a hidden sibling of
        ``nb_dir``, the notebook's ``output_dir``); :func:`_commit` puts it in place.
    """
    import nbformat
    import papermill as pm

    started = time.perf_counter()
    name = path.stem
    nb_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(nb_dir)  # staging folders of killed earlier runs
    stage = temporary_sibling(nb_dir)
    stage.mkdir()
    files = _artefacts(stage, name)

    def failed(step: str, err: BaseException, nb: Any = None) -> tuple[NotebookResult, Path]:
        failed_html = None
        if files["notebook"].exists():
            with contextlib.suppress(Exception):
                failed_html = export_html(files["notebook"], files["failed_html"], include_input=True)
            os.replace(files["notebook"], files["failed_notebook"])
        if failed_html is None:  # nothing executed: say why in a page of our own
            failed_html = _atomic_write_text(files["failed_html"], _failure_page(name, step, err))
        return NotebookResult(name=name, ok=False, out_dir=stage, failed_html=failed_html, stage=step,
                              cell=_failing_cell(nb, err), error=_error_text(err),
                              seconds=time.perf_counter() - started), stage

    try:
        declared = pm.inspect_notebook(str(path))
        missing = [p for p in REQUIRED_PARAMETERS if p not in declared]
        if missing:
            raise ValueError(f"{path.name}: the parameters cell must define {missing} "
                             f"(it defines {sorted(declared)})")
    except Exception as err:  # noqa: BLE001 - any defect of the notebook file is a report failure
        return failed("parameters", err)

    try:
        pm.execute_notebook(str(path), str(files["notebook"]), parameters={**parameters, "output_dir": str(stage)},
                            kernel_name="python3", progress_bar=False, log_output=False, start_timeout=120,
                            execution_timeout=execution_timeout)
    except Exception as err:  # noqa: BLE001 - papermill has saved the partial notebook: report it
        nb = nbformat.read(files["notebook"], as_version=4) if files["notebook"].exists() else None
        return failed("execute", err, nb)
    _rename_output_dir(files["notebook"], stage, nb_dir)

    try:
        html_path = export_html(files["notebook"], files["html"])
    except Exception as err:  # noqa: BLE001 - reported like an execution failure
        return failed("html", err)
    return NotebookResult(name=name, ok=True, out_dir=stage, notebook=files["notebook"], html=html_path,
                          dashboard=files["dashboard"] if files["dashboard"].exists() else None,
                          records=read_records(files["notebook"]), seconds=time.perf_counter() - started), stage


def _rename_output_dir(notebook: Path, stage: Path, final: Path) -> None:
    """Write the report folder, not the staging folder, into the executed notebook (its parameters)."""
    text = notebook.read_text(encoding="utf-8")
    # the path appears as a JSON string inside the notebook's JSON; replace both spellings
    for old, new in ((str(stage), str(final)), (json.dumps(str(stage))[1:-1], json.dumps(str(final))[1:-1])):
        text = text.replace(old, new)
    _atomic_write_text(notebook, text)


def _moved(result: NotebookResult, old: Path, new: Path) -> NotebookResult:
    """The result with its files' folder ``old`` renamed ``new``."""
    paths = {k: new / v.relative_to(old) for k in ("notebook", "html", "pdf", "dashboard", "failed_html")
             if isinstance(v := getattr(result, k), Path) and v.is_relative_to(old)}
    return dataclasses.replace(result, out_dir=new, **paths)


def _commit(result: NotebookResult, stage: Path, nb_dir: Path) -> NotebookResult:
    """Put a staged notebook's files in place (runs in the calling thread, one notebook at a time).

    Success: the staging folder replaces ``nb_dir`` in one rename (the earlier report, failure pages
    included, goes). Failure: ``nb_dir`` keeps the earlier report; the failure pages replace any
    earlier ones beside it, the staging folder goes, and the result points at the earlier report
    (:attr:`NotebookResult.stale_since`) if there is one.
    """
    if result.ok:
        swap_in_directory(stage, nb_dir)
        return _moved(result, stage, nb_dir)
    try:
        nb_dir.mkdir(parents=True, exist_ok=True)
        name = result.name
        for suffix in (".FAILED.html", ".FAILED.ipynb"):
            (nb_dir / f"{name}{suffix}").unlink(missing_ok=True)
            if (stage / f"{name}{suffix}").exists():
                os.replace(stage / f"{name}{suffix}", nb_dir / f"{name}{suffix}")
    finally:
        remove_path(stage)
    result = _moved(dataclasses.replace(result, notebook=None, html=None, pdf=None, dashboard=None), stage, nb_dir)
    earlier = _artefacts(nb_dir, result.name)
    if not earlier["html"].exists():
        return result
    written = dt.datetime.fromtimestamp(earlier["html"].stat().st_mtime, dt.UTC)
    return dataclasses.replace(
        result, stale_since=written.isoformat(timespec="seconds"),
        **{k: earlier[k] if earlier[k].exists() else None for k in ("notebook", "html", "pdf", "dashboard")})


def _failure_page(name: str, stage: str, err: BaseException) -> str:
    tb = "".join(traceback.format_exception(err))
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(name)} FAILED"
            f"</title></head><body><h1>{html.escape(name)} failed at {html.escape(stage)}</h1>"
            f"<p>{html.escape(_error_text(err))}</p><pre>{html.escape(tb)}</pre></body></html>\n")


def _with_pdf(result: NotebookResult, browser: Any) -> NotebookResult:
    """Print a staged notebook's HTML to PDF; a failed print fails the notebook (its earlier report stays)."""
    files = _artefacts(result.out_dir, result.name)
    started = time.perf_counter()
    try:
        html_to_pdf(result.html, files["pdf"], browser)
    except Exception as err:  # noqa: BLE001 - the index says the PDF failed
        failed_html = _atomic_write_text(files["failed_html"], _failure_page(result.name, "pdf", err))
        return dataclasses.replace(result, ok=False, stage="pdf", error=_error_text(err), failed_html=failed_html,
                                   seconds=result.seconds + time.perf_counter() - started)
    return dataclasses.replace(result, pdf=files["pdf"], seconds=result.seconds + time.perf_counter() - started)


# --------------------------------------------------------------------------------------------------
# scenario summary and index


def _resolve_scenario(scenario: str | PathLike) -> Path:
    from tomlib.scenario import default_scenario_path

    return Path(default_scenario_path(scenario)).resolve()


def scenario_summary(path: str | PathLike) -> dict[str, Any]:
    """What the index says about a scenario.

    Parameters
    ----------
    path : path
        Scenario YAML file.

    Returns
    -------
    dict
        ``name``, ``digest`` (first 12 hex digits of ``Scenario.digest()``, the digest of the
        validated settings), ``first_date``, ``last_date`` (ISO), ``gsp_groups`` (list),
        ``n_import_mpans`` (import MPANs the scenario asks for), ``n_mpans`` (None here: the market
        notebook records the count with export MPANs) and ``source`` (the file path).
    """
    from tomlib.scenario import load_scenario

    scn = load_scenario(Path(path))
    return {
        "name": scn.name,
        "digest": scn.digest()[:12],
        "first_date": f"{scn.first_date:%Y-%m-%d}",
        "last_date": f"{scn.last_date:%Y-%m-%d}",
        "gsp_groups": [str(g) for g in scn.gsp_groups],
        "n_import_mpans": int(scn.n_mpans),
        "n_mpans": None,
        "source": str(path),
    }


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto; max-width: 960px;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.ok { color: #146c2e; font-weight: bold; }
.failed { color: #b00020; font-weight: bold; }
.stale { color: #8a5a00; }
code, pre { font-family: ui-monospace, monospace; font-size: 90%; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.fig { margin: 0; font-size: 90%; }
td > table.fig { display: block; max-width: 620px; overflow-x: auto; }
"""


def _figure(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return format_number(value)  # one style with the report tables: 1,378,000, never 1.378e+06
    text = json.dumps(_readable(value), separators=(", ", ": ")).replace('"', "")
    return text if len(text) <= 200 else text[:197] + "..."


def _readable(value: Any) -> Any:
    """Numbers inside a list or mapping as :func:`format_number` text, for the one-line view."""
    if isinstance(value, dict):
        return {k: _readable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _link(path: Path | None, base: Path, label: str) -> str:
    if path is None:
        return ""
    return f'<a href="{html.escape(path.relative_to(base).as_posix())}">{html.escape(label)}</a>'


def render_index(result: ReportResult) -> str:
    """The self-contained index page (no scripts, no external resources) of a report run."""
    s, base = result.scenario, result.out_dir
    e = html.escape
    rows = [
        ("scenario", s.get("name")), ("settings digest (sha256, first 12)", s.get("digest")),
        ("settlement dates", f"{s.get('first_date')} .. {s.get('last_date')}"),
        ("GSP groups", ", ".join(s.get("gsp_groups", []))),
        ("MPANs", (f"{_figure(s['n_mpans'])} (import and export)" if s.get("n_mpans") is not None
                   else "not counted (the market notebook did not run)")),
        ("import MPANs in the scenario", _figure(s.get("n_import_mpans"))),
        ("scenario file", s.get("source")),
    ]
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>tomlib reports: {e(str(s.get('name')))}</title><style>{_CSS}</style></head><body>",
        f"<h1>tomlib reports: scenario {e(str(s.get('name')))}</h1>",
        ("<p>One report per service of the MHHS Target Operating Model, in the order of the settlement "
         "chain. Each report says what the service is for, its inputs and outputs, its figures, and the "
         "checks that held. Start with the key figures below, then open a report.</p>"),
        "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows) + "</table>",
        f"<p>Notebooks: {len(result.notebooks)}, failed: {len(result.failed)}; run time {result.seconds:.0f} s."
        + (f" All reports in one PDF: {_link(result.combined_pdf, base, result.combined_pdf.name)}."
           if result.combined_pdf else "") + "</p>",
        ("<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>time [s]</th><th>report</th>"
         "<th>PDF</th><th>dashboard</th><th>notebook</th></tr>"),
    ]
    for nb in result.notebooks:
        status = ("<span class='ok'>ok</span>" if nb.ok else
                  f"<span class='failed'>FAILED</span> at {e(nb.stage or '')}")
        if nb.previous:
            status += " (earlier run)"
        # a failed notebook's links go to its last good report, kept in place and marked stale
        mark = " (stale)" if nb.stale_since else ""
        if nb.stale_since:
            status += f"; <span class='stale'>report of {e(nb.stale_since)} kept, stale</span>"
        report = " ".join(x for x in (_link(nb.failed_html, base, "FAILED.html"), _link(nb.html, base, "HTML" + mark))
                          if x)
        parts.append(
            f"<tr><td><a href='#{e(nb.name)}'>{e(nb.name)}</a></td><td>{status}</td>"
            f"<td class='num'>{nb.seconds:.1f}</td><td>{report}</td>"
            f"<td>{_link(nb.pdf, base, 'PDF' + mark)}</td><td>{_link(nb.dashboard, base, 'dashboard' + mark)}</td>"
            f"<td>{_link(nb.notebook, base, 'ipynb' + mark)}</td></tr>")
    parts.append("</table>")
    headline = [(nb, key_figures(nb.records)) for nb in result.notebooks]
    if any(figs for _, figs in headline):
        parts.append("<h2>Key figures</h2>")
        for nb, figs in headline:
            if figs:
                parts.append(f"<h3>{e(nb.name)}</h3><table><tr><th>figure</th><th>value</th></tr>" + "".join(
                    f"<tr><td>{e(label)}<br><code>{e(name)}</code></td><td>{_figure_html(value)}</td></tr>"
                    for label, name, value in figs) + "</table>")
    parts.append("<h2>All figures and failures</h2>")
    for nb in result.notebooks:
        parts.append(f"<h3 id='{e(nb.name)}'>{e(nb.name)}</h3>")
        if not nb.ok:
            parts.append(
                f"<p class='failed'>FAILED at {e(nb.stage or '')}"
                + (f", cell <code>{e(nb.cell)}</code>" if nb.cell else "") + "</p>"
                f"<pre>{e(nb.error or '')}</pre>"
                + (f"<p>Details: {_link(nb.failed_html, base, nb.failed_html.name)}</p>" if nb.failed_html
                   else "")
                + (f"<p class='stale'>The report of the last successful run ({e(nb.stale_since)}) is kept "
                   f"beside it, stale: {_link(nb.html, base, nb.html.name)}"
                   + "".join(f", {_link(p, base, p.name)}" for p in (nb.pdf, nb.dashboard) if p) + ".</p>"
                   if nb.stale_since and nb.html else ""))
        if nb.records:
            parts.append("<table><tr><th>key figure</th><th>value</th></tr>" + "".join(
                f"<tr><td><code>{e(k)}</code></td><td class='num'>{e(_figure(v))}</td></tr>"
                for k, v in nb.records.items()) + "</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def key_figures(records: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The headline figures of one notebook's records, as listed in :data:`KEY_FIGURES`.

    Returns
    -------
    list of (label, record name, value)
        The first record name of each entry that the notebook recorded, in :data:`KEY_FIGURES` order.
    """
    out = []
    for label, names in KEY_FIGURES:
        name = next((n for n in names if n in records), None)
        if name is not None:
            out.append((label, name, records[name]))
    return out


def _figure_html(value: Any) -> str:
    """A record as HTML: a table for a mapping (rows x columns for a mapping of mappings)."""
    e = html.escape
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        cols = list(dict.fromkeys(c for v in value.values() for c in v))
        head = "<tr><th></th>" + "".join(f"<th>{e(str(c))}</th>" for c in cols) + "</tr>"
        body = "".join(f"<tr><th>{e(str(r))}</th>" + "".join(
            f"<td class='num'>{e(_figure(v.get(c)))}</td>" for c in cols) + "</tr>" for r, v in value.items())
        return f"<table class='fig'>{head}{body}</table>"
    if isinstance(value, dict) and value:
        return ("<table class='fig'><tr>" + "".join(f"<th>{e(str(k))}</th>" for k in value) + "</tr><tr>"
                + "".join(f"<td class='num'>{e(_figure(v))}</td>" for v in value.values()) + "</tr></table>")
    return e(_figure(value))


def _previous_results(out_dir: Path, skip: set[str]) -> list[NotebookResult]:
    """Notebooks of an earlier run into ``out_dir`` (its ``index.json``) not run now, files still there."""
    path = out_dir / "index.json"
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["notebooks"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no earlier index, or an unreadable one: nothing to carry over
    fields = {f.name for f in dataclasses.fields(NotebookResult)} - {"out_dir", "previous"}
    kept = []
    for entry in entries:
        name = entry.get("name")
        if not name or name in skip or not (out_dir / name).is_dir():
            continue
        values = {k: v for k, v in entry.items() if k in fields}
        for key in ("notebook", "html", "pdf", "dashboard", "failed_html"):
            rel = values.get(key)
            values[key] = out_dir / rel if rel and (out_dir / rel).exists() else None
        kept.append(NotebookResult(out_dir=out_dir / name, previous=True, **values))
    return kept


def _index_json(result: ReportResult) -> str:
    def entry(nb: NotebookResult) -> dict[str, Any]:
        d = dataclasses.asdict(nb)
        return {k: (v.relative_to(result.out_dir).as_posix() if isinstance(v, Path) and k != "out_dir"
                    else v) for k, v in d.items() if k != "out_dir"}

    combined = result.combined_pdf.name if result.combined_pdf else None
    return json.dumps({"scenario": result.scenario, "ok": result.ok, "seconds": result.seconds,
                       "combined_pdf": combined, "notebooks": [entry(nb) for nb in result.notebooks]},
                      indent=2, default=str) + "\n"


# --------------------------------------------------------------------------------------------------
# the pipeline


def run_reports(scenario: str | PathLike, notebooks: Sequence[str | PathLike] | None = None,
                out_root: str | PathLike = "reports", market_path: str | PathLike | None = None,
                max_workers: int = 2, pdf: bool = True, execution_timeout: int = 1800,
                progress: bool = True, parameters: Mapping[str, Mapping[str, Any]] | None = None
                ) -> ReportResult:
    """Run the notebooks for a scenario and write HTML, PDF, dashboards and an index.

    Parameters
    ----------
    scenario : str or path
        Scenario name in ``datasets/scenarios`` (e.g. ``"demo"``) or a YAML file.
    notebooks : sequence of str or path, or a folder, optional
        Notebook names (``"market_overview"``) or paths, or a folder whose notebooks all run; None runs
        every notebook in ``notebooks/``. They run, and are listed, in :data:`CHAIN_ORDER`.
    out_root : path
        Reports folder; output goes to ``<out_root>/<scenario name>/``.
    market_path : path, optional
        A saved market store passed to each notebook; None lets each notebook generate the market.
    max_workers : int
        Notebooks executed at once (each in its own kernel process). 2 suits a 2-core machine.
    pdf : bool
        Print each HTML report to PDF with Chromium (needs ``chromium``; see :func:`find_chromium`).
    execution_timeout : int
        Limit per notebook cell [s].
    progress : bool
        Show a tqdm progress bar on stderr.
    parameters : Mapping, optional
        Notebook name -> extra parameters for that notebook, e.g. ``{"compare_scenarios": {"runs": ["SF"]}}``
        (papermill only warns about names the notebook does not declare).

    Returns
    -------
    ReportResult
        Per-notebook outcome; ``result.ok`` is False (and ``result.exit_code`` 1) if any failed.
        Notebooks of an earlier run into the same folder that are not run now keep their files and
        stay in the index; the index and every file are replaced atomically, so a failure never
        leaves a half-written page. With ``pdf``, ``<scenario>/all_services.pdf`` holds every
        notebook's PDF in chain order.

    Raises
    ------
    FileNotFoundError
        If the scenario or a notebook does not exist.
    RuntimeError
        If ``pdf`` is True and no Chromium is found (before anything runs).
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    scenario_path = _resolve_scenario(scenario)
    summary = scenario_summary(scenario_path)
    paths = _resolve_notebooks(notebooks)
    paths = sorted(paths, key=lambda p: chain_order([q.stem for q in paths]).index(p.stem))
    if pdf and find_chromium() is None:
        raise RuntimeError("PDF export needs Chromium: apt-get install chromium, or set TOMLIB_CHROMIUM, "
                           "or pass pdf=False (tom report --no-pdf)")
    out_dir = Path(out_root).resolve() / summary["name"]
    out_dir.mkdir(parents=True, exist_ok=True)
    market = str(Path(market_path).resolve()) if market_path is not None else None

    results: dict[str, NotebookResult] = {}
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=max(1, max_workers),
                                                      thread_name_prefix="tomlib-report"))
        bar = stack.enter_context(tqdm(total=len(paths), desc=f"reports {summary['name']}", unit="notebook",
                                       disable=not progress))
        futures = {
            pool.submit(_execute_one, p, out_dir / p.stem,
                        {**(parameters or {}).get(p.stem, {}), "scenario": str(scenario_path),
                         "market_path": market}, execution_timeout): p.stem
            for p in paths
        }
        browser = None
        for future in as_completed(futures):
            name = futures[future]
            try:
                res, stage = future.result()
                if pdf and res.ok:
                    if browser is None:
                        browser = stack.enter_context(_launch())
                    res = _with_pdf(res, browser)
                res = _commit(res, stage, out_dir / name)
            except Exception as err:  # noqa: BLE001 - a defect of ours must not hide the other notebooks
                res = NotebookResult(name=name, ok=False, out_dir=out_dir / name, stage="execute",
                                     error=_error_text(err))
            results[res.name] = res
            bar.set_postfix_str(f"{res.name} {'ok' if res.ok else 'FAILED'}")
            bar.update()

    # notebooks not run this time keep their earlier files and their line in the index
    for nb in _previous_results(out_dir, set(results)):
        results[nb.name] = nb
    ordered = tuple(results[n] for n in chain_order(list(results)))
    combined = None
    pdfs = [nb.pdf for nb in ordered if nb.ok and nb.pdf is not None]
    if pdf and pdfs:
        try:
            combined = combine_pdfs(pdfs, out_dir / COMBINED_PDF)
        except (RuntimeError, OSError) as err:
            log.warning("no combined PDF: %s", err)
    result = ReportResult(scenario=summary, out_dir=out_dir, index_path=out_dir / "index.html",
                          notebooks=ordered, seconds=time.perf_counter() - started, combined_pdf=combined)
    # the market notebook counts the MPANs of the market itself, export MPANs included
    counted = next((nb.records["n_mpans"] for nb in result.notebooks if "n_mpans" in nb.records), None)
    result = dataclasses.replace(result, scenario={**result.scenario, "n_mpans": counted})
    _atomic_write_text(out_dir / "index.json", _index_json(result))
    _atomic_write_text(result.index_path, render_index(result))
    return result
