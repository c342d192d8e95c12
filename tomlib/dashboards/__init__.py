"""Panel dashboards, one per topic, each a ``pn.viewable.Viewer`` over in-memory data (no file I/O).

One dashboard object serves three outputs: displayed in a notebook, served by ``tom serve``
(:func:`serve_all`), and saved as a static, offline HTML file with every widget state embedded
(:func:`save_dashboard`). Dashboards use classic ``pn.widgets`` (Select, RadioButtonGroup, ...)
because Panel's static ``embed`` only replays those, and give their plots fixed widths so printed
reports keep their layout.
"""

from __future__ import annotations

import os
import uuid
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = ["save_dashboard", "serve_all"]


def save_dashboard(dash: Any, path: str | PathLike, title: str | None = None, max_states: int = 1000) -> Path:
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

    Returns
    -------
    Path
        ``path``.
    """
    import panel as pn
    from bokeh.resources import INLINE
    from panel.viewable import Viewable

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    Viewable._preprocessing_hooks.append(_inline_stylesheets)
    try:
        # apple_icon/app_favicon defined (empty) stop Panel's template linking its icons on the CDN
        pn.panel(dash).save(tmp, resources=INLINE, embed=True, max_states=max_states, progress=False,
                            title=title or path.stem,
                            template_variables={"apple_icon": "", "app_favicon": ""})
        os.replace(tmp, path)
    finally:
        Viewable._preprocessing_hooks.remove(_inline_stylesheets)
        tmp.unlink(missing_ok=True)
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


def serve_all(market: Any, port: int = 5006, address: str = "127.0.0.1", show: bool = False,
              **kwargs: Any) -> Any:
    """Serve every dashboard of a market with a Panel server (blocks until stopped).

    Parameters
    ----------
    market : tomlib.market.Market
    port : int
    address : str
        Interface to listen on; also the allowed websocket origin.
    show : bool
        Open a browser.
    **kwargs
        Passed to ``panel.serve`` (e.g. ``threaded=True`` to get the server back in tests).
    """
    import panel as pn

    from tomlib.dashboards.market import MarketDashboard

    apps = {"market": lambda: MarketDashboard(market=market)}
    return pn.serve(apps, port=port, address=address, show=show,
                    websocket_origin=[f"{address}:{port}", f"localhost:{port}"], **kwargs)
