"""Maintenance script: rebuild the real-data extracts in ``tomlib/reference/data`` from the shared sources.

Never imported by the package at run time (the product must not read ``/work/shared``). Run it by hand
when a source changes::

    .venv/bin/python -m tomlib.reference._extract /work/shared/data

It rewrites ``gsp_groups.csv`` (distributor columns only; the illustrative coordinates are kept from the
existing file), ``line_loss_factor_classes.csv`` and ``profile_class_shapes.csv``, each with a provenance
header giving the source file and its sha256 from the source's SHA256SUMS.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import sys
from pathlib import Path

DATA_DIR = Path(__file__).with_name("data")

# Distributor short code -> GSP group. Standard industry knowledge, not a table in the MDD extract;
# checked against the distributor names in Market_Participant_Role.csv (Address 1), see README.md.
DISTRIBUTOR_GSP = {
    10: "_A", 11: "_B", 12: "_C", 13: "_D", 14: "_E", 15: "_F", 16: "_G",
    17: "_P", 18: "_N", 19: "_J", 20: "_H", 21: "_K", 22: "_L", 23: "_M",
}

LLFC_EFFECTIVE_AT = dt.date(2019, 4, 1)

# (segment_use, market_segment, measurement_quantity, voltage_level, required, [regex in priority order])
# Regexes are matched (case-insensitive, full match) against the LLFC description. Within a regex the
# lowest id wins; an id already taken by an earlier distributor (in distributor id order) is skipped so
# that the extract's `llfc` key is unique across distributors.
LLFC_RULES = [
    ("smart_domestic", "S", "AI", "LV", True, [
        r"(domestic|dom)[ _,]+(unrestricted|single rate)( credit|, credit)?",
        r"1ph[ _]dom[ _]ur",
        r"profile 1 unrestricted",
        r"3ph[ _]dom[ _]ur",
        r"lv[ _]network[ _]dom(estic)?",
    ]),
    ("smart_non_domestic", "S", "AI", "LV", True, [
        r"(small non dom(estic)?|sml non domestic) (unrestricted|unresricted|single rate)",
        r"1ph[ _]nondom[ _]ur",
        r"profile 3 unrestricted",
        r"business 1rate credit lv net",
        r"business general",
        r"general block 2",
        r"lv[ _]network[ _]non-?dom(estic)?[ _]non-ct",
    ]),
    ("advanced_lv", "A", "AI", "LV", True, [
        r"lv (hh|half hourly)( metered)?",
        r"business hh lv net",
        r"half hourly lv with moa",
        r"pc 5-8 & hh lv",
        r"lv sub pc 5-8 and hh metered",
        r"lv[ -]sub hh metered",
    ]),
    ("advanced_hv", "A", "AI", "HV", True, [
        r"hv (hh|half hourly)( metered)?",
        r"business hh hv net",
        r"half hourly hv with moa",
        r"pc 5-8 & hh hv",
        r"hv sub hh metered",
        r"maximum demand hv",
        r"hv medium non-domestic",
    ]),
    ("advanced_ehv", "A", "AI", "EHV", False, [
        r"ehv generic 33kv",
        r"ehv 33kv import",
        r"ehv_33kv_generic",
        r"ehv generic 132kv",
    ]),
    ("smart_export", "S", "AE", "LV", True, [
        r"dom(estic)? nhh export",
        r"lv gen(eration)? nhh( or aggregate hh)?",
        r"eg_lv_nhh",
        r"lv generation aggregate hh",
        r"export \(lv\)",
        r"embedded generation export",
        r"(\d+ - )?export pv",
    ]),
    ("unmetered", "U", "AI", "LV", True, [
        r"hh unmetered supplies",
        r"hh unmetered pseudo metered",
        r"lv ums \(pseudo hh metered\)",
        r"ums pseudo hh( good inv)?",
        r"unmetered supplies lv hh",
        r"ums_lv_hh",
        r"pseudo hh metered",
        r"nhh ums cat(egory)? ?b( ?: ?dusk to dawn)?",
        r"ums dusk to dawn(, good inv)?",
        r"ums_b_du_da",
    ]),
]

PROFILE_SEASONS = {"Wtr": "winter", "Spr": "spring", "Smr": "summer", "Hsr": "high_summer", "Aut": "autumn"}
PROFILE_DAY_TYPES = {"Wd": "weekday", "Sat": "saturday", "Sun": "sunday"}


def _sha256sums(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name.removeprefix("./")] = digest
    return sums


def _checked_sha(folder: Path, rel: str) -> str:
    """Return the recorded sha256 of ``folder/rel`` after checking the file still matches it."""
    recorded = _sha256sums(folder)[rel]
    actual = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
    if actual != recorded:
        raise ValueError(f"{folder / rel}: sha256 {actual} does not match SHA256SUMS {recorded}")
    return recorded


def _date(text: str) -> dt.date | None:
    return dt.datetime.strptime(text, "%d/%m/%Y").date() if text else None


def select_llfcs(mdd_dir: Path) -> list[dict]:
    """Pick LLFCs per distributor by `LLFC_RULES` from Line_Loss_Factor_Class.csv."""
    with open(mdd_dir / "Line_Loss_Factor_Class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    mpid_of = _distributor_mpids(mdd_dir)
    taken: set[str] = set()
    out = []
    for dist_id in sorted(DISTRIBUTOR_GSP):
        mpid = mpid_of[dist_id]
        live = []
        for r in rows:
            if r["Market Participant ID"] != mpid or r["MS Specific LLF Class Indicator"] not in ("A", "C"):
                continue
            start = _date(r["Effective From Settlement Date (LLFC)"])
            end = _date(r["Effective To Settlement Date (LLFC)"])
            if start <= LLFC_EFFECTIVE_AT and (end is None or end >= LLFC_EFFECTIVE_AT):
                live.append(r)
        for use, segment, mq, voltage, required, patterns in LLFC_RULES:
            # MS Specific indicator C marks generic export classes, A generic import classes.
            want = "C" if mq == "AE" else "A"
            chosen = None
            for pat in patterns:
                hits = sorted(
                    (r for r in live if r["MS Specific LLF Class Indicator"] == want
                     and re.fullmatch(pat, r["Line Loss Factor Class Description"].strip(), re.IGNORECASE)),
                    key=lambda r: r["Line Loss Factor Class ID"].zfill(3),
                )
                hits = [r for r in hits if r["Line Loss Factor Class ID"].zfill(3) not in taken]
                if hits:
                    chosen = hits[0]
                    break
            if chosen is None:
                if required:
                    raise ValueError(f"no LLFC for {mpid} ({dist_id}) segment_use {use}")
                continue
            llfc = chosen["Line Loss Factor Class ID"].zfill(3)
            taken.add(llfc)
            out.append({
                "llfc": llfc,
                "distributor_id": dist_id,
                "distributor_mpid": mpid,
                "description": chosen["Line Loss Factor Class Description"].strip(),
                "voltage_level": voltage,
                "measurement_quantity": mq,
                "segment_use": use,
                "market_segment": segment,
                "ms_specific_indicator": chosen["MS Specific LLF Class Indicator"],
                "effective_from": _date(chosen["Effective From Settlement Date (LLFC)"]).isoformat(),
            })
    return out


def _distributor_mpids(mdd_dir: Path) -> dict[int, str]:
    with open(mdd_dir / "Market_Participant_Role.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Distributor Short Code"]]
    out = {}
    for r in rows:
        code = int(r["Distributor Short Code"])
        if code in DISTRIBUTOR_GSP:
            out[code] = r["Market Participant ID"]
    return out


def _distributor_names(mdd_dir: Path) -> dict[int, str]:
    with open(mdd_dir / "Market_Participant_Role.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Distributor Short Code"]]
    return {int(r["Distributor Short Code"]): r["Address 1"] for r in rows
            if int(r["Distributor Short Code"]) in DISTRIBUTOR_GSP}


def _write(path: Path, header_lines: list[str], fieldnames: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        f.writelines(f"# {line}\n" for line in header_lines)
        w = csv.DictWriter(f, fieldnames=fieldnames, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_llfcs(shared: Path) -> None:
    mdd = shared / "elexon-mdd"
    sha = _checked_sha(mdd, "mdd/Line_Loss_Factor_Class.csv")
    rows = select_llfcs(mdd / "mdd")
    _write(
        DATA_DIR / "line_loss_factor_classes.csv",
        [
            "Line Loss Factor Classes (definitions, not LLF values): a per-distributor selection.",
            f"source: elexon-mdd/mdd/Line_Loss_Factor_Class.csv sha256 {sha}",
            (f"rule: effective at {LLFC_EFFECTIVE_AT}, generic classes only (MS Specific A/C), picked by "
             "description regex per segment_use; ids zero-padded to 3 chars; unique across distributors."),
            ("voltage_level, measurement_quantity, segment_use, market_segment are our classification "
             "[INF]; see README.md. Rebuild: python -m tomlib.reference._extract /work/shared/data"),
        ],
        list(rows[0]),
        rows,
    )


def write_profile_shapes(shared: Path) -> None:
    folder = shared / "elexon-load-profiles"
    shas = {pc: _checked_sha(folder, f"ProfileClass{pc}.csv") for pc in range(1, 9)}
    columns = [f"{s}_{d}" for s in PROFILE_SEASONS.values() for d in PROFILE_DAY_TYPES.values()]
    rows = []
    for pc in range(1, 9):
        with open(folder / f"ProfileClass{pc}.csv", newline="") as f:
            src = list(csv.DictReader(f))
        if len(src) != 48:
            raise ValueError(f"ProfileClass{pc}.csv: expected 48 rows, got {len(src)}")
        for i, r in enumerate(src):
            # Row i is settlement period i + 1 (the Time column is the end of the half hour).
            out = {"profile_class": pc, "settlement_period": i + 1}
            for key, value in r.items():
                if key == "Time":
                    continue
                season, day = key.split()
                out[f"{PROFILE_SEASONS[season]}_{PROFILE_DAY_TYPES[day]}"] = value
            rows.append(out)
    _write(
        DATA_DIR / "profile_class_shapes.csv",
        [
            "Elexon/Electricity Association 1997 load profiles: Group Average Demand per customer [kW].",
            "source: elexon-load-profiles/ProfileClass1..8.csv (UKERC EDC 5af8ae29-86a7-4e8c-9fe4-1e2d99d9fb96)",
            *[f"sha256 ProfileClass{pc}.csv {shas[pc]}" for pc in range(1, 9)],
            "values copied verbatim; one row per (profile_class, settlement_period = local half hour index + 1);",
            "columns renamed <season>_<day_type> from 'Wtr Wd' etc. Rebuild: python -m tomlib.reference._extract",
        ],
        ["profile_class", "settlement_period", *columns],
        rows,
    )


def check_gsp_distributors(shared: Path) -> None:
    """Check gsp_groups.csv against GSP_Group.csv and Market_Participant_Role.csv (raises on mismatch)."""
    mdd = shared / "elexon-mdd" / "mdd"
    with open(mdd / "GSP_Group.csv", newline="") as f:
        names = {r["Gsp Group ID"]: r["GSP Group Name"] for r in csv.DictReader(f)}
    mpids = _distributor_mpids(mdd)
    dnames = _distributor_names(mdd)
    lines = [ln for ln in (DATA_DIR / "gsp_groups.csv").read_text().splitlines() if not ln.startswith("#")]
    for r in csv.DictReader(lines):
        d = int(r["distributor_id"])
        if (names[r["gsp_group"]] != r["name"] or mpids[d] != r["distributor_mpid"]
                or dnames[d] != r["distributor_name"] or DISTRIBUTOR_GSP[d] != r["gsp_group"]):
            raise ValueError(f"gsp_groups.csv row {r} disagrees with the MDD files")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    shared = Path(args[0] if args else "/work/shared/data")
    write_llfcs(shared)
    write_profile_shapes(shared)
    check_gsp_distributors(shared)


if __name__ == "__main__":
    main()
