"""Tests of tomlib.services.metering: SSC/TPR extract, TPR activity on clock-change days, MTDs,
true registers (continuity, rollover), meter exchanges, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import hand_market
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tomlib import _text
from tomlib import calendar as cal
from tomlib.services import _smart_inputs_kernel as kernel
from tomlib.services import metering as me

SHORT_DAY = "2026-03-29"  # 46 periods
LONG_DAY = "2026-10-25"  # 50 periods


def make_market(first, last, n=6, *, kwh=0.5, export=0, seed=7, pclass=None, domestic=True):
    """A hand-made market: n smart import MPANs with constant energy [kWh per period], plus
    ``export`` export MPANs linked to the first imports."""
    return hand_market(first, last, n, gsp_group="_C", kwh=kwh, export=export, seed=seed, pclass=pclass,
                       domestic=domestic)


# --------------------------------------------------------------------------------- reference extract


def test_extract_tables_load_and_link():
    ssc = me.ssc_configurations()
    req = me.measurement_requirements()
    tpr = me.time_pattern_regimes()
    ci = me.clock_intervals()
    assert {"0393", "0151", "0154", "0244", "0972", "0132", "0997", "0498"} == set(ssc.index)
    assert set(req["ssc"]) == set(ssc.index)
    assert set(req["tpr"]) == set(tpr.index)
    assert set(ci["tpr"]) == set(tpr.index)
    # README golden: E7 0151 -> 00043 + 00210, 00210 runs 00:30-07:30 GMT every day.
    assert me.ssc_registers("0151") == ["00043", "00210"]
    assert tpr.loc["00210", "gmt_indicator"] == "Y"
    rows = ci[ci["tpr"] == "00210"]
    assert len(rows) == 7 and set(rows["start_time"]) == {"00:30"} and set(rows["end_time"]) == {"07:30"}


def test_unknown_ssc_and_tpr_raise():
    with pytest.raises(ValueError, match="SSC '9999' is not in"):
        me.ssc_registers("9999")
    with pytest.raises(ValueError, match="TPR '99999'"):
        me.tpr_active(["99999"], cal.time_axis("2026-01-05", "2026-01-05"))


@pytest.mark.parametrize("ssc", ["0151", "0154", "0244", "0972", "0132", "0997"])
def test_multi_register_sscs_partition_a_leap_year(ssc):
    times = cal.time_axis("2024-01-01", "2024-12-31")
    active = me.tpr_active(me.ssc_registers(ssc), times)
    assert (active.sum(axis=0) == 1).all()


def test_gmt_tpr_is_fixed_in_utc_and_local_tpr_moves_with_bst():
    winter = pd.DatetimeIndex(
        ["2026-01-15 00:00", "2026-01-15 00:30", "2026-01-15 07:00", "2026-01-15 07:30"]
    )
    summer = pd.DatetimeIndex(
        ["2026-06-15 00:00", "2026-06-15 00:30", "2026-06-15 07:00", "2026-06-15 07:30"]
    )
    # 00210 (GMT): 00:30-07:30 UTC whatever the season.
    assert me.tpr_active(["00210"], winter)[0].tolist() == [False, True, True, False]
    assert me.tpr_active(["00210"], summer)[0].tolist() == [False, True, True, False]
    # 00221 (local): night 23:30-06:30 local -> in BST 22:30-05:30 UTC.
    t = pd.DatetimeIndex(["2026-06-15 22:00", "2026-06-15 22:30", "2026-06-15 05:00", "2026-06-15 05:30"])
    assert me.tpr_active(["00221"], t)[0].tolist() == [False, True, True, False]
    t = pd.DatetimeIndex(["2026-01-15 23:00", "2026-01-15 23:30", "2026-01-15 06:00", "2026-01-15 06:30"])
    assert me.tpr_active(["00221"], t)[0].tolist() == [False, True, True, False]


@pytest.mark.parametrize(
    "day, n, night_local, night_gmt",
    [
        (SHORT_DAY, 46, 12, 14),  # local 01:00-02:00 does not exist
        ("2026-03-30", 48, 14, 14),
        (LONG_DAY, 50, 16, 14),  # local 01:00-02:00 happens twice
    ],
)
def test_tpr_periods_on_clock_change_days(day, n, night_local, night_gmt):
    times = cal.period_starts(day)
    assert len(times) == n
    local = me.tpr_active(["00039", "00221"], times).sum(axis=1)
    gmt = me.tpr_active(["00043", "00210"], times).sum(axis=1)
    assert local.tolist() == [n - night_local, night_local]
    assert gmt.tolist() == [n - night_gmt, night_gmt]


def test_day_of_week_and_seasonal_date_ranges():
    sat = cal.period_starts("2026-01-10")  # a Saturday (GMT = local in January)
    mon = cal.period_starts("2026-01-12")
    assert me.tpr_active(["00503"], sat)[0].sum() == 12  # Saturday 10:00-16:00
    assert me.tpr_active(["00503"], mon)[0].sum() == 0
    # 0132: 00234 is a December-January peak, 00236 February-November (incl. 29 February).
    assert me.tpr_active(["00234"], cal.period_starts("2024-01-10"))[0].sum() == 25
    assert me.tpr_active(["00236"], cal.period_starts("2024-02-29"))[0].sum() == 25
    assert me.tpr_active(["00234"], cal.period_starts("2024-02-29"))[0].sum() == 0


# --------------------------------------------------------------------------------- MTDs and registers


def test_meters_and_registers_tables():
    market = make_market("2026-03-28", "2026-03-30", n=40, export=3)
    m = me.build_metering(market)
    assert m.attrs["n_mpans"] == 43
    meters, regs = m.meters, m.registers
    assert meters["meter_id"].is_unique
    assert meters["meter_id"].str.len().max() <= 10
    assert set(meters["meter_type"]) <= {"smart", "traditional"}
    assert (meters.loc[meters["dcc_enrolled"], "meter_type"] == "smart").all()
    # Export MPANs and their linked imports are DCC smart meters with the export SSC.
    exp = meters["measurement_quantity"] == "AE"
    assert (
        exp.sum() == 3 and meters.loc[exp, "dcc_enrolled"].all() and (meters.loc[exp, "ssc"] == "0498").all()
    )
    linked = market.meters["linked_mpan"].to_numpy().astype(str) != ""
    linked_mpans = market.meters["mpan"].to_numpy().astype(str)[linked]
    assert meters.loc[meters["mpan"].isin(linked_mpans), "dcc_enrolled"].all()
    # One register per TPR of the meter's SSC, ids 01.., same digits as the meter.
    for row in meters.itertuples():
        r = regs[(regs["mpan"] == row.mpan) & (regs["meter_id"] == row.meter_id)]
        assert r["tpr"].tolist() == me.ssc_registers(row.ssc)
        assert r["register_id"].tolist() == [f"{k:02d}" for k in range(1, len(r) + 1)]
        assert (r["digits"] == row.digits).all()
    assert (meters["installed_at"] < market.meters["time"].values[0]).sum() == len(meters) - len(m.exchanges)
    assert set(m.dcc_mpans).isdisjoint(m.read_mpans)


def test_register_advances_add_up_to_true_energy_on_46_and_50_period_days():
    for first, last in ((SHORT_DAY, SHORT_DAY), (LONG_DAY, LONG_DAY)):
        market = make_market(first, last, n=30, seed=3)
        config = me.MeteringConfig(
            ssc_mix_domestic=(("0151", 0.3), ("0154", 0.3), ("0997", 0.2), ("0393", 0.2)), exchange_share=0.0
        )
        m = me.build_metering(market, config)
        n_t = market.meters.sizes["time"]
        per_mpan = pd.Series(m.cumulative.values[:, -1]).groupby(m.cumulative["slot_mpan"].values).sum()
        np.testing.assert_allclose(per_mpan.to_numpy(), 0.5 * n_t)
        # Local E7 night register 00221 on the short / long day: 12 / 16 half hours of 0.5 kWh.
        night = m.registers["tpr"] == "00221"
        if night.any():
            slot = m.registers.loc[night, "slot"].to_numpy()
            expected = 0.5 * (12 if n_t == 46 else 16)
            np.testing.assert_allclose(m.cumulative.values[slot, -1], expected)


def test_rollover_within_window():
    market = make_market("2026-03-28", "2026-03-30", n=8, kwh=1.0)
    m = me.build_metering(
        market,
        me.MeteringConfig(near_rollover_share=1.0, exchange_share=0.0, ssc_mix_domestic=(("0393", 1.0),)),
    )
    assert m.attrs["n_near_rollover"] == 8
    rows = np.arange(len(m.registers))
    b = m.boundaries
    start = m.true_value(rows, np.full(rows.size, b[0]))
    end = m.true_value(rows, np.full(rows.size, b[-1]))
    digits = m.registers["digits"].to_numpy()
    assert (start < 10.0**digits).all() and (end > 10.0**digits).all()
    shown_start, w0 = m.displayed(rows, start)
    shown_end, w1 = m.displayed(rows, end)
    assert (w0 == 0).all() and (w1 == 1).all()
    assert (shown_end < shown_start).all() and (shown_end < 10.0**digits).all()
    # The wrapped advance recovers the true one (to whole kWh).
    adv = shown_end + 10.0**digits - shown_start
    assert np.all(np.abs(adv - (end - start)) <= 1.0)


def test_displayed_hand_case():
    market = make_market("2026-03-30", "2026-03-30", n=1)
    m = me.build_metering(
        market, me.MeteringConfig(digits=((5, 1.0),), exchange_share=0.0, near_rollover_share=0.0)
    )
    m.registers.loc[0, "true_start_value"] = 99_990.7
    shown, wraps = m.displayed([0, 0, 0], [99_990.7, 99_999.99, 100_012.2])
    assert shown.tolist() == [99_990.0, 99_999.0, 12.0]
    assert wraps.tolist() == [0, 0, 1]


def test_meter_exchange_continuity_and_reads():
    market = make_market("2026-03-28", "2026-03-30", n=10, kwh=0.25, seed=11)
    config = me.MeteringConfig(exchange_share=1.0, ssc_mix_domestic=(("0151", 0.5), ("0393", 0.5)))
    m = me.build_metering(market, config)
    ex = m.exchanges
    assert len(ex) == 10
    b = m.boundaries
    assert ((ex["exchanged_at"] > b[0]) & (ex["exchanged_at"] < b[-1])).all()
    meters = m.meters.set_index("meter_id")
    assert (meters.loc[ex["old_meter_id"], "removed_at"].to_numpy() == ex["exchanged_at"].to_numpy()).all()
    assert (meters.loc[ex["new_meter_id"], "installed_at"].to_numpy() == ex["exchanged_at"].to_numpy()).all()
    assert meters.loc[ex["new_meter_id"], "removed_at"].isna().all()
    old = meters.loc[ex["old_meter_id"]]
    new = meters.loc[ex["new_meter_id"]]
    assert (old["ssc"].to_numpy() == new["ssc"].to_numpy()).all()
    assert (old["dcc_enrolled"].to_numpy() == new["dcc_enrolled"].to_numpy()).all()
    # Removal read + installation read per register; the two advances add up to the MPAN's energy.
    reads = m.exchange_reads
    assert set(reads["read_type"]) == {"removal", "installation"}
    assert (reads.loc[reads["read_type"] == "installation", "value"] < config.new_meter_max_kwh).all()
    assert (reads["available_at"] > reads["read_at"]).all()
    regs = m.registers
    for e in ex.itertuples():
        o = np.flatnonzero((regs["meter_id"] == e.old_meter_id).to_numpy())
        nw = np.flatnonzero((regs["meter_id"] == e.new_meter_id).to_numpy())
        assert regs["slot"].to_numpy()[o].tolist() == regs["slot"].to_numpy()[nw].tolist()
        adv_old = m.true_value(o, [e.exchanged_at] * o.size) - m.true_value(o, [b[0]] * o.size)
        adv_new = m.true_value(nw, [b[-1]] * nw.size) - m.true_value(nw, [e.exchanged_at] * nw.size)
        n_t = market.meters.sizes["time"]
        assert np.isclose((adv_old + adv_new).sum(), 0.25 * n_t)
        rem = reads[(reads["meter_id"] == e.old_meter_id)]
        assert rem["value"].tolist() == m.displayed(o, m.true_value(o, [e.exchanged_at] * o.size))[0].tolist()
    # Register rows in service: old meter before, new meter at and after the exchange.
    e = ex.iloc[0]
    ev, rows = m.rows_in_service([e.mpan, e.mpan], [b[0], e.exchanged_at])
    got = regs["meter_id"].to_numpy()[rows]
    assert set(got[ev == 0]) == {e.old_meter_id} and set(got[ev == 1]) == {e.new_meter_id}


def test_true_value_needs_period_boundaries():
    market = make_market("2026-03-30", "2026-03-30", n=1)
    m = me.build_metering(market, me.MeteringConfig(exchange_share=0.0))
    with pytest.raises(ValueError, match="is not a period boundary"):
        m.true_value([0], [pd.Timestamp("2026-03-30 10:15")])
    with pytest.raises(ValueError, match="is not a period boundary"):
        m.true_value([0], [pd.Timestamp("2026-04-02")])


def test_deterministic_and_seed_sensitive():
    market = make_market("2026-03-28", "2026-03-30", n=25)
    a = me.build_metering(market, me.MeteringConfig(exchange_share=0.2))
    b = me.build_metering(market, me.MeteringConfig(exchange_share=0.2))
    pd.testing.assert_frame_equal(a.meters, b.meters)
    pd.testing.assert_frame_equal(a.registers, b.registers)
    pd.testing.assert_frame_equal(a.exchange_reads, b.exchange_reads)
    c = me.build_metering(market, me.MeteringConfig(exchange_share=0.2), seed=8)
    assert not a.meters["meter_id"].equals(c.meters["meter_id"])


def test_config_validation_and_scenario_overrides():
    with pytest.raises(ValueError, match="dcc_share must be within"):
        me.MeteringConfig(dcc_share=1.2)
    with pytest.raises(ValueError, match="sum to 1"):
        me.MeteringConfig(ssc_mix_domestic=(("0393", 0.5),))
    with pytest.raises(ValueError, match="dcc_share \\+ smart_traditional_share"):
        me.MeteringConfig(dcc_share=0.8, smart_traditional_share=0.3)

    class Section:
        dcc_share = 0.5

    class Scen:
        metering = Section()

    assert me.MeteringConfig.from_scenario(Scen()).dcc_share == 0.5
    # YAML-style mappings and lists become the declared tuples.
    c = me.MeteringConfig(
        ssc_mix_domestic={"0393": 0.7, "0151": 0.3}, digits=[[5, 1.0]], exchange_read_delay_hours=[1, 2]
    )
    assert c.ssc_mix_domestic == (("0393", 0.7), ("0151", 0.3)) and c.digits == ((5, 1.0),)
    assert c.exchange_read_delay_hours == (1, 2)
    with pytest.raises(ValueError, match="digits: expected a list or mapping"):
        me.MeteringConfig(digits=5)
    assert me.MeteringConfig.from_scenario(None).dcc_share == me.MeteringConfig().dcc_share
    assert me.MeteringConfig.from_scenario(Scen(), dcc_share=0.1).dcc_share == 0.1


def test_shares_of_meter_types_follow_config():
    market = make_market("2026-03-30", "2026-03-30", n=2000, seed=5)
    m = me.build_metering(
        market, me.MeteringConfig(dcc_share=0.6, smart_traditional_share=0.1, exchange_share=0.0)
    )
    mt = m.meters
    assert abs(mt["dcc_enrolled"].mean() - 0.6) < 0.04
    assert abs(((mt["meter_type"] == "smart") & ~mt["dcc_enrolled"]).mean() - 0.1) < 0.03


def test_non_smart_segment_mpans_are_ignored_and_bad_energy_refused():
    market = make_market("2026-03-30", "2026-03-30", n=4)
    seg = market.meters["market_segment"].values.copy()
    seg[0] = "A"
    market.meters = market.meters.assign_coords(market_segment=("mpan", seg))
    m = me.build_metering(market)
    assert m.attrs["n_mpans"] == 3
    market.meters["energy"][1, 3] = -1.0
    with pytest.raises(ValueError, match="negative"):
        me.build_metering(market)


def _rebuilt(m):
    """The same tables in a new Metering, text held as numpy objects (no Arrow data, no built keys)."""
    tables = {name: getattr(m, name).astype({c: object for c in ("mpan", "meter_id", "register_id")
                                             if c in getattr(m, name).columns})
              for name in ("meters", "registers")}
    return me.Metering(**{**{f: getattr(m, f) for f in ("exchanges", "exchange_reads", "cumulative",
                                                        "config", "seed", "attrs")}, **tables})


def test_keys_follow_the_tables():
    """The integer keys kept with the MTDs give what the text gives, also after a table changes."""
    market = make_market("2026-03-29", "2026-03-31", n=40, export=4)
    m = me.build_metering(market, me.MeteringConfig(exchange_share=0.3))
    plain = _rebuilt(m)
    assert m.dcc_mpans.tolist() == plain.dcc_mpans.tolist() and m.read_mpans.tolist() == plain.read_mpans.tolist()
    mpans = np.r_[m.meters["mpan"].to_numpy(dtype=str), ["1234567890123"]]
    at = np.full(mpans.size, m.boundaries[3])
    for got, want in zip(m.rows_in_service(mpans, at), plain.rows_in_service(mpans, at), strict=True):
        assert np.array_equal(got, want)
    # a register moved to another meter of its MPAN: the keys are derived again
    m.registers.loc[0, "meter_id"] = "ZZ9Z 99999"
    _, rows = m.rows_in_service(mpans[:1], at[:1])
    assert 0 not in rows.tolist()


def test_int_keys_sort_and_compare_as_text():
    text = np.array(["A12B 34567", "21P0123456", "21P012345", "", "zz", "21P0123456", "0"])
    keys = me._int_keys(text)
    assert np.array_equal(np.argsort(keys, kind="stable"), np.argsort(text, kind="stable"))
    assert (keys[:, None] == keys[None, :]).tolist() == (text[:, None] == text[None, :]).tolist()
    digits = np.array(["1000000000001", "0999999999999", "1", "10"])
    assert np.array_equal(np.argsort(me._int_keys(digits)), np.argsort(digits))
    assert me._int_keys(np.array(["é"])) is None and me._int_keys(np.array(["a-b"])) is None
    series = pd.Series(pd.array(digits, dtype="str"))
    assert me._unicode(series).tolist() == series.to_numpy(dtype=str).tolist()


@pytest.mark.parametrize("bad, message", [(np.nan, "non-finite"), (-1.0, "negative")])
def test_bad_true_energy_is_refused(bad, message):
    market = make_market("2026-03-30", "2026-03-30", n=4)
    market.meters["energy"].values[1, 3] = bad
    with pytest.raises(ValueError, match=f"true energy of the smart segment has {message} values"):
        me.build_metering(market)


def test_register_meter_rows_is_the_left_join():
    market = make_market("2026-03-29", "2026-03-31", n=30)
    m = me.build_metering(market, me.MeteringConfig(exchange_share=0.3))
    rows = m.register_meter_rows()
    joined = m.registers[["mpan", "meter_id"]].merge(
        m.meters[["mpan", "meter_id", "installed_at"]], on=["mpan", "meter_id"], how="left")
    assert (rows >= 0).all()
    assert np.array_equal(m.meters["installed_at"].to_numpy()[rows], joined["installed_at"].to_numpy())
    assert np.array_equal(_rebuilt(m).register_meter_rows(), rows)


# --------------------------------------------------------------------------------- compiled kernels

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_slot_cumulative_is_the_numpy_masked_cumsum(data):
    n_m = data.draw(st.integers(1, 6))
    n_t = data.draw(st.integers(0, 9))
    energy = data.draw(hnp.arrays(np.float64, (n_m, n_t), elements=st.floats(-1e3, 1e6, allow_nan=False)))
    n_s = data.draw(st.integers(0, 12))
    rows = data.draw(hnp.arrays(np.int64, n_s, elements=st.integers(0, n_m - 1)))
    n_tpr = data.draw(st.integers(1, 4))
    active = data.draw(hnp.arrays(np.bool_, (n_tpr, n_t)))
    tpr = data.draw(hnp.arrays(np.int64, n_s, elements=st.integers(0, n_tpr - 1)))
    masked = data.draw(hnp.arrays(np.bool_, n_s))
    # the NumPy formulation build_metering used
    want = np.zeros((n_s, n_t + 1))
    slot_energy = energy[rows]
    multi = np.flatnonzero(masked)
    slot_energy[multi] *= (active[tpr] | ~masked[:, None])[multi]
    np.cumsum(slot_energy, axis=1, out=want[:, 1:])
    got = kernel.slot_cumulative(energy, rows, tpr, masked, active)
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()  # bit for bit, signed zeros included


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6))), st.data())
def test_energy_flags_match_numpy(energy, data):
    rows = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(0, energy.shape[0] - 1)))
    finite = np.isfinite(energy[rows]).all()
    assert kernel.energy_flags(energy, rows) == (finite, bool(finite and (energy[rows] < 0).any()))


_KEY_TEXT = st.text(alphabet=st.sampled_from(list(" 0123456789ABCDEPabcxyz-\u00e9")), max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(_KEY_TEXT, min_size=1, max_size=8), st.one_of(st.none(), st.integers(0, 20)))
def test_int_keys_match_the_text_helper(words, width):
    text = np.array(words, dtype=str)
    want, got = _text.int_keys(text, width), kernel.int_keys(text, width)
    assert (want is None) == (got is None)
    if want is not None:
        assert got.dtype == want.dtype and np.array_equal(got, want)


def test_int_keys_of_identifiers():
    mpans = np.array(["1000078871722", "1000075791525", "1900000000001"])
    serials = np.array(["00P8218200", "E99A 43560", "20P7449120"])
    for text in (mpans, serials):
        assert np.array_equal(kernel.int_keys(text), _text.int_keys(text))
        assert np.array_equal(np.argsort(kernel.int_keys(text)), np.argsort(text))


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 30), elements=st.integers(0, 5)))
def test_grouped_order_is_the_stable_argsort(codes):
    count = np.bincount(codes, minlength=6)
    assert np.array_equal(kernel.grouped_order(codes, np.cumsum(count) - count), np.argsort(codes, kind="stable"))


_CORE_TEXT = st.text(alphabet=st.sampled_from(list("0123456789 a\u0661")), min_size=0, max_size=15)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CORE_TEXT, min_size=1, max_size=8), st.data())
def test_valid_cores_is_fullmatch_then_is_valid(words, data):
    from tomlib import mpan

    # half the cores made valid: the first 12 digits and their check digit
    stems = data.draw(st.lists(st.text(alphabet="0123456789", min_size=12, max_size=12), max_size=4))
    text = np.array(words + [s + str(mpan.check_digit(s)) for s in stems], dtype=str)
    want = pd.Series(text, dtype="str").str.fullmatch(r"\d{13}").to_numpy(dtype=bool).copy()
    want[want] = mpan.is_valid(text[want])
    assert np.array_equal(kernel.valid_cores(text), want)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 20), elements=st.integers(0, 10**7 - 1)))
def test_digit_points_are_the_zero_padded_digits(values):
    want = np.array([[ord(c) for c in f"{v:07d}"] for v in values], dtype=np.uint32).reshape(values.size, 7)
    assert np.array_equal(me._digit_points(values, 7), want)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_delivered_hh_is_where_and_take(data):
    n_m, n_d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    day_of_t = np.sort(data.draw(hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(0, n_d - 1))))
    energy = data.draw(hnp.arrays(np.float64, (n_m, day_of_t.size)))
    rows = data.draw(hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(0, n_m - 1)))
    retrieved = data.draw(hnp.arrays(np.bool_, (rows.size, n_d)))
    ns = data.draw(hnp.arrays(np.int64, (rows.size, n_d), elements=st.integers(0, 2**60)))
    avail = np.where(retrieved, ns.astype("datetime64[ns]"), np.datetime64("NaT"))
    delivered, avail_t = kernel.delivered_hh(energy, rows, retrieved, avail, day_of_t)
    assert delivered.tobytes() == np.where(retrieved[:, day_of_t], energy[rows], np.nan).tobytes()
    assert avail_t.dtype == avail.dtype and avail_t.tobytes() == np.take(avail, day_of_t, axis=1).tobytes()


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_in_service_is_the_numpy_join(data):
    n_mpan, n_meter = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    reg_mpan = data.draw(hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(0, n_mpan - 1)))
    m_of_reg = data.draw(hnp.arrays(np.int64, reg_mpan.size, elements=st.integers(-1, n_meter - 1)))
    day = st.one_of(st.integers(0, 5), st.none())

    def instants(n):
        return np.array([np.datetime64("NaT", "ns") if d is None else np.datetime64("2026-01-01", "ns")
                         + np.timedelta64(d, "D") for d in data.draw(st.lists(day, min_size=n, max_size=n))],
                        dtype="datetime64[ns]")

    installed, removed = instants(n_meter), instants(n_meter)
    codes = data.draw(hnp.arrays(np.int64, st.integers(0, 6), elements=st.integers(-1, n_mpan - 1)))
    at = instants(codes.size)
    count = np.bincount(reg_mpan, minlength=n_mpan).astype(np.int64)
    start = np.cumsum(count) - count
    order = np.argsort(reg_mpan, kind="stable")
    # the NumPy formulation of Metering._rows_in_service
    nat = np.datetime64("NaT", "ns")
    inst = np.where(m_of_reg >= 0, installed[m_of_reg], nat)
    rem = np.where(m_of_reg >= 0, removed[m_of_reg], nat)
    rem = np.where(np.isnat(rem), np.datetime64("2262-01-01", "ns"), rem)
    n = np.where(codes >= 0, count[np.maximum(codes, 0)], 0)
    e = np.repeat(np.arange(codes.size, dtype=np.int64), n)
    r = order[start[codes[e]] + np.arange(e.size) - np.repeat(np.cumsum(n) - n, n)].astype(np.int64)
    ok = (inst[r] <= at[e]) & (at[e] < rem[r])
    got_e, got_r = kernel.in_service(codes, count, start, order, m_of_reg, installed, removed, at)
    assert np.array_equal(got_e, e[ok]) and np.array_equal(got_r, r[ok])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_register_values_is_the_numpy_expression(data):
    n_slot, n_b = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    c = data.draw(hnp.arrays(np.float64, (n_slot, n_b), elements=st.floats(-1e6, 1e6)))
    n_reg = data.draw(st.integers(1, 6))
    start = data.draw(hnp.arrays(np.float64, n_reg, elements=st.floats(0, 1e9)))
    slot = data.draw(hnp.arrays(np.int64, n_reg, elements=st.integers(0, n_slot - 1)))
    rows = data.draw(hnp.arrays(np.int64, st.integers(0, 8), elements=st.integers(0, n_reg - 1)))
    b, b0 = (data.draw(hnp.arrays(np.int64, rows.size, elements=st.integers(0, n_b - 1))) for _ in range(2))
    want = start[rows] + c[slot[rows], b] - c[slot[rows], b0]
    assert kernel.register_values(start, slot, c, rows, b, b0).tobytes() == want.tobytes()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["0393", "0151", "0154", "AI", "AE", "0997", "1", ""]), max_size=40))
def test_distinct_is_unique_with_inverse(values):
    text = np.array(values, dtype=str)
    want, want_inverse = np.unique(text, return_inverse=True)
    got, inverse = me._distinct(text)
    assert got.tolist() == want.tolist() and got.dtype == want.dtype
    assert inverse.tolist() == want_inverse.reshape(-1).tolist()


def test_mpan_subsets_are_the_sorted_distinct_mpans():
    market = me.bench_market(mpan_days=700, days=7)
    m = me.build_metering(market)
    flag = m.meters["dcc_enrolled"].to_numpy()
    for enrolled, got in ((True, m.dcc_mpans), (False, m.read_mpans)):
        want = np.unique(m.meters["mpan"].to_numpy(dtype=str)[flag == enrolled])
        assert got.tolist() == want.tolist() and got.dtype == want.dtype


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 6))), st.data())
def test_slot_differences_equal_numpy(cum, data):
    n = data.draw(st.integers(0, 12))
    slot = np.array(data.draw(st.lists(st.integers(0, cum.shape[0] - 1), min_size=n, max_size=n)), dtype=np.int64)
    b1, b0 = (np.array(data.draw(st.lists(st.integers(0, cum.shape[1] - 1), min_size=n, max_size=n)), dtype=np.int64)
              for _ in range(2))
    with np.errstate(invalid="ignore"):  # inf - inf: NaN in NumPy and in the kernel alike, and compared
        want = cum[slot, b1] - cum[slot, b0]
    np.testing.assert_array_equal(kernel.slot_differences(cum, slot, b1, b0), want)
    with pytest.raises(IndexError):
        kernel.slot_differences(cum, np.array([0]), np.array([cum.shape[1]]), np.array([0]))
