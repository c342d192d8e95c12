"""Write a scenario back to a commented YAML file, so analysts change scenarios without hand-editing YAML.

The usual path is: load a committed scenario, change a few knobs with
:meth:`tomlib.scenario.Scenario.with_overrides` (e.g. from notebook parameters), then
:func:`write_scenario`. The file written reads back through :func:`tomlib.scenario.load_scenario`
to equal settings (same :meth:`~tomlib.scenario.Scenario.digest`).

Examples
--------
>>> from tomlib.scenario import load_scenario                       # doctest: +SKIP
>>> scn = load_scenario("demo").with_overrides({"retrieval.success_rate": 0.995, "name": "demo_dcc995"})
>>> write_scenario(scn, "datasets/scenarios/demo_dcc995.yaml")     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import yaml

from tomlib._io import atomic_target

__all__ = ["SECTION_COMMENTS", "scenario_yaml", "write_scenario"]

#: One comment per top-level key (units in brackets; [-] = fraction). Keys not listed get none.
SECTION_COMMENTS: dict[str, str] = {
    "name": "Identifier, used in report and output file names.",
    "description": "Free text shown in reports.",
    "seed": "Seed of every random draw: same file and seed give the same numbers, bit for bit.",
    "first_date": "First settlement day simulated (local UK date).",
    "last_date": "Last settlement day simulated (local UK date, inclusive).",
    "gsp_groups": "GSP groups simulated (DI-037 ids _A.._P).",
    "mpans": "Import MPAN count per GSP group; export MPANs of solar homes come on top of these.",
    "segments": "Share of import MPANs by market segment [-]; must sum to 1.",
    "solar_export_share": "Share of smart domestic MPANs that also have an export MPAN [-].",
    "suppliers": "Suppliers (id = 4-letter MPID) and their share of MPANs [-]; shares sum to 1.",
    "timetable": "Settlement run timetable preset: mhhs or legacy.",
    "retrieval": "Smart meter data retrieval by the data service (rates [-], durations [days]).",
    "metering": "Meters of the smart segment (Metering Service); shares [-].",
    "meter_reading": "Reads of non-smart meters (Meter Reading Service); intervals [days], rates [-].",
    "registration": "Registration changes (change of supplier, LLFC, energisation); rates per day [-], delays [days].",
    "market": "True-world market generator: noise [-], solar capacity [kWp], unaccounted energy [fraction of take].",
}
# the order of the committed scenario files: identity first, then the market, then the services
_ORDER = ("name", "description", "seed", "first_date", "last_date", "gsp_groups", "mpans", "segments",
          "solar_export_share", "suppliers", "timetable")


def scenario_yaml(settings: Mapping[str, Any], header: str | None = None) -> str:
    """YAML text of scenario settings, a comment above each top-level key.

    Parameters
    ----------
    settings : Mapping
        :meth:`Scenario.to_dict` output (plain, JSON-ready values).
    header : str, optional
        Comment lines put first (e.g. where the settings came from).

    Returns
    -------
    str
    """
    keys = [k for k in _ORDER if k in settings] + [k for k in settings if k not in _ORDER]
    lines = [f"# {line}" if line else "#" for line in (header or "").splitlines()]
    for key in keys:
        if key in SECTION_COMMENTS:
            lines.append(f"# {SECTION_COMMENTS[key]}")
        # sort_keys=False keeps the schema's order inside sections; width keeps descriptions on one line
        lines.append(yaml.safe_dump({key: settings[key]}, sort_keys=False, default_flow_style=False,
                                    allow_unicode=True, width=1000).rstrip())
    return "\n".join(lines) + "\n"


def write_scenario(scenario: Any, path: str | PathLike) -> Path:
    """Write a scenario as a commented YAML file that :func:`tomlib.scenario.load_scenario` reads back.

    Parameters
    ----------
    scenario : tomlib.scenario.Scenario
        Validated settings (e.g. after ``with_overrides``).
    path : path
        Output ``.yaml``; written to a temporary sibling, checked by reading it back, then renamed.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If ``path`` does not end in ``.yaml``/``.yml``, or the file written would not read back to the
        same settings (a defect of this writer; nothing is left at ``path``).
    """
    from tomlib.scenario import load_scenario

    path = Path(path)
    if path.suffix not in {".yaml", ".yml"}:
        raise ValueError(f"{path}: a scenario file must end in .yaml or .yml")
    header = (f"Scenario {scenario.name!r}, written by tomlib.scenario_io.write_scenario from "
              f"{scenario.source}.\nRead by tomlib.scenario.load_scenario; settings digest "
              f"{scenario.digest()[:12]}.")
    with atomic_target(path) as tmp:
        tmp.write_text(scenario_yaml(scenario.to_dict(), header), encoding="utf-8")
        back = load_scenario(tmp)
        if back.digest() != scenario.digest():
            raise ValueError(f"{path}: the YAML written does not read back to the same settings")
    return path
