"""Fault tolerance of `tom settle` and `tom generate` (issue #10), with real processes and SIGKILL.

- A settlement run killed part-way leaves whole stores only: each visible store equals a clean run's;
  what the killed writer left behind is hidden (``.<name>.tmp-<host>-<pid>-...``) and the re-run removes
  it (:func:`tomlib._io.remove_stale_siblings`) and completes with the clean result.
- `tom generate` killed while writing leaves the previous ``market.zarr`` as it was.
- Two settlements of different scenarios into one data root at the same time each give their own clean
  result (the other process has another PYTHONHASHSEED, so set ordering cannot hide in the bytes).
- A directory store is swapped in atomically: a kill at any step of the swap leaves the old or the new
  store, never none and never a mix.

Stores are compared file by file (SHA-256) leaving out the provenance attribute ``code_version`` (the
git commit of the checkout that ran; :data:`helpers.VOLATILE_ATTRS`). The clean references are computed
in this process through the same ``tom`` entry point (:func:`tomlib.cli.main`); subprocesses are started
only where a separate process is the point (kill, concurrency), because each pays ~5 s of imports.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from helpers import hidden_entries, small_scenario, store_digests, visible_entries

from tomlib import _io, cli, cube, market, settlement
from tomlib.scenario_io import write_scenario

SCENARIOS = {  # a 50-period day and a 46-period day; every run of the mhhs timetable, and two runs
    "ft_a": {"first": dt.date(2026, 10, 25), "last": dt.date(2026, 10, 26), "mpans": (4, 3), "seed": 11,
             "runs": "all"},
    "ft_b": {"first": dt.date(2026, 3, 29), "last": dt.date(2026, 3, 29), "mpans": (3, 2), "seed": 12,
             "runs": "II,RF"},
}
STORES = {"ft_a": sorted(["II.zarr", "SF.zarr", "R1.zarr", "RF.zarr", "DF.zarr", "reconciliation.zarr"]),
          "ft_b": sorted(["II.zarr", "RF.zarr", "reconciliation.zarr"])}


def _tom(*args, cwd: Path, env: dict | None = None) -> subprocess.Popen:
    """Start ``tom`` (python -m tomlib.cli) as a child process."""
    return subprocess.Popen([sys.executable, "-m", "tomlib.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _wait_for(proc: subprocess.Popen, condition, timeout: float = 180.0) -> bool:
    """Poll until ``condition()`` holds (True) or the process ends or the time is up (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return bool(condition())
        time.sleep(0.002)
    return False


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)  # the child we started, by its pid
    proc.communicate(timeout=60)


def _leftovers_of(pid: int, names) -> list[str]:
    """Hidden names that are not temporaries of the writer ``pid``."""
    mine = re.compile(rf"\.[\w.]+\.(tmp|old)-[0-9a-f]{{8}}-{pid}-[0-9a-f]+(\.zarr)?")
    return [n for n in names if not mine.fullmatch(n)]


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    """Scenario file and the digests of a clean `tom settle --run all` (in this process), by scenario name."""
    root = tmp_path_factory.mktemp("ft")
    out = {}
    for name, s in SCENARIOS.items():
        path = write_scenario(small_scenario(s["first"], s["last"], mpans=s["mpans"], seed=s["seed"], name=name),
                              root / f"{name}.yaml")
        assert cli.main(["settle", "--scenario", str(path), "--data-root", str(root / "ref"), "--run",
                         s["runs"]]) == 0
        folder = root / "ref" / name / "settlement"
        assert visible_entries(folder) == STORES[name] and hidden_entries(folder) == []
        out[name] = (path, {n: store_digests(folder / n) for n in STORES[name]})
    return out


def test_killed_settle_leaves_whole_stores_and_the_rerun_completes(scenarios, tmp_path):
    refs = scenarios
    yaml, reference = refs["ft_a"]
    data = tmp_path / "data"
    folder = data / "ft_a" / "settlement"
    proc = _tom("settle", "--scenario", yaml, "--data-root", data, "--run", "all", cwd=tmp_path)
    assert _wait_for(proc, lambda: (folder / "II.zarr").exists()), proc.communicate()[1]
    # kill it while it writes a later store, if we catch one being written
    _wait_for(proc, lambda: bool(hidden_entries(folder)), timeout=60)
    _kill(proc)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"

    visible = visible_entries(folder)
    assert "II.zarr" in visible and set(visible) < set(STORES["ft_a"])
    for name in visible:  # every store a reader can see is whole and equals the clean run's
        assert store_digests(folder / name) == reference[name], name
        settlement.open_run(folder / name)
    # nothing hidden but the killed writer's temporaries (usually the store it was writing)
    assert _leftovers_of(proc.pid, hidden_entries(folder)) == []

    # the re-run removes what the killed run left and gives the clean result, nothing more
    assert cli.main(["settle", "--scenario", str(yaml), "--data-root", str(data), "--run", "all"]) == 0
    assert visible_entries(folder) == STORES["ft_a"] and hidden_entries(folder) == []
    assert {n: store_digests(folder / n) for n in STORES["ft_a"]} == reference


def test_killed_generate_leaves_the_previous_market(scenarios, tmp_path):
    refs = scenarios
    yaml, _ = refs["ft_a"]
    data = tmp_path / "data"
    store = data / "ft_a" / "market.zarr"
    assert cli.main(["generate", "--scenario", str(yaml), "--data-root", str(data)]) == 0
    previous = store_digests(store)
    s = SCENARIOS["ft_a"]
    changed = write_scenario(small_scenario(s["first"], s["last"], mpans=s["mpans"], seed=s["seed"] + 1,
                                            name="ft_a"), tmp_path / "ft_a_reseeded.yaml")
    proc = _tom("generate", "--scenario", changed, "--data-root", data, cwd=tmp_path)
    caught = _wait_for(proc, lambda: any(n.startswith(".market.tmp-") for n in hidden_entries(store.parent)))
    _kill(proc)
    assert caught and proc.returncode == -signal.SIGKILL, "tom generate was not caught while writing"
    assert store_digests(store) == previous
    market.Market.open(store)
    assert _leftovers_of(proc.pid, hidden_entries(store.parent)) == []
    assert hidden_entries(store.parent)  # the killed writer's temporary ...

    assert cli.main(["generate", "--scenario", str(changed), "--data-root", str(data)]) == 0
    assert hidden_entries(store.parent) == []  # ... is gone after the next write of the market
    from tomlib.scenario import load_scenario

    xr.testing.assert_identical(market.Market.open(store).to_dataset(),
                                market.generate(load_scenario(changed)).to_dataset())


def test_concurrent_settlements_of_two_scenarios_do_not_interfere(scenarios, tmp_path):
    refs = scenarios
    data = tmp_path / "data"
    folder = {name: data / name / "settlement" for name in SCENARIOS}
    proc = _tom("settle", "--scenario", refs["ft_b"][0], "--data-root", data, "--run", "II,RF", cwd=tmp_path,
                env={"PYTHONHASHSEED": "20260329"})
    # this process settles the other scenario into the same data root while the child writes its runs
    assert _wait_for(proc, lambda: folder["ft_b"].is_dir() and bool(os.listdir(folder["ft_b"]))), \
        proc.communicate()[1]
    assert proc.poll() is None
    assert cli.main(["settle", "--scenario", str(refs["ft_a"][0]), "--data-root", str(data), "--run", "II,RF"]) == 0
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert sorted(os.listdir(data)) == ["ft_a", "ft_b"]
    for name, (_, reference) in refs.items():
        assert visible_entries(folder[name]) == STORES["ft_b"] and hidden_entries(folder[name]) == []
        digests = {n: store_digests(folder[name] / n) for n in STORES["ft_b"]}
        if name == "ft_a":  # its reference settled every run: the two runs' stores are the same bytes
            assert json.loads(cube.open(folder[name] / "reconciliation.zarr").attrs["runs"]) == ["II", "RF"]
            digests.pop("reconciliation.zarr")
        assert digests == {n: reference[n] for n in digests}


_SWAP_CHILD = """
import os, shutil, sys
from pathlib import Path
from tomlib import _io

target, kill_at = Path(sys.argv[1]), int(sys.argv[2])
if sys.argv[3] == "fallback":
    _io._exchange = None
steps = 0

def step():
    global steps
    steps += 1
    if steps == kill_at:
        os._exit(9)  # as abrupt as SIGKILL: no finally, no atexit

def around(fn):
    def wrapped(*args, **kwargs):
        step()
        out = fn(*args, **kwargs)
        step()
        return out
    return wrapped

os.rename, os.replace, shutil.rmtree = around(os.rename), around(os.replace), around(shutil.rmtree)
if _io._exchange is not None:
    _io._exchange = around(_io._exchange)
with _io.atomic_target(target) as tmp:
    tmp.mkdir()
    for name in ("zarr.json", "c0", "c1"):
        (tmp / name).write_text("new")
        step()
print(steps)
"""


def _contents(store: Path) -> set[str]:
    return {p.read_text() for p in store.iterdir()}


@pytest.mark.skipif(_io._exchange is None, reason="no atomic exchange of two names on this system")
def test_a_kill_at_any_step_of_a_store_swap_leaves_a_whole_store(tmp_path):
    script = tmp_path / "swap_child.py"
    script.write_text(_SWAP_CHILD)
    store = tmp_path / "out" / "run.zarr"

    def old_store() -> None:
        _io.remove_path(store)
        store.mkdir(parents=True)
        for name in ("zarr.json", "c0", "c1"):
            (store / name).write_text("old")

    def child(kill_at: int, mode: str = "exchange") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), str(store), str(kill_at), mode], check=False,
                              capture_output=True, text=True, timeout=60)

    old_store()
    done = child(0)  # no kill: count the steps
    assert done.returncode == 0, done.stderr
    n_steps = int(done.stdout)
    for k in range(1, n_steps + 1):
        old_store()
        killed = child(k)
        assert killed.returncode == 9, killed.stderr
        assert store.is_dir() and len(_contents(store)) == 1, f"kill at step {k} of {n_steps}"
        assert sorted(p.name for p in store.iterdir()) == ["c0", "c1", "zarr.json"]
    assert child(0).returncode == 0
    assert _contents(store) == {"new"} and hidden_entries(store.parent) == []
    # without the atomic exchange (other systems), the two-rename swap still never mixes the stores,
    # but a kill between its renames leaves no store until the next write (documented in tomlib._io)
    for k in range(1, n_steps + 1):
        old_store()
        child(k, "fallback")
        assert not store.exists() or len(_contents(store)) == 1
    assert child(0, "fallback").returncode == 0 and hidden_entries(store.parent) == []


def test_only_leftovers_of_dead_writers_on_this_host_are_removed(tmp_path):
    target = tmp_path / "SF.zarr"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    host = _io._HOST
    names = {
        f".SF.tmp-{host}-{gone.pid}-0123456789ab.zarr": False,  # killed writer: removed
        f".SF.zarr.old-{host}-{gone.pid}-0123456789ab": False,  # its moved-aside old store: removed
        f".SF.tmp-{host}-{os.getpid()}-0123456789ab.zarr": True,  # a live writer (a concurrent run): kept
        f".SF.tmp-{'f' * 8 if host != 'f' * 8 else 'e' * 8}-{gone.pid}-0123456789ab.zarr": True,  # another host
        f".RF.tmp-{host}-{gone.pid}-0123456789ab.zarr": True,  # another target
        f".SF.tmp-{host}-{gone.pid}-0123456789ab.nc": True,  # another format of the target
    }
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "zarr.json").write_text("{}")
    with _io.atomic_target(target) as tmp:
        tmp.mkdir()
    assert sorted(hidden_entries(tmp_path)) == sorted(n for n, kept in names.items() if kept)
    assert visible_entries(tmp_path) == ["SF.zarr"]
