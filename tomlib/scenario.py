"""Scenario files: YAML settings validated into frozen dataclasses.

A scenario fixes everything the simulated market and the settlement services need to run
reproducibly: the settlement days, the GSP groups, how many MPANs of each market segment, the
suppliers and their market shares, the run timetable, and the knobs of the services (DCC retrieval
success, noise levels, unaccounted energy, ...). The same file and seed give the same numbers.

Every setting must be written in the file: there are no hidden defaults (``description`` is the
only optional key), so a scenario file is a complete record of what was run and
:meth:`Scenario.digest` identifies it for provenance.

Bad input raises :class:`ScenarioError` naming the file, the dotted key and what was expected,
with the line where the key was found (settlement days must lie in :data:`tomlib.flows.DATE_RANGE`),
e.g.::

    demo.yaml: retrieval.success_rate must be within [0, 1], got 1.3 (line 41)

Layout of a scenario file (``datasets/scenarios/demo.yaml`` is the commented reference):

=====================  ==========================================================================
key                    meaning
=====================  ==========================================================================
name                   short identifier, safe in file names (letters, digits, ``_ . -``)
description            optional free text
seed                   non-negative integer seeding every random draw
first_date, last_date  first and last settlement day (ISO dates, local UK days, inclusive)
gsp_groups             GSP group ids (``_A`` .. ``_P``, DI-037), unique
mpans                  import MPAN count per GSP group (mapping), or a total split evenly
segments               shares of MPANs by segment: ``smart_domestic``, ``smart_non_domestic``,
                       ``advanced``, ``unmetered`` [-], summing to 1
solar_export_share     share of smart domestic MPANs that also have an export MPAN [-]
suppliers              list of ``{id, name, market_share}``; ids are 4-letter MPIDs; shares sum to 1
timetable              settlement run timetable preset: ``mhhs`` or ``legacy``
retrieval              smart data retrieval (:class:`RetrievalSettings`)
market                 true-world generator knobs (:class:`MarketSettings`)
=====================  ==========================================================================

Extending: a later service adds a section by writing a frozen dataclass, a ``_schema.Section``
for it and one entry in ``_SECTIONS``; parsing, unknown-key and missing-key errors, ``to_dict``
and the digest then cover it without further code. The generic field specs and the YAML reader
(line numbers, duplicate keys, dates kept as text) live in :mod:`tomlib._schema`, so this module
holds only the settings and their rules.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tomlib import _schema as sch

__all__ = [
    "SCENARIO_DIR",
    "TIMETABLES",
    "MarketSettings",
    "RetrievalSettings",
    "Scenario",
    "ScenarioError",
    "SegmentMix",
    "SolarCapacity",
    "Supplier",
    "UnaccountedEnergy",
    "default_scenario_path",
    "known_gsp_groups",
    "load_scenario",
]

#: Directory of the scenario files shipped with the repository checkout (editable install).
SCENARIO_DIR = Path(__file__).resolve().parents[1] / "datasets" / "scenarios"

#: Run timetable presets (tomlib.reference.run_timetable): MHHS (F-21) and the legacy one (F-20).
TIMETABLES = ("mhhs", "legacy")

# DI-037 GSP group ids; used only if tomlib.reference is not importable (tests compare the two).
_FALLBACK_GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")

_SHARE_TOLERANCE = 1e-9


class ScenarioError(ValueError):
    """A scenario file or mapping does not hold valid settings."""


def known_gsp_groups() -> tuple[str, ...]:
    """GSP group ids a scenario may name.

    Returns
    -------
    tuple of str
        ``("_A", ..., "_P")`` from :func:`tomlib.reference.gsp_groups` when that module is
        available, else the DI-037 list kept here.
    """
    try:
        from tomlib.reference import gsp_groups
    except ImportError:
        return _FALLBACK_GSP_GROUPS
    return tuple(str(g) for g in gsp_groups().index)


# --------------------------------------------------------------------------------------------
# settings dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentMix:
    """Shares of MPANs by market segment [-]; they sum to 1.

    Attributes
    ----------
    smart_domestic, smart_non_domestic : float
        Smart segment (S), domestic and non-domestic [-].
    advanced : float
        Advanced segment (A) [-].
    unmetered : float
        Unmetered supplies (U) [-].
    """

    smart_domestic: float
    smart_non_domestic: float
    advanced: float
    unmetered: float


@dataclass(frozen=True)
class Supplier:
    """A supplier: 4-letter market participant id, display name and share of MPANs [-]."""

    id: str
    name: str
    market_share: float


@dataclass(frozen=True)
class RetrievalSettings:
    """Smart meter data retrieval by the data service (used by the retrieval service).

    Attributes
    ----------
    success_rate : float
        Probability that one daily retrieval attempt for an MPAN succeeds [-].
    retry_days : int
        Days the data service keeps retrying a failed retrieval [days].
    comms_failure_rate : float
        Share of smart MPANs with a communications fault (no remote retrieval) [-].
    late_data_share : float
        Share of retrieved days that arrive late, after the next working day [-].
    comms_spell_mean_days : float
        Mean length of a communications-failure spell (geometric) [days].
    negative_spike_rate : float
        Share of retrieved import periods carrying a negative spike (a fault validation must catch) [-].
    zero_run_rate : float
        Share of retrieved MPAN-days with a run of zeros on an energised meter [-].
    duplicate_rate : float
        Share of retrieved periods delivered twice with different values [-].
    """

    success_rate: float
    retry_days: int
    comms_failure_rate: float
    late_data_share: float
    comms_spell_mean_days: float
    negative_spike_rate: float
    zero_run_rate: float
    duplicate_rate: float


@dataclass(frozen=True)
class RegistrationSettings:
    """Registration changes inside the scenario's days (used by ``tomlib.registration``).

    Attributes
    ----------
    change_of_supplier_rate : float
        Daily probability that an MPAN changes supplier [-].
    llfc_change_rate : float
        Daily probability that an MPAN's line loss factor class changes [-].
    deenergisation_rate : float
        Daily probability that an MPAN is de-energised [-].
    late_notification_share : float
        Share of changes notified after they take effect [-].
    late_notification_max_days : float
        Longest delay of a late notification [days].
    notice_days : float
        Notice given ahead of a change notified on time [days].
    initial_notice_days : float
        How long before the first settlement day the starting registrations were notified [days].
    """

    change_of_supplier_rate: float
    llfc_change_rate: float
    deenergisation_rate: float
    late_notification_share: float
    late_notification_max_days: float
    notice_days: float
    initial_notice_days: float


@dataclass(frozen=True)
class AdvancedSettings:
    """The advanced segment (used by ``tomlib.services.advanced_metering.AdvancedConfig``).

    Attributes
    ----------
    ct_fault : bool
        Switch on a wrong CT ratio on one site: the MTDs keep the old ratio until corrected.
    ct_fault_mpan : str
        The site with the fault; "" = the first CT site without a check meter.
    ct_fault_from : str or None
        Settlement date the fault starts; None = 7 days after ``first_date``.
    ct_fault_factor : float
        Installed CT ratio / the ratio the MTDs hold [-].
    ct_fault_corrected_after_days : float
        Days after the start at which corrected MTDs reach the data service [days].
    step_change_action : str
        "flag" a step change in a site's level (a CT error's signature) or "reject" and estimate.
    outstation_memory_days : int
        Days an outstation keeps its data; older data never collected is lost [days].
    """

    ct_fault: bool
    ct_fault_mpan: str
    ct_fault_from: str | None
    ct_fault_factor: float
    ct_fault_corrected_after_days: float
    step_change_action: str
    outstation_memory_days: int


@dataclass(frozen=True)
class MeteringSettings:
    """Meters of the smart segment (used by the Metering Service).

    Attributes
    ----------
    dcc_share : float
        Share of smart-segment import MPANs with a DCC-enrolled smart meter (half-hourly data) [-].
    smart_traditional_share : float
        Share of smart meters working in traditional mode (read by hand) [-].
    exchange_share : float
        Share of MPANs whose meter is exchanged inside the scenario's days [-].
    near_rollover_share : float
        Share of registers starting close to their last value, so they roll over [-].
    """

    dcc_share: float
    smart_traditional_share: float
    exchange_share: float
    near_rollover_share: float


@dataclass(frozen=True)
class MeterReadingSettings:
    """Reads of non-smart meters (used by the Meter Reading Service).

    Attributes
    ----------
    site_visit_interval_days : float
        Days between site visits by the meter reader [days].
    customer_read_share : float
        Share of hand-read MPANs whose customer sends their own reads [-].
    customer_read_interval_days : float
        Days between customer own reads [days].
    deemed_read_daily_rate : float
        Daily probability of a deemed read (change of supplier, dispute) [-].
    transposed_rate_customer : float
        Share of customer reads with two digits transposed [-].
    out_of_order_rate : float
        Share of reads delivered after a later read of the same register [-].
    """

    site_visit_interval_days: float
    customer_read_share: float
    customer_read_interval_days: float
    deemed_read_daily_rate: float
    transposed_rate_customer: float
    out_of_order_rate: float


@dataclass(frozen=True)
class SolarCapacity:
    """Range of rooftop solar capacity drawn for homes with export [kWp]."""

    min: float
    max: float


@dataclass(frozen=True)
class UnaccountedEnergy:
    """Energy in the GSP group take not seen by any meter, per period.

    Attributes
    ----------
    mean : float
        Mean, as a fraction of the GSP group take [-].
    sd : float
        Standard deviation of its per-period noise, fraction of the GSP group take [-].
    """

    mean: float
    sd: float


@dataclass(frozen=True)
class MarketSettings:
    """Knobs of the true-world market generator.

    Attributes
    ----------
    household_noise : float
        Relative standard deviation of noise on household consumption [-].
    non_domestic_noise : float
        Relative standard deviation of noise on non-domestic consumption [-].
    solar_capacity_kwp : SolarCapacity
        Range of solar capacity for homes with an export MPAN [kWp].
    unaccounted_energy : UnaccountedEnergy
        Unaccounted energy as a fraction of the GSP group take [-].
    lcl_label : str
        Whether LCL smart-meter timestamps mark the ``"start"`` or ``"end"`` of the half hour
        (the data set does not say; see its README).
    min_household_coverage : float
        Minimum share of half hours an LCL household must have to be used as a template [-].
    """

    household_noise: float
    non_domestic_noise: float
    solar_capacity_kwp: SolarCapacity
    unaccounted_energy: UnaccountedEnergy
    lcl_label: str
    min_household_coverage: float


@dataclass(frozen=True)
class Scenario:
    """Validated settings of one scenario (see the module docstring for the file layout).

    Attributes
    ----------
    name : str
        Identifier, safe in file names.
    seed : int
        Seed of every random draw.
    first_date, last_date : pandas.Timestamp
        First and last settlement day, tz-naive midnight (local UK date), inclusive.
    gsp_groups : tuple of str
        GSP group ids.
    mpans : Mapping[str, int]
        Import MPAN count per GSP group, in ``gsp_groups`` order (read-only mapping).
    segments : SegmentMix
        Shares of MPANs by market segment [-].
    solar_export_share : float
        Share of smart domestic MPANs that also have an export MPAN [-].
    suppliers : tuple of Supplier
        Suppliers and their market shares [-].
    timetable : str
        Run timetable preset, ``"mhhs"`` or ``"legacy"``.
    retrieval : RetrievalSettings
    metering : MeteringSettings
    meter_reading : MeterReadingSettings
    registration : RegistrationSettings
    advanced : AdvancedSettings
    market : MarketSettings
    description : str
        Free text ("" if not given).
    source : str
        Where the settings came from (file path or ``"<dict>"``); not part of equality or digest.
    """

    name: str
    seed: int
    first_date: pd.Timestamp
    last_date: pd.Timestamp
    gsp_groups: tuple[str, ...]
    mpans: Mapping[str, int]
    segments: SegmentMix
    solar_export_share: float
    suppliers: tuple[Supplier, ...]
    timetable: str
    retrieval: RetrievalSettings
    metering: MeteringSettings
    meter_reading: MeterReadingSettings
    registration: RegistrationSettings
    advanced: AdvancedSettings
    market: MarketSettings
    description: str = ""
    source: str = field(default="<dict>", compare=False, repr=False)

    # ---- convenience views -------------------------------------------------------------
    @property
    def settlement_dates(self) -> pd.DatetimeIndex:
        """Settlement days first..last inclusive (tz-naive midnight)."""
        return pd.date_range(self.first_date, self.last_date, freq="D", name="settlement_date")

    @property
    def n_mpans(self) -> int:
        """Total import MPAN count over all GSP groups."""
        return int(sum(self.mpans.values()))

    @property
    def unaccounted_energy(self) -> UnaccountedEnergy:
        """Shortcut to ``market.unaccounted_energy`` [fraction of GSP group take]."""
        return self.market.unaccounted_energy

    # ---- construction and provenance ----------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>", lines: Mapping[str, int] | None = None) -> Scenario:
        """Validate a mapping of settings (as read from YAML) into a Scenario.

        Parameters
        ----------
        data : Mapping
            Settings, nested as in a scenario file.
        source : str
            Name used in error messages (the file path for files).
        lines : Mapping[str, int], optional
            Line of each dotted key in the source file, added to error messages.

        Raises
        ------
        ScenarioError
            Naming ``source``, the dotted key and what was expected.
        """
        ctx = sch.Context(str(source), dict(lines or {}), ScenarioError)
        return dataclasses.replace(_SCENARIO.parse(ctx, "", data), source=str(source))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready settings (dates as ISO strings); ``from_dict`` inverts it."""
        return _SCENARIO.dump(self)

    def __hash__(self) -> int:
        # The generated hash would fail on the read-only ``mpans`` mapping; equal settings hash equal.
        return hash(self.digest())

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of :meth:`to_dict` — equal settings, equal digest."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()

    def with_overrides(self, overrides: Mapping[str, Any]) -> Scenario:
        """A new, re-validated Scenario with some settings changed.

        Parameters
        ----------
        overrides : Mapping[str, Any]
            Dotted keys to new values, e.g. ``{"retrieval.success_rate": 0.95, "seed": 7}``.
        """
        data = self.to_dict()
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split(".")
            for i, part in enumerate(parents):
                if not isinstance(node.get(part), dict):
                    raise ScenarioError(
                        f"{self.source} with overrides: {'.'.join(parents[: i + 1])} is not a section "
                        f"of settings, cannot set {dotted}"
                    )
                node = node[part]
            node[leaf] = value
        return Scenario.from_dict(data, source=f"{self.source} with overrides")


# --------------------------------------------------------------------------------------------
# the schema (field specs from tomlib._schema, plus the two that know about GSP groups)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _GspGroups:
    def expected(self) -> str:
        return "a non-empty list of unique GSP group ids (" + ", ".join(known_gsp_groups()) + ")"

    def parse(self, ctx: sch.Context, key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise ctx.error(key, f"must be {self.expected()}, got {sch.got(value)}")
        known = known_gsp_groups()
        for i, g in enumerate(value):
            if not isinstance(g, str) or g not in known:
                hint = difflib.get_close_matches(str(g), known, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ctx.error(
                    f"{key}[{i}]", f"must be a known GSP group id ({', '.join(known)}), got {g!r}{extra}"
                )
        dup = sorted({g for g in value if value.count(g) > 1})
        if dup:
            raise ctx.error(key, f"must list each GSP group once, got {', '.join(dup)} more than once")
        return tuple(value)

    def dump(self, value: tuple[str, ...]) -> list[str]:
        return list(value)


@dataclass(frozen=True)
class _MpanCounts:
    """Import MPAN counts: {gsp_group: count} or a total split evenly (needs gsp_groups parsed first)."""

    depends_on = "gsp_groups"

    def expected(self) -> str:
        return "a mapping of GSP group id to a positive integer MPAN count, or a positive integer total"

    def parse(self, ctx: sch.Context, key: str, value: Any, gsp_groups: tuple[str, ...]) -> Mapping:
        count = sch.Integer(1)
        if isinstance(value, int) and not isinstance(value, bool):
            total = count.parse(ctx, key, value)
            if total < len(gsp_groups):
                raise ctx.error(
                    key, f"must be at least one MPAN per GSP group ({len(gsp_groups)}), got {total}"
                )
            # Even split; the first (total mod n) groups take one more, in gsp_groups order.
            base, extra = divmod(total, len(gsp_groups))
            counts = {g: base + (i < extra) for i, g in enumerate(gsp_groups)}
            return types.MappingProxyType(counts)
        if not isinstance(value, dict):
            raise ctx.error(key, f"must be {self.expected()}, got {sch.got(value)}")
        for g in value:
            if g not in gsp_groups:
                raise ctx.error(
                    f"{key}.{g}", f"is not one of gsp_groups ({', '.join(gsp_groups)}); expected a count "
                    "for each listed GSP group only",
                )
        for g in gsp_groups:
            if g not in value:
                raise ctx.error(f"{key}.{g}", f"is missing (expected {count.expected()} MPAN count)")
        counts = {g: count.parse(ctx, f"{key}.{g}", value[g]) for g in gsp_groups}
        return types.MappingProxyType(counts)

    def dump(self, value: Mapping) -> dict[str, int]:
        return {g: int(n) for g, n in value.items()}


def _check_sum(ctx: sch.Context, key: str, values: dict[str, float], what: str) -> None:
    total = math.fsum(values.values())
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        parts = " + ".join(f"{v:g}" for v in values.values())
        raise ctx.error(key, f"{what} must sum to 1 (within {_SHARE_TOLERANCE:g}), got {parts} = {total:.12g}")


def _check_segments(ctx: sch.Context, key: str, mix: SegmentMix) -> None:
    _check_sum(ctx, key, dataclasses.asdict(mix), "shares")


def _check_solar(ctx: sch.Context, key: str, cap: SolarCapacity) -> None:
    if cap.min > cap.max:
        raise ctx.error(f"{key}.min", f"must be <= {key}.max ({cap.max:g}), got {cap.min:g}")


def _check_scenario(ctx: sch.Context, key: str, s: Scenario) -> None:
    from tomlib.flows import DATE_RANGE

    for name in ("first_date", "last_date"):
        day = getattr(s, name)
        if not DATE_RANGE[0] <= day <= DATE_RANGE[1]:
            raise ctx.error(name, f"must be a settlement day from {DATE_RANGE[0].date()} to {DATE_RANGE[1].date()} "
                                  f"(the years tomlib.calendar was checked for), got {day.date()}")
    if s.first_date > s.last_date:
        raise ctx.error(
            "last_date",
            f"must be on or after first_date ({s.first_date.date()}), got {s.last_date.date()}",
        )
    ids = [sup.id for sup in s.suppliers]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ctx.error("suppliers", f"ids must be unique, got {', '.join(dup)} more than once")
    _check_sum(ctx, "suppliers", {sup.id: sup.market_share for sup in s.suppliers}, "market_share values")


_SUPPLIER = sch.Section(
    Supplier,
    {
        "id": sch.Text(r"[A-Z]{4}", "a 4-letter upper-case market participant id (MPID)"),
        "name": sch.Text(),
        "market_share": sch.Number(0.0, 1.0, lo_open=True),
    },
    "a supplier",
)

_RETRIEVAL = sch.Section(
    RetrievalSettings,
    {
        "success_rate": sch.FRACTION,
        "retry_days": sch.Integer(0),
        "comms_failure_rate": sch.FRACTION,
        "late_data_share": sch.FRACTION,
        "comms_spell_mean_days": sch.Number(0.0, lo_open=True),
        "negative_spike_rate": sch.FRACTION,
        "zero_run_rate": sch.FRACTION,
        "duplicate_rate": sch.FRACTION,
    },
    "smart data retrieval settings",
)

_REGISTRATION = sch.Section(
    RegistrationSettings,
    {
        "change_of_supplier_rate": sch.FRACTION,
        "llfc_change_rate": sch.FRACTION,
        "deenergisation_rate": sch.FRACTION,
        "late_notification_share": sch.FRACTION,
        "late_notification_max_days": sch.Number(0.0),
        "notice_days": sch.Number(0.0),
        "initial_notice_days": sch.Number(0.0),
    },
    "registration change settings",
)

_ADVANCED = sch.Section(
    AdvancedSettings,
    {
        "ct_fault": sch.Bool(),
        "ct_fault_mpan": sch.Text(r"(\d{13})?", "\"\" or a 13-digit MPAN core", allow_empty=True),
        "ct_fault_from": sch.OptionalIsoDate(),
        "ct_fault_factor": sch.Number(0.0, lo_open=True),
        "ct_fault_corrected_after_days": sch.Number(0.0),
        "step_change_action": sch.Choice(("flag", "reject")),
        "outstation_memory_days": sch.Integer(1),
    },
    "advanced segment settings",
)

_METERING = sch.Section(
    MeteringSettings,
    {
        "dcc_share": sch.FRACTION,
        "smart_traditional_share": sch.FRACTION,
        "exchange_share": sch.FRACTION,
        "near_rollover_share": sch.FRACTION,
    },
    "smart segment metering settings",
)

_METER_READING = sch.Section(
    MeterReadingSettings,
    {
        "site_visit_interval_days": sch.Number(0.0, lo_open=True),
        "customer_read_share": sch.FRACTION,
        "customer_read_interval_days": sch.Number(0.0, lo_open=True),
        "deemed_read_daily_rate": sch.FRACTION,
        "transposed_rate_customer": sch.FRACTION,
        "out_of_order_rate": sch.FRACTION,
    },
    "non-smart meter reading settings",
)

_MARKET = sch.Section(
    MarketSettings,
    {
        "household_noise": sch.FRACTION,
        "non_domestic_noise": sch.FRACTION,
        "solar_capacity_kwp": sch.Section(
            SolarCapacity,
            {"min": sch.Number(0.0, lo_open=True), "max": sch.Number(0.0, lo_open=True)},
            "solar capacity range [kWp]",
            check=_check_solar,
        ),
        "unaccounted_energy": sch.Section(
            UnaccountedEnergy,
            {"mean": sch.Number(-0.5, 0.5), "sd": sch.Number(0.0, 0.5)},
            "fraction of GSP group take",
        ),
        "lcl_label": sch.Choice(("start", "end")),
        "min_household_coverage": sch.Number(0.0, 1.0, lo_open=True),
    },
    "market generator settings",
)

#: Service sections of a scenario, in file order; later issues append theirs here.
_SECTIONS: dict[str, sch.Section] = {
    "retrieval": _RETRIEVAL,
    "metering": _METERING,
    "meter_reading": _METER_READING,
    "registration": _REGISTRATION,
    "advanced": _ADVANCED,
    "market": _MARKET,
}

_SCENARIO = sch.Section(
    Scenario,
    {
        "name": sch.Text(r"[A-Za-z0-9_.-]+", "a name of letters, digits, '_', '.' or '-'"),
        "seed": sch.Integer(0),
        "first_date": sch.Date(),
        "last_date": sch.Date(),
        "gsp_groups": _GspGroups(),
        "mpans": _MpanCounts(),
        "segments": sch.Section(
            SegmentMix,
            {k: sch.FRACTION for k in ("smart_domestic", "smart_non_domestic", "advanced", "unmetered")},
            "shares of MPANs by market segment",
            check=_check_segments,
        ),
        "solar_export_share": sch.FRACTION,
        "suppliers": sch.ListOf(_SUPPLIER, "suppliers {id, name, market_share}"),
        "timetable": sch.Choice(TIMETABLES),
        **_SECTIONS,
    },
    "scenario settings",
    optional={"description": sch.Text(what="a string", allow_empty=True)},
    check=_check_scenario,
)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def default_scenario_path(name: str | Path = "demo") -> Path:
    """Path of a scenario file.

    Parameters
    ----------
    name : str or Path
        A scenario name (``"demo"`` -> ``datasets/scenarios/demo.yaml`` of the checkout) or an
        explicit path to a YAML file.

    Raises
    ------
    FileNotFoundError
        Listing the scenarios that exist.
    """
    text = str(name)
    explicit = isinstance(name, Path) or text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text
    path = Path(name) if explicit else SCENARIO_DIR / f"{text}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
        raise FileNotFoundError(
            f"scenario file {path} not found; scenarios in {SCENARIO_DIR}: {', '.join(available) or 'none'}"
        )
    return path


def load_scenario(path: str | Path = "demo") -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : str or Path
        A YAML file, or the name of a scenario in ``datasets/scenarios`` (see
        :func:`default_scenario_path`).

    Returns
    -------
    Scenario

    Raises
    ------
    ScenarioError
        For invalid YAML (with line and column) or invalid settings (with the dotted key).
    FileNotFoundError
        If there is no such file.
    """
    file = default_scenario_path(path)
    data, lines = sch.read_yaml_mapping(file, ScenarioError, "scenario settings")
    return Scenario.from_dict(data, source=str(file), lines=lines)
