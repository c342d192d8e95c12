"""IF-041, IF-033, IF-022, IF-023 and REP-003 from the services' real output: valid, and read back."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pandas as pd
import pytest
from test_dip_schema import examples

from tomlib import dip, market, registration, scenario, settlement
from tomlib.dip import rep003, schema
from tomlib.services import load_shaping, meter_reading, metering, processing

SENT = "2026-04-10T06:00:00"


@pytest.fixture(scope="module")
def world():
    sc = scenario.load_scenario(scenario.default_scenario_path("tiny"))
    mk = market.generate(sc)
    mt = metering.build_metering(mk, sc)
    reads = meter_reading.read_meters(mk, mt, sc).reads
    settled = processing.settle_run(mk, "SF").meters
    return sc, mk, mt, reads, settled


def all_valid(msgs, interface):
    assert msgs
    for _, p in msgs:
        assert schema.errors(p, interface) == []  # jsonschema: every error
        assert schema.is_valid(p, interface, mode="fast")  # and the fast engine agrees


# ------------------------------------------------------------------------------------------ IF-041


def test_if041_reads_validate_and_read_back(world):
    _, _, mt, reads, _ = world
    table = pd.concat([reads, mt.exchange_reads], ignore_index=True)
    stats: dict = {}
    msgs = list(dip.if041_payloads(table, registers=mt.registers, stats=stats))
    all_valid(msgs, "IF-041")
    assert stats["reads"] == len(table) and stats["messages"] < len(table)  # multi-register meters share one
    multi = [p for _, p in msgs if "B065List" in p["CustomBlock"]]
    assert multi and all(len(p["CustomBlock"]["B065List"]) >= 2 for p in multi)
    back = dip.read_if041(msgs).reads
    cols = ["mpan", "meter_id", "register_id", "read_at", "value", "read_type"]
    a = table[cols].assign(available_at=pd.DatetimeIndex(table["available_at"]).floor("s"))
    key = cols + ["available_at"]
    a = a.sort_values(key).reset_index(drop=True)
    b = back[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a.astype({c: str for c in ("mpan", "meter_id", "register_id", "read_type")}),
                                  b.astype({c: str for c in ("mpan", "meter_id", "register_id", "read_type")}),
                                  check_dtype=False)


def test_if041_event_codes_follow_read_types(world):
    _, _, mt, reads, _ = world
    msgs = list(dip.if041_payloads(pd.concat([reads, mt.exchange_reads]), registers=mt.registers))
    events = {p["CommonBlock"]["S0"]["eventCode"] for _, p in msgs}
    assert "[ReadingOverride]" in events  # opening reads
    for _, p in msgs:
        for item in p["CustomBlock"].get("B064List", []):
            ev = p["CommonBlock"]["S0"]["eventCode"]
            assert item["readingMethod"] == dict(dip.if041.READ_TYPES.values())[ev]


def test_if041_refuses_a_meter_id_longer_than_the_catalogue_allows(world):
    _, _, _, reads, _ = world
    bad = reads.copy()
    bad.loc[0, "meter_id"] = "X" * 11
    with pytest.raises(ValueError, match="row 0: meter_id 'XXXXXXXXXXX' is longer than 10"):
        list(dip.if041_payloads(bad))


# ------------------------------------------------------------------------------------------ IF-033


def test_if033_changes_of_supplier_validate_and_read_back(world):
    _, mk, mt, _, _ = world
    events = registration.generate_events(mk, registration.RegistrationSettings(change_of_supplier_rate=0.1))
    cos = events[events["change"] == "supplier"]
    assert len(cos) > 0
    msgs = list(dip.if033_payloads(events, mk.meters, metering=mt))
    all_valid(msgs, "IF-033")
    assert len(msgs) == len(cos)
    got = dip.read_if033(msgs).appointments.sort_values(["mpan", "effective_from"]).reset_index(drop=True)
    want = cos.sort_values(["mpan", "effective_from"]).reset_index(drop=True)
    assert got["mpan"].tolist() == want["mpan"].astype(str).tolist()
    assert got["supplier"].tolist() == want["supplier"].astype(str).tolist()
    assert got["llfc"].tolist() == want["llfc"].astype(str).tolist()
    assert got["energised"].tolist() == want["energised"].tolist()
    np.testing.assert_array_equal(got["effective_from"].to_numpy(), want["effective_from"].to_numpy())
    np.testing.assert_array_equal(got["notified_at"].to_numpy(),
                                  pd.DatetimeIndex(want["notified_at"]).floor("s").to_numpy())
    assert (got["appointment_scenario"] == "COS").all() and got["ssc"].notna().any()
    assert got["metering_service"].str.fullmatch(r"M[A-Z]{3}").all()


def test_if033_needs_standing_for_every_mpan(world):
    _, mk, _, _, _ = world
    events = registration.generate_events(mk, registration.RegistrationSettings(change_of_supplier_rate=0.1))
    with pytest.raises(ValueError, match="standing data lack"):
        list(dip.if033_payloads(events, mk.meters.isel(mpan=slice(0, 3))))


# ------------------------------------------------------------------------------------------ IF-022 / IF-023


def test_if022_load_shapes_validate_and_read_back(world):
    _, _, _, _, settled = world
    shapes = load_shaping.load_shapes(settled, "SF")
    msgs = list(dip.if022_payloads(shapes, sent_at=SENT))
    all_valid(msgs, "IF-022")
    days = {d for d, _ in msgs}
    assert len(days) == 3  # UTC days 2026-03-28..30 of the local 48/46/48-period days
    back = dip.read_if022(msgs).data
    want = shapes.sel(category=back["category"].values)
    np.testing.assert_array_equal(back["load_shape"].values, np.rint(want["load_shape"].values * 1000) / 1000)
    np.testing.assert_array_equal(back["default_flag"].values, want["default_flag"].values)
    np.testing.assert_array_equal(back["time"].values, shapes["time"].values)
    for key in ("gsp_group", "connection_type", "market_segment", "domestic", "measurement_quantity"):
        np.testing.assert_array_equal(back[key].values, want[key].values)


def test_if022_refuses_a_category_aggregating_a_mandatory_key(world):
    _, _, _, _, settled = world
    cats = load_shaping.load_categories().coarsen("connection_type")
    shapes = load_shaping.load_shapes(settled, "SF", config={"categories": cats})
    with pytest.raises(ValueError, match="aggregates connection_type"):
        list(dip.if022_payloads(shapes))


def test_if023_totals_validate_and_read_back(world):
    _, _, _, _, settled = world
    totals = load_shaping.load_shape_totals(load_shaping.load_shapes(settled, "SF"))
    msgs = list(dip.if023_payloads(totals, sent_at=SENT))
    all_valid(msgs, "IF-023")
    back = dip.read_if023(msgs).data
    want = totals.sel(category=back["category"].values)
    for var in ("day_total", "day_peak_total", "rolling_7day_total", "rolling_annual_total"):
        np.testing.assert_array_equal(back[var].values, np.rint(want[var].values * 1000) / 1000)
    assert back.sizes["settlement_date"] == 3


# ------------------------------------------------------------------------------------------ REP-003


@pytest.fixture(scope="module")
def run(world):
    sc, mk, _, _, _ = world
    cfg = settlement.SettlementConfig(services={"S": processing.settle_segment})
    return settlement.settle_run(mk, "SF", scenario=sc, config=cfg)


def test_rep003_reports_validate_and_read_back(run):
    stats: dict = {}
    msgs = list(dip.rep003_payloads(run, sent_at=SENT, stats=stats))
    all_valid(msgs, "REP-003")
    assert len(msgs) == 3 * run.sizes["gsp_group_id"]  # settlement days x GSP groups
    for _, p in msgs:
        body = rep003.decode_report(p["CustomBlock"]["P03"]["compressedReport"])
        assert schema.errors(body, schema="REP-003-CustomBlock") == []
        assert body["R002"]["settlementCode"] == "SF"
    got = dip.read_rep003(msgs)
    alloc = got.allocation
    periods = {r["settlementPeriod"] for b in got.bodies if b["R002"]["settlementDate"] == "2026-03-29"
               for r in b["REP003-R015"][0]["REP003-R016"][0]["REP003-R017"][0]["REP003-R018"]}
    assert periods == set(range(1, 47))  # the 46-period settlement day
    want = run.sel(bm_unit_id=alloc["bm_unit_id"].values)
    n_rows = run.sizes["aggregate"]
    np.testing.assert_allclose(alloc["allocated_net"].values, want["allocated_net"].values, rtol=0,
                               atol=0.0005 * n_rows)  # each CCC row rounded to 1e-6 MWh = 1e-3 kWh
    np.testing.assert_allclose(alloc["gcf"].sel(gsp_group_id=run["gsp_group_id"].values).values,
                               run["gcf"].values, rtol=0, atol=5e-10)
    key = pd.MultiIndex.from_arrays([run[c].values.astype(str) for c in ("gsp_group", "supplier", "bm_unit", "ccc")])
    back_key = pd.MultiIndex.from_arrays([alloc[c].values.astype(str)
                                          for c in ("gsp_group", "supplier", "bm_unit", "ccc")])
    order = back_key.get_indexer(key)
    assert (order >= 0).all()
    wire = np.rint(run["corrected"].values / 1000 * 1e6) / 1e6 * 1000  # MWh with 6 decimals, back in kWh
    np.testing.assert_array_equal(alloc["corrected"].values[order], wire)


def test_the_official_rep003_sample_body_reads(tmp_path):
    raw = examples()["REP-002"]["value"][0]["payload"]["CustomBlock"]["P03"]["compressedReport"]
    body = json.loads(zlib.decompress(base64.b64decode(raw)))
    # wrap the real-format body into a v2.1.0 REP-003 message of ours
    msg = {"CommonBlock": {
        "S0": {"interfaceID": "REP-003", "schemaVersion": "008", "eventCode": rep003.EVENT_CODE},
        "S1": {"environmentTag": "DEV", "subText": None, "senderUniqueReference": "S-REP-003-9922000001-ECS-20240202-N1",
               "senderTimestamp": "2024-02-02T00:00:00+00:00", "senderDIPID": "9922000001", "senderRoleID": "ECS",
               "senderCorrelationID": None, "DIPConnectionProviderID": None}},
        "CustomBlock": {"P03": {"compressedReport": rep003.encode_report(body)}}}
    got = dip.read_rep003([msg])
    a = got.allocation
    assert a["ccc"].values.tolist() == ["CCC160"] and a["component"].values.tolist() == ["losses"]
    assert got.checks["aggregates_without_direction"] == 1
    np.testing.assert_allclose(a["uncorrected"].values[0], [2.22 * 1000, 2.22 * 1000])  # MWh -> kWh, losses field
    assert a["settlement_period"].values.tolist() == [1, 2]


def test_a_corrupt_report_body_is_named(run):
    _, p = next(dip.rep003_payloads(run, sent_at=SENT))
    p["CustomBlock"]["P03"]["compressedReport"] = base64.b64encode(b"not zlib").decode()
    with pytest.raises(ValueError, match="not a base64-encoded zlib-compressed JSON report"):
        dip.read_rep003([p])


# ------------------------------------------------------------------------------------------ the 50-period day


@pytest.fixture(scope="module")
def autumn():
    sc = scenario.load_scenario(scenario.default_scenario_path("tiny_autumn"))
    mk = market.generate(sc)
    cfg = settlement.SettlementConfig(services={"S": processing.settle_segment})
    return mk, settlement.settle_run(mk, "SF", scenario=sc, config=cfg)


def test_rep003_if022_and_if023_on_the_50_period_day(autumn):
    mk, run_ds = autumn
    msgs = list(dip.rep003_payloads(run_ds, sent_at=SENT))
    all_valid(msgs, "REP-003")
    bodies = dip.read_rep003(msgs).bodies
    long_day = [b for b in bodies if b["R002"]["settlementDate"] == "2026-10-25"]
    assert long_day and all(len(b["REP003-R024"]) == 50 for b in long_day)
    assert {r["settlementPeriodID"] for r in long_day[0]["REP003-R024"]} == set(range(1, 51))
    shapes = load_shaping.load_shapes(processing.settle_run(mk, "SF").meters, "SF")
    ls_msgs = list(dip.if022_payloads(shapes, sent_at=SENT))
    all_valid(ls_msgs, "IF-022")
    n_periods = {d: len(p["CustomBlock"]["B903List"][0]["LSGSettlementPeriods"][0]["LSGroupSettlementPeriods"])
                 for d, p in ls_msgs}
    assert n_periods["2026-10-25"] == 48 and n_periods["2026-10-23"] == 2  # local 10-24 starts 10-23T23:00Z
    back = dip.read_if022(ls_msgs).data
    np.testing.assert_array_equal(back["time"].values, shapes["time"].values)
    totals = load_shaping.load_shape_totals(shapes)
    assert int(totals["periods"].sel(settlement_date="2026-10-25")) == 50
    tot_msgs = list(dip.if023_payloads(totals, sent_at=SENT))
    all_valid(tot_msgs, "IF-023")
    got = dip.read_if023(tot_msgs).data.sel(category=totals["category"].values)
    np.testing.assert_array_equal(got["day_total"].values, np.rint(totals["day_total"].values * 1000) / 1000)
