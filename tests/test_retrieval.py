"""Tests of tomlib.services.retrieval: attempt schedule, retries, comms spells, late data, available_at,
injected HH faults, register reads, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from helpers import hand_market

from tomlib import calendar as cal
from tomlib.services import metering as me
from tomlib.services import retrieval as rt

NO_FAULTS = {"negative_spike_rate": 0.0, "zero_run_rate": 0.0, "duplicate_rate": 0.0}
CLEAN = dict(success_rate=1.0, comms_failure_rate=0.0, late_data_share=0.0, **NO_FAULTS)


def make_market(first, last, n=6, *, seed=7):
    """A hand-made market of n smart import MPANs; energy 0.1 x (mpan index + 1) + 0.01 x period [kWh]."""
    return hand_market(first, last, n, gsp_group="_C", seed=seed, energy=lambda rows, periods: (
        0.1 * (np.arange(rows)[:, None] + 1) + 0.01 * (np.arange(periods)[None, :] % 48)))


def all_dcc(market, **kw):
    return me.build_metering(market, me.MeteringConfig(dcc_share=1.0, smart_traditional_share=0.0, **kw))


@pytest.fixture(scope="module")
def spring():
    market = make_market("2026-03-28", "2026-03-30", n=8)  # 48, 46, 48 periods
    return market, all_dcc(market, exchange_share=0.0)


def test_clean_retrieval_delivers_truth_next_day(spring):
    market, m = spring
    r = rt.retrieve(market, m, rt.RetrievalConfig(**CLEAN))
    assert r.hh.sizes == {"mpan": 8, "time": 48 + 46 + 48}
    truth = market.meters["energy"].sel(mpan=r.hh["mpan"].values).values
    np.testing.assert_array_equal(r.hh["energy"].values, truth)
    assert (r.days["outcome"] == "first_attempt").all() and (r.days["attempts"] == 1).all()
    # Available on the UTC day after the settlement day, between 01:00 and 06:00.
    d = r.days
    delay = d["available_at"] - d["settlement_date"]
    assert (delay >= pd.Timedelta(hours=25)).all() and (delay <= pd.Timedelta(hours=30)).all()
    # available_at is constant over each MPAN-day in the grid and matches the day table.
    grid = r.hh["available_at"].values
    dates = r.hh["settlement_date"].values
    for day in pd.DatetimeIndex(np.unique(dates)):
        sel = dates == day.to_datetime64()
        assert (grid[:, sel] == grid[:, sel][:, :1]).all()
        expected = d[d["settlement_date"] == day].set_index("mpan").loc[r.hh["mpan"].values, "available_at"]
        assert (grid[:, sel][:, 0] == expected.to_numpy()).all()
    assert len(r.faults) == 0 and len(r.duplicates) == 0


def test_all_attempts_fail_gives_up_after_retries(spring):
    market, m = spring
    r = rt.retrieve(
        market,
        m,
        rt.RetrievalConfig(
            success_rate=0.0, retry_days=2, comms_failure_rate=0.0, late_data_share=0.0, **NO_FAULTS
        ),
    )
    assert (r.days["outcome"] == "gave_up").all()
    assert (r.days["attempts"] == 3).all()
    assert r.days["available_at"].isna().all()
    assert np.isnan(r.hh["energy"].values).all()
    assert len(r.register_reads) == 0


def test_retries_deliver_on_a_later_day(spring):
    market, m = spring
    r = rt.retrieve(
        market,
        m,
        rt.RetrievalConfig(
            success_rate=0.5, retry_days=3, comms_failure_rate=0.0, late_data_share=0.0, **NO_FAULTS
        ),
    )
    d = r.days
    got = d["outcome"].isin(["first_attempt", "retry"])
    day_after = (d["available_at"] - d["settlement_date"]).dt.days  # whole days after the settlement date
    assert (day_after[got] == d.loc[got, "attempts"]).all()
    assert set(d["outcome"]) <= {"first_attempt", "retry", "gave_up"}
    assert (d.loc[d["outcome"] == "retry", "attempts"] > 1).all()
    assert (d.loc[d["outcome"] == "gave_up", "attempts"] == 4).all()
    assert (d["outcome"] == "retry").any()


def test_comms_spell_blocks_then_backfills():
    market = make_market("2026-03-23", "2026-04-05", n=20, seed=3)
    m = all_dcc(market, exchange_share=0.0)
    cfg = dict(
        success_rate=1.0,
        retry_days=1,
        comms_failure_rate=1.0,
        late_data_share=0.0,
        comms_spell_mean_days=4.0,
        **NO_FAULTS,
    )
    r = rt.retrieve(market, m, rt.RetrievalConfig(**cfg))
    assert len(r.spells) == 20
    d = r.days.merge(r.spells, on="mpan")
    first_attempt = d["settlement_date"] + pd.Timedelta(days=1)
    last_attempt = d["settlement_date"] + pd.Timedelta(days=2)
    covered = (first_attempt >= d["start"]) & (last_attempt < d["end"])  # both attempts in the spell
    assert (d.loc[covered, "outcome"] == "backfill").all()
    assert covered.any()
    # Backfilled days arrive on the first day after the spell.
    bf = d[d["outcome"] == "backfill"]
    assert (bf["available_at"].dt.normalize() == bf["end"]).all()
    assert (d.loc[~covered, "outcome"].isin(["first_attempt", "retry"])).all()
    no_backfill = rt.retrieve(market, m, rt.RetrievalConfig(**cfg, backfill_after_spell=False))
    assert (no_backfill.days.loc[covered.to_numpy(), "outcome"] == "gave_up").all()


def test_late_data_arrives_days_later(spring):
    market, m = spring
    clean = rt.retrieve(market, m, rt.RetrievalConfig(**CLEAN))
    late = rt.retrieve(
        market, m, rt.RetrievalConfig(**{**CLEAN, "late_data_share": 1.0}, late_delay_days=(3, 5))
    )
    assert late.days["late"].all()
    extra = (late.days["available_at"] - clean.days["available_at"]).dt.days
    assert extra.between(3, 5).all()


def test_visible_respects_as_of(spring):
    market, m = spring
    r = rt.retrieve(market, m, rt.RetrievalConfig(success_rate=0.6, late_data_share=0.3))
    avail = r.hh["available_at"].values
    for as_of in pd.date_range("2026-03-29", "2026-04-12", freq="36h"):
        hh, dup, reads = rt.visible(r, as_of)
        seen = ~np.isnan(hh["energy"].values)
        expected = ~np.isnat(avail) & (avail <= as_of.to_datetime64())
        np.testing.assert_array_equal(seen, expected)
        assert (reads["available_at"] <= as_of).all() and (dup["available_at"] <= as_of).all()
    hh0, _, reads0 = rt.visible(r, "2026-03-28")
    assert np.isnan(hh0["energy"].values).all() and len(reads0) == 0


def test_injected_faults_are_marked_in_the_truth_table():
    market = make_market("2026-03-28", "2026-03-30", n=60, seed=9)
    m = all_dcc(market, exchange_share=0.0)
    cfg = rt.RetrievalConfig(
        success_rate=1.0,
        comms_failure_rate=0.0,
        late_data_share=0.0,
        negative_spike_rate=0.2,
        zero_run_rate=0.2,
        duplicate_rate=0.2,
    )
    r = rt.retrieve(market, m, cfg)
    f = r.faults
    assert set(f["fault"]) == {"negative_spike", "zero_run", "duplicate_conflict"}
    truth = market.meters["energy"].sel(mpan=r.hh["mpan"].values).values
    got = r.hh["energy"].values
    mpan_pos = pd.Index(r.hh["mpan"].values).get_indexer(f["mpan"])
    t_pos = pd.Index(r.hh["time"].values).get_indexer(f["time"])
    in_grid = (f["fault"] != "duplicate_conflict").to_numpy()
    np.testing.assert_array_equal(got[mpan_pos[in_grid], t_pos[in_grid]], f.loc[in_grid, "delivered_energy"])
    np.testing.assert_array_equal(truth[mpan_pos, t_pos], f["true_energy"])
    # Every other delivered value is the truth.
    marked = np.zeros_like(got, dtype=bool)
    marked[mpan_pos[in_grid], t_pos[in_grid]] = True
    np.testing.assert_array_equal(got[~marked], truth[~marked])
    assert (f.loc[f["fault"] == "negative_spike", "delivered_energy"] < 0).all()
    assert (f.loc[f["fault"] == "zero_run", "delivered_energy"] == 0).all()
    # Zero runs stay within one settlement day and have 4..12 periods.
    z = f[f["fault"] == "zero_run"].copy()
    z["day"] = cal.from_utc(z["time"].to_numpy())[0]
    sizes = z.groupby(["mpan", "day"]).size()
    assert sizes.between(4, 12).all()
    # Duplicates: one extra record with another value, arriving after the day's data.
    dup = r.duplicates
    assert len(dup) == (f["fault"] == "duplicate_conflict").sum()
    d_m = pd.Index(r.hh["mpan"].values).get_indexer(dup["mpan"])
    d_t = pd.Index(r.hh["time"].values).get_indexer(dup["time"])
    assert (np.abs(dup["energy"].to_numpy() / truth[d_m, d_t] - 1) >= 0.05 - 1e-12).all()
    assert (dup["available_at"].to_numpy() > r.hh["available_at"].values[d_m, d_t]).all()
    # At most one fault kind per MPAN-day.
    f2 = f.assign(day=cal.from_utc(f["time"].to_numpy())[0])
    assert (f2.groupby(["mpan", "day"])["fault"].nunique() == 1).all()


@pytest.mark.parametrize(
    "first, last", [("2026-03-29", "2026-03-29"), ("2026-10-25", "2026-10-25"), ("2026-10-24", "2026-10-26")]
)
def test_daily_register_reads_match_hh_on_clock_change_days(first, last):
    market = make_market(first, last, n=10, seed=4)
    m = all_dcc(market, exchange_share=0.0, ssc_mix_domestic=(("0393", 0.5), ("0154", 0.5)))
    r = rt.retrieve(market, m, rt.RetrievalConfig(**CLEAN))
    reads = r.register_reads
    assert (reads["read_type"] == "remote").all()
    n_days = len(pd.date_range(first, last))
    assert len(reads) == n_days * len(m.registers)
    # Reads are at the end of each settlement day (UTC start of the next one).
    ends = {cal.to_utc(pd.Timestamp(d) + pd.Timedelta(days=1), 1)[0] for d in pd.date_range(first, last)}
    assert set(pd.DatetimeIndex(reads["read_at"])) == ends
    np.testing.assert_array_equal(reads["value"], reads["true_value"])
    # Per MPAN: the sum of its registers' true advances over the window = the HH sum.
    rows = pd.MultiIndex.from_frame(m.registers[["mpan", "meter_id", "register_id"]]).get_indexer(
        pd.MultiIndex.from_frame(reads[["mpan", "meter_id", "register_id"]])
    )
    true_end = m.true_value(rows, reads["read_at"])
    start = m.registers["true_start_value"].to_numpy()[rows]
    last_day = reads["read_at"] == reads["read_at"].max()
    adv = pd.Series((true_end - start)[last_day.to_numpy()]).groupby(reads["mpan"][last_day].to_numpy()).sum()
    hh = r.hh["energy"].sum("time").to_series()
    np.testing.assert_allclose(adv.sort_index().to_numpy(), hh.sort_index().to_numpy())


def test_exchange_day_register_read_is_of_the_new_meter():
    market = make_market("2026-03-28", "2026-03-30", n=5, seed=12)
    m = all_dcc(market, exchange_share=1.0)
    r = rt.retrieve(market, m, rt.RetrievalConfig(**CLEAN))
    for e in m.exchanges.itertuples():
        reads = r.register_reads[r.register_reads["mpan"] == e.mpan]
        before = reads["read_at"] < e.exchanged_at
        assert (reads.loc[before, "meter_id"] == e.old_meter_id).all()
        assert (reads.loc[~before, "meter_id"] == e.new_meter_id).all()


def test_only_dcc_mpans_are_retrieved():
    market = make_market("2026-03-30", "2026-03-30", n=40, seed=2)
    m = me.build_metering(market, me.MeteringConfig(dcc_share=0.5, smart_traditional_share=0.2))
    r = rt.retrieve(market, m)
    assert sorted(r.hh["mpan"].values.tolist()) == sorted(m.dcc_mpans.tolist())
    assert set(r.days["mpan"]) == set(m.dcc_mpans)


def test_deterministic_and_config_from_scenario(spring):
    market, m = spring
    a = rt.retrieve(market, m, rt.RetrievalConfig(success_rate=0.7, duplicate_rate=0.3))
    b = rt.retrieve(market, m, rt.RetrievalConfig(success_rate=0.7, duplicate_rate=0.3))
    xr.testing.assert_identical(a.hh, b.hh)
    pd.testing.assert_frame_equal(a.days, b.days)
    pd.testing.assert_frame_equal(a.faults, b.faults)
    c = rt.retrieve(market, m, rt.RetrievalConfig(success_rate=0.7, duplicate_rate=0.3), seed=99)
    assert not a.days["available_at"].equals(c.days["available_at"])

    from tomlib.scenario import load_scenario

    s = load_scenario("tiny")
    cfg = rt.RetrievalConfig.from_scenario(s)
    assert (cfg.success_rate, cfg.retry_days, cfg.comms_failure_rate, cfg.late_data_share) == (
        s.retrieval.success_rate,
        s.retrieval.retry_days,
        s.retrieval.comms_failure_rate,
        s.retrieval.late_data_share,
    )
    with pytest.raises(ValueError, match="success_rate must be within"):
        rt.RetrievalConfig(success_rate=1.5)
    with pytest.raises(ValueError, match="retry_days"):
        rt.RetrievalConfig(retry_days=-1)


def test_real_tiny_autumn_market_end_to_end():
    from tomlib import market as market_mod
    from tomlib.scenario import load_scenario

    s = load_scenario("tiny_autumn")  # holds the 50-period day 2026-10-25
    market = market_mod.generate(s)
    m = me.build_metering(market, s)
    r = rt.retrieve(market, m, s)
    assert r.hh.sizes["time"] == 48 + 50 + 48
    assert set(r.hh["mpan"].values) == set(m.dcc_mpans)
    truth = market.meters["energy"].sel(mpan=r.hh["mpan"].values).values
    got = r.hh["energy"].values
    faulty = np.zeros_like(got, dtype=bool)
    f = r.faults[r.faults["fault"] != "duplicate_conflict"]
    faulty[
        pd.Index(r.hh["mpan"].values).get_indexer(f["mpan"]),
        pd.Index(r.hh["time"].values).get_indexer(f["time"]),
    ] = True
    ok = ~np.isnan(got) & ~faulty
    np.testing.assert_array_equal(got[ok], truth[ok])
    assert r.attrs["retrieved_days"] + r.attrs["gave_up_days"] == len(r.days)


def test_bench_inputs_run():
    kw = rt.bench_inputs(mpan_days=700, days=7)
    r = rt.retrieve(**kw)
    assert r.hh["energy"].size == 100 * (7 * 48 - 2)
    assert me.build_metering(**me.bench_inputs(mpan_days=70, days=7)).attrs["n_mpans"] == 10


def test_unique_labels_is_index_is_unique():
    from tomlib.services.retrieval import _unique_labels

    for labels in (["1000078871722", "1000075791525"], ["1000078871722", "1000078871722"], ["a b", "a-b"],
                   ["a-b", "a-b"], []):
        text = np.array(labels, dtype=str)
        index = pd.Index(pd.array(text, dtype="str"))
        assert _unique_labels(text, index) == index.is_unique
