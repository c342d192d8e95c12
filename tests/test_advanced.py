"""Advanced Data Service: outstation retrieval, conversion, every validation rule, the BSCP502 estimate
(gaps across both clock changes), the no-history estimate, conservation of energy and records, and the
wrong-CT-ratio fault settled and then reconciled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib import cube
from tomlib.services import advanced as ad
from tomlib.services import validation

CLEAN = {
    "phase_failure_rate": 0.0,
    "spike_rate": 0.0,
    "zero_run_rate": 0.0,
    "gap_rate": 0.0,
    "check_gap_rate": 0.0,
    "success_rate": 1.0,
    "comms_failure_rate": 0.0,
    "late_data_share": 0.0,
    "redelivery_rate": 0.0,
}
Q = cube.QUALITY_CODES
LATE = pd.Timestamp("2027-01-01")  # an as-of instant after everything arrived


@pytest.fixture(scope="module")
def spring():
    """24 sites over five weeks holding the 46-period day 2026-03-29."""
    return ad.synthetic_market(24, "2026-03-08", 35, seed=3)


@pytest.fixture(scope="module")
def autumn():
    """10 sites over five weeks holding the 50-period day 2026-10-25."""
    return ad.synthetic_market(10, "2026-10-04", 35, seed=4)


def _clean_data(market, **cfg):
    config = ad.AdvancedConfig(**{**CLEAN, **cfg})
    data, _ = ad.advanced_data(ad.advanced_inputs(market, config), LATE)
    return data, config


def _truth(market, data):
    return market.meters["energy"].sel(mpan=data["mpan"].values, time=data["time"].values).to_numpy()


def _days(data):
    return pd.DatetimeIndex(np.unique(data["settlement_date"].values))


# ------------------------------------------------------------------------------------------ retrieval


def test_daily_dial_collects_the_day_after_it_ends(spring):
    inputs = ad.advanced_inputs(spring, dict(CLEAN))
    rt = inputs.retrieval
    days = _days(spring.meters)
    day_end = cal.to_utc(days + pd.Timedelta(days=1), 1).to_numpy()
    assert (rt.available_at > day_end[None, :]).all()
    assert (rt.available_at < day_end[None, :] + np.timedelta64(1, "D")).all()  # first dial, no delay
    assert not rt.comms.any() and (rt.days["outcome"] == "first_dial").all() and len(rt.duplicates) == 0


def test_failed_dials_delay_data_and_long_failures_lose_it(spring):
    mt = ad.advanced_inputs(spring, dict(CLEAN)).metering
    cfg = ad.AdvancedConfig(**{**CLEAN, "success_rate": 0.5})
    rt = ad.retrieve_outstations(mt, cfg)
    assert rt.comms.any() and (rt.days["outcome"] == "redial").any()
    assert (rt.days.loc[rt.days["comms_failure"], "dials"] > 1).all()
    # a day is collected by the first successful dial after it: never before a day with a later dial
    lost = ad.retrieve_outstations(mt, ad.AdvancedConfig(**{**CLEAN, "success_rate": 0.0}))
    assert np.isnat(lost.available_at).all() and (lost.days["outcome"] == "lost").all()
    spell = ad.retrieve_outstations(
        mt, ad.AdvancedConfig(**{**CLEAN, "comms_failure_rate": 1.0, "comms_spell_mean_days": 10.0})
    )
    assert spell.comms.sum() > 0 and len(spell.spells) == 24
    late = ad.retrieve_outstations(
        mt, ad.AdvancedConfig(**{**CLEAN, "late_data_share": 1.0, "late_delay_days": (3, 3)})
    )
    np.testing.assert_array_equal(late.available_at - inputs_avail(spring), np.timedelta64(3, "D"))


def inputs_avail(market):
    return ad.advanced_inputs(market, dict(CLEAN)).retrieval.available_at


def test_outstation_memory_limits_a_spell(spring):
    mt = ad.advanced_inputs(spring, dict(CLEAN)).metering
    cfg = ad.AdvancedConfig(
        **{**CLEAN, "comms_failure_rate": 1.0, "comms_spell_mean_days": 30.0, "outstation_memory_days": 3}
    )
    rt = ad.retrieve_outstations(mt, cfg)
    d = rt.days
    assert (d["outcome"] == "lost").any()
    assert (d.loc[d["outcome"] != "lost", "dials"] <= 3).all()


def test_visible_data_and_conversion_at_the_as_of_instant(spring):
    inputs = ad.advanced_inputs(spring, dict(CLEAN, redelivery_rate=0.2))
    days = _days(spring.meters)
    as_of = cal.to_utc(days[10], 1)[0] + pd.Timedelta(hours=12)
    data, dups = ad.advanced_data(inputs, as_of)
    seen = np.isfinite(data["energy"].values).any(axis=0)
    dates = pd.DatetimeIndex(data["settlement_date"].values)
    assert seen[dates < days[9]].all() and not seen[dates >= days[10]].any()
    # a re-delivered day: every record of it refused as an exact duplicate, first arrival kept
    assert len(dups) and set(dups["reason"]) == {"duplicate"} and set(dups["source"]) == {"main"}
    assert list(dups.columns[:5]) == ["mpan", "time", "field", "reason", "value"]
    assert (pd.DatetimeIndex(dups["time"]) < cal.to_utc(days[10], 1)[0]).all()


# ------------------------------------------------------------------------------------------ rules


def test_spikes():
    e = np.array([[1.0, 1.2, 9.0, 1.1, 1.0, np.nan, 8.0, np.nan, 1.0, 1.5]])
    got = ad.spikes(e, factor=3.0, min_excess=1.0)
    np.testing.assert_array_equal(got[0], [0, 0, 1, 0, 0, 0, 0, 0, 0, 0])  # 8.0 has no neighbour to judge by
    assert not ad.spikes(e * 0.1, factor=3.0, min_excess=1.0).any()  # below the least excess
    with pytest.raises(ValueError, match="2-D"):
        ad.spikes(np.zeros(3))


def test_shared_hh_rules_refuse_through_the_service(spring):
    """negative values, values above the site's physical maximum and zero runs: validation.py's rules."""
    data, cfg = _clean_data(spring)
    e = data["energy"].values.copy()
    mx = data["max_energy"].values
    e[0, 100] = -1.0
    e[1, 200] = mx[1] * 1.01
    e[2, 300:310] = 0.0
    data["energy"].values = e
    out = ad.process(data, cfg, run="SF")
    label = np.asarray(ad.REASONS)[out.main_reason]
    assert label[0, 100] == "negative_value" and label[1, 200] == "above_maximum"
    assert (label[2, 300:310] == "zero_run").all()
    assert ad.REASONS[: len(validation.HH_REASONS)] == validation.HH_REASONS  # one code list, shared
    for i, j in ((0, 100), (1, 200), (2, 305)):
        assert out.quality[i, j] in (Q["A2"], Q["EA1"])
        assert (
            out.estimation_reason[i, j] == cube.ESTIMATION_REASONS["Invalid"] or out.quality[i, j] == Q["A2"]
        )
    rej = out.rejected.set_index(["mpan", "time"])
    assert rej.loc[(data["mpan"].values[0], data["time"].values[100]), "reason"] == "negative_value"


def test_spike_is_refused_and_estimated(spring):
    data, cfg = _clean_data(spring)
    e = data["energy"].values.copy()
    plain = np.flatnonzero(~data["has_check_meter"].values)[0]
    neighbours = max(e[plain, 499], e[plain, 501])
    e[plain, 500] = min(neighbours * 5 + 2, 0.95 * float(data["max_energy"].values[plain]))
    assert e[plain, 500] > 3 * neighbours + 1  # a spike, yet physically possible
    data["energy"].values = e
    out = ad.process(data, cfg)
    assert ad.REASONS[out.main_reason[plain, 500]] == "spike"
    assert out.quality[plain, 500] == Q["EA1"]


def test_main_meter_losing_a_phase_is_refused_for_the_check_meter(spring):
    data, cfg = _clean_data(spring)
    site = np.flatnonzero(data["has_check_meter"].values)[0]
    dates = pd.DatetimeIndex(data["settlement_date"].values)
    days = _days(data)
    bad = dates.isin(days[20:23])
    e = data["energy"].values.copy()
    e[site, bad] *= 2 / 3
    data["energy"].values = e
    out = ad.process(data, cfg)
    assert out.disagree[site, 20:23].all() and not out.disagree[site, :20].any()
    assert (np.asarray(ad.REASONS)[out.main_reason[site, bad]] == "main_check_disagreement").all()
    assert (out.quality[site, bad] == Q["A2"]).all()
    np.testing.assert_allclose(out.energy[site, bad], data["check_energy"].values[site, bad])


def test_check_meter_that_disagrees_is_refused_and_the_main_meter_settled(spring):
    data, cfg = _clean_data(spring)
    site = np.flatnonzero(data["has_check_meter"].values)[1]
    dates = pd.DatetimeIndex(data["settlement_date"].values)
    bad = dates.isin(_days(data)[25:28])  # holds the 46-period day
    c = data["check_energy"].values.copy()
    c[site, bad] *= 0.8
    data["check_energy"].values = c
    out = ad.process(data, cfg)
    assert (out.quality[site] == Q["A1"]).all()
    assert (np.asarray(ad.REASONS)[out.check_reason[site, bad]] == "main_check_disagreement").all()
    assert ((out.flags[site, bad] & ad.FLAGS["check_disagrees"]) > 0).all()
    rej = out.rejected[out.rejected["source"] == "check"]
    assert len(rej) == bad.sum() and set(rej["field"]) == {"check_energy"}


def test_main_check_disagreement_tolerance():
    times = cal.time_axis(pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-06"))
    main = np.ones((2, len(times)))
    check = main.copy()
    check[0, :48] *= 1.005
    check[1, :48] *= 1.02
    check[1, 48:60] = np.nan  # only periods both meters hold count
    got = ad.main_check_disagreement(main, check, times, tolerance=0.01)
    np.testing.assert_array_equal(got, [[False, False], [True, False]])


def test_day_levels_against_the_reference_day():
    # Monday 2026-01-05 .. Sunday 2026-01-25: the third Monday reads half
    times = cal.time_axis(pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-25"))
    k = cal.local_clock_index(times)
    e = np.tile(1.0 + np.sin(k / 48 * 2 * np.pi) ** 2, (1, 1))
    dates = pd.DatetimeIndex(cal.from_utc(times)[0])
    e = np.where(dates == pd.Timestamp("2026-01-19"), e * 0.5, e)
    level, ref = ad.day_levels(e, e, times, ["england_wales"], min_periods=12)
    assert ref[0, 14] == 0 and ref[0, 6] == 6 and ref[0, 13] == 6  # Mondays -> the first Monday
    np.testing.assert_allclose(level[0, 14], np.log(0.5))
    np.testing.assert_allclose(np.delete(level[0], 14), 0.0, atol=1e-12)


def test_bank_holidays_are_judged_as_sundays():
    # Good Friday 2026-04-03 is compared with Sunday 2026-03-29, not with Friday 2026-03-27
    times = cal.time_axis(pd.Timestamp("2026-03-27"), pd.Timestamp("2026-04-03"))
    dates = pd.DatetimeIndex(cal.from_utc(times)[0])
    sunday_like = (dates.day_of_week == 6) | (dates == pd.Timestamp("2026-04-03"))
    e = np.where(sunday_like, 0.3, 1.0)[None, :]
    level, ref = ad.day_levels(e, e, times, ["england_wales"])
    assert ref[0, 7] == 2
    np.testing.assert_allclose(level[0], 0.0, atol=1e-12)


def test_step_changes_find_a_ct_ratio_error_not_a_season():
    n_d = 35
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.03, (3, n_d))
    level = noise.copy()
    level[0, 14:] += np.log(0.5)  # wrong CT ratio from day 14
    level[1] += np.linspace(0, -0.25, n_d)  # a season: gradual
    level[2, 10:20] += np.log(2 / 3)  # a step down and back up
    changed, jump = ad.step_changes(level, tolerance=0.3)
    assert changed[0, 14:].all() and not changed[0, :14].any()
    assert np.flatnonzero(jump[0]).tolist() == [14]
    np.testing.assert_allclose(jump[0, 14], np.log(0.5), atol=0.05)
    assert not changed[1].any()
    assert changed[2, 10:20].all() and not changed[2, 20:].any() and not changed[2, :10].any()
    # at the edge of the data held: two days after the step are enough
    edge = level[:1, :16].copy()
    assert ad.step_changes(edge, tolerance=0.3)[0][0, 14:].all()
    assert not ad.step_changes(level[:1, :15], tolerance=0.3)[0].any()


# ------------------------------------------------------------------------------------------ estimation


def _weekly_pattern(times):
    dates = pd.DatetimeIndex(cal.from_utc(times)[0])
    k = cal.local_clock_index(times)
    return (1.0 + dates.day_of_week.to_numpy() + k / 100.0)[None, :], dates, k


def test_bscp502_same_weekday_and_periods_within_one_month():
    times = cal.time_axis(pd.Timestamp("2026-01-05"), pd.Timestamp("2026-03-01"))  # eight weeks
    e, dates, k = _weekly_pattern(times)
    week = ((dates - dates[0]).days // 7).to_numpy()
    e = e + week[None, :] * 10.0  # each week 10 kWh more: the mean shows which weeks were used
    valid = np.ones(e.shape, dtype=bool)
    target = dates == pd.Timestamp("2026-02-04")  # week 4, a Wednesday
    valid[0, target] = False
    est = ad.bscp502_estimate(e, valid, times)
    # weeks 0..8 minus week 4, within 28 days: weeks 0..3 and 5..7 (week 8 is beyond the window)
    expected = 1.0 + 2 + k[target] / 100.0 + 10.0 * np.mean([0, 1, 2, 3, 5, 6, 7])
    np.testing.assert_allclose(est[0, target], expected)
    only_two = valid.copy()
    only_two[
        0, (dates.day_of_week == 2) & ~dates.isin([pd.Timestamp("2026-01-28"), pd.Timestamp("2026-02-11")])
    ] = False
    est2 = ad.bscp502_estimate(e, only_two, times)
    np.testing.assert_allclose(est2[0, target], 1.0 + 2 + k[target] / 100.0 + 10.0 * 4)
    none = ad.bscp502_estimate(e, np.zeros(e.shape, dtype=bool), times)
    assert np.isnan(none).all()
    with pytest.raises(ValueError, match="same_periods"):
        ad.bscp502_estimate(e, valid, times, same_periods="number")


def test_gap_across_the_spring_clock_change():
    times = cal.time_axis(pd.Timestamp("2026-03-08"), pd.Timestamp("2026-04-12"))
    e, dates, k = _weekly_pattern(times)
    gap = (times >= pd.Timestamp("2026-03-28 20:00")) & (times < pd.Timestamp("2026-03-29 06:00"))
    valid = np.ones(e.shape, dtype=bool)
    valid[0, gap] = False
    est = ad.bscp502_estimate(e, valid, times)
    np.testing.assert_allclose(est[0, gap], e[0, gap])  # the same local clock half hour, same weekday
    sp3 = np.flatnonzero((dates == pd.Timestamp("2026-03-29")) & (cal.from_utc(times)[1] == 3))[0]
    assert k[sp3] == 4  # SP 3 of the 46-period day starts at 02:00 local
    by_sp = ad.bscp502_estimate(e, valid, times, same_periods="settlement_period")
    np.testing.assert_allclose(by_sp[0, sp3], 1.0 + 6 + 2 / 100.0)  # the literal reading: other days' 01:00


def test_gap_across_the_autumn_clock_change():
    times = cal.time_axis(pd.Timestamp("2026-10-04"), pd.Timestamp("2026-11-08"))
    e, dates, _ = _weekly_pattern(times)
    long_day = dates == pd.Timestamp("2026-10-25")
    assert long_day.sum() == 50
    valid = np.ones(e.shape, dtype=bool)
    valid[0, long_day] = False
    est = ad.bscp502_estimate(e, valid, times)
    np.testing.assert_allclose(est[0, long_day], e[0, long_day])  # the repeated hour takes 01:00/01:30 twice
    by_sp = ad.bscp502_estimate(e, valid, times, same_periods="settlement_period")
    assert np.isnan(by_sp[0, long_day][-2:]).all() and np.isfinite(by_sp[0, long_day][:-2]).all()


def test_no_history_estimate_is_annual_consumption_times_the_shape(spring):
    data, cfg = _clean_data(spring, no_history_shape="profile_class")
    e = data["energy"].values.copy()
    e[3, :] = np.nan  # a site without any data held
    data["energy"].values = e
    data["check_energy"].values = np.where(
        np.arange(e.shape[0])[:, None] == 3, np.nan, data["check_energy"].values
    )
    out = ad.process(data, cfg)
    assert (out.quality[3] == Q["EA2"]).all() and (
        out.estimation_reason[3] == cube.ESTIMATION_REASONS["Missing"]
    ).all()
    assert "profile class" in out.shapes_source
    truth = _truth(spring, data)[3]
    assert abs(out.energy[3].sum() / truth.sum() - 1) < 0.1  # the true energy follows that shape, with noise
    lss = ad.process(data, dataclasses.replace(cfg, no_history_shape="lss"))
    assert (lss.quality[3] == Q["EA2"]).all() and "load_shaping" in lss.shapes_source
    assert np.isfinite(lss.energy[3]).all() and (lss.energy[3] >= 0).all()
    assert (out.quality[np.arange(e.shape[0]) != 3] == Q["A1"]).all()


# ---------------------------------------------------------------------------------------- the segment service


def test_settle_segment_conserves_energy_and_records(spring):
    cfg = ad.AdvancedConfig(
        redelivery_rate=0.05,
        gap_rate=0.03,
        spike_rate=0.01,
        zero_run_rate=0.01,
        phase_failure_rate=0.3,
        success_rate=0.8,
    )
    days = _days(spring.meters)
    as_of = cal.to_utc(days[30], 1)[0]
    res = ad.settle_segment(spring, as_of, run="SF", settlement_dates=days[18:25], config=cfg)
    c = res.checks
    assert c["in_minus_out"] == 0 and c["check_in_minus_out"] == 0 and c["mpan_periods_in_minus_out"] == 0
    assert abs(c["energy_in_minus_out [kWh]"]) < 1e-6 * c["energy_in [kWh]"]
    assert abs(c["check_energy_in_minus_out [kWh]"]) < 1e-6 * c["check_energy_in [kWh]"]
    assert c["mpan_periods_MISSING"] == 0 and c["rejected"] > 0
    m = res.meters
    cube.validate_meter_cube(m)
    assert set(np.unique(pd.DatetimeIndex(m["settlement_date"].values))) == set(days[18:25])
    assert m.sizes["time"] == 6 * 48 + 46
    assert set(np.unique(m["quality"].values)) <= {Q[k] for k in ad.METHODS}
    assert len(res.rejected) == c["rejected"] + c["check_rejected"]
    assert (pd.DatetimeIndex(res.rejected["time"]) >= cal.to_utc(days[18], 1)[0]).all()
    np.testing.assert_allclose(
        res.rejected.loc[res.rejected["source"] == "main", "energy_kwh"].sum(), c["energy_rejected [kWh]"]
    )
    assert res.segment == "A"
    with pytest.raises(ValueError, match="days of the market's window"):
        ad.settle_segment(spring, as_of, run="SF", settlement_dates=["2025-01-01"], config=cfg)


def test_estimation_reasons(spring):
    cfg = ad.AdvancedConfig(
        **{**CLEAN, "comms_failure_rate": 1.0, "comms_spell_mean_days": 4.0, "gap_rate": 0.05}
    )
    inputs = ad.advanced_inputs(spring, cfg)
    days = _days(spring.meters)
    as_of = cal.to_utc(days[-1], 1)[0] + pd.Timedelta(days=1, hours=12)
    res = ad.settle_segment(spring, as_of, run="II", settlement_dates=days, config=cfg)
    reason = res.meters["estimation_reason"].values
    q = res.meters["quality"].values
    assert (reason[np.isin(q, [Q["A1"], Q["A2"]])] == 0).all()
    assert (reason == cube.ESTIMATION_REASONS["CommsFault"]).any()
    assert (reason == cube.ESTIMATION_REASONS["Missing"]).any()
    comms = res.meters["main_energy"].isnull().values & (reason == cube.ESTIMATION_REASONS["CommsFault"])
    assert comms.sum() > 0
    assert inputs.retrieval.comms.any()


def test_wrong_ct_ratio_settled_then_reconciled(spring):
    cfg = ad.AdvancedConfig(
        **{**CLEAN, "ct_fault": True, "ct_fault_from": "2026-03-22", "ct_fault_corrected_after_days": 14}
    )
    mt = ad.advanced_inputs(spring, cfg).metering
    mpan = mt.faults.loc[mt.faults["fault"] == "wrong_ct_ratio", "mpan"].iloc[0]
    days = _days(spring.meters)
    fault_days = days[(days >= "2026-03-22") & (days < "2026-03-26")]
    truth = spring.meters["energy"].sel(mpan=mpan)
    before = ad.settle_segment(
        spring, pd.Timestamp("2026-03-30"), run="SF", settlement_dates=fault_days, config=cfg
    )
    after = ad.settle_segment(
        spring, pd.Timestamp("2026-04-10"), run="R1", settlement_dates=fault_days, config=cfg
    )
    true_kwh = float(truth.sel(time=before.meters["time"]).sum())
    settled_before = float(before.meters["energy"].sel(mpan=mpan).sum())
    settled_after = float(after.meters["energy"].sel(mpan=mpan).sum())
    assert abs(settled_before / true_kwh - 0.5) < 0.01  # half the ratio: half the energy, settled as actual
    assert abs(settled_after / true_kwh - 1.0) < 0.001  # corrected MTDs: the same pulses, the right energy
    assert (before.meters["quality"].sel(mpan=mpan).values == Q["A1"]).all()
    assert ((before.meters["flags"].sel(mpan=mpan).values & ad.FLAGS["step_change"]) > 0).all()
    assert before.checks["step_change_flagged_periods"] >= len(before.meters["time"])
    assert (after.meters["flags"].sel(mpan=mpan).values == 0).all()
    # refusing the stepped days estimates them from the days before the step instead
    rej = ad.settle_segment(
        spring,
        pd.Timestamp("2026-03-30"),
        run="SF",
        settlement_dates=fault_days,
        config=dataclasses.replace(cfg, step_change_action="reject"),
    )
    q = rej.meters["quality"].sel(mpan=mpan).values
    assert (q == Q["EA1"]).all() and rej.checks["rejected_main_step_change"] == q.size
    assert abs(float(rej.meters["energy"].sel(mpan=mpan).sum()) / true_kwh - 1) < 0.15
    assert rej.checks["in_minus_out"] == 0 and abs(rej.checks["energy_in_minus_out [kWh]"]) < 1e-6


def test_both_clock_changes_through_the_service(spring, autumn):
    for market, day, n in ((spring, "2026-03-29", 46), (autumn, "2026-10-25", 50)):
        cfg = ad.AdvancedConfig(**{**CLEAN, "gap_rate": 0.2, "gap_periods": (40, 96)})
        res = ad.settle_segment(
            market, pd.Timestamp(day) + pd.Timedelta(days=20), run="SF", settlement_dates=[day], config=cfg
        )
        assert res.meters.sizes["time"] == n
        assert res.checks["mpan_periods_MISSING"] == 0 and res.checks["in_minus_out"] == 0
        q = res.meters["quality"].values
        assert (q == Q["EA1"]).any() or (q == Q["A2"]).any()  # gaps over the clock change were filled
        est = q == Q["EA1"]
        truth = _truth(market, res.meters)
        err = np.abs(res.meters["energy"].values[est] - truth[est]).sum() / truth[est].sum()
        assert err < 0.25  # the same weekday's same clock half hours are close


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gap=st.floats(0, 0.1),
    spike=st.floats(0, 0.05),
    success=st.floats(0.3, 1.0),
    redelivery=st.floats(0, 0.2),
    seed=st.integers(0, 3),
    action=st.sampled_from(["flag", "reject"]),
)
def test_invariants_hold_for_any_faults(spring, gap, spike, success, redelivery, seed, action):
    cfg = ad.AdvancedConfig(
        gap_rate=gap,
        spike_rate=spike,
        success_rate=success,
        redelivery_rate=redelivery,
        step_change_action=action,
        ct_fault=seed % 2 == 0,
        phase_failure_rate=0.2,
    )
    days = _days(spring.meters)
    res = ad.settle_segment(
        spring,
        cal.to_utc(days[5 + 7 * seed], 1)[0],
        run="II",
        settlement_dates=days[seed * 7 : seed * 7 + 5],
        config=cfg,
    )
    c = res.checks
    assert c["in_minus_out"] == 0 and c["check_in_minus_out"] == 0 and c["mpan_periods_in_minus_out"] == 0
    assert abs(c["energy_in_minus_out [kWh]"]) <= 1e-9 * max(1.0, c["energy_in [kWh]"])
    assert c["mpan_periods_MISSING"] == 0
    e = res.meters["energy"].values
    assert np.isfinite(e).all() and (e >= 0).all()


def test_settlement_discovers_the_service():
    from tomlib import settlement

    assert settlement.discover_services()["A"] is ad.settle_segment


def test_bench_inputs():
    kw = ad.bench_inputs(mpan_days=700, days=7, seed=0)
    assert set(kw) == {"data", "config"}
    assert kw["data"]["energy"].dims == ("mpan", "time") and kw["data"].sizes["mpan"] == 100
    out = ad.process(**kw)
    assert out.energy.shape == kw["data"]["energy"].shape and np.isfinite(out.energy).all()
