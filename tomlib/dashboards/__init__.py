"""Panel dashboards, one per topic, each a ``pn.viewable.Viewer`` over in-memory data (no file I/O).

One dashboard object serves three outputs: displayed in a notebook, served by ``tom serve``
(:func:`serve_all`), and saved as a static, offline HTML file with every widget state embedded
(:func:`save_dashboard`). Dashboards use classic ``pn.widgets`` (Select, RadioButtonGroup, ...)
because Panel's static ``embed`` only replays those, and give their plots fixed widths so printed
reports keep their layout.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

from tomlib._io import atomic_target

__all__ = ["DASHBOARDS", "ServiceInputs", "available_dashboards", "dashboard_apps", "save_dashboard", "serve_all"]

log = logging.getLogger(__name__)


def save_dashboard(dash: Any, path: str | PathLike, title: str | None = None, max_states: int = 1000,
                   embed_states: Mapping[Any, Sequence[Any]] | None = None) -> Path:
    """Save a dashboard to one self-contained HTML file (BokehJS inline, widget states embedded).

    Parameters
    ----------
    dash : panel Viewer or Panel layout
        The dashboard; its ``__panel__`` layout is saved, since Panel embeds widget states only
        when the root is a layout.
    path : path
        Output ``.html``; written to a temporary sibling first and renamed into place.
    title : str, optional
        Page title (default: Panel's).
    max_states : int
        Limit on the number of embedded widget-state combinations (Panel warns beyond it).
    embed_states : mapping, optional
        Widget of ``pn.panel(dash)`` -> the values to embed for it; default every value of every
        widget. (Pass the layout as ``dash`` to name its widgets.)

    Returns
    -------
    Path
        ``path``.
    """
    import panel as pn
    from bokeh.resources import INLINE
    from panel.viewable import Viewable

    path = Path(path)
    Viewable._preprocessing_hooks.append(_inline_stylesheets)
    try:
        with atomic_target(path) as tmp:
            # apple_icon/app_favicon defined (empty) stop Panel's template linking its icons on the CDN
            pn.panel(dash).save(tmp, resources=INLINE, embed=True, max_states=max_states, progress=False,
                                title=title or path.stem, embed_states=dict(embed_states or {}),
                                template_variables={"apple_icon": "", "app_favicon": ""})
    finally:
        Viewable._preprocessing_hooks.remove(_inline_stylesheets)
    return path


def _inline_stylesheets(viewable: Any, root: Any) -> None:
    """Panel preprocessing hook: swap the CDN stylesheets of every model for inline copies.

    With ``resources=INLINE`` Panel 1.9 still serialises each widget's stylesheets as
    ``ImportedStyleSheet(url="https://cdn.holoviz.org/...")`` (it inlines them only for notebook
    output), so an offline page would lose the widget styling and log failed requests. The hook runs
    on the root and on every model created while the widget states are embedded.
    """
    from bokeh.models import UIElement
    from panel.io.notebook import patch_inline_stylesheets

    for model in root.select({"type": UIElement}):
        patch_inline_stylesheets(model)


# --------------------------------------------------------------------------------------------------
# the registry served by ``tom serve``: one page per service, in the order of the settlement chain


class ServiceInputs:
    """What the dashboard builders share for one market: computed once, on first use.

    Parameters
    ----------
    market : tomlib.market.Market
    scenario : tomlib.scenario.Scenario
        The scenario the market was generated from (its timetable and service knobs).
    runs : sequence of str, optional
        Settlement runs the run-based dashboards compute; default every run of the timetable.
    """

    def __init__(self, market: Any, scenario: Any, runs: Sequence[str] | None = None):
        self.market, self.scenario = market, scenario
        self._runs = list(runs) if runs is not None else None
        self._settled: Any = None

    @property
    def runs(self) -> list[str]:
        """Runs in timetable order."""
        from tomlib import reference

        table = list(reference.run_timetable(self.scenario.timetable).index)
        return table if self._runs is None else [r for r in table if r in self._runs]

    def settlement(self) -> Any:
        """:func:`tomlib.settlement.settle_all` on the market, in memory (cached)."""
        from tomlib import settlement

        if self._settled is None:
            self._settled = settlement.settle_all(self.scenario, self.runs, market=self.market, save=False)
        return self._settled


def _market_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.market import MarketDashboard

    return MarketDashboard(market=inputs.market)


def _smart_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.smart import SmartDashboard
    from tomlib.services import processing

    config = processing.ProcessingConfig.from_scenario(inputs.scenario)
    results = {r: processing.settle_run(inputs.market, r, config=config, preset=inputs.scenario.timetable)
               for r in inputs.runs}
    return SmartDashboard(results=results, market=inputs.market, run="SF" if "SF" in results else inputs.runs[0])


def _advanced_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.advanced import AdvancedDashboard
    from tomlib.services import advanced

    config = advanced.AdvancedConfig.from_scenario(inputs.scenario)
    services = advanced.advanced_inputs(inputs.market, config)
    results = {r: advanced.settle_run(inputs.market, r, config=config, preset=inputs.scenario.timetable)
               for r in inputs.runs}
    return AdvancedDashboard(results=results, market=inputs.market, inputs=services)


def _ums_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards import ums

    truth = ums.ums_truth(inputs.scenario, inputs.market)
    locations = sorted(set(truth.standing["gsp_group"].astype(str)))
    return ums.ums_dashboard(truth, ums.settle_methods(truth, inputs.scenario), locations,
                             inputs.scenario.first_date.year)


def _load_shaping_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.load_shaping import shape_runs

    run = "SF" if "SF" in inputs.runs else inputs.runs[0]
    return shape_runs(inputs.market, inputs.scenario, [run]).explorer(run)


def _volume_allocation_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.volume_allocation import VolumeAllocationDashboard

    return VolumeAllocationDashboard(recon=inputs.settlement().reconciliation)


def _settlement_runs_dashboard(inputs: ServiceInputs) -> Any:
    from tomlib.dashboards.settlement_runs import SettlementRunsDashboard

    return SettlementRunsDashboard(recon=inputs.settlement().reconciliation)


#: page name -> (modules the page needs, builder taking the shared ServiceInputs); chain order.
#: Each builder takes its inputs from tomlib functions the service's notebook calls too.
DASHBOARDS: dict[str, tuple[tuple[str, ...], Callable[[ServiceInputs], Any]]] = {
    "market": (("tomlib.dashboards.market",), _market_dashboard),
    "smart": (("tomlib.dashboards.smart", "tomlib.services.processing"), _smart_dashboard),
    "advanced": (("tomlib.dashboards.advanced", "tomlib.services.advanced"), _advanced_dashboard),
    "unmetered_supplies": (("tomlib.dashboards.ums", "tomlib.services.ums"), _ums_dashboard),
    "load_shaping": (("tomlib.dashboards.load_shaping", "tomlib.services.load_shaping"), _load_shaping_dashboard),
    "volume_allocation": (("tomlib.dashboards.volume_allocation", "tomlib.settlement"),
                          _volume_allocation_dashboard),
    "settlement_runs": (("tomlib.dashboards.settlement_runs", "tomlib.settlement"), _settlement_runs_dashboard),
}


def available_dashboards(registry: Mapping[str, tuple[tuple[str, ...], Callable]] | None = None
                         ) -> dict[str, Callable[[ServiceInputs], Any]]:
    """The registered builders whose modules import; the others are skipped with a logged reason.

    Parameters
    ----------
    registry : mapping, optional
        Page name -> (module names, builder); default :data:`DASHBOARDS`.

    Returns
    -------
    dict
        Page name -> builder, in registry order.
    """
    import importlib

    found = {}
    for name, (modules, builder) in (DASHBOARDS if registry is None else registry).items():
        try:
            for module in modules:
                importlib.import_module(module)
        except ImportError as err:
            log.warning("dashboard %r skipped: %s is not available (%s)", name, module, err)
            continue
        found[name] = builder
    return found


def scenario_writer(folder: str | PathLike) -> Callable[[Any], Path]:
    """``write(scenario)``: ``<folder>/<name>.yaml`` by :func:`tomlib.scenario_io.write_scenario`, for
    :class:`~tomlib.dashboards.scenario_form.ScenarioForm`; an existing file is never replaced."""
    folder = Path(folder)

    def write(scenario: Any) -> Path:
        from tomlib.scenario_io import write_scenario

        path = folder / f"{scenario.name}.yaml"
        if path.exists():
            raise FileExistsError(f"{path} exists: give the scenario another name")
        return write_scenario(scenario, path)

    return write


def dashboard_apps(market: Any, scenario: Any = None, runs: Sequence[str] | None = None,
                   registry: Mapping[str, tuple[tuple[str, ...], Callable]] | None = None,
                   scenario_dir: str | PathLike | None = None) -> dict[str, Callable[[], Any]]:
    """Page name -> a callable building that page's dashboard (what ``panel.serve`` takes).

    Parameters
    ----------
    market : tomlib.market.Market
    scenario : Scenario, optional
        Default: the scenario named by ``market.scenario_name`` in ``datasets/scenarios``.
    runs : sequence of str, optional
        Settlement runs of the run-based dashboards; default the whole timetable.
    registry : mapping, optional
        Default :data:`DASHBOARDS`.
    scenario_dir : path, optional
        Adds a page ``scenario``: a form for a new scenario from this one, written into this folder
        (:class:`~tomlib.dashboards.scenario_form.ScenarioForm`, :func:`scenario_writer`).
    """
    if scenario is None:
        from tomlib.scenario import default_scenario_path, load_scenario

        try:
            scenario = load_scenario(default_scenario_path(market.scenario_name))
        except FileNotFoundError as err:  # a hand-made market: pages needing the scenario fail when opened
            log.warning("no scenario file for market %r (%s); service pages need one", market.scenario_name, err)
    inputs = ServiceInputs(market, scenario, runs)
    apps = {name: _page(builder, inputs) for name, builder in available_dashboards(registry).items()}
    if scenario_dir is not None and scenario is not None:
        apps["scenario"] = _page(functools.partial(_scenario_form, write=scenario_writer(scenario_dir)), inputs)
    return apps


def _scenario_form(inputs: ServiceInputs, write: Callable[[Any], Path]) -> Any:
    from tomlib.dashboards.scenario_form import ScenarioForm

    return ScenarioForm(inputs.scenario, write=write)


def _page(builder: Callable[[ServiceInputs], Any], inputs: ServiceInputs) -> Callable[[], Any]:
    """A plain function building one page: Panel's server calls only functions and methods, and shows
    anything else, a ``functools.partial`` included, as its repr on an otherwise empty page."""
    def page() -> Any:
        return builder(inputs)

    page.__name__ = page.__qualname__ = getattr(builder, "__name__", "page").lstrip("_")
    return page


def serve_all(market: Any, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
              scenario: Any = None, runs: Sequence[str] | None = None, scenario_dir: str | PathLike | None = None,
              **kwargs: Any) -> Any:
    """Serve every available dashboard of a market in one Panel server, a page per service.

    Blocks until stopped unless ``threaded=True`` is passed. The server's index page links the pages.

    Parameters
    ----------
    market : tomlib.market.Market
    port : int
    address : str
        Interface to listen on; also the allowed websocket origin.
    show : bool
        Open a browser.
    scenario : Scenario, optional
        The market's scenario (see :func:`dashboard_apps`).
    runs : sequence of str, optional
        Settlement runs of the run-based dashboards; default the whole timetable.
    scenario_dir : path, optional
        Also serve the page ``scenario``, a form writing new scenario files into this folder.
    **kwargs
        Passed to ``panel.serve`` (e.g. ``threaded=True`` to get the server back in tests).
    """
    import panel as pn

    apps = dashboard_apps(market, scenario, runs, scenario_dir=scenario_dir)
    log.info("serving dashboards %s on http://%s:%d/", ", ".join(apps), address, port)
    return pn.serve(apps, port=port, address=address, show=show, title={k: k.replace("_", " ") for k in apps},
                    websocket_origin=[f"{address}:{port}", f"localhost:{port}"], **kwargs)
