"""Unmetered supplies: the UMSO, the Settlement Period Level UMS Service and its segment service.

Street lights, signs, beacons and street furniture have no meter; their half-hourly consumption is
computed from inventories (mhhs-domain.md §2.7, §2.8). The parts:

- :mod:`tomlib.services.ums_operator` -- the Unmetered Supplies Operator: the charge code and switch
  regime tables (illustrative, replaceable), inventory validation with named findings, the UMS certificate
  (annual consumption = circuit watts x annual burning hours);
- :mod:`tomlib.services.ums_meter` -- the equivalent meter of the UMS data service: passive, PECU array
  (primary -> secondary -> passive fallback) and CMS methods, with DI-083 quality codes per source;
- :mod:`tomlib.services.ums_switching` -- the sun (astral), photocells, local clock regimes and the
  allocation of lit minutes to settlement periods;
- :mod:`tomlib.services.ums_truth` -- the true world: what actually burned (photocells scatter, skies
  darken, lamps fail, inventories are wrong) and what the data service observes of it (PECU arrays, CMS
  logs), in a :class:`UmsTruth`;
- :mod:`tomlib.flows.ums_inventory` -- the D0388-like inventory file.

This module holds :class:`UmsTruth` and :func:`settle_segment`, the segment ``U`` service of the protocol
of :mod:`tomlib.services.base`, and re-exports the public names of the parts above. The settled figure is
what the configured method computes; the truth is ``UmsTruth.energy``, so every method has an error that
the reports show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from tomlib import calendar as cal
from tomlib import cube
from tomlib.services.base import REJECTED_COLUMNS, SegmentResult
from tomlib.services.ums_meter import (
    _INVALID_R,
    _SRC,
    CMS_COLUMNS,
    METHODS,
    PECU_COLUMNS,
    QUALITY_BY_SOURCE,
    SOURCES,
    EquivalentMeter,
    SunTable,
    UmsConfig,
    annual_burning_hours,
    equivalent_meter,
    lit_segments,
    night_of_period,
    passive_switching,
    pecu_validation,
    regime_minutes,
    resolve_config,
)
from tomlib.services.ums_operator import (
    CHARGE_CODES_PATH,
    CONTROLS,
    FINDINGS,
    INVENTORY_COLUMNS,
    KINDS,
    PHOTOCELL_KINDS,
    SWITCH_REGIMES_PATH,
    certificate_lines,
    charge_codes,
    load_charge_codes,
    load_switch_regimes,
    photocell_type,
    switch_regimes,
    ums_certificate,
    valid_mask,
    validate_inventory,
)

__all__ = [
    "CHARGE_CODES_PATH",
    "CMS_COLUMNS",
    "CONTROLS",
    "FINDINGS",
    "INVENTORY_COLUMNS",
    "KINDS",
    "METHODS",
    "PECU_COLUMNS",
    "PHOTOCELL_KINDS",
    "QUALITY_BY_SOURCE",
    "SOURCES",
    "SWITCH_REGIMES_PATH",
    "EquivalentMeter",
    "SunTable",
    "UmsConfig",
    "UmsTruth",
    "annual_burning_hours",
    "certificate_lines",
    "charge_codes",
    "equivalent_meter",
    "generate_ums_truth",
    "lit_segments",
    "load_charge_codes",
    "load_switch_regimes",
    "night_of_period",
    "passive_switching",
    "pecu_validation",
    "photocell_type",
    "regime_minutes",
    "settle_segment",
    "switch_regimes",
    "ums_certificate",
    "valid_mask",
    "validate_inventory",
]

# --------------------------------------------------------------------------------------------------
# the truth container
# --------------------------------------------------------------------------------------------------
_TABLES = ("standing", "inventory", "pecu", "cms")


@dataclass
class UmsTruth:
    """The true world of unmetered supplies, and what the UMS data service can observe of it.

    Attributes
    ----------
    standing : DataFrame
        Index ``mpan``: the market's standing columns (``gsp_group``, ``market_segment`` "U",
        ``connection_type`` "U", ``domestic`` False, ``supplier``, ``bm_unit``, ``llfc``,
        ``measurement_quantity`` "AI", ``annual_consumption`` [kWh/year] from the UMS certificate) plus
        ``ums_method`` (passive/pecu/cms) and ``ums_customer``.
    inventory : DataFrame
        Declared lines (:data:`INVENTORY_COLUMNS`, plus ``effective_from`` and ``available_at`` [UTC]) as
        the UMSO sends them, with the truth beside them: ``true_charge_code``, ``true_switch_regime``,
        ``true_quantity`` (0 for a line that does not exist) and ``injected_error`` (the finding the
        generator planted, or "").
    energy : DataArray
        True energy [kWh per period], dims (mpan, time).
    pecu : DataFrame
        PECU array observations (columns ``PECU_COLUMNS``); nights never delivered have no rows.
    cms : DataFrame
        CMS events (columns ``CMS_COLUMNS``); days never delivered have no rows.
    attrs : dict
        Provenance: generator settings (JSON), counts.
    invalid_line_energy : DataArray, optional
        The part of ``energy`` burned by equipment whose inventory line carries a planted finding
        [kWh per period], dims (mpan, time): no valid line settles it, so it is the share of the error
        that the inventory, not the method, causes.
    """

    standing: pd.DataFrame
    inventory: pd.DataFrame
    energy: xr.DataArray
    pecu: pd.DataFrame
    cms: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)
    invalid_line_energy: xr.DataArray | None = None

    def to_dataset(self) -> xr.Dataset:
        """Everything in one Dataset: ``ums_energy(ums_mpan, time)`` and each table as variables
        ``ums_<table>__<column>`` on a dimension ``ums_<table>_row`` (names chosen not to clash with a
        market Dataset, so the two can be merged). Strings become fixed-width unicode."""
        data: dict[str, Any] = {"ums_energy": xr.DataArray(
            self.energy.transpose("mpan", "time").values, dims=("ums_mpan", "time"),
            coords={"ums_mpan": np.asarray(self.energy["mpan"].values, dtype=str),
                    "time": self.energy["time"].values},
            attrs={"units": "kWh", "long_name": "true energy of the UMS MPANs"})}
        if self.invalid_line_energy is not None:
            data["ums_invalid_line_energy"] = xr.DataArray(
                self.invalid_line_energy.transpose("mpan", "time").values, dims=("ums_mpan", "time"),
                attrs=dict(self.invalid_line_energy.attrs))
        for name in _TABLES:
            df = getattr(self, name)
            if name == "standing":
                df = df.reset_index()
            dim = f"ums_{name}_row"
            for col in df.columns:
                s = df[col]
                if pd.api.types.is_bool_dtype(s):
                    values = s.to_numpy(dtype=bool)
                elif pd.api.types.is_datetime64_any_dtype(s):
                    values = s.to_numpy(dtype="datetime64[ns]")
                elif pd.api.types.is_numeric_dtype(s):
                    values = s.to_numpy(dtype=float if s.dtype.kind == "f" else np.int64)
                else:
                    values = s.astype(str).to_numpy(dtype=np.str_)
                data[f"ums_{name}__{col}"] = xr.DataArray(values, dims=(dim,))
        ds = xr.Dataset(data)
        ds.attrs["ums_attrs"] = json.dumps(self.attrs, sort_keys=True, default=str)
        # file formats may reorder variables: keep each table's column order
        order = {name: list(getattr(self, name).reset_index().columns if name == "standing"
                            else getattr(self, name).columns) for name in _TABLES}
        ds.attrs["ums_columns"] = json.dumps(order)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> UmsTruth:
        """Inverse of :meth:`to_dataset` (extra variables of a merged Dataset are ignored)."""
        if "ums_energy" not in ds:
            raise ValueError("UMS dataset: variable 'ums_energy' is missing")
        tables = {}
        order = json.loads(ds.attrs.get("ums_columns", "{}"))
        for name in _TABLES:
            prefix = f"ums_{name}__"
            cols = {k[len(prefix):]: ds[k].values for k in ds.data_vars if k.startswith(prefix)}
            df = pd.DataFrame({c: (v.astype(str) if v.dtype.kind == "U" else v) for c, v in cols.items()})
            tables[name] = df[[c for c in order.get(name, []) if c in df.columns]
                              + [c for c in df.columns if c not in order.get(name, [])]]
        standing = tables["standing"].set_index("mpan")
        e = ds["ums_energy"]
        energy = cube.add_settlement_coords(xr.DataArray(
            e.values, dims=("mpan", "time"), coords={"mpan": np.asarray(e["ums_mpan"].values, dtype=str),
                                                     "time": e["time"].values},
            name="energy", attrs=dict(e.attrs)))
        invalid = None
        if "ums_invalid_line_energy" in ds:
            invalid = energy.copy(data=ds["ums_invalid_line_energy"].values).rename("invalid_line_energy")
            invalid.attrs = dict(ds["ums_invalid_line_energy"].attrs)
        return cls(standing=standing, inventory=tables["inventory"], energy=energy, pecu=tables["pecu"],
                   cms=tables["cms"], attrs=json.loads(ds.attrs.get("ums_attrs", "{}")), invalid_line_energy=invalid)

    def declared_inventory(self) -> pd.DataFrame:
        """The inventory as the UMSO holds it (no truth columns)."""
        cols = [c for c in self.inventory.columns if not c.startswith("true_") and c != "injected_error"]
        return self.inventory[cols].copy()


def generate_ums_truth(scenario_or_settings, gsp_groups_table: pd.DataFrame, time_axis, rng: np.random.Generator,
                       n_mpans_per_gsp, **kwargs) -> UmsTruth:
    """Make the true world of unmetered supplies (see :func:`tomlib.services.ums_truth.generate_ums_truth`)."""
    from tomlib.services.ums_truth import generate_ums_truth as _generate

    return _generate(scenario_or_settings, gsp_groups_table, time_axis, rng, n_mpans_per_gsp, **kwargs)


# --------------------------------------------------------------------------------------------------
# the segment service
# --------------------------------------------------------------------------------------------------
def _times_of(settlement_dates) -> pd.DatetimeIndex:
    """Every period of the settlement days, which must be consecutive (a meter cube has no gaps)."""
    days = pd.DatetimeIndex(pd.to_datetime(np.atleast_1d(np.asarray(settlement_dates)))).sort_values().unique()
    if len(days) == 0:
        raise ValueError("settle_segment (U): settlement_dates is empty")
    if len(days) != (days[-1] - days[0]).days + 1:
        raise ValueError(f"settle_segment (U): settlement_dates must be consecutive days, got {len(days)} days "
                         f"between {days[0]:%Y-%m-%d} and {days[-1]:%Y-%m-%d}")
    return cal.time_axis(days[0], days[-1])


def _standing(market, truth: UmsTruth) -> pd.DataFrame:
    meters = getattr(market, "meters", None)
    if meters is None:
        return truth.standing
    seg = np.asarray(meters["market_segment"].values, dtype=str) == "U"
    # the segment's MPANs taken from the index before converting (its .values would convert every MPAN)
    mp = np.asarray(meters.indexes["mpan"][seg]).astype(str)
    table = pd.DataFrame({c: np.asarray(meters[c].values)[seg] for c in cube.STANDING_COORDS}, index=pd.Index(mp, name="mpan"))
    if "ums_method" in truth.standing.columns:
        table["ums_method"] = truth.standing["ums_method"].reindex(mp).to_numpy()
    return table


def settle_segment(market, as_of, *, run: str, settlement_dates, config=None) -> SegmentResult:
    """The Settlement Period Level UMS Service for one settlement run (segment ``U``).

    Parameters
    ----------
    market : Market or UmsTruth
        A market with a ``ums`` attribute (:class:`UmsTruth`), or the UmsTruth itself. The MPANs settled
        are the market's segment U MPANs (``market.meters``), else those of ``UmsTruth.standing``.
    as_of : Timestamp
        The run's as-of instant [UTC]: inventory lines and observations with ``available_at`` later
        are not used.
    run : str
        Run id (provenance only: the service recomputes from what is available).
    settlement_dates : array-like of date-like
        Days to settle; the result covers every period of the first to the last.
    config : UmsConfig, Mapping or None

    Returns
    -------
    SegmentResult
        ``meters``: settled energy [kWh], quality (DI-083 by :attr:`UmsConfig.quality`), estimation reason
        (DI-076), plus ``ums_source`` (index into :data:`SOURCES`); an MPAN without valid inventory
        lines is MISSING (reason Invalid). ``rejected``: one row per refused inventory line (time NaT,
        the line's findings in ``reason``). ``checks``: counts (they add up over calls).

    Raises
    ------
    ValueError
        If the market has segment U MPANs but no UMS truth, or an MPAN lacks a method.
    """
    config = resolve_config(config)
    truth = market if isinstance(market, UmsTruth) else getattr(market, "ums", None)
    times = _times_of(settlement_dates)
    if truth is None:
        meters = getattr(market, "meters", None)
        has_u = meters is not None and (np.asarray(meters["market_segment"].values, dtype=str) == "U").any()
        if has_u:
            raise ValueError("settle_segment (U): the market has segment U MPANs but no `ums` attribute holding "
                             "their UmsTruth (inventories and observations)")
        truth = UmsTruth(standing=pd.DataFrame(columns=list(cube.STANDING_COORDS) + ["ums_method"]),
                         inventory=pd.DataFrame(columns=list(INVENTORY_COLUMNS)),
                         energy=xr.DataArray(np.zeros((0, 0)), dims=("mpan", "time")),
                         pecu=pd.DataFrame(columns=list(PECU_COLUMNS)), cms=pd.DataFrame(columns=list(CMS_COLUMNS)))
    standing = _standing(market, truth)
    mpans = standing.index.to_numpy(dtype=str)
    as_of = pd.Timestamp(as_of)

    inv = truth.declared_inventory() if hasattr(truth, "declared_inventory") else truth.inventory
    inv = inv[inv["mpan"].astype(str).str.strip().isin(mpans)].reset_index(drop=True)
    if "available_at" in inv.columns:
        known = pd.DatetimeIndex(inv["available_at"]).to_numpy()
        arrived = ~np.isnat(known) & (known <= as_of.as_unit("ns").to_datetime64())
    else:
        arrived = np.ones(len(inv), dtype=bool)
    inv_now = inv[arrived].reset_index(drop=True)
    findings = validate_inventory(inv_now, config.codes, config.regimes)
    ok = valid_mask(inv_now, findings)
    valid_lines = inv_now[ok]

    if config.method == "registered":
        if "ums_method" not in standing.columns or standing["ums_method"].isna().any():
            raise ValueError("settle_segment (U): method 'registered' needs ums_method for every UMS MPAN")
        methods = standing["ums_method"]
    else:
        methods = config.method
    em = equivalent_meter(valid_lines, times, methods=methods, pecu=truth.pecu, cms=truth.cms, as_of=as_of,
                          config=config, mpans=mpans)

    qual_codes = np.zeros(len(SOURCES), dtype=np.uint8)
    for s, label in config.quality.items():
        qual_codes[_SRC[s]] = cube.QUALITY_CODES[label]
    quality = qual_codes[em.source]
    reason = np.where(quality == cube.QUALITY_CODES["A"], 0, em.reason).astype(np.uint8)
    energy = em.energy.copy()
    empty = ~em.has_lines
    energy[empty] = np.nan
    quality[empty] = cube.MISSING
    reason[empty] = _INVALID_R
    meters = cube.meter_cube(energy, times, mpans, standing[list(cube.STANDING_COORDS)], quality=quality,
                             estimation_reason=reason)
    meters["ums_source"] = (("mpan", "time"), em.source, {
        "units": "1", "long_name": "source of the settled UMS energy",
        "flag_values": list(range(len(SOURCES))), "flag_meanings": " ".join(SOURCES)})
    meters.attrs.update({"run": run, "as_of": str(as_of), "ums_config": json.dumps(config.describe())})

    bad_rows = np.flatnonzero(~ok)
    grouped = findings.groupby("row")
    fields = grouped["field"].first().reindex(bad_rows)
    reasons = grouped["finding"].agg(lambda s: "; ".join(s)).reindex(bad_rows)
    values = grouped["value"].first().reindex(bad_rows)
    rejected = pd.DataFrame({
        "mpan": inv_now["mpan"].astype(str).to_numpy()[bad_rows],
        "time": pd.Series(pd.NaT, index=range(bad_rows.size), dtype="datetime64[ns]").to_numpy(),
        "field": fields.to_numpy(dtype=object), "reason": reasons.to_numpy(dtype=object),
        "value": values.to_numpy(dtype=object),
        "item_id": inv_now["item_id"].astype(str).to_numpy()[bad_rows], "record": "inventory line"})
    rejected = rejected.reindex(columns=list(REJECTED_COLUMNS) + ["item_id", "record"])

    checks: dict[str, float] = {
        "mpans": float(mpans.size),
        "inventory lines": float(len(inv)),
        "inventory lines not yet available": float((~arrived).sum()),
        "inventory lines valid": float(ok.sum()),
        "inventory lines rejected": float((~ok).sum()),
        "inventory lines in minus out": float(len(inv) - (~arrived).sum() - ok.sum() - (~ok).sum()),
        "inventory findings": float(len(findings)),
        "mpans without valid lines": float(empty.sum()),
        "settled energy [kWh]": float(np.nansum(energy)),
    }
    for i, s in enumerate(SOURCES[1:], start=1):
        checks[f"mpan-periods from {s}"] = float((em.source[~empty] == i).sum())
    if len(em.nights):
        nights = em.nights
        pecu_n = nights[nights["photocell_type"].notna()] if "photocell_type" in nights else nights.iloc[:0]
        cms_n = nights[nights["mpan"].notna()] if "mpan" in nights else nights.iloc[:0]
        for s in ("pecu_primary", "pecu_secondary", "passive_fallback"):
            checks[f"PECU group-nights from {s}"] = float((pecu_n["source"] == s).sum())
        for s in ("cms", "passive_fallback"):
            checks[f"CMS line-nights from {s}"] = float((cms_n["source"] == s).sum())
    return SegmentResult(segment="U", meters=meters, rejected=rejected, checks=checks)
