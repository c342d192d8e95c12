"""Unmetered supplies: tables, UMSO validation and certificate, switching arithmetic, equivalent meter methods,
fallback order, and the segment service on a generated truth (46- and 50-period days)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import calendar as cal
from tomlib import cube, reference
from tomlib import mpan as mpan_mod
from tomlib.services import ums
from tomlib.services import ums_switching as sw
from tomlib.services.ums_truth import UmsSettings

LONDON = reference.gsp_groups().loc["_C", ["latitude", "longitude"]].to_numpy(dtype=float)
NORTH = reference.gsp_groups().loc["_P", ["latitude", "longitude"]].to_numpy(dtype=float)
LED70 = "4210066500001"  # 70.0 circuit watts, electronic photocell
SON70 = "1010070000001"
SIGN = "7000072000001"  # continuous, control none
CMS_LED = "4250025500001"
MPAN_C = str(mpan_mod.generate_cores(["_C"], np.random.default_rng(0))[0])
MPAN_C2 = str(mpan_mod.generate_cores(["_C", "_C"], np.random.default_rng(1))[1])


def utc(text: str) -> np.datetime64:
    return np.datetime64(pd.Timestamp(text).as_unit("ns").to_datetime64())


def regimes_with(tmp_path, *rows: str) -> pd.DataFrame:
    """The shipped regime table plus extra CSV rows, read through the real loader (the table is replaceable)."""
    path = tmp_path / "regimes.csv"
    path.write_text(ums.SWITCH_REGIMES_PATH.read_text() + "".join(r + "\n" for r in rows))
    return ums.load_switch_regimes(path)


def inventory(*rows) -> pd.DataFrame:
    cols = list(ums.INVENTORY_COLUMNS)
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


# ------------------------------------------------------------------------------------------------ tables


def test_tables_are_complete_and_say_they_are_illustrative():
    codes, regimes = ums.charge_codes(), ums.switch_regimes()
    assert codes.index.str.fullmatch(r"\d{13}").all() and regimes.index.str.fullmatch(r"\d{3}").all()
    assert "ILLUSTRATIVE" in ums.CHARGE_CODES_PATH.read_text().splitlines()[0]
    assert "ILLUSTRATIVE" in ums.SWITCH_REGIMES_PATH.read_text().splitlines()[0]
    assert set(regimes["kind"]) == set(ums.KINDS)
    assert regimes["annual_hours"].notna().all()
    assert codes.loc[LED70, "circuit_watts"] == 70.0
    assert regimes.loc["823", ["clock_off_min", "clock_on_min"]].tolist() == [0, 330]


def test_table_errors_name_file_line_and_field(tmp_path):
    with pytest.raises(ValueError, match=r"regimes.csv, line 20, field 'clock_on': a part_night regime needs a value"):
        regimes_with(tmp_path, "877,part_night,bad,35,18,12,14,,00:00,,,,photocell_electronic,false,2000")
    with pytest.raises(ValueError, match=r"line 20, field 'kind': expected one of"):
        regimes_with(tmp_path, "878,sometimes,bad,,,,,,,,,,none,false,1")
    with pytest.raises(ValueError, match=r"field 'clock_on': the night's switch-off 05:00 must come before"):
        regimes_with(tmp_path, "879,part_night,bad,35,18,12,14,01:00,05:00,,,,photocell_electronic,false,2000")
    bad = tmp_path / "codes.csv"
    bad.write_text(ums.CHARGE_CODES_PATH.read_text() + "123,LED,short,1,1,cms,true\n")
    with pytest.raises(ValueError, match=r"codes.csv, line \d+, field 'charge_code': expected text matching"):
        ums.load_charge_codes(bad)


# ------------------------------------------------------------------------------------------------ UMSO


def test_validation_names_every_finding():
    inv = inventory(
        (MPAN_C, "L1", LED70, "821", 10, "_C", "a"),  # valid
        (MPAN_C, "L2", "421006650000", "821", 10, "_C", "b"),  # 12 digits
        (MPAN_C, "L3", "4210066599999", "821", 10, "_C", "c"),  # unknown
        (MPAN_C, "L4", LED70, "82", 10, "_C", "d"),
        (MPAN_C, "L5", LED70, "777", 10, "_C", "e"),
        (MPAN_C, "L6", LED70, "822", 10, "_C", "f"),  # electronic photocell with a thermal regime
        (MPAN_C, "L7", SON70, "831", 10, "_C", "g"),  # dimming regime, lamp not dimmable
        (MPAN_C, "L8", LED70, "821", 0, "_C", "h"),
        (MPAN_C, "L9", LED70, "821", -4, "_C", "i"),
        (MPAN_C, "L10", LED70, "821", 3, "_C", "a"),  # same code, regime and location as L1
        (MPAN_C, "L1", SIGN, "999", 3, "_C", "j"),  # item id again
        ("1234567890123", "L1", LED70, "821", 3, "_C", "k"),
        (MPAN_C, "L11", LED70, "821", 3, "_P", "l"),
        (MPAN_C, "L12", "", "821", 3, "_C", "m"),
    )
    f = ums.validate_inventory(inv)
    by_row = f.groupby("row")["finding"].apply(set).to_dict()
    assert 0 not in by_row
    assert by_row == {
        1: {"invalid_charge_code"}, 2: {"unknown_charge_code"}, 3: {"invalid_switch_regime"},
        4: {"unknown_switch_regime"}, 5: {"charge_code_not_allowed_with_regime"},
        6: {"charge_code_not_allowed_with_regime"}, 7: {"non_positive_quantity"}, 8: {"non_positive_quantity"},
        9: {"duplicate_line"}, 10: {"duplicate_line"}, 11: {"invalid_mpan"}, 12: {"gsp_group_mismatch"},
        13: {"missing_value"},
    }
    assert set(f["finding"]) <= set(ums.FINDINGS)
    msg = f.loc[f["row"] == 8, "message"].iloc[0]
    assert f"MPAN {MPAN_C}" in msg and "L9" in msg and "-4" in msg
    assert ums.valid_mask(inv, f).tolist() == [True] + [False] * 13


def test_certificate_is_circuit_watts_times_annual_hours():
    inv = inventory((MPAN_C, "L1", LED70, "821", 10, "_C", "a"), (MPAN_C, "L2", LED70, "821", 0, "_C", "b"),
                    (MPAN_C2, "L1", SIGN, "999", 2, "_C", "a"))
    # the constructed test of mhhs-domain.md §5: 10 x 70 W for 4,000 h/yr = 2,800 kWh
    cert = ums.ums_certificate(inv.iloc[:2], annual_hours=4000.0)
    assert cert.loc[MPAN_C, "annual_consumption"] == pytest.approx(2800.0)
    assert cert.loc[MPAN_C, ["n_lines", "n_rejected"]].tolist() == [1, 1]
    cert = ums.ums_certificate(inv)
    hours = ums.switch_regimes()["annual_hours"]
    assert cert.loc[MPAN_C, "annual_consumption"] == pytest.approx(10 * 70.0 * hours["821"] / 1000)
    assert cert.loc[MPAN_C2, "annual_consumption"] == pytest.approx(2 * 88.0 * 8760 / 1000)
    assert cert.loc[MPAN_C2, "circuit_kw"] == pytest.approx(0.176)


# ------------------------------------------------------------------------------------------------ switching


def test_local_clock_times_across_both_clock_changes():
    got = sw.local_clock_to_utc(["2026-03-29", "2026-03-29", "2026-03-29", "2026-10-25", "2026-10-25", "2026-10-25"],
                                [60, 90, 150, 60, 90, 150])
    want = ["2026-03-29T01:00", "2026-03-29T01:00", "2026-03-29T01:30",  # 01:00-02:00 GMT does not exist
            "2026-10-25T00:00", "2026-10-25T00:30", "2026-10-25T02:30"]  # 01:00-02:00 repeats: first (BST)
    np.testing.assert_array_equal(got, np.array([utc(w) for w in want]))
    np.testing.assert_array_equal(sw.night_clock_to_utc(["2026-01-14", "2026-01-14"], [23 * 60, 5 * 60 + 30]),
                                  np.array([utc("2026-01-14T23:00"), utc("2026-01-15T05:30")]))


def test_passive_switching_is_astral_sunset_plus_offset():
    import datetime as dt

    from astral import Observer
    from astral.sun import sunrise, sunset

    reg = ums.switch_regimes().loc["821"]
    dusk, dawn = ums.passive_switching(reg, *LONDON, ["2026-06-21"])
    obs = Observer(*LONDON)
    s = pd.Timestamp(sunset(obs, dt.date(2026, 6, 21), tzinfo=dt.UTC)).tz_localize(None)
    r = pd.Timestamp(sunrise(obs, dt.date(2026, 6, 22), tzinfo=dt.UTC)).tz_localize(None)
    assert abs(pd.Timestamp(dusk[0]) - (s + pd.Timedelta(minutes=12))) < pd.Timedelta(seconds=1)
    assert abs(pd.Timestamp(dawn[0]) - (r - pd.Timedelta(minutes=14))) < pd.Timedelta(seconds=1)


def test_photocell_twilight_is_longer_in_the_north_and_at_midsummer():
    el = sw.illuminance_elevation(35.0, 400.0, 0.403)
    assert -4.0 < el < -3.0
    london = sw.twilight_offset_minutes(LONDON[0], [0.0, 23.44], el)
    north = sw.twilight_offset_minutes(NORTH[0], [0.0, 23.44], el)
    assert 14 < london[0] < 20 and (north > london).all() and london[1] > london[0]
    # the sun that never gets low enough: the offset stops at solar midnight
    assert sw.twilight_offset_minutes(66.0, 23.44, -6.0) < 12 * 60


def test_ten_lamps_of_70_w_fully_on_for_a_period_is_035_kwh(tmp_path):
    regimes = regimes_with(tmp_path, "917,fixed,17:00 to 07:00,,,,,17:00,07:00,,,,timeswitch,false,")
    codes = ums.charge_codes().copy()
    codes.loc[LED70, "control"] = "timeswitch"
    inv = inventory((MPAN_C, "L1", LED70, "917", 10, "_C", "a"))
    for day, n in (("2026-01-15", 48), ("2026-03-29", 46), ("2026-10-25", 50)):
        times = cal.period_starts(pd.Timestamp(day))
        em = ums.equivalent_meter(inv, times, methods="passive",
                                  config=ums.UmsConfig(charge_codes=codes, switch_regimes=regimes))
        e = em.energy[0]
        assert e.size == n and set(np.round(e, 12)) == {0.0, 0.35}
        lit = np.asarray(cal.local_clock_index(times))
        assert np.array_equal(e > 0, (lit >= 34) | (lit < 14))  # local 17:00.. and ..07:00
        assert (em.source[0] == ums.SOURCES.index("regime")).all()
    # on the 50-period day local 17:00 GMT starts settlement period 37
    assert e[36] == pytest.approx(0.35) and e[35] == 0 and cal.to_utc("2026-10-25", 37)[0] == pd.Timestamp("2026-10-25 17:00")


def test_part_night_across_midnight(tmp_path):
    regimes = ums.switch_regimes()
    times = cal.time_axis(pd.Timestamp("2026-01-14"), pd.Timestamp("2026-01-15"))
    nights = sw.nights_of(times)
    dusk = np.array([utc(f"{d:%Y-%m-%d}T16:30") for d in nights])
    dawn = np.array([utc(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T07:40") for d in nights])
    m = pd.Series(ums.regime_minutes(regimes.loc["823"], times, *LONDON, dusk, dawn), index=times)
    night = m["2026-01-14 16:00":"2026-01-15 08:00"]
    assert night["2026-01-14 16:00"] == 0 and night["2026-01-14 16:30"] == 30
    assert (night["2026-01-14 16:30":"2026-01-14 23:30"] == 30).all()
    assert (night["2026-01-15 00:00":"2026-01-15 05:00"] == 0).all()  # off 00:00 to 05:30
    assert (night["2026-01-15 05:30":"2026-01-15 07:00"] == 30).all() and night["2026-01-15 07:30"] == 10
    # switched off before midnight (825: 23:00 to 06:00)
    m2 = pd.Series(ums.regime_minutes(regimes.loc["825"], times, *LONDON, dusk, dawn), index=times)
    assert m2["2026-01-14 22:30"] == 30 and (m2["2026-01-14 23:00":"2026-01-15 05:30"] == 0).all()
    assert m2["2026-01-15 06:00"] == 30
    # dimming across midnight (831: 50 % from 22:00 to 06:00)
    m3 = pd.Series(ums.regime_minutes(regimes.loc["831"], times, *LONDON, dusk, dawn), index=times)
    assert m3["2026-01-14 21:30"] == 30 and (m3["2026-01-14 22:00":"2026-01-15 05:30"] == 15).all()
    assert m3["2026-01-15 06:00"] == 30


@pytest.mark.parametrize(("night", "dark_hours", "day", "n_periods"), [
    ("2026-03-28", 3.0, "2026-03-29", 46),  # off 01:00 GMT (01:00 UTC), on 05:00 BST (04:00 UTC)
    ("2026-10-24", 5.0, "2026-10-25", 50),  # off 01:00 BST (00:00 UTC), on 05:00 GMT (05:00 UTC)
])
def test_part_night_across_a_clock_change(night, dark_hours, day, n_periods):
    regimes = ums.switch_regimes()
    times = cal.time_axis(pd.Timestamp(night), pd.Timestamp(day))
    nights = sw.nights_of(times)
    dusk = np.array([utc(f"{d:%Y-%m-%d}T19:00") for d in nights])
    dawn = np.array([utc(f"{d + pd.Timedelta(days=1):%Y-%m-%d}T06:00") for d in nights])
    m = ums.regime_minutes(regimes.loc["826"], times, *LONDON, dusk, dawn)
    dates, periods = cal.from_utc(times)
    on_day = dates == pd.Timestamp(day)
    assert on_day.sum() == n_periods
    full = pd.Series(m, index=times)[f"{night}T19:00":f"{day}T05:30"]
    assert (full == 0).sum() * 0.5 == dark_hours
    assert full.sum() / 60 == pytest.approx(11.0 - dark_hours)
    # the off window by settlement period of the clock-change day
    off_periods = periods[on_day & (m == 0) & (np.asarray(times) < utc(f"{day}T06:00"))]
    assert off_periods.tolist() == ([3, 4, 5, 6, 7, 8] if n_periods == 46 else list(range(3, 13)))


def test_fixed_regime_on_the_clock_change_days():
    reg = ums.switch_regimes().loc["901"]  # 19:00 to 09:00 local
    for day, n, lit_hours in (("2026-03-29", 46, 13.0), ("2026-10-25", 50, 15.0), ("2026-01-15", 48, 14.0)):
        times = cal.period_starts(pd.Timestamp(day))
        m = ums.regime_minutes(reg, times, *LONDON)
        assert m.size == n and m.sum() / 60 == pytest.approx(lit_hours)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-100, 3000), st.integers(0, 600), st.floats(-1, 2, allow_nan=False),
                          st.integers(0, 2)), min_size=1, max_size=30))
def test_period_minutes_conserves_weighted_minutes(segments):
    t0 = pd.Timestamp("2026-03-28")
    n = 96
    start = np.array([utc("2026-03-28") + np.timedelta64(s, "m") for s, _, _, _ in segments])
    end = start + np.array([np.timedelta64(d, "m") for _, d, _, _ in segments])
    w = np.array([x[2] for x in segments])
    g = np.array([x[3] for x in segments])
    out = sw.period_minutes(g, start, end, w, 3, t0, n)
    inside = (np.minimum(end, utc("2026-03-30")) - np.maximum(start, utc("2026-03-28"))) / np.timedelta64(1, "m")
    want = np.bincount(g, weights=w * np.maximum(inside, 0), minlength=3)
    np.testing.assert_allclose(out.sum(axis=1), want, atol=1e-8)
    assert (np.abs(out) <= 30 * np.bincount(g, weights=np.abs(w), minlength=3)[:, None] + 1e-9).all()


def test_annual_burning_hours_london_and_north_scotland():
    reg = ums.switch_regimes().loc["821"]
    london = ums.annual_burning_hours(reg, *LONDON, 2026)
    north = ums.annual_burning_hours(reg, *NORTH, 2026)
    assert 4000 < north < london < 4250
    assert london == pytest.approx(ums.switch_regimes().loc["821", "annual_hours"], rel=0.01)
    part = ums.annual_burning_hours(ums.switch_regimes().loc["823"], *NORTH, 2026)
    assert 1800 < part < 2600


# ------------------------------------------------------------------------------------------------ the methods


def _truth(inv: pd.DataFrame, methods: dict, pecu=None, cms=None) -> ums.UmsTruth:
    mp = sorted(set(inv["mpan"]))
    standing = pd.DataFrame({"gsp_group": "_C", "market_segment": "U", "connection_type": "U", "domestic": False,
                             "supplier": "ALFA", "bm_unit": "2__CALFA001", "llfc": "422", "measurement_quantity": "AI",
                             "annual_consumption": 1.0, "ums_method": [methods[m] for m in mp]},
                            index=pd.Index(mp, name="mpan"))
    empty_p = pd.DataFrame({c: [] for c in ums.PECU_COLUMNS})
    empty_c = pd.DataFrame({c: [] for c in ums.CMS_COLUMNS})
    return ums.UmsTruth(standing=standing, inventory=inv.assign(available_at=pd.Timestamp("2026-01-01")),
                        energy=None, pecu=empty_p if pecu is None else pecu, cms=empty_c if cms is None else cms)


def _array_night(role: str, night: str, on_min: float, off_min: float, n: int = 20, clock: float = 0.0,
                 available: str | None = None, bad: int = 0) -> pd.DataFrame:
    """n cells of type 35/18 switching on_min after sunset and off_min before sunrise (London)."""
    d = pd.Timestamp(night)
    rise, sset = sw.sun_times(*LONDON, [d, d + pd.Timedelta(days=1)])
    on = sset[0] + np.timedelta64(int(on_min * 60), "s")
    off = rise[1] - np.timedelta64(int(off_min * 60), "s")
    ons = np.full(n, on)
    ons[:bad] = on - np.timedelta64(5, "h")  # implausible cells
    return pd.DataFrame({"array_id": f"_C-{role[:3].upper()}", "gsp_group": "_C", "role": role,
                         "photocell": np.arange(1, n + 1), "photocell_type": "35/18", "night": d, "switch_on": ons,
                         "switch_off": off, "clock_deviation_s": clock,
                         "available_at": pd.Timestamp(available or f"{d + pd.Timedelta(days=1):%Y-%m-%d} 08:00")})


def test_pecu_fallback_order_primary_secondary_passive():
    nights = ["2026-01-10", "2026-01-11", "2026-01-12", "2026-01-13", "2026-01-14", "2026-01-15"]
    pecu = pd.concat([
        _array_night("primary", nights[0], 30, 30), _array_night("secondary", nights[0], 5, 5),
        _array_night("secondary", nights[1], 5, 5),  # primary never delivered
        _array_night("primary", nights[2], 30, 30, clock=900), _array_night("secondary", nights[2], 5, 5),
        _array_night("primary", nights[3], 30, 30, bad=12),  # too few plausible cells; no secondary
        # nights[4]: nothing at all
        _array_night("primary", nights[5], 30, 30, available="2026-02-01"), _array_night("secondary", nights[5], 5, 5),
    ], ignore_index=True)
    inv = inventory((MPAN_C, "L1", LED70, "821", 10, "_C", "a"))
    times = cal.time_axis(pd.Timestamp("2026-01-11"), pd.Timestamp("2026-01-16"))
    em = ums.equivalent_meter(inv, times, methods="pecu", pecu=pecu, as_of=pd.Timestamp("2026-01-20"))
    got = em.nights.set_index("night")[["source", "reason"]]
    want = {nights[0]: ("pecu_primary", 0), nights[1]: ("pecu_secondary", 2), nights[2]: ("pecu_secondary", 3),
            nights[3]: ("passive_fallback", 3), nights[4]: ("passive_fallback", 2),
            nights[5]: ("pecu_secondary", 2)}  # primary arrives after as_of
    for night, (source, reason) in want.items():
        assert tuple(got.loc[pd.Timestamp(night)]) == (source, reason), night
    # the energy follows the chosen array: primary 30 min after sunset / before sunrise, secondary 5, passive 12
    kw = 10 * 70 / 1000
    for night, on_min in ((nights[1], 5), (nights[3], 12)):
        _, sset = sw.sun_times(*LONDON, [night])
        lit_from = pd.Timestamp(sset[0]) + pd.Timedelta(minutes=on_min)
        j = times.get_loc(lit_from.floor("30min"))
        expected = kw * (lit_from.floor("30min") + pd.Timedelta(minutes=30) - lit_from).total_seconds() / 3600
        assert em.energy[0, j] == pytest.approx(expected, rel=1e-6)
        assert em.energy[0, j + 1] == pytest.approx(kw * 0.5)
    rise, _ = sw.sun_times(*LONDON, ["2026-01-11"])
    lit_to = pd.Timestamp(rise[0]) - pd.Timedelta(minutes=30)  # night 0, primary array
    j = times.get_loc(lit_to.floor("30min"))
    assert em.energy[0, j] == pytest.approx(kw * (lit_to - lit_to.floor("30min")).total_seconds() / 3600, rel=1e-6)
    assert em.energy[0, j + 1] == 0 and em.energy[0, j - 1] == pytest.approx(kw * 0.5)
    # quality through the segment service: A, E (Missing/Invalid), E7
    truth = _truth(inv, {MPAN_C: "pecu"}, pecu=pecu)
    res = ums.settle_segment(truth, pd.Timestamp("2026-01-20"), run="SF",
                             settlement_dates=pd.date_range("2026-01-11", "2026-01-16"))
    labels = pd.Series(cube.quality_label(res.meters["quality"].values[0]), index=times)
    reasons = pd.Series(cube.estimation_reason_label(res.meters["estimation_reason"].values[0]), index=times)
    assert labels["2026-01-11 03:00"] == "A" and reasons["2026-01-11 03:00"] == "NONE"  # night 0, primary
    assert labels["2026-01-11 20:00"] == "E" and reasons["2026-01-11 20:00"] == "Missing"  # night 1, secondary
    assert labels["2026-01-12 20:00"] == "E" and reasons["2026-01-12 20:00"] == "Invalid"
    assert labels["2026-01-13 20:00"] == "E7" and reasons["2026-01-13 20:00"] == "Invalid"
    assert labels["2026-01-14 20:00"] == "E7" and reasons["2026-01-14 20:00"] == "Missing"
    assert res.checks["PECU group-nights from pecu_secondary"] == 3


def test_cms_events_are_settled_exactly_and_fall_back_to_passive():
    d = pd.Timestamp("2026-01-10")

    def night(day, rows, available="2026-01-20"):
        return pd.DataFrame({"mpan": MPAN_C, "item_id": "L1", "night": pd.Timestamp(day),
                             "time": [pd.Timestamp(t) for t, _ in rows], "level": [lv for _, lv in rows],
                             "available_at": pd.Timestamp(available)})

    cms = pd.concat([
        night("2026-01-10", [("2026-01-10 16:30", 1.0), ("2026-01-10 22:00", 0.75), ("2026-01-11 06:00", 1.0),
                             ("2026-01-11 07:30", 0.0)]),
        night("2026-01-11", [("2026-01-11 16:30", 0.5), ("2026-01-12 07:30", 0.4)]),  # log never ends "off"
        # 2026-01-12: no log
    ], ignore_index=True)
    inv = inventory((MPAN_C, "L1", CMS_LED, "841", 100, "_C", "a"))
    times = cal.time_axis(d + pd.Timedelta(days=1), d + pd.Timedelta(days=2))
    em = ums.equivalent_meter(inv, times, methods="cms", cms=cms)
    kw = 100 * 27.5 / 1000
    e = pd.Series(em.energy[0], index=times)
    assert e["2026-01-11 00:00"] == pytest.approx(kw * 0.5 * 0.75)
    assert e["2026-01-11 06:30"] == pytest.approx(kw * 0.5)
    assert e["2026-01-11 07:30"] == 0
    src = pd.Series(np.array(ums.SOURCES)[em.source[0]], index=times)
    assert src["2026-01-11 03:00"] == "cms"
    assert src["2026-01-11 20:00"] == "passive_fallback" and em.reason[0][times.get_loc("2026-01-11 20:00")] == 3
    assert src["2026-01-12 20:00"] == "passive_fallback" and em.reason[0][times.get_loc("2026-01-12 20:00")] == 2
    # passive fallback keeps the regime's dimming: 75 % at 23:00
    assert e["2026-01-11 23:00"] == pytest.approx(kw * 0.5 * 0.75)
    # with the logs not yet delivered, every night is passive
    em2 = ums.equivalent_meter(inv, times, methods="cms", cms=cms, as_of=pd.Timestamp("2026-01-15"))
    assert (em2.source[0] == ums.SOURCES.index("passive_fallback")).all()


# ------------------------------------------------------------------------------------------------ generated truth


@pytest.fixture(scope="module", params=[("2026-03-28", "2026-03-30"), ("2026-10-24", "2026-10-26")],
                ids=["spring", "autumn"])
def generated(request):
    first, last = (pd.Timestamp(x) for x in request.param)
    times = cal.time_axis(first, last)
    truth = ums.generate_ums_truth(None, reference.gsp_groups(), times, np.random.default_rng(7), {"_C": 8, "_P": 4})
    return truth, pd.date_range(first, last)


def test_generated_standing_data(generated):
    truth, _ = generated
    s = truth.standing
    assert len(s) == 12 and mpan_mod.is_valid(s.index.to_numpy()).all()
    assert (mpan_mod.gsp_group_of(s.index.to_numpy()) == s["gsp_group"].to_numpy()).all()
    assert set(s["market_segment"]) == {"U"} and set(s["connection_type"]) == {"U"} and not s["domestic"].any()
    llfc = reference.line_loss_factor_classes()
    assert (llfc.loc[s["llfc"], "segment_use"] == "unmetered").all()
    cert = ums.ums_certificate(truth.declared_inventory()[list(ums.INVENTORY_COLUMNS)])
    np.testing.assert_allclose(s["annual_consumption"], cert["annual_consumption"].reindex(s.index))
    assert set(s["ums_method"]) <= {"passive", "pecu", "cms"}
    cube.meter_cube(truth.energy.values, truth.energy["time"].values, s.index.to_numpy(), s)


def test_generated_truth_is_deterministic_and_physical(generated):
    truth, days = generated
    times = cal.time_axis(days[0], days[-1])
    again = ums.generate_ums_truth(None, reference.gsp_groups(), times, np.random.default_rng(7), {"_C": 8, "_P": 4})
    np.testing.assert_array_equal(truth.energy.values, again.energy.values)
    pd.testing.assert_frame_equal(truth.pecu, again.pecu)
    e = truth.energy.values
    assert np.isfinite(e).all() and (e >= 0).all()
    n = cal.periods_in_day(days)
    assert sorted(set(n)) in ([46, 48], [48, 50])
    # nobody burns more than the installed load
    kw = (ums.charge_codes()["circuit_watts"].reindex(truth.inventory["true_charge_code"]).to_numpy()
          * truth.inventory["true_quantity"].to_numpy() / 1000)
    cap = pd.Series(kw).groupby(truth.inventory["mpan"].to_numpy()).sum().reindex(truth.energy["mpan"].values)
    assert (e <= cap.to_numpy()[:, None] * 0.5 + 1e-9).all()
    # the arrays have 30 cells and the array clock sometimes drifts
    assert truth.pecu.groupby(["array_id", "night"]).size().max() == 30


def test_planted_findings_are_found(generated):
    truth, _ = generated
    inv = truth.inventory
    f = ums.validate_inventory(inv[list(ums.INVENTORY_COLUMNS)])
    flagged = f.groupby("row")["finding"].apply(set)
    planted = inv["injected_error"]
    assert set(flagged.index) == set(np.flatnonzero(planted != ""))
    # the equipment on those lines burns, and only there
    lost = truth.invalid_line_energy.sum("time").to_series()
    owners = set(inv.loc[(planted != "") & (inv["true_quantity"] > 0), "mpan"])
    assert set(lost[lost > 0].index) <= owners and (truth.invalid_line_energy.values <= truth.energy.values + 1e-9).all()
    for row, finding in planted[planted != ""].items():
        assert finding in flagged[row]


def test_settle_segment_follows_the_protocol(generated):
    truth, days = generated
    times = cal.time_axis(days[0], days[-1])
    as_of = pd.Timestamp(days[-1] + pd.Timedelta(days=10))
    errors = {}
    for method in ("registered", "passive", "pecu", "cms"):
        res = ums.settle_segment(truth, as_of, run="R1", settlement_dates=days, config={"method": method})
        cube.validate_meter_cube(res.meters)
        assert res.segment == "U" and np.array_equal(res.meters["time"].values, times.to_numpy())
        assert res.checks["inventory lines in minus out"] == 0
        assert len(res.rejected) == res.checks["inventory lines rejected"] == (truth.inventory["injected_error"] != "").sum()
        assert list(res.rejected.columns[:5]) == ["mpan", "time", "field", "reason", "value"]
        q = res.meters["quality"].values
        assert (q != cube.MISSING).all()
        errors[method] = float(res.meters["energy"].sum() / truth.energy.sum() - 1)
    # every method is close to the truth, none is the truth
    assert all(0 < abs(e) < 0.1 for e in errors.values()), errors


_UMS_ENERGY_DIGEST = """
import hashlib, numpy as np, pandas as pd
from tomlib import calendar as cal, reference
from tomlib.services import ums
days = pd.date_range("2026-10-24", "2026-10-26")
times = cal.time_axis(days[0], days[-1])
truth = ums.generate_ums_truth(None, reference.gsp_groups(), times, np.random.default_rng(7), {"_C": 200, "_P": 200})
h = hashlib.blake2b()
for method in ("passive", "pecu", "cms"):
    res = ums.settle_segment(truth, days[-1] + pd.Timedelta(days=10), run="R1", settlement_dates=days,
                             config={"method": method})
    h.update(np.ascontiguousarray(res.meters["energy"].values).tobytes())
print(h.hexdigest())
"""


def test_equivalent_meter_energy_does_not_depend_on_the_blas_thread_count():
    """The same UMS MPANs settle to the same bits in a one-thread dask worker and in a process whose
    BLAS uses several threads (a BLAS matrix product rounds differently with its thread count: the
    GB day's in-memory sample check found one UMS cell 1 ulp apart)."""
    digests = set()
    for threads in ("1", "4"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        done = subprocess.run([sys.executable, "-c", _UMS_ENERGY_DIGEST], check=False, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        digests.add(done.stdout.strip())
    assert len(digests) == 1


def test_settle_segment_sees_only_what_has_arrived(generated):
    truth, days = generated
    early = ums.settle_segment(truth, pd.Timestamp(days[-1]), run="II", settlement_dates=days)
    late = ums.settle_segment(truth, pd.Timestamp(days[-1] + pd.Timedelta(days=30)), run="RF", settlement_dates=days)
    src = np.asarray(early.meters["ums_source"].values)
    last_day = np.asarray(early.meters["settlement_date"].values) == np.datetime64(days[-1])
    # the last night's array download and CMS logs come the morning after: not there at as_of
    fallback = ums.SOURCES.index("passive_fallback")
    switched = np.isin(truth.standing.loc[early.meters["mpan"].values, "ums_method"], ["pecu", "cms"])
    assert (src[np.ix_(switched, last_day)] == fallback).any()
    assert (np.asarray(late.meters["ums_source"].values) == fallback).sum() < (src == fallback).sum()
    with pytest.raises(ValueError, match="consecutive"):
        ums.settle_segment(truth, pd.Timestamp(days[-1]), run="II", settlement_dates=days[[0, 2]])


def test_truth_round_trips_through_files(generated, tmp_path):
    truth, days = generated
    for suffix in ((".nc",) if days[0].month == 3 else (".zarr",)):
        path = tmp_path / f"ums{suffix}"
        cube.save(truth.to_dataset(), path)
        back = ums.UmsTruth.from_dataset(cube.open(path))
        np.testing.assert_array_equal(back.energy.values, truth.energy.values)
        np.testing.assert_array_equal(back.invalid_line_energy.values, truth.invalid_line_energy.values)
        assert back.standing.index.tolist() == truth.standing.index.tolist()
        for name in ("inventory", "pecu", "cms"):
            a, b = getattr(truth, name), getattr(back, name)
            assert list(a.columns) == list(b.columns) and len(a) == len(b)
            for col in a.columns:
                np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]), err_msg=f"{name}.{col}")


def test_settlement_discovers_the_ums_service():
    from tomlib import settlement

    assert settlement.discover_services()["U"] is ums.settle_segment


def test_settings_refuse_nonsense():
    with pytest.raises(ValueError, match="lamp_outage must be within"):
        UmsSettings(lamp_outage=2.0)
    with pytest.raises(ValueError, match="UmsConfig.method"):
        ums.UmsConfig(method="guess")


def test_table_annual_hours_are_the_documented_computation():
    regimes = ums.switch_regimes()
    for r in regimes.index:
        hours = ums.annual_burning_hours(regimes.loc[r], 52.486, -1.890, 2025)
        assert round(hours) == regimes.loc[r, "annual_hours"], r
