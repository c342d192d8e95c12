"""IF-021: settled meter cube -> official-schema messages -> back, incl. the 46- and 50-period days."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dip_schema import renamed_if021_example

from tomlib import calendar, cube, dip, market, registration, scenario
from tomlib.dip import common, if021, schema
from tomlib.services import aggregation, processing, volume_allocation

SENT = "2026-04-10T06:00:00"


@pytest.fixture(scope="module", params=["tiny", "tiny_autumn"])
def settled(request):
    sc = scenario.load_scenario(scenario.default_scenario_path(request.param))
    mk = market.generate(sc)
    return mk, processing.settle_run(mk, "SF").meters


def payloads(meters, **kw):
    stats: dict = {}
    out = list(dip.if021_payloads(meters, sent_at=SENT, stats=stats, **kw))
    return out, stats


def standing_of(meters) -> pd.DataFrame:
    return pd.DataFrame({c: meters[c].values for c in cube.STANDING_COORDS},
                        index=pd.Index(meters["mpan"].values.astype(str), name="mpan"))


def test_every_message_validates_with_zero_errors(settled):
    _, meters = settled
    msgs, stats = payloads(meters)
    assert stats["messages"] == len(msgs) > 0
    for _, p in msgs:
        assert schema.errors(p, "IF-021") == []  # jsonschema, every error
        assert schema.is_valid(p, "IF-021", mode="fast")
    assert schema.envelope_errors([{"payload": p} for _, p in msgs[:3]]) == []
    assert stats["periods"] == int((meters["quality"].values != cube.MISSING).sum())


def test_local_46_and_50_period_days_are_48_period_utc_days(settled):
    _, meters = settled
    msgs, _ = payloads(meters)
    n_mpan = meters.sizes["mpan"]
    per_day = pd.Series([len(p["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]["consumptionPeriods"])
                         for _, p in msgs]).groupby([d for d, _ in msgs]).agg(["size", "min", "max"])
    local = pd.DatetimeIndex(np.unique(meters["settlement_date"].values))
    odd = [d for d in local if calendar.periods_in_day(d) != 48]
    assert len(odd) == 1  # the clock-change day of the scenario
    odd_day = odd[0]
    for day, row in per_day.iterrows():
        times = pd.DatetimeIndex(meters["time"].values)
        expected = int(((times >= pd.Timestamp(day)) & (times < pd.Timestamp(day) + pd.Timedelta(days=1))).sum())
        assert row["size"] == n_mpan and row["min"] == row["max"] == expected
    # every UTC day that holds a period of the 46/50-period local day is a full 48-period day
    starts = calendar.period_starts(odd_day)
    for day in np.unique(starts.normalize()):
        assert per_day.loc[f"{pd.Timestamp(day):%Y-%m-%d}", "max"] == 48


def test_sp_is_the_utc_end_of_each_period(settled):
    _, meters = settled
    msgs, _ = payloads(meters)
    first = meters["mpan"].values[0]
    sps = [p2["sp"] for d, p in msgs if p["CommonBlock"]["M0"]["MPANCore"] == first
           for p2 in p["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]["consumptionPeriods"]]
    ends = pd.DatetimeIndex(meters["time"].values) + pd.Timedelta(minutes=30)
    assert sps == [f"{t:%Y-%m-%dT%H:%M:%S}+00:00" for t in ends]
    for day, p in msgs:
        block = p["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]
        assert block["settlementDay"]["settlementDayDate"] == f"{day}T00:00:00+00:00"
        first_sp = pd.Timestamp(block["consumptionPeriods"][0]["sp"])
        last_sp = pd.Timestamp(block["consumptionPeriods"][-1]["sp"])
        assert first_sp > pd.Timestamp(f"{day}T00:00:00+00:00")  # never the day's own midnight
        assert last_sp <= pd.Timestamp(f"{day}T00:00:00+00:00") + pd.Timedelta(days=1)


def test_round_trip_gives_identical_energy_and_quality(settled):
    _, meters = settled
    msgs, _ = payloads(meters)
    back = dip.read_if021([p for _, p in msgs], times=meters["time"].values, standing=standing_of(meters))
    got = back.meters.sel(mpan=meters["mpan"].values)
    wire = np.rint(meters["energy"].values * 1000) / 1000  # DT-016: 3 decimals of kWh
    np.testing.assert_array_equal(got["energy"].values, wire)
    np.testing.assert_array_equal(got["quality"].values, meters["quality"].values)
    np.testing.assert_array_equal(got["estimation_reason"].values, meters["estimation_reason"].values)
    cube.validate_meter_cube(back.meters)
    assert back.checks["periods_read"] == back.checks["periods_in"] and len(back.rejected) == 0
    assert back.checks["sp_start_blocks"] == 0
    # a second trip changes nothing: the messages are byte-identical
    again, _ = payloads(back.meters.sel(mpan=meters["mpan"].values))
    assert [json.dumps(p) for _, p in again] == [json.dumps(p) for _, p in msgs]


def test_read_back_messages_feed_aggregation_and_volume_allocation(settled):
    mk, meters = settled
    msgs, _ = payloads(meters)
    back = dip.read_if021([p for _, p in msgs], times=meters["time"].values, standing=standing_of(meters)).meters
    wire = meters.copy()
    wire["energy"] = meters["energy"].copy(data=np.rint(meters["energy"].values * 1000) / 1000)
    events = registration.generate_events(mk)
    results = []
    for ds in (wire, back.sel(mpan=meters["mpan"].values)):
        force = registration.in_force(events, ds["mpan"].values, ds["time"].values)
        agg = aggregation.aggregate(ds, force, mk.line_loss_factors)
        take = mk.gsp_group_take.sel(time=ds["time"].values)
        results.append(volume_allocation.allocate(agg, take))
    np.testing.assert_array_equal(results[0]["allocated_net"].values, results[1]["allocated_net"].values)


def test_missing_periods_are_left_out_and_come_back_missing(settled):
    _, meters = settled
    ds = meters.copy(deep=True)
    q, e = ds["quality"].values, ds["energy"].values
    q[0, 5:9], e[0, 5:9] = cube.MISSING, np.nan
    q[1, :], e[1, :] = cube.MISSING, np.nan  # an MPAN without any value
    msgs, stats = payloads(ds)
    n_days = len({d for d, _ in msgs})
    assert stats["missing_periods_omitted"] == 4 + ds.sizes["time"]
    assert stats["mpan_days_without_values"] == n_days
    assert all(p["CommonBlock"]["M0"]["MPANCore"] != ds["mpan"].values[1] for _, p in msgs)
    back = dip.read_if021([p for _, p in msgs], times=ds["time"].values)
    got = back.meters.reindex(mpan=ds["mpan"].values)
    np.testing.assert_array_equal(got["quality"].values[0], q[0])
    assert np.isnan(got["energy"].values[0, 5:9]).all()
    assert ds["mpan"].values[1] not in back.meters["mpan"].values  # no message, no row: counted above


def test_official_example_reads_into_a_cube():
    msg = renamed_if021_example()
    got = dip.read_if021([msg], sp_convention="auto")
    m = got.meters
    assert m.sizes == {"mpan": 1, "time": 48}
    assert m["mpan"].values.tolist() == ["2000056535971"] and m["gsp_group"].values.tolist() == ["_K"]
    assert (cube.quality_label(m["quality"].values) == "A").all() and (m["estimation_reason"].values == 0).all()
    np.testing.assert_allclose(m["energy"].values[0], np.round(9.901 + 0.001 * np.arange(48), 3))
    # the example's sp are period starts: 00:00 is the first period of 2022-03-21
    assert pd.Timestamp(m["time"].values[0]) == pd.Timestamp("2022-03-21T00:00")
    assert got.checks["sp_start_blocks"] == 1 and "1 as starts" in m.attrs["sp_convention"]
    assert m["measurement_quantity"].values.tolist() == ["AI"] and m["connection_type"].values.tolist() == ["W"]
    start = dip.read_if021([msg], sp_convention="start").meters
    np.testing.assert_array_equal(start["energy"].values, m["energy"].values)


def test_official_example_is_refused_under_the_catalogue_definition():
    with pytest.raises(ValueError, match=r"sp 2022-03-21T00:00:00\+00:00 is not one of the period ends.*"
                                         r"sp_convention='start' or 'auto'"):
        dip.read_if021([renamed_if021_example()])


def test_our_output_under_each_convention(settled):
    _, meters = settled
    msgs, _ = payloads(meters)
    full_day = [p for d, p in msgs if len(p["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]
                                          ["consumptionPeriods"]) == 48][:5]
    auto = dip.read_if021(full_day, sp_convention="auto")
    assert auto.checks["sp_end_blocks"] == 5 and auto.checks["sp_start_blocks"] == 0
    with pytest.raises(ValueError, match="not one of the period starts"):
        dip.read_if021(full_day, sp_convention="start")


def test_a_later_message_supersedes_an_earlier_one():
    msg = renamed_if021_example()["payload"]
    later = copy.deepcopy(msg)
    later["CommonBlock"]["S1"]["senderTimestamp"] = "2022-03-22T08:00:00+00:00"
    later["CustomBlock"]["B900"]["settlementDayConsumptionPeriods"][0]["consumptionPeriods"][0]["v"] = "1.000"
    got = dip.read_if021([later, msg], sp_convention="auto")
    assert got.meters["energy"].values[0, 0] == 1.0 and got.checks["superseded"] == 48
    assert (got.rejected["reason"].str.contains("superseded")).sum() == 48
    assert got.checks["periods_in"] == got.checks["periods_read"] + got.checks["periods_rejected"]


def test_reactive_power_is_refused_period_by_period():
    msg = renamed_if021_example()["payload"]
    msg["CommonBlock"]["S0"]["eventCode"] = "[ReactivePower]"
    msg["CustomBlock"]["B900"]["MQID"]["measurementQuantityID"] = "RI"
    got = dip.read_if021([msg], sp_convention="auto")
    assert len(got.rejected) == 48 and got.rejected["reason"].str.contains("RI is not read").all()
    assert got.checks["periods_read"] == 0


def test_values_that_do_not_fit_decimal_9_3_raise_naming_the_mpan(settled):
    _, meters = settled
    ds = meters.copy(deep=True)
    ds["energy"].values[2, 3] = 2e9
    with pytest.raises(ValueError, match=f"mpan {ds['mpan'].values[2]}.*decimal"):
        payloads(ds)


def test_files_daily_and_jsonl_round_trip(settled, tmp_path):
    _, meters = settled
    daily = dip.export_messages(meters, tmp_path / "daily", sent_at=SENT)
    names = sorted(p.name for p in (tmp_path / "daily").iterdir())
    assert all(re.fullmatch(r"IF-021_\d{4}-\d{2}-\d{2}\.json", n) for n in names) and len(names) == len(daily["files"])
    lines = dip.export_messages(meters, tmp_path / "all.jsonl", sent_at=SENT)
    assert lines["messages"] == daily["messages"]
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary left behind
    a = dip.import_messages(tmp_path / "daily", validate="fast").meters
    b = dip.import_messages(tmp_path / "all.jsonl", validate="fast").meters
    assert a.identical(b)
    first = json.loads((tmp_path / "daily" / names[0]).read_text())
    assert isinstance(first, list) and set(first[0]) == {"payload"}


def test_bench_inputs_and_write_if021_count_what_they_validate():
    kw = dip.bench_inputs(mpan_days=70, days=7, seed=3)
    meters = kw["meters"]
    assert meters["energy"].dims == ("mpan", "time") and meters.sizes["mpan"] == 10
    assert 46 in np.bincount(meters["settlement_date"].values.astype("datetime64[D]").astype(np.int64)
                             - meters["settlement_date"].values.astype("datetime64[D]").astype(np.int64).min())
    out = dip.write_if021(**kw)
    assert out["messages"] == 10 * 7 and out["bytes"] > 0  # local 2026-03-23..29 = UTC 03-23 00:00..03-29 23:00


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-999_999_999.4, max_value=999_999_999.4, allow_nan=False))
def test_decimal_text_is_what_the_schema_asks_and_reads_back(x):
    text = common.decimal_text([x], 3)[0]
    assert re.fullmatch(r"-?\d{1,9}\.\d{3}", text) and text != "-0.000"
    assert common.parse_decimal([text])[0] == np.rint(x * 1000) / 1000


def test_quality_wire_map_is_one_to_one():
    codes = [c for c in if021.QUALITY_WIRE if c is not None]
    assert len(codes) == len(set(codes)) == 38 and if021.QUALITY_WIRE[cube.MISSING] is None
    assert cube.quality_code(codes).tolist() == list(range(1, 39))
    assert if021.ESTIMATION_REASON_WIRE.tolist() == [None] + [str(i) for i in range(1, 11)]
