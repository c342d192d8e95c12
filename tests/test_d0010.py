"""Tests of tomlib.flows.d0010: the real public samples (read, golden values, byte-identical round
trip), strict errors naming line and field, conversion to and from read records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from tomlib import mpan as mpan_mod
from tomlib.flows import d0010 as f
from tomlib.services import meter_reading as mr
from tomlib.services import metering as me

DATA = Path(__file__).parent / "data" / "d0010"
SETTER = DATA / "DTC5259515123502080915D0010.uff"
EDITED = DATA / "DTC5259515123502080915D0010x.uff"
PADDED = DATA / "example_d0010_copy.uff"
NOT_D0010 = DATA / "sample_d0010.txt"


@pytest.mark.parametrize("path", [SETTER, EDITED, PADDED], ids=lambda p: p.name)
def test_real_samples_round_trip_byte_identical(path, tmp_path):
    d = f.read_d0010(path, check_mpan=path != EDITED)
    assert f.format_d0010(d).encode("ascii") == path.read_bytes()
    out = f.write_d0010(d, tmp_path / path.name)
    assert out.read_bytes() == path.read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_setter_file_golden_values():
    d = f.read_d0010(SETTER)
    assert d.header["file_id"] == "0000475656" and d.header["flow_version"] == "D0010002"
    assert (d.header["from_role"], d.header["from_participant"]) == ("D", "UDMS")
    assert (d.header["to_role"], d.header["to_participant"], d.header["test_flag"]) == ("X", "MRCY", "OPER")
    assert d.trailer["record_count"] == "35" and d.trailer["flow_count"] == "11"
    assert d.final_newline is False
    r = d.readings
    assert len(r) == 13 and r["mpan"].nunique() == 11
    assert r["mpan"].map(lambda s: bool(mpan_mod.is_valid(s))).all()
    assert {"F75A 00802", "L85A 28596", "S76A 13884", "D03A 09936"} <= set(r["meter_id"])
    two = r[r["mpan"] == "2200031930792"]
    assert two["register_id"].tolist() == ["01", "02"] and two["value"].tolist() == ["20231.0", "64472.0"]
    assert r[r["mpan"] == "1900005281720"]["register_id"].tolist() == ["DY", "NT"]
    assert r.iloc[0]["line"] == 4 and r.iloc[-1]["line"] == 36
    reads = f.d0010_to_reads(d)
    assert reads["value"].sum() == 653_740.0
    assert reads["read_at"].min() == pd.Timestamp("2016-02-21") and reads["read_at"].max() == pd.Timestamp(
        "2016-03-01"
    )
    assert (reads["available_at"] == pd.Timestamp("2016-03-02 15:31:51")).all()  # GMT in March = UTC
    assert reads["read_type"].value_counts().to_dict() == {"customer": 8, "deemed": 5}


def test_padded_copy_keeps_whitespace_fields_and_same_content():
    a = f.read_d0010(SETTER)
    b = f.read_d0010(PADDED)
    pd.testing.assert_frame_equal(a.readings.drop(columns="line"), b.readings.drop(columns="line"))
    assert b.extra_fields[1] == (" ", " ") and b.extra_fields[37] == (" ",) and b.final_newline


def test_not_a_d0010_is_rejected_at_line_1():
    with pytest.raises(
        f.D0010Error, match=r"sample_d0010\.txt, line 1: expected a ZHV record, got '404: Not Found'"
    ):
        f.read_d0010(NOT_D0010)


def _mtd_from(d: f.D0010) -> me.Metering:
    """MTDs of the metering points of a D0010 (one 6-digit single-rate-like meter each)."""
    r = d.readings.drop_duplicates(["mpan", "meter_id", "register_id"])
    meters = r.drop_duplicates(["mpan", "meter_id"])[["mpan", "meter_id"]].assign(
        meter_type="traditional",
        dcc_enrolled=False,
        ssc="0393",
        measurement_quantity="AI",
        digits=5,
        installed_at=pd.Timestamp("2010-01-01"),
        removed_at=pd.NaT,
    )
    registers = r[["mpan", "meter_id", "register_id"]].assign(
        tpr="00001", digits=5, slot=0, true_start_at=pd.NaT, true_start_value=0.0
    )
    return me.Metering(
        meters=meters.reset_index(drop=True),
        registers=registers.reset_index(drop=True),
        exchanges=pd.DataFrame(),
        exchange_reads=me.empty_reads(),
        cumulative=xr.DataArray(np.zeros((0, 1)), dims=("slot", "boundary")),
        config=me.MeteringConfig(),
        seed=0,
    )


def test_edited_sample_is_refused_for_its_bad_check_digit():
    with pytest.raises(f.D0010Error, match=r"DTC5259515123502080915D0010x\.uff, line 2, field 2 \(mpan\): expected a "
                                           r"13-digit MPAN core with a valid check digit, got '1204023305967' "
                                           r"\(check digit 7, expected 4\)"):
        f.read_d0010(EDITED)


def test_edited_sample_bad_input_is_reported_not_dropped():
    # check_mpan=False: the data service's screen refuses the one reading instead of the whole file
    mtd = _mtd_from(f.read_d0010(SETTER))
    reads = f.d0010_to_reads(f.read_d0010(EDITED, check_mpan=False))
    out = mr.screen_reads(reads, mtd)
    rej = out.rejected.set_index("meter_id")
    # Line 2: MPAN with a bad check digit (its 2026-dated read of line 4 is refused for that first).
    assert (
        rej.loc["F75A 00802", "reason"] == "invalid_mpan"
        and rej.loc["F75A 00802", "value"] == "1204023305967"
    )
    # Line 8: still a valid check digit, but not a known MPAN.
    assert rej.loc["L85A 28596", "reason"] == "unknown_mpan"
    # Line 18: meter serial changed.
    assert rej.loc[["S8QQ24767"], "reason"].tolist() == ["unknown_meter"] * 2  # both its registers
    assert out.checks["rejected"] == 4 and out.checks["accepted"] == 9
    assert out.checks["in_records"] == 13
    # The changed value (17393 -> 1393) passes intake: it is a consumption check for processing.
    assert 1393.0 in out.accepted["value"].tolist()
    # The future-dated read on its own is refused as such.
    alone = reads[reads["line"] == 4].assign(mpan="1200023305967")
    assert mr.screen_reads(alone, mtd).rejected["reason"].tolist() == ["future_dated"]


SETTER_TEXT = SETTER.read_text()


def _broken(old: str, new: str, count: int = 1) -> str:
    assert old in SETTER_TEXT
    return SETTER_TEXT.replace(old, new, count)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            _broken("030|S|20160222000000|", "030|S|20161322000000|"),
            (
                r"x\.uff, line 4, field 3 \(read_at\): expected a valid CCYYMMDDHHMMSS date-time, "
                r"got '20161322000000'"
            ),
        ),
        (_broken("|35||11|", "|34||11|"), r"line 37, field 3 \(record_count\): expected 35"),
        (_broken("|35||11|", "|35||12|"), r"line 37, field 5 \(flow_count\): expected 11"),
        (_broken("ZPT|0000475656|", "ZPT|0000475657|"), r"line 37, field 2 \(file_id\)"),
        (
            _broken("026|1200023305967|V|", "026|120002330596|V|"),
            r"line 2, field 2 \(mpan\): expected a 13-digit",
        ),
        (_broken("028|F75A 00802|D|", "028| F75A 00802|D|"), r"line 3, field 2 \(meter_id\)"),
        (
            _broken("|56311.0|||T|N|", "|56311.0|||T|N|X|"),
            r"line 4: field 9: 030 record has 8 fields, expected 7",
        ),
        (_broken("|56311.0|||T|N|", "|56311.0|||T|"), r"line 4: 030 record has 6 fields, expected 7"),
        (_broken("|56311.0|||T|N|", "|-5.0|||T|N|"), r"line 4, field 4 \(value\)"),
        (
            _broken("030|S|20160222000000|56311.0|||T|N|", "030|S|20160222000000|56311.0|||T|N"),
            r"line 4: record does not end with '\|'",
        ),
        (_broken("028|F75A 00802|D|\n", ""), r"line 3: expected a 028 record, got '030"),
        (
            _broken("030|S|20160222000000|56311.0|||T|N|\n", "029|X|\n"),
            r"line 4: expected a 030 record, got '029",
        ),
        (_broken("\n", "\r\n"), r"line 1: carriage return found"),
        ("", r"empty file"),
        ("ZHV|0000475656|D0010002|D|UDMS|X|MRCY|20160302153151||||OPER|", r"at least a ZHV header and a ZPT"),
    ],
)
def test_strict_errors_name_line_and_field(text, message):
    with pytest.raises(f.D0010Error, match=message):
        f.parse_d0010(text, source="x.uff")


def test_non_ascii_file_is_refused(tmp_path):
    p = tmp_path / "bad.uff"
    p.write_bytes(SETTER.read_bytes().replace(b"F75A", b"F\xe9A", 1))
    with pytest.raises(f.D0010Error, match=r"bad\.uff, line 3: byte 0xe9 is not ASCII"):
        f.read_d0010(p)


def _reads(n=5, seed=1):
    rng = np.random.default_rng(seed)
    cores = mpan_mod.generate_cores(["_C"] * n, rng).astype(str)
    rows = []
    for i, core in enumerate(cores):
        for t in ("2026-03-29 09:00", "2026-10-25 12:30"):  # 46- and 50-period days, unambiguous hours
            for reg in ("01", "02")[: 1 + i % 2]:
                rows.append(
                    (
                        core,
                        f"S{i:02d}A 0{i:04d}",
                        reg,
                        pd.Timestamp(t),
                        float(rng.integers(0, 99999)),
                        ["site_visit", "customer", "deemed", "removal", "installation", "remote"][i % 6],
                    )
                )
    df = pd.DataFrame(rows, columns=["mpan", "meter_id", "register_id", "read_at", "value", "read_type"])
    df["available_at"] = pd.Timestamp("2026-11-01")
    return df


def test_reads_round_trip_through_d0010(tmp_path):
    reads = _reads()
    d = f.reads_to_d0010(
        reads,
        file_id="0000000001",
        from_participant="TOMD",
        to_participant="ALFA",
        created_at="2026-11-01 09:00",
    )
    path = f.write_d0010(d, tmp_path / "out.uff")
    back = f.d0010_to_reads(f.read_d0010(path), available_at="2026-11-01")
    key = ["mpan", "meter_id", "register_id", "read_at"]
    a = reads.sort_values(key).reset_index(drop=True)
    b = back.sort_values(key).reset_index(drop=True)
    for c in ["mpan", "meter_id", "register_id", "read_at", "value", "read_type", "available_at"]:
        assert (a[c].to_numpy() == b[c].to_numpy()).all(), c
    # 2026-03-29 09:00 UTC is 10:00 BST; the header time is local too.
    text = path.read_text()
    assert "|20260329100000|" in text and "|20261025123000|" in text and "|20261101090000|" in text
    assert text.count("\n026|") == 5
    assert f.format_d0010(f.parse_d0010(text)) == text
    # Meter readings of a meter at one instant share one 028 group.
    assert text.count("\n028|") == 10


def test_generated_reads_export_to_d0010():
    from tomlib import calendar as cal
    from tomlib import cube
    from tomlib.market import Market

    times = cal.time_axis("2026-03-28", "2026-03-30")
    cores = mpan_mod.generate_cores(["_C"] * 20, np.random.default_rng(4)).astype(str)
    standing = pd.DataFrame(
        {
            "gsp_group": "_C",
            "market_segment": "S",
            "connection_type": "W",
            "domestic": True,
            "supplier": "ALFA",
            "bm_unit": "2__CALFA001",
            "llfc": "001",
            "measurement_quantity": "AI",
            "annual_consumption": 3000.0,
            "profile_class": 1,
            "linked_mpan": "",
        },
        index=pd.Index(cores, name="mpan"),
    )
    empty = xr.DataArray(np.zeros((0, len(times))), dims=("gsp_group", "time"))
    market = Market(
        scenario_name="hand",
        seed=4,
        meters=cube.meter_cube(np.full((20, len(times)), 0.4), times, cores, standing),
        line_loss_factors=empty,
        unaccounted_energy=empty,
        gsp_group_take=empty,
    )
    m = me.build_metering(market, me.MeteringConfig(dcc_share=0.0, exchange_share=0.2))
    reads = mr.read_meters(market, m).reads
    d = f.reads_to_d0010(
        reads, file_id="77", from_participant="TOMD", to_participant="ALFA", created_at="2026-04-01"
    )
    back = f.d0010_to_reads(d)
    assert len(back) == len(reads)
    assert sorted(back["value"]) == sorted(reads["value"])
    assert set(back.loc[back["d0010_reading_type"] == "R", "read_type"]) <= {"site_visit"}


def test_reads_to_d0010_refuses_what_it_cannot_write():
    reads = _reads(1)
    with pytest.raises(f.D0010Error, match="repeated local hour"):
        f.reads_to_d0010(
            reads.assign(read_at=pd.Timestamp("2026-10-25 00:30")),
            file_id="1",
            from_participant="TOMD",
            to_participant="ALFA",
            created_at="2026-11-01",
        )
    with pytest.raises(f.D0010Error, match="not a non-negative reading with one decimal"):
        f.reads_to_d0010(
            reads.assign(value=1.25),
            file_id="1",
            from_participant="TOMD",
            to_participant="ALFA",
            created_at="2026-11-01",
        )
    with pytest.raises(f.D0010Error, match="read_type 'mystery'"):
        f.reads_to_d0010(
            reads.assign(read_type="mystery"),
            file_id="1",
            from_participant="TOMD",
            to_participant="ALFA",
            created_at="2026-11-01",
        )
    with pytest.raises(f.D0010Error, match=r"field 2 \(file_id\)"):
        f.reads_to_d0010(
            reads,
            file_id="TOO-LONG-ID-123",
            from_participant="TOMD",
            to_participant="ALFA",
            created_at="2026-11-01",
        )


def test_ambiguous_local_read_time_is_refused_on_import():
    text = _broken("030|S|20160222000000|", "030|S|20161030013000|")
    d = f.parse_d0010(text, source="amb.uff")
    with pytest.raises(
        f.D0010Error, match=r"amb\.uff, line 4, field 3 \(read_at\): local time '20161030013000'"
    ):
        f.d0010_to_reads(d)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A1", "01", "S", "NT"]), st.integers(0, 9_999_999), st.integers(0, 10)),
        min_size=1,
        max_size=8,
        unique_by=lambda r: (r[0], r[2]),  # a register is read once per read time (the reader's rule)
    )
)
def test_format_parse_is_identity(regs):
    reads = pd.DataFrame(
        {
            "mpan": "1200023305967",
            "meter_id": "F75A 00802",
            "register_id": [r for r, _, _ in regs],
            "read_at": [pd.Timestamp("2026-01-05") + pd.Timedelta(days=k) for _, _, k in regs],
            "value": [v / 10 for _, v, _ in regs],
            "read_type": "customer",
        }
    )
    d = f.reads_to_d0010(
        reads, file_id="5", from_participant="TOMD", to_participant="ALFA", created_at="2026-02-01"
    )
    text = f.format_d0010(d)
    again = f.parse_d0010(text)
    assert f.format_d0010(again) == text
    assert sorted(again.readings["value"].astype(float)) == sorted(reads["value"])
