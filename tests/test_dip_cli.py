"""``tom export`` / ``tom import`` as registered by tomlib.dip.register_cli."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tomlib import cube, dip

THIRD = Path(__file__).parent / "data" / "dip" / "third-party"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tom")
    sub = parser.add_subparsers(dest="command", required=True)
    dip.register_cli(sub)
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def cube_file(tmp_path):
    meters = dip.bench_inputs(mpan_days=35, days=7, seed=5)["meters"]
    return meters, cube.save(meters, tmp_path / "settled.nc")


def test_export_then_import_a_saved_cube(cube_file, tmp_path, capsys):
    meters, path = cube_file
    assert run(["export", "--interface", "IF-021", "--input", str(path), "--out", str(tmp_path / "out"),
                "--sent-at", "2026-04-10T06:00:00", "--validate", "full"]) == 0
    out = capsys.readouterr().out
    assert "35 IF-021 messages" in out  # 5 MPANs x 7 UTC days
    files = sorted((tmp_path / "out").glob("IF-021_*.json"))
    assert len(files) == 7
    assert run(["import", str(tmp_path / "out"), "--out", str(tmp_path / "back.nc")]) == 0
    printed = capsys.readouterr().out
    assert "If021Data" in printed and "end (DI-082" in printed
    back = cube.open(tmp_path / "back.nc")
    got = back.sel(mpan=meters["mpan"].values)
    np.testing.assert_array_equal(got["quality"].values, meters["quality"].values)
    np.testing.assert_array_equal(got["energy"].values, np.rint(meters["energy"].values * 1000) / 1000)


def test_export_as_json_lines(cube_file, tmp_path, capsys):
    _, path = cube_file
    assert run(["export", "--interface", "IF-021", "--input", str(path), "--out", str(tmp_path / "all.jsonl")]) == 0
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert len(lines) == 35 and all(set(json.loads(x)) == {"payload"} for x in lines)


def test_import_refuses_an_invalid_sample_with_exit_code_2(capsys, tmp_path):
    sample = THIRD / "reachtonavakanth-mhhs_poc" / "if-041.json"
    assert run(["import", str(sample), "--interface", "IF-041"]) == 2
    err = capsys.readouterr().err
    assert "12 error(s)" in err and "$.CommonBlock.M0.MPANCore" in err
    assert run(["import", str(sample), "--interface", "IF-041", "--on-invalid", "reject",
                "--rejected", str(tmp_path / "refused.csv")]) == 0
    assert len((tmp_path / "refused.csv").read_text().splitlines()) == 1 + 12


def test_export_from_a_scenario(tmp_path, capsys):
    assert run(["export", "--interface", "IF-041", "--scenario", "tiny", "--data-root", str(tmp_path / "data"),
                "--out", str(tmp_path / "reads.jsonl")]) == 0
    assert "IF-041 messages" in capsys.readouterr().out
    assert run(["import", str(tmp_path / "reads.jsonl"), "--out", str(tmp_path / "reads.csv")]) == 0
    assert (tmp_path / "reads.csv").read_text().startswith("mpan,meter_id,register_id,read_at,value")


def test_bad_input_is_exit_code_2(tmp_path, capsys):
    assert run(["export", "--interface", "IF-041", "--input", str(tmp_path / "x.nc"), "--out", str(tmp_path / "o")]) == 2
    assert "--input takes a Dataset" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert run(["import", str(bad)]) == 2
    assert "bad.jsonl, line 1: not JSON" in capsys.readouterr().err
