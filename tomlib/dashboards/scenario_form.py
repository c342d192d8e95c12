"""A form that writes a valid scenario file: analysts change a scenario's main knobs without YAML.

The form starts from a base scenario, whose values fill its fields: identity and dates, import MPANs
per GSP group, the segment mix, the run timetable and the main knobs of the services (DCC retrieval,
metering, meter reading, registration changes, the advanced CT fault, unaccounted energy). *Check*
validates the settings with :meth:`tomlib.scenario.Scenario.with_overrides` and lists what differs
from the base; *Write scenario* hands the validated scenario to the ``write`` callable the caller
gives (``tom serve`` writes ``<folder>/<name>.yaml`` with :func:`tomlib.scenario_io.write_scenario`,
refusing to overwrite). A setting that fails validation is named in the form's message and nothing
is written. No file I/O here.

Other settings (the supplier list, the generator's noise) keep the base scenario's values; the
comparison notebook's ``overrides_a``/``overrides_b`` reach any setting by its dotted key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import panel as pn

from tomlib.compare import flatten_settings, settings_diff
from tomlib.scenario import Scenario, ScenarioError

__all__ = ["MAIN_KNOBS", "ScenarioForm"]

#: Dotted setting -> field label (units in brackets; [-] = fraction). ``mpans.<GSP group>`` fields
#: follow the dates, one per GSP group of the base scenario.
MAIN_KNOBS: tuple[tuple[str, str], ...] = (
    ("name", "name (also the file name)"),
    ("description", "description"),
    ("seed", "seed of every random draw"),
    ("first_date", "first settlement day (YYYY-MM-DD)"),
    ("last_date", "last settlement day (YYYY-MM-DD)"),
    ("segments.smart_domestic", "smart domestic share of import MPANs [-]"),
    ("segments.smart_non_domestic", "smart non-domestic share [-]"),
    ("segments.advanced", "advanced share [-]"),
    ("segments.unmetered", "unmetered share [-]"),
    ("solar_export_share", "smart domestic MPANs with solar export [-]"),
    ("timetable", "settlement run timetable"),
    ("retrieval.success_rate", "DCC retrieval: success of one daily attempt [-]"),
    ("retrieval.retry_days", "DCC retrieval: days a failed day is retried [days]"),
    ("metering.dcc_share", "smart imports with a DCC-enrolled meter [-]"),
    ("meter_reading.customer_read_interval_days", "days between customer reads [days]"),
    ("registration.change_of_supplier_rate", "change of supplier per MPAN-day [-]"),
    ("advanced.ct_fault", "wrong CT ratio at one advanced site"),
    ("market.unaccounted_energy.mean", "unaccounted energy, mean share of the take [-]"),
)
TIMETABLES = ("mhhs", "legacy")


def _field(label: str, value: Any, key: str) -> pn.widgets.Widget:
    """The widget of one setting, by the type of its base value."""
    if key == "timetable":
        return pn.widgets.Select(label=label, options=list(TIMETABLES), value=value, width=280)
    if isinstance(value, bool):
        return pn.widgets.Checkbox(label=label, value=value, width=280)
    if isinstance(value, int):
        return pn.widgets.IntInput(label=label, value=value, width=280)
    if isinstance(value, float):
        return pn.widgets.FloatInput(label=label, value=value, step=0.001, width=280)
    return pn.widgets.TextInput(label=label, value="" if value is None else str(value), width=280)


class ScenarioForm(pn.viewable.Viewer):
    """Fields for a scenario's main knobs, checked and written as a valid scenario file.

    Parameters
    ----------
    base : Scenario
        The scenario whose values fill the fields; the written scenario differs from it only in
        the fields changed.
    write : callable, optional
        ``write(scenario) -> Path`` puts the validated scenario somewhere (it may raise
        ``FileExistsError``); None leaves *Write scenario* saying so.
    """

    def __init__(self, base: Scenario, write: Callable[[Scenario], Path] | None = None, **params: Any):
        super().__init__(**params)
        self.base, self._write = base, write
        flat = flatten_settings(base.to_dict())
        keys = [k for k, _ in MAIN_KNOBS]
        keys[keys.index("last_date") + 1:keys.index("last_date") + 1] = [f"mpans.{g}" for g in base.mpans]
        labels = {**dict(MAIN_KNOBS), **{f"mpans.{g}": f"import MPANs in GSP group {g}" for g in base.mpans}}
        self._base_values = {k: flat.get(k) for k in keys}
        self.fields = {k: _field(labels[k], self._base_values[k], k) for k in keys}
        self.check_button = pn.widgets.Button(label="Check", width=120)
        self.write_button = pn.widgets.Button(label="Write scenario", color="primary", width=160)
        self.message = pn.pane.Markdown("", width=600, min_height=60)
        self.check_button.on_click(lambda event: self.check())
        self.write_button.on_click(lambda event: self.write())

    def overrides(self) -> dict[str, Any]:
        """Dotted setting -> value of the fields changed from the base scenario."""
        out = {}
        for key, widget in self.fields.items():
            base = self._base_values[key]
            if widget.value != base and not (base is None and widget.value == ""):  # "" shows a None
                out[key] = widget.value
        return out

    def scenario(self) -> Scenario:
        """The base scenario with the changed fields, validated.

        Raises
        ------
        tomlib.scenario.ScenarioError
            If a value is out of range or inconsistent (the message names the setting).
        """
        return self.base.with_overrides(self.overrides())

    def check(self) -> Scenario | None:
        """Validate; the message lists the settings that differ from the base, or the error."""
        try:
            scn = self.scenario()
        except ScenarioError as err:
            self.message.object = f"**Not valid:** {err}"
            return None
        diff = settings_diff(self.base, scn, (self.base.name, scn.name))
        rows = "\n".join(f"| `{k}` | {row.iloc[0]} | {row.iloc[1]} |" for k, row in diff.iterrows())
        self.message.object = (f"**Valid.** Settings digest `{scn.digest()[:12]}`; changed from "
                               f"`{self.base.name}`:\n\n| setting | {self.base.name} | {scn.name} |\n|---|---|---|\n"
                               + (rows or "| (none) | | |"))
        return scn

    def write(self) -> Path | None:
        """Validate and write; the message says where, or why not."""
        scn = self.check()
        if scn is None:
            return None
        if self._write is None:
            self.message.object += "\n\nNothing written: this form was opened without a folder to write to."
            return None
        try:
            path = self._write(scn)
        except (FileExistsError, ValueError, OSError) as err:
            self.message.object += f"\n\n**Not written:** {err}"
            return None
        self.message.object += (f"\n\n**Written:** `{path}` — `tom generate --scenario {path}` makes its market, "
                                f"`tom report --scenario {path}` its reports.")
        return path

    def __panel__(self) -> pn.Column:
        return pn.Column(
            pn.pane.Markdown(f"### New scenario from `{self.base.name}`\n\nChange the fields, *Check*, then "
                             "*Write scenario*. Other settings keep the base scenario's values.", width=600),
            pn.GridBox(*self.fields.values(), ncols=2, width=600),
            pn.Row(self.check_button, self.write_button),
            self.message,
        )
