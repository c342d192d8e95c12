"""Metering Service (Advanced): MTDs (transformers, multipliers, outstations, channels), what the meters
record (pulses, check meter, faults) and the wrong-CT-ratio fault with its MTD versions."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib.services import advanced as ad
from tomlib.services import advanced_metering as am

#: No meter faults, no communication faults: what the meters record is the truth, quantised.
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


@pytest.fixture(scope="module")
def spring():
    """24 sites over five weeks holding the 46-period day 2026-03-29."""
    return ad.synthetic_market(24, "2026-03-08", 35, seed=3)


@pytest.fixture(scope="module")
def autumn():
    """Sites over two weeks holding the 50-period day 2026-10-25."""
    return ad.synthetic_market(10, "2026-10-19", 14, seed=4)


def _truth(market, metering):
    return market.meters["energy"].sel(mpan=metering.mpans).to_numpy()


# ------------------------------------------------------------------------------------------ config


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="success_rate must be within"):
        am.AdvancedConfig(success_rate=1.5)
    with pytest.raises(ValueError, match="step_change_action must be one of"):
        am.AdvancedConfig(step_change_action="ignore")
    with pytest.raises(ValueError, match="within one month"):
        am.AdvancedConfig(history_weeks=5)
    with pytest.raises(ValueError, match=r"check_meter_share\[L\]"):
        am.AdvancedConfig(check_meter_share={"W": 0.0, "L": 2.0, "H": 1.0})
    with pytest.raises(ValueError, match="load_factor"):
        am.AdvancedConfig(load_factor=(0.8, 0.4))


def test_from_scenario_reads_advanced_then_retrieval_then_overrides():
    scn = SimpleNamespace(
        retrieval=SimpleNamespace(success_rate=0.9, comms_failure_rate=0.05, retry_days=3),
        advanced=SimpleNamespace(
            comms_failure_rate=0.1, ct_fault=True, check_meter_share={"W": 0.0, "L": 0.5, "H": 1.0}
        ),
    )
    cfg = am.AdvancedConfig.from_scenario(scn, step_change_action="reject")
    assert cfg.success_rate == 0.9  # from retrieval
    assert cfg.comms_failure_rate == 0.1  # advanced wins over retrieval
    assert cfg.ct_fault is True and cfg.step_change_action == "reject"
    assert dict(cfg.check_meter_share) == {"W": 0.0, "L": 0.5, "H": 1.0}  # a YAML mapping becomes pairs
    assert am.AdvancedConfig.from_scenario(None) == am.AdvancedConfig()
    assert am.AdvancedConfig.from_scenario(SimpleNamespace(advanced={"gap_rate": 0.2})).gap_rate == 0.2


# ------------------------------------------------------------------------------------------ MTDs


def test_mtds_of_every_connection_type(spring):
    mt = am.build_advanced_metering(spring, CLEAN)
    s = mt.sites
    assert len(s) == 24 and set(s["connection_type"]) == {"W", "L", "H"}
    w, h, lv = (s["connection_type"] == c for c in ("W", "H", "L"))
    assert (s.loc[w, "multiplier"] == 1).all() and s.loc[w, "ct_primary_a"].isna().all()
    assert (s.loc[w, "measurement_class"] == "G").all() and (s.loc[w, "code_of_practice"] == "10").all()
    assert (s.loc[h, "vt_ratio"] == 100).all() and s.loc[lv, "vt_primary_v"].isna().all()
    ct = ~w
    np.testing.assert_allclose(s.loc[ct, "multiplier"], s.loc[ct, "ct_primary_a"] / 5 * s.loc[ct, "vt_ratio"])
    # the CT carries the maximum current with head room, and the physical maximum is above every true value
    amps = s["max_demand_kw"] * 1000 / (np.sqrt(3) * s["voltage_v"] * s["power_factor"])
    assert (s.loc[ct, "ct_primary_a"] >= 1.25 * amps[ct] - 1e-9).all()
    assert (_truth(spring, mt).max(axis=1) <= s["max_energy"].to_numpy()).all()
    # meter constant: an average half hour holds at least pulses_per_period pulses, less than ten times that
    mean_pulses = np.nanmean(mt.pulses["main"], axis=1)
    assert (mean_pulses >= 0.5 * 1000).all() and (mean_pulses < 10 * 1000 * 2).all()
    # four channels per meter, on the site's outstation
    n_meters = len(s) + int(s["has_check_meter"].sum())
    assert len(mt.meters) == n_meters and len(mt.channels) == 4 * n_meters
    assert set(mt.channels["measurement_quantity"]) == {"AI", "AE", "RI", "RE"}
    assert (s.loc[h, "has_check_meter"]).all() and not s.loc[w, "has_check_meter"].any()
    assert mt.meters["meter_id"].is_unique and s["outstation_id"].is_unique


def test_only_segment_a_and_known_connection_types(spring):
    ds = spring.meters.copy()
    seg = ds["market_segment"].to_numpy().astype(object)
    seg[:3] = "S"
    market = ad.synthetic_market(24, "2026-03-08", 35, seed=3)
    market.meters = ds.assign_coords(market_segment=("mpan", seg.astype(str)))
    assert am.build_advanced_metering(market, CLEAN).mpans.size == 21
    conn = ds["connection_type"].to_numpy().astype(object)
    conn[5] = "U"
    market.meters = ds.assign_coords(connection_type=("mpan", conn.astype(str)))
    with pytest.raises(ValueError, match=f"MPAN {ds['mpan'].values[5]} has connection type 'U'"):
        am.build_advanced_metering(market, CLEAN)


def test_pulses_convert_back_to_the_truth_without_accumulating_rounding(spring):
    mt = am.build_advanced_metering(spring, CLEAN)
    truth = _truth(spring, mt)
    main = mt.energy("main")
    one_pulse = (mt.sites["meter_constant"] * mt.sites["multiplier"]).to_numpy()[:, None]
    assert (np.abs(main - truth) <= one_pulse + 1e-9).all()
    # cumulative counting: the window total is off by at most one pulse, however many periods
    assert (np.abs(main.sum(axis=1) - truth.sum(axis=1)) <= one_pulse[:, 0] + 1e-9).all()
    assert (mt.pulses["main"] == np.round(mt.pulses["main"])).all()


def test_check_meter_has_its_gain_error_and_no_data_without_a_check_meter(spring):
    mt = am.build_advanced_metering(spring, CLEAN)
    has = mt.sites["has_check_meter"].to_numpy()
    assert np.isnan(mt.pulses["check"][~has]).all()
    ratio = np.nansum(mt.energy("check")[has], axis=1) / mt.energy("main")[has].sum(axis=1)
    np.testing.assert_allclose(ratio, 1 + mt.sites["check_gain_error"].to_numpy()[has], atol=1e-4)


def test_channels_of_a_site(spring):
    mt = am.build_advanced_metering(spring, CLEAN)
    site = mt.sites[mt.sites["has_check_meter"]].iloc[0]
    df = mt.channel_values(site["mpan"])
    assert list(df.columns) == [f"{r} {q}" for r in ("main", "check") for q in ("AI", "AE", "RI", "RE")]
    assert (df["main AE"] == 0).all()
    assert (df[["main RI", "main RE"]] >= 0).all().all()
    assert ((df["main RI"] == 0) | (df["main RE"] == 0)).all()  # net reactive: import or export, not both
    plain = mt.sites[~mt.sites["has_check_meter"]].iloc[0]["mpan"]
    assert list(mt.channel_values(plain).columns) == ["main AI", "main AE", "main RI", "main RE"]
    with pytest.raises(ValueError, match="not an advanced MPAN"):
        mt.channel_values("1234567890123")


def test_deterministic_by_seed(spring):
    a = am.build_advanced_metering(spring, {})
    b = am.build_advanced_metering(spring, {})
    c = am.build_advanced_metering(spring, {}, seed=99)
    np.testing.assert_array_equal(a.pulses["main"], b.pulses["main"])
    pd.testing.assert_frame_equal(a.faults, b.faults)
    assert not a.faults.equals(c.faults)


# ------------------------------------------------------------------------------------------ faults


def test_injected_faults_are_in_the_recorded_data(spring):
    cfg = dict(
        CLEAN, phase_failure_rate=0.5, spike_rate=0.02, zero_run_rate=0.02, gap_rate=0.02, check_gap_rate=0.02
    )
    mt = am.build_advanced_metering(spring, cfg)
    clean = am.build_advanced_metering(spring, CLEAN)
    f = mt.faults
    assert {"phase_failure", "spike", "zero_run", "gap"} <= set(f["fault"])
    times = mt.times.to_numpy()
    row = {m: i for i, m in enumerate(mt.mpans)}
    for r in f.itertuples():  # a handful of injected events, each checked against the recording
        i = row[r.mpan]
        cells = (times >= r.start) & (times < r.end)
        rec, ref = mt.pulses[r.role][i, cells], clean.pulses[r.role][i, cells]
        if r.fault == "gap":
            assert np.isnan(rec).all()
        elif r.fault == "zero_run":
            assert np.isnan(rec).all() or (rec[np.isfinite(rec)] == 0).all()
        elif r.fault == "phase_failure":
            ok = np.isfinite(rec) & (rec > 0)
            assert abs(np.nansum(rec[ok]) / ref[ok].sum() - 2 / 3) < 0.01
    # gaps may cross settlement days (runs up to 96 periods)
    gaps = f[f["fault"] == "gap"]
    days = (
        cal.from_utc(pd.DatetimeIndex(gaps["start"]))[0]
        != cal.from_utc(pd.DatetimeIndex(gaps["end"] - pd.Timedelta("30min")))[0]
    )
    assert days.any()


def test_wrong_ct_ratio_until_the_corrected_mtds_arrive(spring):
    cfg = dict(
        CLEAN,
        ct_fault=True,
        ct_fault_from="2026-03-22",
        ct_fault_factor=2.0,
        ct_fault_corrected_after_days=14,
    )
    mt = am.build_advanced_metering(spring, cfg)
    f = mt.faults[mt.faults["fault"] == "wrong_ct_ratio"]
    assert len(f) == 1
    mpan = f["mpan"].iloc[0]
    i = int(np.flatnonzero(mt.mpans == mpan)[0])
    site = mt.sites.iloc[i]
    assert site["connection_type"] != "W" and not site["has_check_meter"]  # default: a CT site without check
    start = pd.Timestamp("2026-03-22")  # GMT: local midnight is 00:00 UTC
    assert f["start"].iloc[0] == start and f["end"].iloc[0] == start + pd.Timedelta(days=14)
    truth = _truth(spring, mt)[i]
    after = mt.times >= start
    before_fix = mt.energy("main", as_of=start + pd.Timedelta(days=13))[i]
    after_fix = mt.energy("main", as_of=start + pd.Timedelta(days=14))[i]
    tol = float(site["meter_constant"] * site["multiplier"]) * 2
    np.testing.assert_allclose(before_fix[after], truth[after] / 2, atol=tol)
    np.testing.assert_allclose(before_fix[~after], truth[~after], atol=tol)
    np.testing.assert_allclose(after_fix, truth, atol=tol)
    installed = mt.installed[mt.installed["mpan"] == mpan]
    assert installed["ct_primary_a"].tolist() == [site["ct_primary_a"], 2 * site["ct_primary_a"]]


def test_ct_fault_site_must_be_ct_connected(spring):
    mt = am.build_advanced_metering(spring, CLEAN)
    whole = mt.sites.loc[mt.sites["connection_type"] == "W", "mpan"].iloc[0]
    with pytest.raises(ValueError, match="not a CT-connected"):
        am.build_advanced_metering(spring, dict(CLEAN, ct_fault=True, ct_fault_mpan=whole))
    with pytest.raises(ValueError, match="not a CT-connected"):
        am.build_advanced_metering(spring, dict(CLEAN, ct_fault=True, ct_fault_mpan="1234567890123"))


def test_default_fault_day_and_clock_changes(autumn):
    mt = am.build_advanced_metering(autumn, dict(CLEAN, ct_fault=True))
    start = mt.faults.loc[mt.faults["fault"] == "wrong_ct_ratio", "start"].iloc[0]
    assert start == cal.to_utc(pd.Timestamp("2026-10-26"), 1)[0]  # 7 days after the first day
    assert mt.pulses["main"].shape[1] == 48 * 13 + 50  # the 50-period day is recorded in full


# ------------------------------------------------------------------------------------------ helpers


def test_multipliers_pick_the_latest_version_available():
    times = pd.date_range("2026-01-01", periods=6, freq="30min")
    nat = pd.NaT
    ratios = pd.DataFrame(
        {
            "mpan": ["A", "B", "A", "A", "B"],
            "effective_from": [nat, nat, times[2], times[2], times[4]],
            "available_at": [
                nat,
                nat,
                pd.Timestamp("2026-02-01"),
                pd.Timestamp("2026-03-01"),
                pd.Timestamp("2026-02-01"),
            ],
            "multiplier": [40.0, 1.0, 80.0, 60.0, 2.0],
        }
    )
    got = am.multipliers(ratios, ["A", "B"], times)
    np.testing.assert_array_equal(got, [[40, 40, 60, 60, 60, 60], [1, 1, 1, 1, 2, 2]])
    got = am.multipliers(ratios, ["A", "B"], times, as_of="2026-02-15")
    np.testing.assert_array_equal(got, [[40, 40, 80, 80, 80, 80], [1, 1, 1, 1, 2, 2]])
    got = am.multipliers(ratios, ["B", "A"], times, as_of="2026-01-15")
    np.testing.assert_array_equal(got, [[1] * 6, [40] * 6])
    with pytest.raises(ValueError, match="MPAN C has no MTD version"):
        am.multipliers(ratios, ["A", "C"], times)


def test_run_mask():
    got = am.run_mask(2, 6, [0, 1, 1], [1, 0, 4], [2, 1, 10])
    np.testing.assert_array_equal(got, [[0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 1, 1]])
