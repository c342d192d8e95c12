"""tomlib._io: the one atomic-output helper every writer uses."""

import os

import pytest

from tomlib import _io


def test_text_replaces_target_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.csv"
    _io.atomic_write_text(target, "a,b\n1,2\n")
    _io.atomic_write_text(target, "a,b\n3,4\n")
    assert target.read_text() == "a,b\n3,4\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]


def test_failure_inside_block_keeps_previous_file(tmp_path):
    target = tmp_path / "report.html"
    target.write_text("previous")
    with pytest.raises(RuntimeError), _io.atomic_target(target) as tmp:
        tmp.write_text("half a rep")
        raise RuntimeError("killed part-way")
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_temporary_keeps_suffix_and_is_hidden(tmp_path):
    with _io.atomic_target(tmp_path / "cube.zarr") as tmp:
        assert tmp.suffix == ".zarr" and tmp.name.startswith(".") and tmp.parent == tmp_path
        tmp.mkdir()
        (tmp / "zarr.json").write_text("{}")
    assert (tmp_path / "cube.zarr" / "zarr.json").exists()


def test_directory_replaced_whole(tmp_path):
    target = tmp_path / "store.zarr"
    for generation in ("old", "new"):
        with _io.atomic_target(target) as tmp:
            tmp.mkdir()
            (tmp / generation).write_text(generation)
    assert os.listdir(target) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["store.zarr"]


def test_ascii_refuses_non_ascii_and_writes_nothing(tmp_path):
    target = tmp_path / "flow.txt"
    with pytest.raises(UnicodeEncodeError):
        _io.atomic_write_text(target, "caf\u00e9", encoding="ascii")
    assert not list(tmp_path.iterdir())
