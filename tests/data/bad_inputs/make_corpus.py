"""Write the bad-input corpus: one small file per (reader, fault), each a good base with one fault.

Run from the repository root (``.venv/bin/python tests/data/bad_inputs/make_corpus.py``); it rewrites
every file listed in ``README.md`` next to it. The bases are written out here in full (D0010: the
Kraken setter sample of ``tests/data/d0010``; UMS: ``datasets/ums/sample_inventory.txt``; scenario:
``datasets/scenarios/tiny.yaml``; the others are small hand-made files), so the fault in each file is
the one edit named below. The market files are tiny saved markets (netCDF) built with tomlib.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

#: The MPANs of the half-hourly corpus and their standing data (tests/test_bad_inputs.py uses the same).
MPAN_C, MPAN_P, MPAN_UNKNOWN = "1200000000011", "1800000000028", "1200000000094"


def write(rel: str, text: str | bytes) -> None:
    path = HERE / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="ascii", newline="\n")


def edit(base: str, old: str, new: str, count: int = 1) -> str:
    assert base.count(old) >= count, old
    return base.replace(old, new, count)


def cut(base: str, n_bytes: int) -> str:
    """The first bytes of a file, ending mid-line: what a transfer cut short leaves."""
    out = base[:n_bytes]
    assert not out.endswith("\n")
    return out


# ------------------------------------------------------------------------------------------ D0010

def d0010() -> None:
    base = (ROOT / "tests/data/d0010/DTC5259515123502080915D0010.uff").read_text(encoding="ascii")
    write("d0010/empty.uff", "")
    write("d0010/truncated.uff", cut(base, base.index("026|1200031039874")+10))
    write("d0010/wrong_check_digit.uff", edit(base, "026|1200023305967|", "026|1200023305968|"))
    write("d0010/non_numeric_value.uff", edit(base, "|56311.0|", "|5631l.0|"))
    write("d0010/negative_value.uff", edit(base, "|56311.0|", "|-56311.0|"))
    write("d0010/date_out_of_range.uff", edit(base, "030|S|20160222000000|", "030|S|18991231000000|"))
    # the same register read twice at one time with another value (record count kept right)
    dup = edit(base, "030|S|20160222000000|56311.0|||T|N|\n",
               "030|S|20160222000000|56311.0|||T|N|\n030|S|20160222000000|57311.0|||T|N|\n")
    write("d0010/duplicate_conflicting.uff", edit(dup, "|35||11|", "|36||11|"))


# ------------------------------------------------------------------------------------------ UMS inventory

def ums() -> None:
    base = (ROOT / "datasets/ums/sample_inventory.txt").read_text(encoding="ascii")
    write("ums_inventory/empty.txt", "")
    write("ums_inventory/truncated.txt", cut(base, base.index("UMP|1217893481364") + 20))
    write("ums_inventory/wrong_check_digit.txt", edit(base, "UMP|1263991316570|", "UMP|1263991316571|"))
    write("ums_inventory/unknown_gsp_group.txt", edit(base, "UMP|1737050052711|_P|", "UMP|1737050052711|_I|"))
    write("ums_inventory/non_numeric_quantity.txt", edit(base, "|821|10|Example", "|821|ten|Example"))
    write("ums_inventory/date_out_of_range.txt", edit(base, "UMP|1217893481364|_C|20260301|",
                                                      "UMP|1217893481364|_C|18991231|"))


# ------------------------------------------------------------------------------------------ IF022 / IF023

def _if022_record(day: str, sp: int, start: str, end: str, value: float = 0.21, group: str = "_C") -> dict:
    return {"sourceFileName": "tomlib_LSS_IF022_SF", "sourceFileDatetime": "2026-03-31T00:00:00Z",
            "settlementDate": day, "settlementPeriodStartDateTime": start, "settlementPeriodEndDateTime": end,
            "settlementPeriod": sp, "gspGroupId": group, "connectionTypeIndicator": "W",
            "marketSegmentIndicator": "S", "domesticPremiseIndicator": "T", "measurementQuantityId": "AI",
            "runNumber": 2, "eventCode": "LSSPeriodData", "settlementPeriodDuration": 30,
            "loadShapePeriodValue": value, "defaultLoadShapeFlag": "A"}


def _if022_text(records: list[dict]) -> str:
    # the layout write_if022 writes: one record per line
    return ('{"data": [\n' + ",\n".join(json.dumps(r) for r in records) + '\n], "metadata": {"datasets": ["IF022"]}}\n')


def if022() -> None:
    # periods 1-3 of the spring day (46 periods; period 3 starts at 01:00 UTC) and period 1 of the next day
    good = [_if022_record("2026-03-29", 1, "2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z"),
            _if022_record("2026-03-29", 2, "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"),
            _if022_record("2026-03-29", 3, "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"),
            _if022_record("2026-03-30", 1, "2026-03-29T23:00:00Z", "2026-03-29T23:30:00Z")]

    def with_last(**changes) -> str:
        return _if022_text(good[:-1] + [{**good[-1], **changes}])

    text = _if022_text(good)
    write("if022/empty.json", "")
    write("if022/truncated.json", cut(text, text.index('"settlementPeriod": 3') + 5))
    write("if022/period_49_on_48_day.json", with_last(settlementPeriod=49))
    write("if022/period_47_on_46_day.json", _if022_text(good[:-1] + [{**good[2], "settlementPeriod": 47}]))
    write("if022/duplicate_conflicting.json", _if022_text(good + [{**good[1], "loadShapePeriodValue": 0.5}]))
    write("if022/non_numeric_value.json", with_last(loadShapePeriodValue="0.2l"))
    write("if022/negative_value.json", with_last(loadShapePeriodValue=-0.21))
    write("if022/wrong_units.json", with_last(settlementPeriodDuration=60))
    write("if022/unknown_gsp_group.json", with_last(gspGroupId="_I"))
    write("if022/date_out_of_range.json", with_last(settlementDate="1899-12-30"))
    totals = {"sourceFileName": "tomlib_LSS_IF023_SF", "sourceFileDatetime": "2026-03-31T00:00:00Z",
              "settlementDate": "2026-03-29", "gspGroupId": "_C", "connectionTypeIndicator": "W",
              "marketSegmentIndicator": "S", "domesticPremiseIndicator": "T", "measurementQuantityId": "AI",
              "runNumber": 2, "eventCode": "LSSTotalsData", "settlementPeriodDuration": 30,
              "loadShapeDayTotal": -9.5, "loadShapeDayPeakTotal": None, "loadShapeDayOffPeakTotal": None,
              "loadShape7DayRollingTotal": 66.1, "loadShape7DayRollingPeakTotal": None,
              "loadShape7DayRollingOffPeakTotal": None, "loadShapeRollingAnnualTotal": 3100.0}
    write("if023/negative_total.json", '{"data": [\n' + json.dumps(totals)
          + '\n], "metadata": {"datasets": ["IF023"]}}\n')


# ------------------------------------------------------------------------------------------ GCF

def gcf() -> None:
    head = "date,run,period,gsp_group,type,value\n"
    rows = ["2026-03-29,SF,45,_C,mhhs_import_gcf,1.0123", "2026-03-29,SF,46,_C,mhhs_import_gcf,1.0087",
            "2026-03-30,SF,1,_C,mhhs_import_gcf,0.9981", "2026-03-30,SF,1,_P,mhhs_import_gcf,1.0012"]
    base = head + "\n".join(rows) + "\n"
    write("gcf/empty.csv", "")
    write("gcf/truncated.csv", cut(base, len(base) - 12))
    write("gcf/wrong_header.csv", edit(base, "date,run,period,gsp_group,type,value", "Date,Run,SP,GSP,Type,GCF"))
    write("gcf/period_49_on_48_day.csv", edit(base, "2026-03-30,SF,1,_P", "2026-03-30,SF,49,_P"))
    write("gcf/period_47_on_46_day.csv", edit(base, "2026-03-29,SF,46,_C", "2026-03-29,SF,47,_C"))
    write("gcf/duplicate_conflicting.csv", base + "2026-03-29,SF,46,_C,mhhs_import_gcf,1.0200\n")
    write("gcf/non_numeric_value.csv", edit(base, ",0.9981", ",O.9981"))
    write("gcf/unknown_gsp_group.csv", edit(base, ",1,_P,", ",1,_I,"))
    write("gcf/date_out_of_range.csv", edit(base, "2026-03-30,SF,1,_P", "1899-12-30,SF,1,_P"))


# ------------------------------------------------------------------------------------------ half-hourly

def _hhc_base() -> str:
    lines = ["ZHV|1|HHC001|D|TOMD|X|TOMS|20260331000000|TEST|", f"MPD|{MPAN_C}|_C|AI|kWh|", "SDY|20260329|46|"]
    lines += [f"HHV|{j}|{0.2 + j / 1000:.3f}|A||" for j in range(1, 47)]
    lines += [f"MPD|{MPAN_P}|_P|AI|kWh|", "SDY|20260330|48|"]
    lines += [f"HHV|{j}|{0.3 + j / 1000:.3f}|{'E' if j == 7 else 'A'}|{'CommsFault' if j == 7 else ''}|"
              for j in range(1, 49)]
    lines.append(f"ZPT|1|{len(lines) - 1}|2|20260331000000|")
    return "\n".join(lines) + "\n"


def hh() -> None:
    base = _hhc_base()
    w = lambda name, text: write(f"hh_hhc/{name}.hhc", text)
    w("empty", "")
    w("truncated", cut(base, base.index("HHV|30|0.330") + 7))
    w("wrong_check_digit", edit(base, f"MPD|{MPAN_C}|", f"MPD|{MPAN_C[:-1]}2|"))
    w("mpan_not_in_standing", edit(base, f"MPD|{MPAN_P}|", f"MPD|{MPAN_UNKNOWN}|").replace("|_P|AI|", "|_C|AI|"))
    w("unknown_gsp_group", edit(base, f"MPD|{MPAN_P}|_P|", f"MPD|{MPAN_P}|_I|"))
    w("wrong_units", edit(base, f"MPD|{MPAN_P}|_P|AI|kWh|", f"MPD|{MPAN_P}|_P|AI|MWh|"))
    p49 = edit(base, "HHV|48|0.348|A||\n", "HHV|48|0.348|A||\nHHV|49|0.349|A||\n")
    w("period_49_on_48_day", p49.replace(f"ZPT|1|{base.count(chr(10)) - 2}|", f"ZPT|1|{base.count(chr(10)) - 1}|"))
    p47 = edit(base, "HHV|46|0.246|A||\n", "HHV|46|0.246|A||\nHHV|47|0.247|A||\n")
    w("period_47_on_46_day", p47.replace(f"ZPT|1|{base.count(chr(10)) - 2}|", f"ZPT|1|{base.count(chr(10)) - 1}|"))
    dup = edit(base, "HHV|5|0.305|A||\n", "HHV|5|0.305|A||\nHHV|5|0.505|A||\n")
    w("duplicate_conflicting", dup.replace(f"ZPT|1|{base.count(chr(10)) - 2}|", f"ZPT|1|{base.count(chr(10)) - 1}|"))
    w("non_numeric_energy", edit(base, "HHV|9|0.309|", "HHV|9|0.3O9|"))
    w("negative_energy", edit(base, "HHV|9|0.309|", "HHV|9|-0.309|"))
    w("date_out_of_range", edit(base, "SDY|20260330|48|", "SDY|18991230|48|"))
    w("unknown_quality", edit(base, "HHV|9|0.309|A|", "HHV|9|0.309|X9|"))

    head = "mpan,settlement_date,settlement_period,energy_kwh,quality,estimation_reason\n"
    rows = [f"{MPAN_C},2026-03-29,45,0.245,A,", f"{MPAN_C},2026-03-29,46,0.246,A,",
            f"{MPAN_P},2026-03-30,47,0.347,E,CommsFault", f"{MPAN_P},2026-03-30,48,0.348,A,"]
    base = head + "\n".join(rows) + "\n"
    w = lambda name, text: write(f"hh_csv_period/{name}.csv", text)
    w("empty", "")
    w("truncated", cut(base, len(base) - 9))
    w("wrong_check_digit", edit(base, f"{MPAN_P},2026-03-30,48", f"{MPAN_P[:-1]}9,2026-03-30,48"))
    w("mpan_not_in_standing", edit(base, f"{MPAN_P},2026-03-30,48", f"{MPAN_UNKNOWN},2026-03-30,48"))
    w("wrong_units", edit(base, "energy_kwh", "energy_mwh"))
    w("period_49_on_48_day", edit(base, "2026-03-30,48,", "2026-03-30,49,"))
    w("period_47_on_46_day", edit(base, "2026-03-29,46,", "2026-03-29,47,"))
    w("duplicate_conflicting", base + f"{MPAN_C},2026-03-29,45,0.345,A,\n")
    w("non_numeric_energy", edit(base, ",0.347,", ",n/a,"))
    w("negative_energy", edit(base, ",0.347,", ",-0.347,"))
    w("date_out_of_range", edit(base, "2026-03-30,48,", "2041-03-30,48,"))
    w("unknown_quality", edit(base, ",0.348,A,", ",0.348,Z,"))

    head = "mpan,utc_start,energy_kwh,quality,estimation_reason\n"
    rows = [f"{MPAN_C},2026-03-29T00:30:00Z,0.202,A,", f"{MPAN_C},2026-03-29T01:00:00Z,0.203,A,",
            f"{MPAN_P},2026-10-25T01:00:00Z,0.303,A,", f"{MPAN_P},2026-10-25T01:30:00Z,0.304,E,Missing"]
    base = head + "\n".join(rows) + "\n"
    w = lambda name, text: write(f"hh_csv_utc/{name}.csv", text)
    w("empty", "")
    w("truncated", cut(base, len(base) - 20))
    w("wrong_check_digit", edit(base, f"{MPAN_C},2026-03-29T01:00", f"{MPAN_C[:-1]}7,2026-03-29T01:00"))
    w("wrong_units", edit(base, "energy_kwh", "energy"))
    w("not_a_period_start", edit(base, "2026-10-25T01:30:00Z", "2026-10-25T01:45:00Z"))
    w("local_time_not_utc", edit(base, "2026-10-25T01:30:00Z", "2026-10-25T01:30:00+01:00"))
    w("duplicate_conflicting", base + f"{MPAN_P},2026-10-25T01:00:00Z,0.403,A,\n")
    w("non_numeric_energy", edit(base, ",0.303,", ",0.3.03,"))
    w("negative_energy", edit(base, ",0.303,", ",-0.303,"))
    w("date_out_of_range", edit(base, "2026-10-25T01:30:00Z", "1995-10-25T01:30:00Z"))


# ------------------------------------------------------------------------------------------ NESO demand

def neso() -> None:
    from datetime import date

    rows = []
    for day, n in ((date(2022, 3, 26), 48), (date(2022, 3, 27), 46)):
        for j in range(1, n + 1):
            rows.append(f'"{day:%Y-%m-%d}",{j},{24000 + 37 * j},{25500 + 37 * j},{21000 + 33 * j}')
    head = '"SETTLEMENT_DATE","SETTLEMENT_PERIOD","ND","TSD","ENGLAND_WALES_DEMAND"\n'
    base = head + "\n".join(rows) + "\n"
    w = lambda name, text: write(f"neso_demand/{name}.csv", text)
    w("empty", "")
    w("truncated", cut(base, base.index('"2022-03-27",31,') + 20))
    w("truncated_day", base[: base.index('"2022-03-27",31,')])
    w("wrong_header", edit(base, '"SETTLEMENT_PERIOD"', '"PERIOD"'))
    w("period_49_on_48_day", edit(base, '"2022-03-26",48,', '"2022-03-26",49,'))
    w("period_47_on_46_day", edit(base, '"2022-03-27",46,', '"2022-03-27",47,'))
    w("missing_period", edit(base, '"2022-03-26",11,24407,25907,21363\n', ""))
    w("duplicate_conflicting", edit(base, '"2022-03-26",12,24444,25944,21396\n',
                                    '"2022-03-26",12,24444,25944,21396\n"2022-03-26",12,24544,25944,21396\n'))
    w("non_numeric", edit(base, '"2022-03-26",20,24740,', '"2022-03-26",20,24k740,'))
    w("negative", edit(base, ",21660\n", ",-21660\n"))
    w("wrong_units", edit(base, '"2022-03-26",3,24111,', '"2022-03-26",3,24.111,'))
    w("date_out_of_range", edit(base, '"2022-03-26"', '"1899-03-26"', 48))


# ------------------------------------------------------------------------------------------ scenario

def scenario() -> None:
    base = (ROOT / "datasets/scenarios/tiny.yaml").read_text(encoding="utf-8")
    w = lambda name, text: write(f"scenario/{name}.yaml", text)
    w("empty", "")
    w("truncated", cut(base, base.index("  retry_days: 3") + 9))
    w("unknown_gsp_group", edit(base, "gsp_groups: [_C, _P]", "gsp_groups: [_C, _Q]"))
    w("date_out_of_range", edit(base, "last_date: 2026-03-30", "last_date: 2046-03-30"))
    w("non_numeric", edit(base, "seed: 1\n", "seed: one\n"))
    w("negative", edit(base, "success_rate: 0.97", "success_rate: -0.97"))
    w("wrong_units", edit(base, "success_rate: 0.97", "success_rate: 97"))
    w("duplicate_conflicting", edit(base, "seed: 1\n", "seed: 1\nseed: 2\n"))
    w("unknown_key", edit(base, "  retry_days: 3", "  retry_dayz: 3"))


# ------------------------------------------------------------------------------------------ market

def market() -> None:
    import numpy as np
    import pandas as pd
    import xarray as xr

    from tomlib import calendar as cal
    from tomlib import cube
    from tomlib.market import Market

    times = cal.time_axis("2026-03-29", "2026-03-29")  # the 46-period day
    standing = pd.DataFrame({"gsp_group": ["_C", "_P"], "market_segment": "S", "connection_type": "W",
                             "domestic": True, "supplier": "ALFA", "bm_unit": ["2__CALFA001", "2__PALFA001"],
                             "llfc": ["101", "201"], "measurement_quantity": "AI", "annual_consumption": 3000.0},
                            index=pd.Index([MPAN_C, MPAN_P], name="mpan"))
    meters = cube.meter_cube(np.full((2, 46), 0.25), times, standing.index.to_numpy(), standing)

    def table(dim, keys, value, units):
        return xr.DataArray(np.full((len(keys), 46), value), dims=(dim, "time"),
                            coords={dim: keys, "time": times.to_numpy()}, attrs={"units": units})

    def save(name, llf=None, take=None):
        llf = table("llfc", ["101", "201"], 1.05, "-") if llf is None else llf
        take = table("gsp_group", ["_C", "_P"], 0.2625, "kWh") if take is None else take
        path = HERE / "market" / f"{name}.nc"
        path.parent.mkdir(exist_ok=True)
        Market("bad_inputs", 1, meters, llf, xr.zeros_like(take), take).save(path)
        return path

    save("missing_llf", llf=table("llfc", ["101"], 1.05, "-"))
    nan = table("llfc", ["101", "201"], 1.05, "-")
    nan.values[1, 3] = np.nan
    save("llf_nan_period", llf=nan)
    save("llf_in_percent", llf=table("llfc", ["101", "201"], 105.0, "-"))
    save("missing_gsp_group_take", take=table("gsp_group", ["_C"], 0.2625, "kWh"))
    nan = table("gsp_group", ["_C", "_P"], 0.2625, "kWh")
    nan.values[0, 2] = np.nan
    save("take_nan_period", take=nan)
    save("take_in_mwh", take=table("gsp_group", ["_C", "_P"], 0.0002625, "MWh"))
    good = save("good").read_bytes()
    (HERE / "market" / "good.nc").unlink()
    write("market/truncated.nc", good[: len(good) // 2])
    write("market/empty.nc", b"")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for make in (d0010, ums, if022, gcf, hh, neso, scenario, market):
        make()
