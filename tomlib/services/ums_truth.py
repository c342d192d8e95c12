"""The true world of unmetered supplies: inventories, what really burned, and what the UMSDS observes.

:func:`generate_ums_truth` makes, deterministically from a random generator:

- **UMS MPANs** per GSP group (valid cores from :func:`tomlib.mpan.generate_cores`, market segment
  ``U``, connection type ``U``, the distributor's UMS LLFC, a supplier drawn by market share, an
  equivalent meter method passive / PECU / CMS drawn by :attr:`UmsSettings.method_shares` and a customer
  type that decides the equipment mix);
- **inventories**: lines of charge code x switch regime x quantity from the templates of
  :class:`UmsSettings`, with the *declared* values the UMSO holds next to the *true* ones: a share of
  lines has a wrong quantity, and a share carries a planted validation finding (typo'd or unknown codes,
  a charge code not allowed with its regime, a non-positive quantity, a duplicated line) while the real
  equipment is what it was. The certificate's annual consumption (:func:`tomlib.services.ums
  .ums_certificate`) becomes the MPAN's ``annual_consumption``;
- **the truth**: photocells switch by illuminance (:mod:`tomlib.services.ums_switching`) under a sky whose
  cloud darkens each dusk and dawn by its own factor per GSP group; each area has a population of
  :attr:`UmsSettings.population_cells` photocells per photocell type with their own sensitivity and
  nightly jitter, whose mean is the switching of the area's lamps; lamps fail (out for the night) and a
  few photocells fail on (day burners); part-night and dimming follow the regime's local clock times;
  CMS-controlled lines switch on their node's photocell and dim as their regime says, and report it;
- **observations**: two PECU arrays per GSP group (primary and secondary, 30 cells of the photocell
  types of :attr:`UmsSettings.array_cells`, the same sky, their own cells), downloaded each morning
  with a clock deviation (sometimes beyond the warning), cells that do not report or report nonsense,
  nights delivered late or never; CMS event logs per line and night, delivered the next morning, late
  or never.

Every knob is an [INF] choice of :class:`UmsSettings` (documented defaults; the scenario file does not
hold them yet).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import cube, reference
from tomlib import mpan as mpan_mod
from tomlib.services import ums
from tomlib.services import ums_switching as sw

__all__ = ["UmsSettings", "generate_ums_truth"]

#: Sub-streams spawned from the generator passed in; append, never reorder.
_STREAMS = ("standing", "lines", "weather", "population", "arrays", "failures", "cms", "cores")

# (charge code, switch regime, weight, min quantity, max quantity)
_LIGHTING = (
    ("1010070000001", "821", 3.0, 50, 600), ("1010100000001", "821", 2.0, 20, 300),
    ("1010150000001", "823", 1.5, 10, 200), ("1010250000001", "821", 0.5, 5, 60),
    ("1120035000001", "822", 1.0, 10, 200), ("1120055000001", "822", 0.7, 10, 150),
    ("1210060000001", "824", 1.0, 10, 150), ("4210025500001", "831", 3.0, 50, 800),
    ("4210038200001", "821", 2.0, 30, 500), ("4210052000001", "832", 1.5, 20, 300),
    ("4210066500001", "826", 1.0, 10, 200), ("4210105000001", "825", 0.5, 5, 80),
    ("4210014300001", "821", 1.0, 10, 200), ("1310018000001", "821", 0.7, 5, 60),
    ("7010036000001", "821", 0.8, 5, 100),
)
_CMS_LIGHTING = (
    ("4250025500001", "841", 3.0, 50, 800), ("4250038200001", "841", 2.0, 30, 500),
    ("4250052000001", "842", 1.5, 20, 300), ("4250066500001", "842", 1.0, 10, 150),
)
_FURNITURE = (
    ("7000072000001", "999", 1.0, 5, 80), ("6000010000001", "999", 1.0, 2, 40),
    ("6000012000001", "999", 1.0, 5, 120), ("8000150000001", "999", 0.6, 1, 30),
    ("8000025000001", "999", 0.6, 1, 20), ("8070116000001", "902", 0.8, 2, 60),
    ("8070116000001", "901", 0.4, 2, 40),
)
# customer: (share of MPANs, share of lines that are not lighting, quantity scale)
_CUSTOMERS = (
    ("highway_authority", 0.6, 0.15, 1.0), ("parish_council", 0.2, 0.0, 0.15),
    ("transport_operator", 0.1, 0.7, 0.5), ("telecoms_operator", 0.1, 1.0, 1.0),
)
_PLANTED = ("invalid_charge_code", "unknown_charge_code", "invalid_switch_regime", "unknown_switch_regime",
            "charge_code_not_allowed_with_regime", "non_positive_quantity", "duplicate_line")


@dataclass(frozen=True)
class UmsSettings:
    """[INF] Knobs of the UMS true-world generator (our assumptions, documented defaults).

    Attributes
    ----------
    suppliers : tuple of (str, float)
        Supplier MPID and market share [-] (a Scenario's suppliers replace them).
    method_shares : tuple of (str, float)
        Share of UMS MPANs settled passive / pecu / cms [-].
    customers : tuple of (str, float, float, float)
        Customer type, share of MPANs [-], share of its lines that are street furniture rather than
        lighting [-], scale of the template quantities [-].
    lighting, cms_lighting, furniture : tuple of (str, str, float, int, int)
        Line templates: charge code, switch regime, weight, min and max quantity.
    lines_per_mpan : (int, int)
        Inventory lines per MPAN, inclusive range.
    locations_per_gsp : int
        Location labels ("zone 01" ...) lines are spread over.
    sunset_lux : float
        Clear-sky horizontal illuminance at sunset [lux].
    twilight_slope : float
        log10(illuminance) change per degree of solar elevation in twilight [1/deg]
        (400 lux at sunset, about 3 lux at -6 deg).
    cloud_beta : (float, float)
        Cloud attenuation of a dusk or a dawn: log10(factor) = cloud_log10_max x Beta(a, b) [-].
    cloud_log10_max : float
        [-], see ``cloud_beta``.
    cell_sd_log10, night_sd_log10 : float
        Photocell sensitivity scatter, fixed per cell and per night [log10 lux].
    population_cells : int
        Simulated photocells per GSP group and photocell type whose mean switches the lamps.
    array_cells : tuple of (str, int)
        Cells of each photocell type in every PECU array (30 in all by default).
    array_bias_log10 : float
        Systematic sensitivity offset of array cells against the lamps' photocells [log10 lux].
    download_hour, download_spread_h : float
        Arrays are downloaded the next morning from this local hour, spread uniformly over [h].
    pecu_missing_night, pecu_late_night : float
        Probability that an array night is never delivered / delivered late [-].
    late_days : (int, int)
        Delay of late deliveries, inclusive range [days].
    clock_sd_s : float
        Array clock deviation on a normal night [s].
    clock_fault_night : float
        Probability of a night with a clock fault [-], deviation ``clock_fault_s`` [s].
    clock_fault_s : (float, float)
    cell_missing, cell_stuck : float
        Probability that a cell-night has no record / a nonsense record [-].
    cms_hour : float
        CMS logs arrive the next morning from this local hour (spread 3 h) [h].
    cms_missing_night, cms_late_night : float
        Probability that a CMS line-night log is never delivered / late [-].
    lamp_outage : float
        Probability that a lamp is out on a night (failed, not yet repaired) [-].
    day_burner : float
        Probability that a lit lamp's photocell has failed on (burns all day) [-].
    quantity_error_share : float
        Share of lines whose declared quantity differs from the installed one [-].
    invalid_line_share : float
        Share of lines with a planted validation finding [-].
    inventory_lead_days : int
        The inventory in force was sent this many days before the first period [days].
    """

    suppliers: tuple[tuple[str, float], ...] = (("ALFA", 0.4), ("BRVO", 0.3), ("CHRL", 0.2), ("DLTA", 0.1))
    method_shares: tuple[tuple[str, float], ...] = (("passive", 0.3), ("pecu", 0.5), ("cms", 0.2))
    customers: tuple[tuple[str, float, float, float], ...] = _CUSTOMERS
    lighting: tuple[tuple[str, str, float, int, int], ...] = _LIGHTING
    cms_lighting: tuple[tuple[str, str, float, int, int], ...] = _CMS_LIGHTING
    furniture: tuple[tuple[str, str, float, int, int], ...] = _FURNITURE
    lines_per_mpan: tuple[int, int] = (4, 14)
    locations_per_gsp: int = 12
    sunset_lux: float = 400.0
    twilight_slope: float = 0.403
    cloud_beta: tuple[float, float] = (1.2, 3.0)
    cloud_log10_max: float = 1.0
    cell_sd_log10: float = 0.12
    night_sd_log10: float = 0.05
    population_cells: int = 200
    array_cells: tuple[tuple[str, int], ...] = (("35/18", 20), ("70/35", 10))
    array_bias_log10: float = 0.0
    download_hour: float = 7.0
    download_spread_h: float = 2.0
    pecu_missing_night: float = 0.03
    pecu_late_night: float = 0.05
    late_days: tuple[int, int] = (1, 4)
    clock_sd_s: float = 20.0
    clock_fault_night: float = 0.02
    clock_fault_s: tuple[float, float] = (600.0, 1800.0)
    cell_missing: float = 0.01
    cell_stuck: float = 0.005
    cms_hour: float = 6.0
    cms_missing_night: float = 0.02
    cms_late_night: float = 0.05
    lamp_outage: float = 0.02
    day_burner: float = 0.003
    quantity_error_share: float = 0.05
    invalid_line_share: float = 0.03
    inventory_lead_days: int = 30

    def __post_init__(self) -> None:
        for name in ("pecu_missing_night", "pecu_late_night", "clock_fault_night", "cell_missing", "cell_stuck",
                     "cms_missing_night", "cms_late_night", "lamp_outage", "day_burner", "quantity_error_share",
                     "invalid_line_share"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"UmsSettings.{name} must be within [0, 1], got {v}")
        for name in ("suppliers", "method_shares"):
            shares = np.array([s for _, s in getattr(self, name)], dtype=float)
            if shares.size == 0 or (shares < 0).any() or shares.sum() <= 0:
                raise ValueError(f"UmsSettings.{name} needs non-negative shares with a positive sum")
        bad = sorted({m for m, _ in self.method_shares} - {"passive", "pecu", "cms"})
        if bad:
            raise ValueError(f"UmsSettings.method_shares: unknown method(s) {bad}; expected passive, pecu, cms")
        lo, hi = self.lines_per_mpan
        if not 1 <= lo <= hi:
            raise ValueError(f"UmsSettings.lines_per_mpan must be 1 <= min <= max, got {self.lines_per_mpan}")
        if self.population_cells < 1 or any(n < 1 for _, n in self.array_cells):
            raise ValueError("UmsSettings: population_cells and array_cells counts must be >= 1")

    def to_json(self) -> str:
        """The settings as JSON (provenance)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def _settings_of(scenario_or_settings) -> UmsSettings:
    if isinstance(scenario_or_settings, UmsSettings):
        return scenario_or_settings
    if scenario_or_settings is None:
        return UmsSettings()
    base = getattr(scenario_or_settings, "ums", None)
    settings = base if isinstance(base, UmsSettings) else UmsSettings()
    suppliers = getattr(scenario_or_settings, "suppliers", None)
    if suppliers:
        settings = dataclasses.replace(settings, suppliers=tuple((s.id, float(s.market_share)) for s in suppliers))
    return settings


def _choice(rng: np.random.Generator, pairs, n: int) -> np.ndarray:
    labels = np.array([p[0] for p in pairs])
    p = np.array([p[1] for p in pairs], dtype=float)
    return labels[rng.choice(labels.size, size=n, p=p / p.sum())]


def _counts(n_mpans_per_gsp, table: pd.DataFrame) -> dict[str, int]:
    if isinstance(n_mpans_per_gsp, Mapping):
        counts = {str(g): int(n) for g, n in n_mpans_per_gsp.items()}
    else:
        counts = {str(g): int(n_mpans_per_gsp) for g in table.index}
    unknown = sorted(set(counts) - set(table.index.astype(str)))
    if unknown:
        raise ValueError(f"generate_ums_truth: GSP group(s) {unknown} not in gsp_groups_table")
    if any(n < 0 for n in counts.values()):
        raise ValueError("generate_ums_truth: n_mpans_per_gsp must be >= 0")
    return {g: n for g, n in counts.items() if n > 0}


def _taken(cores: np.ndarray, taken: np.ndarray, taken_numbers: np.ndarray | None) -> np.ndarray:
    """Whether each of a few cores is among the (many) taken ones."""
    from tomlib.services._processing_keys import joint_codes

    numbers = mpan_mod.core_numbers(cores)
    if numbers is None or taken_numbers is None:  # not all 13-digit cores: by the strings' codes
        taken_codes, core_codes, _ = joint_codes([taken], [cores])
        return np.isin(core_codes, taken_codes)
    # the many taken numbers probed in a hash table of the few new ones (no sort of the many)
    hit = pd.Series(taken_numbers, copy=False).isin(numbers).to_numpy()
    return np.isin(numbers, taken_numbers[hit])


def _cores(gsp: np.ndarray, rng: np.random.Generator, existing, id_range=None) -> np.ndarray:
    cores = np.asarray(mpan_mod.generate_cores(gsp, rng, id_range)).astype(str)
    taken = np.asarray(existing, dtype=str).reshape(-1) if existing is not None else np.zeros(0, dtype=str)
    # a market block has hundreds of thousands of cores to avoid: turned into numbers once
    taken_numbers = mpan_mod.core_numbers(taken)
    for _ in range(100):  # redraw the (rare) clashes with the market's other MPANs
        clash = _taken(cores, taken, taken_numbers) | pd.Series(cores).duplicated().to_numpy()
        if not clash.any():
            return cores
        cores[clash] = np.asarray(mpan_mod.generate_cores(gsp[clash], rng, id_range)).astype(str)
    raise RuntimeError("generate_ums_truth: could not draw MPAN cores distinct from the existing ones")


def _ums_llfc(gsp: np.ndarray) -> np.ndarray:
    table = reference.line_loss_factor_classes()
    table = table[table["segment_use"] == "unmetered"]
    lookup = pd.Series(table.index.to_numpy(dtype=str), index=table["gsp_group"].astype(str).to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    found = lookup.reindex(gsp)
    if found.isna().any():
        raise ValueError(f"line_loss_factor_classes: no UMS (segment_use 'unmetered') LLFC for GSP group "
                         f"{gsp[found.isna().to_numpy()][0]}")
    return found.to_numpy(dtype=str)


def _inventory(settings: UmsSettings, mpans, gsp, method, customer, names, rng, codes, regimes) -> pd.DataFrame:
    """Declared and true inventory lines (vectorised over lines; loops over the three template families)."""
    cust = {c[0]: c for c in settings.customers}
    lo, hi = settings.lines_per_mpan
    n_lines = rng.integers(lo, hi + 1, size=mpans.size)
    li = np.repeat(np.arange(mpans.size), n_lines)
    furniture_share = np.array([cust[c][2] for c in customer])[li]
    scale = np.array([cust[c][3] for c in customer])[li]
    family = np.where(rng.random(li.size) < furniture_share, 2, np.where(method[li] == "cms", 1, 0))
    cc = np.empty(li.size, dtype=object)
    sr = np.empty(li.size, dtype=object)
    qty = np.zeros(li.size, dtype=np.int64)
    for f, templates in enumerate((settings.lighting, settings.cms_lighting, settings.furniture)):  # 3 families
        rows = np.flatnonzero(family == f)
        if rows.size == 0:
            continue
        w = np.array([t[2] for t in templates], dtype=float)
        pick = rng.choice(len(templates), size=rows.size, p=w / w.sum())
        qlo = np.array([t[3] for t in templates])[pick]
        qhi = np.maximum(qlo, np.round(np.array([t[4] for t in templates])[pick] * scale[rows])).astype(float)
        cc[rows] = np.array([t[0] for t in templates])[pick]
        sr[rows] = np.array([t[1] for t in templates])[pick]
        qty[rows] = np.floor(np.exp(np.log(qlo) + rng.random(rows.size) * (np.log(qhi + 1) - np.log(qlo)))).astype(
            np.int64).clip(qlo.astype(np.int64), qhi.astype(np.int64))
    zone = rng.integers(1, settings.locations_per_gsp + 1, size=li.size)
    lines = pd.DataFrame({"mpan": mpans[li], "charge_code": cc.astype(str), "switch_regime": sr.astype(str),
                          "quantity": qty, "gsp_group": gsp[li],
                          "location": pd.Series(names[li]) + " zone " + pd.Series(zone).astype(str).str.zfill(2)})
    lines = lines.drop_duplicates(["mpan", "charge_code", "switch_regime", "location"]).reset_index(drop=True)
    unknown = sorted(set(lines["charge_code"]) - set(codes.index)) + sorted(set(lines["switch_regime"]) - set(regimes.index))
    if unknown:
        raise ValueError(f"UmsSettings templates use codes not in the UMS tables: {unknown}")
    lines["true_charge_code"] = lines["charge_code"]
    lines["true_switch_regime"] = lines["switch_regime"]
    lines["true_quantity"] = lines["quantity"]
    wrong = rng.random(len(lines)) < settings.quantity_error_share
    delta = rng.choice(np.array([-3, -2, -1, 1, 2, 3]), size=len(lines))
    lines.loc[wrong, "quantity"] = np.maximum(1, lines["quantity"].to_numpy()[wrong] + delta[wrong])
    lines["injected_error"] = ""

    # planted findings: only on MPANs with more lines, so each keeps a valid one
    per_mpan = lines.groupby("mpan")["mpan"].transform("size").to_numpy()
    first_of_mpan = ~lines["mpan"].duplicated().to_numpy()
    plant = (rng.random(len(lines)) < settings.invalid_line_share) & (per_mpan >= 2) & ~first_of_mpan
    kind = rng.choice(np.array(_PLANTED), size=len(lines))
    p = np.flatnonzero(plant)
    k = kind[p]
    cc_p = pd.Series(lines["charge_code"].to_numpy(dtype=str)[p])
    sr_p = pd.Series(lines["switch_regime"].to_numpy(dtype=str)[p])
    control = codes["control"].reindex(cc_p).to_numpy(dtype=str)
    new_cc = np.select([k == "invalid_charge_code", k == "unknown_charge_code"],
                       [cc_p.str[:12], cc_p.str[:8] + "99999"], cc_p).astype(str)
    new_sr = np.select([k == "invalid_switch_regime", k == "unknown_switch_regime",
                        k == "charge_code_not_allowed_with_regime"],
                       [sr_p.str[:2], "777", np.where(control == "none", "821", "999")], sr_p).astype(str)
    q_p = lines["quantity"].to_numpy()[p]
    new_q = np.where(k == "non_positive_quantity", np.where(rng.random(p.size) < 0.5, 0, -q_p), q_p)
    lines.loc[p, "charge_code"] = new_cc
    lines.loc[p, "switch_regime"] = new_sr
    lines.loc[p, "quantity"] = new_q
    lines.loc[p, "injected_error"] = k
    # a duplicate: the line is listed again (the copy is the finding; the equipment exists once)
    original = p[k == "duplicate_line"]
    dups = lines.iloc[original].copy()
    dups["true_quantity"] = 0
    lines.loc[original, "injected_error"] = ""
    lines = pd.concat([lines, dups], ignore_index=True).sort_values("mpan", kind="stable").reset_index(drop=True)
    lines.insert(1, "item_id", "L" + (lines.groupby("mpan").cumcount() + 1).astype(str).str.zfill(4))
    return lines


def _sky(settings: UmsSettings, rng, n_areas: int, n_nights: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = settings.cloud_beta
    k = 10.0 ** (settings.cloud_log10_max * rng.beta(a, b, size=(2, n_areas, n_nights)))
    return k[0], k[1]


def _switching(sun, dec_dusk, dec_dawn, k_dusk, k_dawn, on_lux, off_lux, sens, j_on, j_off, settings, a_idx):
    """Dusk/dawn instants of cells (rows of a_idx x nights) with sensitivities and jitters (rows x nights)."""
    lat = sun.lat[a_idx][:, None]
    return sw.photocell_times(lat, sun.sunset[a_idx], sun.sunrise[a_idx], dec_dusk[None, :], dec_dawn[None, :],
                              on_lux * k_dusk[a_idx] * sens[:, None] * j_on,
                              off_lux * k_dawn[a_idx] * sens[:, None] * j_off,
                              settings.sunset_lux, settings.twilight_slope)


def _local_morning(nights: np.ndarray, hour: float, spread_h: np.ndarray) -> np.ndarray:
    minutes = np.round((hour + spread_h) * 60).astype(np.int64)
    return sw.local_clock_to_utc(pd.DatetimeIndex(nights) + pd.Timedelta(days=1), minutes)


def _delivery(settings, rng, nights: np.ndarray, hour: float, spread: float, p_missing: float, p_late: float):
    """available_at per row (NaT: never delivered)."""
    at = _local_morning(nights, hour, rng.random(nights.size) * spread)
    lo, hi = settings.late_days
    late = rng.random(nights.size) < p_late
    at = at + np.where(late, rng.integers(lo, hi + 1, size=nights.size), 0).astype("timedelta64[D]").astype(
        "timedelta64[ns]")
    return np.where(rng.random(nights.size) < p_missing, np.datetime64("NaT", "ns"), at)


def generate_ums_truth(scenario_or_settings, gsp_groups_table: pd.DataFrame, time_axis, rng: np.random.Generator,
                       n_mpans_per_gsp, *, existing_mpans=None, charge_codes: pd.DataFrame | None = None,
                       switch_regimes: pd.DataFrame | None = None,
                       mpan_id_range: tuple[int, int] | None = None) -> ums.UmsTruth:
    """Make UMS MPANs, their inventories, their true energy and the UMSDS's observations.

    Parameters
    ----------
    scenario_or_settings : Scenario, UmsSettings or None
        A Scenario contributes its suppliers (and its ``ums`` settings if it ever has them); otherwise
        :class:`UmsSettings` defaults.
    gsp_groups_table : DataFrame
        :func:`tomlib.reference.gsp_groups` (index GSP group; ``name``, ``latitude``, ``longitude``).
    time_axis : DatetimeIndex
        Contiguous UTC period starts of the market.
    rng : numpy.random.Generator
        Source of every draw (sub-streams are spawned from it; same generator state, same truth).
    n_mpans_per_gsp : int or Mapping[str, int]
        UMS MPANs per GSP group (an int: every group of ``gsp_groups_table``).
    existing_mpans : array-like of str, optional
        Cores already in the market; the UMS cores avoid them.
    charge_codes, switch_regimes : DataFrame, optional
        Tables (default: the shipped ones).
    mpan_id_range : (int, int), optional
        Range of the 10-digit unique part of the cores (:func:`tomlib.mpan.generate_cores`).

    Returns
    -------
    UmsTruth
    """
    settings = _settings_of(scenario_or_settings)
    codes = charge_codes if charge_codes is not None else ums.charge_codes()
    regimes = switch_regimes if switch_regimes is not None else ums.switch_regimes()
    times = pd.DatetimeIndex(np.asarray(time_axis, dtype="datetime64[ns]"), name="time")
    if len(times) == 0 or (np.diff(times.to_numpy()) != np.timedelta64(30, "m")).any():
        raise ValueError("generate_ums_truth: time_axis must be non-empty contiguous 30-minute UTC period starts")
    counts = _counts(n_mpans_per_gsp, gsp_groups_table)
    streams = dict(zip(_STREAMS, rng.spawn(len(_STREAMS))))
    groups = list(counts)
    gsp = np.repeat(np.array(groups, dtype=str), [counts[g] for g in groups])
    if gsp.size == 0:
        raise ValueError("generate_ums_truth: no UMS MPANs asked for")

    # standing data
    rs = streams["standing"]
    cores = _cores(gsp, streams["cores"], existing_mpans, mpan_id_range)
    supplier = _choice(rs, settings.suppliers, gsp.size).astype(str)
    method = _choice(rs, settings.method_shares, gsp.size).astype(str)
    customer = _choice(rs, [(c[0], c[1]) for c in settings.customers], gsp.size).astype(str)
    names = gsp_groups_table["name"].reindex(gsp).astype(str).to_numpy()
    inv = _inventory(settings, cores, gsp, method, customer, names, streams["lines"], codes, regimes)
    lead = times[0] - pd.Timedelta(days=settings.inventory_lead_days)
    inv["effective_from"] = lead.normalize()
    inv["available_at"] = lead
    declared = inv[list(ums.INVENTORY_COLUMNS)]
    cert = ums.ums_certificate(declared, codes, regimes)
    letters = np.array([g[1] for g in gsp], dtype=object)
    standing = pd.DataFrame({
        "gsp_group": gsp, "market_segment": "U", "connection_type": "U", "domestic": False,
        "supplier": supplier, "bm_unit": ("2__" + letters + supplier.astype(object) + "001").astype(str),
        "llfc": _ums_llfc(gsp), "measurement_quantity": "AI",
        "annual_consumption": cert["annual_consumption"].reindex(cores).fillna(0.0).to_numpy(dtype=float),
        "ums_method": method, "ums_customer": customer,
        # the market's extra per-MPAN columns, neutral for UMS
        "profile_class": np.zeros(gsp.size, dtype=np.int64), "donor_household": "", "linked_mpan": "",
        "solar_capacity": 0.0,
    }, index=pd.Index(cores, name="mpan"))

    # the sky and the photocells
    nights = sw.nights_of(times)
    sun = ums.SunTable(groups, nights)
    dec_dusk = sw.solar_declination(nights)
    dec_dawn = sw.solar_declination(nights + pd.Timedelta(days=1))
    k_dusk, k_dawn = _sky(settings, streams["weather"], len(groups), len(nights))
    types = {t: (float(regimes.loc[regimes["photocell_type"] == t, "on_lux"].iloc[0]),
                 float(regimes.loc[regimes["photocell_type"] == t, "off_lux"].iloc[0]))
             for t in sorted(set(regimes["photocell_type"]) - {""})}
    missing_types = sorted({t for t, _ in settings.array_cells} - set(types))
    if missing_types:
        raise ValueError(f"UmsSettings.array_cells: photocell type(s) {missing_types} are not used by any regime")
    energy, planted, cms_events = _true_energy(settings, inv, codes, regimes, times, nights, sun, dec_dusk, dec_dawn,
                                      k_dusk, k_dawn, types, streams, cores)
    pecu = _arrays(settings, groups, nights, sun, dec_dusk, dec_dawn, k_dusk, k_dawn, types, streams["arrays"])
    energy_da = cube.add_settlement_coords(xr.DataArray(
        energy, dims=("mpan", "time"), coords={"mpan": cores, "time": times.to_numpy()}, name="energy",
        attrs={"units": "kWh", "long_name": "true energy of the UMS MPANs"}))
    attrs = {"ums_settings": settings.to_json(), "n_mpans": int(cores.size), "n_lines": len(inv),
             "n_planted_findings": int((inv["injected_error"] != "").sum()),
             "n_pecu_rows": len(pecu), "n_cms_events": len(cms_events)}
    planted_da = energy_da.copy(data=planted).rename("invalid_line_energy")
    planted_da.attrs = {"units": "kWh", "long_name": "true energy of the equipment on lines with a planted finding"}
    return ums.UmsTruth(standing=standing, inventory=inv, energy=energy_da, pecu=pecu, cms=cms_events, attrs=attrs,
                        invalid_line_energy=planted_da)


def _true_energy(settings, inv, codes, regimes, times, nights, sun, dec_dusk, dec_dawn, k_dusk, k_dawn, types,
                 streams, cores):
    """True energy per MPAN (mpan x time) [kWh] and the CMS event log."""
    n_t, n_n = len(times), len(nights)
    real = inv[inv["true_quantity"] > 0].reset_index(drop=True)
    q = real["true_quantity"].to_numpy(dtype=np.int64)
    cc = real["true_charge_code"].to_numpy(dtype=str)
    sr = real["true_switch_regime"].to_numpy(dtype=str)
    kw = codes["circuit_watts"].reindex(cc).to_numpy(dtype=float) * q / 1000.0
    kind = regimes["kind"].reindex(sr).to_numpy(dtype=str)
    is_cms = codes["control"].reindex(cc).to_numpy(dtype=str) == "cms"
    area = real["gsp_group"].to_numpy(dtype=str)
    a_idx = sun.areas.get_indexer(area)
    rf = streams["failures"]
    out = rf.binomial(q[:, None], settings.lamp_outage, size=(q.size, n_n))
    burn = rf.binomial(q[:, None] - out, settings.day_burner)
    lit = 1.0 - out / q[:, None]
    burner = burn / q[:, None]
    p_night = ums.night_of_period(times, nights)
    minutes = np.zeros((len(real), n_t))

    # the lamps' photocells: a population per (area, photocell type), its mean switches the lamps
    photo = ~is_cms & np.isin(kind, ums.PHOTOCELL_KINDS)
    rp = streams["population"]
    n_c = settings.population_cells
    for r in sorted(set(sr[photo])):  # a handful of regimes
        reg = regimes.loc[r]
        on_lux, off_lux = types[reg["photocell_type"]]
        rows = np.flatnonzero(photo & (sr == r))
        areas_r = np.unique(a_idx[rows])
        cell_area = np.repeat(areas_r, n_c)
        sens = 10.0 ** rp.normal(0.0, settings.cell_sd_log10, size=cell_area.size)
        j = 10.0 ** rp.normal(0.0, settings.night_sd_log10, size=(2, cell_area.size, n_n))
        dusk, dawn = _switching(sun, dec_dusk, dec_dawn, k_dusk, k_dawn, on_lux, off_lux, sens, j[0], j[1],
                                settings, cell_area)
        night_rows = np.tile(nights, cell_area.size)
        s, e, w, row = ums.lit_segments(reg, night_rows, dusk.ravel(), dawn.ravel())
        # areas_r is sorted and holds every area asked for: its positions by binary search
        grp = np.searchsorted(areas_r, np.repeat(cell_area, n_n)[row])
        pop = sw.period_minutes(grp, s, e, w / n_c, areas_r.size, times[0], n_t)
        g = np.searchsorted(areas_r, a_idx[rows])
        minutes[rows] = (lit[rows] - burner[rows])[:, p_night] * pop[g] + burner[rows][:, p_night] * 30.0

    # clock regimes: fixed and continuous
    for r in sorted(set(sr[np.isin(kind, ("fixed", "continuous"))])):
        rows = np.flatnonzero(sr == r)
        base = ums.regime_minutes(regimes.loc[r], times, 0.0, 0.0)
        minutes[rows] = lit[rows][:, p_night] * base[None, :]

    # CMS-controlled lines: the node's photocell, the regime's dimming, failed lamps reported
    events = []
    rc = streams["cms"]
    cms_rows = np.flatnonzero(is_cms)
    sens_line = 10.0 ** rc.normal(0.0, settings.cell_sd_log10, size=len(real))
    for r in sorted(set(sr[cms_rows])):
        reg = regimes.loc[r]
        on_lux, off_lux = types[reg["photocell_type"]]
        rows = cms_rows[sr[cms_rows] == r]
        j = 10.0 ** rc.normal(0.0, settings.night_sd_log10, size=(2, rows.size, n_n))
        dusk, dawn = _switching(sun, dec_dusk, dec_dawn, k_dusk, k_dawn, on_lux, off_lux, sens_line[rows], j[0],
                                j[1], settings, a_idx[rows])
        night_rows = np.tile(nights, rows.size)
        s, e, w, row = ums.lit_segments(reg, night_rows, dusk.ravel(), dawn.ravel())
        line_of = np.repeat(rows, n_n)
        w = w * lit[rows].ravel()[row]
        minutes[rows] = sw.period_minutes(np.repeat(np.arange(rows.size), n_n)[row], s, e, w, rows.size, times[0],
                                          n_t)
        events.append(_events(s, e, w, row, line_of, night_rows, dusk.ravel(), rows.size * n_n))
    energy_lines = kw[:, None] * minutes / 60.0
    m_idx = mpan_mod.positions(cores, real["mpan"])
    energy = np.zeros((cores.size, n_t))
    np.add.at(energy, m_idx, energy_lines)
    # the equipment behind lines with a planted finding burns, but no valid line settles it
    planted = np.zeros((cores.size, n_t))
    on_planted = (real["injected_error"] != "").to_numpy()
    np.add.at(planted, m_idx[on_planted], energy_lines[on_planted])

    if events:
        cms = _cms_log(settings, rc, events, real["mpan"].to_numpy(dtype=str), real["item_id"].to_numpy(dtype=str))
    else:
        cms = pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c in ("night", "time", "available_at") else
                                         (float if c == "level" else str)) for c in ums.CMS_COLUMNS})
    return energy, planted, cms


def _cms_log(settings, rng, events: list, line_mpan: np.ndarray, line_item: np.ndarray) -> pd.DataFrame:
    """The CMS event log as delivered: each (MPAN, night) log arrives as :func:`_delivery` draws (one draw
    per log, logs in the order they first occur), undelivered logs dropped, rows by (mpan, item_id,
    time), stable. Worked on NumPy columns and integer codes (a few hundred rows: the pandas
    MultiIndex, reindex and multi-column sort of the same result were most of the cost)."""
    line = np.concatenate([e["line"].to_numpy() for e in events])
    night = np.concatenate([e["night"].to_numpy() for e in events])
    at_time = np.concatenate([e["time"].to_numpy() for e in events])
    level = np.concatenate([e["level"].to_numpy() for e in events])
    mpan, item = line_mpan[line], line_item[line]
    # the (MPAN, night) logs in the order they first occur
    m_code = pd.factorize(mpan)[0].astype(np.int64)
    n_code, n_values = pd.factorize(night)
    log, logs = pd.factorize(m_code * max(len(n_values), 1) + n_code)
    row_of_log = np.zeros(len(logs), dtype=np.int64)
    row_of_log[log[::-1]] = np.arange(log.size - 1, -1, -1)  # a row of each log (all share its night)
    at = _delivery(settings, rng, night[row_of_log], settings.cms_hour, 3.0, settings.cms_missing_night,
                   settings.cms_late_night)
    available = np.asarray(at, dtype="datetime64[ns]")[log]
    keep = np.flatnonzero(~np.isnat(available))
    order = keep[np.lexsort((at_time[keep], item[keep], mpan[keep]))]  # stable, as the pandas sort
    columns = {"mpan": pd.array(mpan[order], dtype="str"), "item_id": pd.array(item[order], dtype="str"),
               "night": night[order], "time": at_time[order], "level": level[order], "available_at": available[order]}
    return pd.DataFrame({c: columns[c] for c in ums.CMS_COLUMNS})


def _events(s, e, w, row, line_of, night_rows, dusk, n_rows) -> pd.DataFrame:
    """Step events (time, level) of each row's weighted segments: the level changes at each boundary."""
    k = s.size // n_rows  # segments per row (the same for every row of one regime)
    s2, e2, w2 = (a.reshape(k, n_rows).T for a in (np.asarray(s), np.asarray(e), np.asarray(w)))
    e2 = np.maximum(e2, s2)
    points = np.concatenate([s2, e2], axis=1)
    points = np.sort(points, axis=1)
    cover = (s2[:, None, :] <= points[:, :, None]) & (points[:, :, None] < e2[:, None, :])
    level = np.round((cover * w2[:, None, :]).sum(axis=2), 12)
    level[:, -1] = 0.0
    # of several events at one instant only the last counts; then drop events that change nothing
    keep_t = ~np.c_[points[:, 1:] == points[:, :-1], np.zeros((n_rows, 1), dtype=bool)]
    flat_r = np.repeat(np.arange(n_rows), points.shape[1])
    p, lv, kt = points.ravel(), level.ravel(), keep_t.ravel()
    p, lv, r = p[kt], lv[kt], flat_r[kt]
    change = np.r_[True, (lv[1:] != lv[:-1]) | (r[1:] != r[:-1])]
    # a row whose lamps never burn logs a single "off" at dusk
    first = np.r_[True, r[1:] != r[:-1]]
    dark = np.zeros(n_rows, dtype=bool)
    dark[r[lv > 0]] = True
    keep = change & (dark[r] | first)
    p, lv, r = p[keep], lv[keep], r[keep]
    p = np.where(dark[r], p, np.asarray(dusk)[r])
    return pd.DataFrame({"line": np.asarray(line_of)[r], "night": np.asarray(night_rows)[r], "time": p, "level": lv})


def _arrays(settings, groups, nights, sun, dec_dusk, dec_dawn, k_dusk, k_dawn, types, rng) -> pd.DataFrame:
    """PECU array observations: two arrays per GSP group, one row per cell and night."""
    n_n = len(nights)
    ptype = np.concatenate([[t] * n for t, n in settings.array_cells])
    n_cells = ptype.size
    roles = ("primary", "secondary")
    a_idx = np.repeat(np.arange(len(groups)), len(roles) * n_cells)
    role = np.tile(np.repeat(roles, n_cells), len(groups))
    cell_type = np.tile(ptype, len(groups) * len(roles))
    photocell = np.tile(np.arange(1, n_cells + 1), len(groups) * len(roles))
    array_id = np.array(groups, dtype=object)[a_idx] + np.where(role == "primary", "-PRI", "-SEC")
    sens = 10.0 ** (rng.normal(settings.array_bias_log10, settings.cell_sd_log10, size=a_idx.size))
    j = 10.0 ** rng.normal(0.0, settings.night_sd_log10, size=(2, a_idx.size, n_n))
    on = np.empty((a_idx.size, n_n), dtype="datetime64[ns]")
    off = np.empty_like(on)
    for t, (on_lux, off_lux) in types.items():  # photocell types
        rows = np.flatnonzero(cell_type == t)
        if rows.size:
            on[rows], off[rows] = _switching(sun, dec_dusk, dec_dawn, k_dusk, k_dawn, on_lux, off_lux, sens[rows],
                                             j[0][rows], j[1][rows], settings, a_idx[rows])
    # per array night: clock deviation and delivery
    n_arrays = len(groups) * len(roles)
    arr_of_row = np.arange(a_idx.size) // n_cells
    dev = rng.normal(0.0, settings.clock_sd_s, size=(n_arrays, n_n))
    fault = rng.random((n_arrays, n_n)) < settings.clock_fault_night
    lo, hi = settings.clock_fault_s
    dev = np.where(fault, rng.choice([-1.0, 1.0], size=dev.shape) * rng.uniform(lo, hi, size=dev.shape), dev)
    avail = _delivery(settings, rng, np.tile(nights, n_arrays), settings.download_hour, settings.download_spread_h,
                      settings.pecu_missing_night, settings.pecu_late_night).reshape(n_arrays, n_n)
    shift = np.round(dev * 1e9).astype(np.int64)[arr_of_row]
    rec_on = on + shift.astype("timedelta64[ns]")
    rec_off = off + shift.astype("timedelta64[ns]")
    missing = rng.random(on.shape) < settings.cell_missing
    stuck = rng.random(on.shape) < settings.cell_stuck
    nat = np.datetime64("NaT", "ns")
    six = np.timedelta64(6, "h")
    rec_on = np.where(missing, nat, np.where(stuck, rec_on - six, rec_on))
    rec_off = np.where(missing, nat, rec_off)
    frame = pd.DataFrame({
        "array_id": np.repeat(array_id.astype(str), n_n), "gsp_group": np.repeat(np.array(groups)[a_idx], n_n),
        "role": np.repeat(role, n_n), "photocell": np.repeat(photocell, n_n), "photocell_type": np.repeat(cell_type, n_n),
        "night": np.tile(nights.to_numpy(), a_idx.size), "switch_on": rec_on.ravel(), "switch_off": rec_off.ravel(),
        "clock_deviation_s": dev[arr_of_row].ravel(), "available_at": avail[arr_of_row].ravel()})
    return frame[~frame["available_at"].isna()].reset_index(drop=True)
