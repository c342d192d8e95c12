"""Settlement runs end to end (registration -> segment services -> aggregation -> volume allocation).

Until the smart segment's data service (tomlib.services.processing) lands, the smart segment is
settled here by ``smart_segment_test_double``: a test double of the segment service protocol that
knows the truth and releases it late (deterministic availability per MPAN-day), estimating what
is not available yet. It lives in this test file only, never in the product.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from tomlib import calendar, cube, market, scenario, settlement
from tomlib import registration as reg
from tomlib.services.base import SegmentResult

RUNS = ["II", "SF", "R1", "RF", "DF"]


# ------------------------------------------------------------------------------------ test doubles


def smart_segment_test_double(mkt, as_of, *, run, settlement_dates, config=None):
    """TEST DOUBLE of a segment service (protocol of tomlib.services.base) for segment S.

    Each MPAN-day of true energy becomes available 1, 9, 25 or 70 days after the settlement day
    (deterministic from the MPAN and date); before that the day is settled as an estimate of 80 %
    of the truth (quality E, reason Missing) - or left MISSING for every 7th MPAN.
    """
    return _double(mkt, as_of, settlement_dates, "S", delays=np.array([1, 9, 25, 70]))


def advanced_segment_test_double(mkt, as_of, *, run, settlement_dates, config=None):
    """TEST DOUBLE for segment A: the truth, always actual."""
    return _double(mkt, as_of, settlement_dates, "A", delays=np.array([0]))


def _double(mkt, as_of, settlement_dates, segment, delays):
    meters = mkt.meters
    rows = np.flatnonzero(meters["market_segment"].values == segment)
    day_of_t = meters["settlement_date"].values
    cols = np.flatnonzero(np.isin(day_of_t, pd.DatetimeIndex(settlement_dates).to_numpy()))
    sub = meters.isel(mpan=rows, time=cols)
    truth = sub["energy"].values
    day_index = ((day_of_t[cols] - day_of_t[0]) // np.timedelta64(1, "D")).astype(int)
    seed = (np.arange(rows.size)[:, None] * 7919 + day_index[None, :] * 104729) % delays.size
    available_at = day_of_t[cols][None, :] + (delays[seed] + 1) * np.timedelta64(1, "D")
    actual = available_at <= np.datetime64(as_of)
    quality = np.where(actual, cube.QUALITY_CODES["A"], cube.QUALITY_CODES["E"]).astype(np.uint8)
    energy = np.where(actual, truth, 0.8 * truth)
    missing = ~actual & (np.arange(rows.size) % 7 == 3)[:, None]
    quality[missing] = cube.MISSING
    energy[missing] = np.nan
    reason = np.where(actual | missing, 0, cube.ESTIMATION_REASONS["Missing"]).astype(np.uint8)
    out = sub.drop_vars(["energy", "quality", "estimation_reason"]).assign(
        energy=(("mpan", "time"), energy, {"units": "kWh"}), quality=(("mpan", "time"), quality, {"units": "1"}),
        estimation_reason=(("mpan", "time"), reason, {"units": "1"}))
    # one refused record per call, so that rejections reach the run's checks
    rejected = pd.DataFrame({"mpan": [str(sub["mpan"].values[0])], "time": [pd.Timestamp(sub["time"].values[0])],
                             "field": ["energy"], "reason": ["negative value"], "value": ["-1.0"]})
    return SegmentResult(segment=segment, meters=out, rejected=rejected,
                         checks={"in_records": float(truth.size), "actual": float(actual.sum()),
                                 "missing": float(missing.sum())})


DOUBLES = {"S": smart_segment_test_double, "A": advanced_segment_test_double}


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def tiny():
    sc = scenario.load_scenario(scenario.default_scenario_path("tiny"))
    return sc, market.generate(sc)


@pytest.fixture(scope="module")
def tiny_runs(tiny):
    sc, mkt = tiny
    config = settlement.SettlementConfig(services=DOUBLES, registration=reg.RegistrationSettings(
        change_of_supplier_rate=0.05, llfc_change_rate=0.02, deenergisation_rate=0.02, late_notification_share=0.5))
    return settlement.settle_all(sc, RUNS, market=mkt, config=config, save=False)


def _conservation(ds: xr.Dataset) -> float:
    return json.loads(ds.attrs["checks"])["conservation: max |sum allocated + unallocated - GSP group take| [kWh]"]


# ------------------------------------------------------------------------------------ one run


def test_run_conserves_the_take_and_reports_provenance(tiny_runs, tiny):
    sc, mkt = tiny
    for run, result in tiny_runs.runs.items():
        ds = result.dataset
        assert _conservation(ds) < 1e-9
        by_group = ds["allocated_net"].groupby("bm_unit_gsp_group").sum()
        np.testing.assert_allclose(by_group.sel(bm_unit_gsp_group=ds["gsp_group_id"].values).values,
                                   ds["gsp_group_take"].values, rtol=1e-12)
        assert ds.attrs["run"] == run and ds.attrs["scenario"] == "tiny" and ds.attrs["seed"] == 1
        assert ds.attrs["scenario_digest"] == sc.digest() and len(ds.attrs["input_digest"]) == 64
        assert json.loads(ds.attrs["segment_services"]) == {
            "S": "test_settlement.smart_segment_test_double", "A": "test_settlement.advanced_segment_test_double"}
        checks = result.checks
        assert checks["aggregation: |sum consumption aggregates - defaults - sum settled MPAN energy| [kWh]"] < 1e-9
        assert checks["losses: |sum losses CCCs - sum energy x (LLF - 1)| [kWh]"] < 1e-9
        assert checks["losses [kWh]"] > 0
        assert not any(k.startswith("unsettled") for k in checks)
        # checks of the services add up over their calls (one call per distinct as-of instant)
        n_calls = len(np.unique(settlement.as_of_instants(sc.settlement_dates, run).values))
        assert checks["S: rejected records: negative value"] == checks["S: rejected records"] == n_calls
        assert checks["S: in_records"] == (mkt.meters["market_segment"] == "S").sum().item() * ds.sizes["time"]
        # every MPAN-period has one status
        assert ds["mpan_periods"].sum().item() == mkt.meters.sizes["mpan"] * mkt.meters.sizes["time"]
    assert tiny_runs.runs["SF"].dataset.sizes["time"] == 48 + 46 + 48


def test_discovered_services_settle_the_tiny_market(tiny):
    """Integration: whatever segment services exist in tomlib settle the market and conserve the take."""
    sc, mkt = tiny
    found = settlement.discover_services()
    if "S" not in found:
        pytest.skip("the smart segment's data service (tomlib.services.processing) is not there yet")
    result = settlement.settle_all(sc, ["SF", "RF"], market=mkt, save=False)
    table = settlement.check_table(result)
    assert table["ok"].all(), table.loc[~table["ok"]].to_string()
    ds = result.runs["SF"].dataset
    assert json.loads(ds.attrs["segment_services"])["S"] == "tomlib.services.processing.settle_segment"
    assert result.runs["SF"].checks["MPAN-periods: actual"] > 0
    assert ds.attrs["input_digest"] != result.runs["RF"].dataset.attrs["input_digest"]
    records = settlement.summary_records(result)
    json.dumps(records, allow_nan=False)
    assert records["checks_ok"] and set(records["allocation_error_by_supplier"]) == {"SF", "RF"}


def test_runs_converge_to_the_truth(tiny_runs):
    table = settlement.check_table(tiny_runs)
    assert table["ok"].all() and len(table) == 5 * len(RUNS)
    prov = settlement.provenance_table(tiny_runs)
    assert list(prov.index) == RUNS and (prov["unsettled_segments"] == "").all()
    assert prov["as_of_first"].is_monotonic_increasing
    conv = settlement.convergence(tiny_runs.reconciliation)
    assert list(conv.index) == RUNS
    errors = conv["abs_error"].to_numpy()
    assert (np.diff(errors) <= 1e-9).all() and errors[-1] < errors[0]
    actual = conv["actual_share"].to_numpy()
    assert (np.diff(actual) >= 0).all() and actual[-1] == 1.0 and actual[0] < 1.0
    assert conv.loc["RF", "default_share"] == 0.0 and conv.loc["II", "default_share"] > 0.0


_TAKE = "GSP group take [kWh]"
_AGGREGATION = "aggregation: |sum consumption aggregates - defaults - sum settled MPAN energy| [kWh]"


def _with_checks(result, run: str, take: float | None = None, aggregation: float | None = None):
    """``result`` with one run's recorded GSP group take and aggregation residual changed [kWh]."""
    ds = result.runs[run].dataset.copy()
    checks = json.loads(ds.attrs["checks"])
    assert _TAKE in checks and _AGGREGATION in checks
    checks[_TAKE] = checks[_TAKE] if take is None else take
    checks[_AGGREGATION] = checks[_AGGREGATION] if aggregation is None else aggregation
    ds.attrs["checks"] = json.dumps(checks)
    return settlement.SettlementRuns(runs={run: settlement.RunResult(run, ds)}, reconciliation=result.reconciliation)


def test_residual_tolerance_grows_with_the_energy_settled(tiny_runs):
    """A residual from float64 rounding of a GB-sized run (1.7e-6 kWh with a take of 5.2e8 kWh, seen
    on the GB day) passes; the same residual in a small run fails, and a lost kWh fails at any size."""
    aggregation = "aggregates = sum of their MPANs' settled energy (abs residual)"

    def row(**changes):
        table = settlement.check_table(_with_checks(tiny_runs, "SF", **changes)).set_index("check")
        return table.loc[aggregation]

    gb = row(take=5.2e8, aggregation=1.7e-6)
    assert gb["ok"] and gb["expected"] == "<= 0.00052"
    small = row(aggregation=1.7e-6)
    assert not small["ok"] and small["expected"] == "<= 1e-06"
    assert not row(take=5.2e8, aggregation=1.0)["ok"]
    strict = settlement.check_table(_with_checks(tiny_runs, "SF", take=5.2e8, aggregation=1.7e-6),
                                    relative_tolerance=0.0).set_index("check")
    assert not strict.loc[aggregation, "ok"]


def test_who_pays_adds_up_to_the_energy_outside_true_volumes(tiny_runs):
    recon = tiny_runs.reconciliation
    table = settlement.who_pays(recon)
    outside = float(recon["true_outside_volumes"].sum())
    for run in RUNS:
        part = table.loc[run]
        # allocated volumes sum to the take, true volumes to take - outside: errors sum to outside
        assert part["error"].sum() == pytest.approx(outside, rel=1e-9)
        assert part["share_of_error"].sum() == pytest.approx(1.0)
        assert part["share_of_true"].sum() == pytest.approx(1.0)
    deltas = settlement.run_deltas(recon, by="gsp_group")
    assert (deltas.loc["II", "delta"] == 0).all()
    # the take does not change between runs, so neither does a GSP group's total
    np.testing.assert_allclose(deltas["delta"].to_numpy(), 0.0, atol=1e-8)
    by_unit = settlement.run_deltas(recon, by="bm_unit")
    assert set(by_unit.index.get_level_values("bm_unit")) == set(recon["bm_unit_id"].values)
    by_sup = settlement.run_deltas(recon, by="supplier")
    assert by_sup.loc["SF", "previous_run"].eq("II").all()
    with pytest.raises(ValueError, match="by must be one of"):
        settlement.run_deltas(recon, by="ccc")


def test_segment_without_data_service_is_reported_and_lands_in_the_residual(tiny):
    sc, mkt = tiny
    quiet = reg.RegistrationSettings(0.0, 0.0, 0.0)
    config = settlement.SettlementConfig(services={"S": smart_segment_test_double}, registration=quiet)
    ds = settlement.settle_run(mkt, "RF", scenario=sc, config=config)
    checks = json.loads(ds.attrs["checks"])
    adv = mkt.meters["market_segment"].values == "A"
    assert checks["unsettled: no data service for segment A"] == adv.sum() > 0
    true_a = float(mkt.meters["energy"].values[adv].sum())
    assert checks["unsettled: no data service for segment A, true energy [kWh]"] == pytest.approx(true_a)
    assert _conservation(ds) < 1e-9
    # at RF the smart data are all actual: what settlement misses against the truth is exactly the
    # advanced MPANs' energy at the GSP, and the correction spreads it (with the unaccounted energy)
    llf = mkt.line_loss_factors.sel(llfc=mkt.meters["llfc"].values[adv]).values
    true_a_at_gsp = float((mkt.meters["energy"].values[adv] * llf).sum())
    assert float(ds["true_net"].sum() - ds["uncorrected_net"].sum()) == pytest.approx(true_a_at_gsp, rel=1e-9)
    spread = float(ds["allocated_net"].sum() - ds["uncorrected_net"].sum())
    assert spread == pytest.approx(true_a_at_gsp + float(ds["unaccounted_energy"].sum()), rel=1e-9)


def test_no_service_at_all_leaves_the_take_unallocated(tiny):
    sc, mkt = tiny
    ds = settlement.settle_run(mkt, "SF", scenario=sc, config=settlement.SettlementConfig(services={}))
    assert bool(ds["uncorrectable"].sel(direction="import").all())
    np.testing.assert_allclose(ds["unallocated"].sel(direction="import").values, ds["gsp_group_take"].values)
    assert ds.sizes["aggregate"] == 0 and _conservation(ds) < 1e-9


def test_late_change_of_supplier_is_picked_up_by_the_next_run(tiny):
    sc, mkt = tiny
    events = reg.generate_events(mkt, reg.RegistrationSettings(0.0, 0.0, 0.0))
    old = events[events["mpan"] == str(mkt.meters["mpan"].values[0])].iloc[0]
    new_supplier = "DLTA" if old["supplier"] != "DLTA" else "ALFA"
    sf = settlement.as_of_instants(sc.settlement_dates, "SF")
    r1 = settlement.as_of_instants(sc.settlement_dates, "R1")
    late = old.copy()
    late["effective_from"] = pd.Timestamp(mkt.meters["time"].values[10])
    late["supplier"], late["bm_unit"] = new_supplier, old["bm_unit"].replace(old["supplier"], new_supplier)
    late["notified_at"] = sf.max() + pd.Timedelta(days=1)  # after SF of every day, before R1
    assert late["notified_at"] < r1.min()
    events = pd.concat([events, late.to_frame().T.astype(events.dtypes.to_dict())], ignore_index=True)
    config = settlement.SettlementConfig(services=DOUBLES)

    def periods_of(run):
        ds = settlement.settle_run(mkt, run, scenario=sc, events=events, config=config)
        cons = ds.sel(aggregate=(ds["component"] == "consumption") & (ds["bm_unit"] == late["bm_unit"]))
        return cons["mpan_count"].sum("aggregate").values

    moved = periods_of("R1") - periods_of("SF")
    np.testing.assert_array_equal(moved[:10], 0)
    np.testing.assert_array_equal(moved[10:], 1)


def test_clock_change_days_settle(tmp_path):
    sc = scenario.load_scenario(scenario.default_scenario_path("tiny_autumn"))
    mkt = market.generate(sc)
    config = settlement.SettlementConfig(services=DOUBLES)
    result = settlement.settle(sc, "SF", market=mkt, data_root=tmp_path, config=config)
    ds = result.dataset
    assert 50 in calendar.periods_in_day(pd.DatetimeIndex(ds["settlement_day"].values))
    assert _conservation(ds) < 1e-9
    assert result.path == tmp_path / "tiny_autumn" / "settlement" / "SF.zarr"
    back = settlement.open_run(result.path)
    xr.testing.assert_identical(back[["gcf", "allocated_net"]], ds[["gcf", "allocated_net"]])
    assert back.attrs["input_digest"] == ds.attrs["input_digest"]
    assert not [p for p in result.path.parent.iterdir() if p.name.startswith(".")]


def test_runs_are_deterministic(tiny):
    sc, mkt = tiny
    config = settlement.SettlementConfig(services=DOUBLES)
    a = settlement.settle_run(mkt, "II", scenario=sc, config=config)
    b = settlement.settle_run(mkt, "II", scenario=sc, config=config)
    xr.testing.assert_identical(a, b)
    c = settlement.settle_run(mkt, "II", scenario=sc, config=settlement.SettlementConfig(services=DOUBLES,
                                                                                        take_split="weighted"))
    assert c.attrs["input_digest"] != a.attrs["input_digest"]


def test_missing_llf_and_missing_take_raise(tiny):
    sc, mkt = tiny
    config = settlement.SettlementConfig(services=DOUBLES)
    llfc = str(mkt.meters["llfc"].values[0])
    broken = market.Market(mkt.scenario_name, mkt.seed, mkt.meters,
                           mkt.line_loss_factors.drop_sel(llfc=llfc), mkt.unaccounted_energy, mkt.gsp_group_take,
                           mkt.attrs)
    with pytest.raises(ValueError, match=f"LLFC {llfc} has no line loss factors"):
        settlement.settle_run(broken, "SF", scenario=sc, config=config)
    broken = market.Market(mkt.scenario_name, mkt.seed, mkt.meters, mkt.line_loss_factors, mkt.unaccounted_energy,
                           mkt.gsp_group_take.drop_sel(gsp_group="_P"), mkt.attrs)
    with pytest.raises(ValueError, match="no GSP group take for GSP group _P"):
        settlement.settle_run(broken, "SF", scenario=sc, config=config)
    with pytest.raises(ValueError, match="unknown run 'R2' for timetable 'mhhs'"):
        settlement.settle_run(mkt, "R2", scenario=sc, config=config)
    with pytest.raises(ValueError, match="settlement date 2026-04-01 is not in the market"):
        settlement.settle_run(mkt, "SF", scenario=sc, config=config, settlement_dates=["2026-04-01"])


def test_discover_services(tmp_path, monkeypatch):
    found = settlement.discover_services({"S": "tomlib.services.no_such_service_yet"})
    assert found == {}
    (tmp_path / "broken_segment_service.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "fine_segment_service.py").write_text("def settle_segment(*a, **k):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert list(settlement.discover_services({"U": "fine_segment_service"})) == ["U"]
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        settlement.discover_services({"S": "broken_segment_service"})
    sys.modules.pop("fine_segment_service", None)


def test_service_returning_foreign_mpans_is_refused(tiny):
    sc, mkt = tiny

    def wrong_segment_double(m, as_of, *, run, settlement_dates, config=None):
        result = advanced_segment_test_double(m, as_of, run=run, settlement_dates=settlement_dates)
        return SegmentResult(segment="S", meters=result.meters)

    with pytest.raises(ValueError, match="which is not a segment S MPAN of the market"):
        settlement.settle_run(mkt, "SF", scenario=sc, config=settlement.SettlementConfig(
            services={"S": wrong_segment_double}))


def test_settle_all_saves_runs_and_reconciliation(tmp_path, tiny):
    sc, mkt = tiny
    out = settlement.settle_all(sc, ["SF", "R1"], market=mkt, data_root=tmp_path,
                                config=settlement.SettlementConfig(services=DOUBLES))
    folder = tmp_path / "tiny" / "settlement"
    assert sorted(p.name for p in folder.iterdir()) == ["R1.zarr", "SF.zarr", "reconciliation.zarr"]
    recon = cube.open(out.path)
    assert list(recon["run"].values) == ["SF", "R1"]
    assert json.loads(recon.attrs["runs"]) == ["SF", "R1"]
    with pytest.raises(ValueError, match=r"unknown run\(s\) \['R3'\]"):
        settlement.settle_all(sc, ["R3"], market=mkt, save=False)
    assert Path(settlement.run_store_path("demo", "SF")) == Path("data/demo/settlement/SF.zarr")


def test_dashboards_numbers_and_views(tiny_runs):
    from tomlib.dashboards.settlement_runs import SettlementRunsDashboard, error_by_run
    from tomlib.dashboards.volume_allocation import (
        VolumeAllocationDashboard,
        correction_by_supplier,
        gcf_frame,
        gcf_summary,
        supplier_allocation,
    )

    recon = tiny_runs.reconciliation
    alloc = supplier_allocation(recon, "SF")
    np.testing.assert_allclose(alloc.sum(axis=1).to_numpy(), recon["gsp_group_take"].sum("gsp_group_id").values)
    assert list(alloc.columns) == ["ALFA", "BRVO", "CHRL", "DLTA"]
    one = supplier_allocation(recon, "SF", "_P", "import")
    assert (one.to_numpy() >= 0).all() and one.shape[0] == recon.sizes["time"]
    pays = settlement.who_pays(recon)
    np.testing.assert_allclose(correction_by_supplier(recon, "R1")["error"].to_numpy(), pays.loc["R1", "error"].to_numpy())
    np.testing.assert_allclose(error_by_run(recon).loc["R1"].to_numpy(), pays.loc["R1", "error"].to_numpy())
    assert list(gcf_frame(recon, "RF", "_C").columns) == ["import", "export"]
    summary = gcf_summary(recon)
    assert list(summary.index.get_level_values("run").unique()) == RUNS
    va = VolumeAllocationDashboard(recon=recon, run="R1", gsp_group="_C", direction="import")
    sr = SettlementRunsDashboard(recon=recon, by="bm_unit", gsp_group="_P")
    for dash in (va, sr):
        for name in dash.VIEWS:
            assert dash.view(name) is not None
        assert dash.__panel__() is not None
    with pytest.raises(ValueError, match="is not one of"):
        VolumeAllocationDashboard(recon=recon, run="R3")
    with pytest.raises(ValueError, match="direction must be one of"):
        supplier_allocation(recon, "SF", direction="both")


def _table_digest(table: pd.DataFrame) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=32)
    settlement._update_with_table(h, table)
    return h.hexdigest()


def test_a_table_feeds_the_input_digest_by_its_values_not_its_layout():
    base = pd.DataFrame({"mpan": pd.array(["1", "22", "333", None], dtype="str"),
                         "effective_from": pd.to_datetime(["2026-03-28"] * 4).as_unit("ns"),
                         "energised": [True, False, True, True], "llfc": pd.array(["A", "", "C", "D"], dtype="str")})
    # the same values chunked and sliced (Arrow offsets not from zero): the same digest
    extra = pd.DataFrame({c: base[c].iloc[:2] for c in base.columns})
    relaid = pd.concat([extra, base], ignore_index=True).iloc[2:].reset_index(drop=True)
    assert _table_digest(relaid) == _table_digest(base)
    changed = {
        "a character": base.assign(mpan=pd.array(["1", "22", "334", None], dtype="str")),
        "a character moved between rows": base.assign(mpan=pd.array(["12", "2", "333", None], dtype="str")),
        "null for empty text": base.assign(llfc=pd.array(["A", None, "C", "D"], dtype="str")),
        "a flag": base.assign(energised=[True, True, True, True]),
        "an instant": base.assign(effective_from=base["effective_from"] + pd.Timedelta("30min")),
        "a column name": base.rename(columns={"llfc": "llf_class"}),
        "a row": base.iloc[:3],
    }
    digests = {why: _table_digest(t) for why, t in changed.items()}
    assert _table_digest(base) not in digests.values()
    assert len(set(digests.values())) == len(digests)
