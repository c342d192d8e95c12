"""The project's set-up promises: one dependency list, two README commands, a working `tom` command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from tomlib import cli


def test_environment_yml_mirrors_pyproject(repo_root):
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert python.split("=")[1] == minimum
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    # conda installs the project itself, so pyproject stays the one list of dependencies
    assert pip_section == ["-e .[dev]"]
    assert not [d for d in deps if isinstance(d, str) and d not in {python, "pip"}]


def test_readme_commands_are_the_makefile_targets(repo_root):
    readme = (repo_root / "README.md").read_text()
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", readme, re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make report", "make test"]
    makefile = (repo_root / "Makefile").read_text()
    for target in ("report", "test", "bench", "serve", "lab"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def test_ci_runs_the_readme_test_command(repo_root):
    ci = (repo_root / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "apt-get install" in ci and "chromium" in ci


def test_tom_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "tomlib.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("generate", "settle", "report", "serve", "bench"):
        assert command in out


def test_settle_runs_and_saves_with_checks(tmp_path, capsys):
    assert cli.main(["settle", "--scenario", "tiny", "--run", "II,SF", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "II: " in out and "SF: " in out and "checks held" in out
    assert (tmp_path / "tiny" / "settlement" / "SF.zarr").exists()


def test_bad_scenario_exits_2_with_the_file_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nseed: -1\n")
    assert cli.main(["generate", "--scenario", str(bad), "--data-root", str(tmp_path)]) == 2
    assert "bad.yaml" in capsys.readouterr().err


def test_code_passes_the_linter(repo_root):
    """ruff, with the rules of pyproject.toml, finds nothing in the package, the tests or the notebooks."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "tomlib", "tests", "notebooks"], cwd=repo_root,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
