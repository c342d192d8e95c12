"""The D0388-like UMS inventory file: round trips, strict errors naming line and field, and validation of
what the file carries (the reader keeps bad codes and quantities for the UMSO to refuse)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib import reference
from tomlib.flows import ums_inventory as fl
from tomlib.services import ums

TEXT = """ZHV|F0001|UMSINV001|U|LOND|M|UMSD|20260301100000|OPER|
UMP|1200000000011|_C|20260301|
UMI|L0001|4210066500001|821|10|Strand zone 01|
UMI|L0002|1010070000001|823|0|Strand zone 02|
UMP|1200000000020|_C|20260301|
UMI|L0001|42100665000|821|5|Mall|
ZPT|F0001|5|2|20260301100001|
"""


def test_parse_and_format_round_trip_byte_for_byte():
    f = fl.parse_ums_inventory(TEXT, source="x.txt")
    assert fl.format_ums_inventory(f) == TEXT
    inv = f.inventory
    assert list(inv.columns) == [*ums.INVENTORY_COLUMNS, "effective_from"]
    assert inv["quantity"].tolist() == [10, 0, 5] and inv["mpan"].tolist()[1:] == ["1200000000011", "1200000000020"]
    assert (inv["effective_from"] == pd.Timestamp("2026-03-01")).all()
    # the reader keeps what the UMSO must refuse
    findings = ums.validate_inventory(inv)
    assert set(findings["finding"]) >= {"non_positive_quantity", "invalid_charge_code"}


@pytest.mark.parametrize(("text", "message"), [
    (TEXT.replace("|10|Strand", "|1.5|Strand"), r"x.txt, line 3: field 5 \(quantity\): expected a whole number, got '1.5'"),
    (TEXT.replace("ZPT|F0001|5|", "ZPT|F0001|6|"), r"line 7: field 3 \(record_count\): expected 5 records"),
    (TEXT.replace("|2|2026030110", "|3|2026030110"), r"line 7: field 4 \(mpan_count\): expected 2 UMP records"),
    (TEXT.replace("UMP|1200000000020|_C|20260301|\n", "UMP|1200000000020|_C|20260231|\n"),
     r"line 5: field 4 \(effective_from\): expected a CCYYMMDD date, got '20260231'"),
    (TEXT.replace("UMI|L0001|42100665000|821|5|Mall|\n", ""), r"UMP for MPAN 1200000000020 has no UMI records"),
    (TEXT.replace("UMI|L0002|1010070000001|823|0|Strand zone 02|", "XYZ|1|"), r"line 4: expected a UMP or UMI record"),
    (TEXT.replace("UMINV", "UMSINV").replace("UMSINV001", "D0388001"), r"line 1: field 3 \(flow_version\)"),
    (TEXT.replace("\n", "\r\n"), r"line 1: carriage return"),
    (TEXT.replace("|Mall|", "|Mall"), r"line 6: record does not end with '\|'"),
])
def test_errors_name_the_line_and_field(text, message):
    with pytest.raises(fl.UmsInventoryError, match=message):
        fl.parse_ums_inventory(text, source="x.txt")


def test_generated_inventory_writes_and_reads_back(tmp_path):
    times = cal.time_axis(pd.Timestamp("2026-10-24"), pd.Timestamp("2026-10-26"))
    truth = ums.generate_ums_truth(None, reference.gsp_groups(), times, np.random.default_rng(5), {"_C": 4, "_P": 2})
    inv = truth.declared_inventory()
    f = fl.inventory_file(inv, file_id="U1", from_participant="LOND", to_participant="UMSD",
                          created_at="2026-09-30 12:00")
    path = fl.write_ums_inventory(f, tmp_path / "inventory.txt")
    back = fl.read_ums_inventory(path)
    assert path.read_bytes().decode("ascii") == fl.format_ums_inventory(back)
    cols = list(ums.INVENTORY_COLUMNS)
    expected = inv[cols].sort_values(["mpan", "item_id"]).reset_index(drop=True)
    got = back.inventory[cols].sort_values(["mpan", "item_id"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.astype(str), expected.astype(str))
    # the file's lines validate to the same findings as the truth's planted ones
    planted = (truth.inventory["injected_error"] != "").sum()
    assert (~ums.valid_mask(back.inventory, ums.validate_inventory(back.inventory))).sum() == planted
    assert back.header["to_participant"] == "UMSD" and back.trailer["mpan_count"] == "6"


def test_writer_refuses_what_it_cannot_write(tmp_path):
    inv = fl.parse_ums_inventory(TEXT).inventory
    bad = inv.copy()
    bad.loc[0, "location"] = "a|b"
    f = fl.UmsInventoryFile(header=fl.parse_ums_inventory(TEXT).header, inventory=bad)
    with pytest.raises(fl.UmsInventoryError, match=r"inventory row 0 \(location\)"):
        fl.write_ums_inventory(f, tmp_path / "x.txt")
    bad = inv.copy()
    bad.loc[1, "gsp_group"] = "_P"
    with pytest.raises(fl.UmsInventoryError, match="MPAN 1200000000011 has lines with different gsp_group"):
        fl.format_ums_inventory(fl.UmsInventoryFile(header=fl.parse_ums_inventory(TEXT).header, inventory=bad))
    assert not list(tmp_path.iterdir())


def test_the_sample_inventory_golden_numbers(repo_root):
    f = fl.read_ums_inventory(repo_root / "datasets" / "ums" / "sample_inventory.txt")
    inv = f.inventory
    assert len(inv) == 11 and inv["mpan"].nunique() == 3
    found = ums.validate_inventory(inv)
    by_item = {(inv.loc[r, "mpan"], inv.loc[r, "item_id"]): k for r, k in zip(found["row"], found["finding"])}
    assert by_item == {
        ("1263991316570", "L0003"): "duplicate_line",
        ("1263991316570", "L0004"): "charge_code_not_allowed_with_regime",
        ("1263991316570", "L0005"): "invalid_charge_code",
        ("1217893481364", "L0003"): "non_positive_quantity",
        ("1217893481364", "L0004"): "unknown_switch_regime",
        ("1737050052711", "L0002"): "charge_code_not_allowed_with_regime",
    }
    cert = ums.ums_certificate(inv)
    assert cert["annual_consumption"].round(2).to_dict() == {
        "1263991316570": 11940.7, "1217893481364": 23625.72, "1737050052711": 11302.5}
    assert cert["n_rejected"].tolist() == [3, 2, 1]
