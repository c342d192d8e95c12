"""Shared fixtures and the browser switch for the test suite.

Browser tests need Debian's ``chromium``; ``.ci/run`` installs it, so in CI they always run. On a
developer machine without it they are skipped with the reason shown by ``pytest -ra``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = REPO_ROOT / "datasets" / "scenarios"
CHROMIUM = os.environ.get("TOMLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items):
    if CHROMIUM:
        return
    skip = pytest.mark.skip(reason="Debian's chromium is not installed (apt-get install chromium)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def scenarios_dir() -> Path:
    return SCENARIOS


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium (Playwright driving Debian's chromium) per test module; a launch costs 1-2 s."""
    from playwright.sync_api import sync_playwright

    from tomlib import reports

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=reports.find_chromium(), args=reports.CHROMIUM_ARGS)
        yield chromium
        chromium.close()
