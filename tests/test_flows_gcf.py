"""GSP group correction factor files (tomlib.flows.gcf) read in blocks: the same records as in one piece,
and a record repeated in another block still refused. Round trip and line errors: tests/test_volume_allocation.py;
bad input files: tests/test_bad_inputs.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tomlib import calendar as cal
from tomlib.flows import gcf


def _records(days=("2026-03-29", "2026-10-25")) -> pd.DataFrame:
    """Factors of two runs, two GSP groups and both types on the 46- and the 50-period day."""
    rows = []
    rng = np.random.default_rng(2)
    for day in days:
        for run in ("SF", "R1"):
            for sp in range(1, cal.periods_in_day(pd.Timestamp(day)) + 1):
                for group in ("_C", "_P"):
                    for kind in ("mhhs_import_gcf", "mhhs_export_gcf"):
                        rows.append((pd.Timestamp(day), run, sp, group, kind, 1 + rng.normal(0, 0.01)))
    return pd.DataFrame(rows, columns=list(gcf.COLUMNS))


def test_reading_in_blocks_gives_the_same_records(tmp_path):
    records = _records()
    path = gcf.write_gcf(records, tmp_path / "gcf.csv")
    blocks = list(gcf.iter_gcf(path, block_size=4096))
    assert len(blocks) > 10 and sum(len(b) for b in blocks) == len(records) == 2 * (46 + 50) * 2 * 2
    whole = gcf.read_gcf(path)
    pd.testing.assert_frame_equal(gcf.read_gcf(path, block_size=700), whole)
    pd.testing.assert_frame_equal(whole[list(gcf.COLUMNS)], records, check_dtype=False)
    assert (whole["value"].to_numpy() == records["value"].to_numpy()).all()
    last = whole[(whole["date"] == pd.Timestamp("2026-10-25")) & (whole["period"] == 50)]
    assert (last["time"] == pd.Timestamp("2026-10-25 23:30")).all()


def test_a_record_repeated_in_a_later_block_is_refused(tmp_path):
    records = _records(days=("2026-03-29",))
    text = gcf.write_gcf(records, tmp_path / "ok.csv").read_text()
    first = text.splitlines()[1]
    path = tmp_path / "dup.csv"
    path.write_text(text + first.rsplit(",", 1)[0] + ",1.5\n")
    n = text.count("\n") + 1
    with pytest.raises(gcf.GcfError, match=rf"dup.csv: line {n}: field date,run,period,gsp_group,type: duplicate of "
                                           r"line 2; expected each"):
        gcf.read_gcf(path, block_size=1000)


def test_crlf_line_ends_and_a_header_only_file(tmp_path):
    path = tmp_path / "crlf.csv"
    path.write_bytes(b"date,run,period,gsp_group,type,value\r\n29/03/2026,SF,46,_C,legacy_gcf,0.99\r\n")
    got = gcf.read_gcf(path)
    assert got["time"].iloc[0] == pd.Timestamp("2026-03-29 22:30") and got["value"].iloc[0] == 0.99
    path.write_text("date,run,period,gsp_group,type,value\n")
    assert gcf.read_gcf(path).empty
