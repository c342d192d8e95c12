"""A notebook that fails on a re-run keeps its last good report, and the index links it as stale.

Its own module: :func:`tomlib.reports.run_reports` prints PDFs with Playwright's sync API, which
refuses to start while another module's browser fixture holds it in the same thread.

The notebook ``flaky`` writes a dashboard file and shows a table of large numbers the way every
notebook does (``readable_tables()`` in its setup cell): a first run succeeds with HTML, PDF and
dashboard; a second run of a failing ``flaky`` through ``tom report`` must exit 1, name the cell,
leave those files byte for byte, put the FAILED page beside them and link both from the index; a
third, good run replaces them and the failure pages go.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from test_reports import BROKEN_MESSAGE, E_PLUS, TINY, _notebook, _params_cell, table_cells

from tomlib import reports


def _flaky(folder: Path, fail: bool) -> Path:
    """A notebook ``flaky`` that writes a small dashboard file and shows a table of large numbers
    (as the notebooks do: readable_tables() in the setup cell), and fails in its last cell if asked."""
    folder.mkdir(parents=True, exist_ok=True)
    return _notebook(folder / "flaky.ipynb", [
        nbformat.v4.new_markdown_cell("# Flaky\n\nA report that reads on its own."),
        _params_cell(),
        nbformat.v4.new_code_cell("from pathlib import Path\nimport pandas as pd\n"
                                  "from tomlib.records import readable_tables\nreadable_tables()\n"
                                  'Path(output_dir, "dashboard.html").write_text("<!DOCTYPE html><p>dashboard</p>")'),
        nbformat.v4.new_code_cell('table = pd.DataFrame({"energy_kwh": [1.378e6, 0.5, 8.9e-16], "mpans": [1234567, 2, 3]})\n'
                                  "table"),
        nbformat.v4.new_code_cell('table.style.hide(axis="index")'),
        nbformat.v4.new_code_cell(f"raise RuntimeError({BROKEN_MESSAGE!r})" if fail else "print('fine')"),
    ])


@pytest.mark.browser
def test_a_failed_rerun_keeps_the_last_good_report_and_the_index_links_it_as_stale(tmp_path, capsys):
    from tomlib import cli

    out_root = tmp_path / "reports"
    first = reports.run_reports(TINY, notebooks=[_flaky(tmp_path / "good", fail=False)], out_root=out_root,
                                pdf=True, progress=False)
    assert first.ok, first.failures
    folder = first["flaky"].out_dir
    kept = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert set(kept) == {"flaky.ipynb", "flaky.html", "flaky.pdf", "dashboard.html"}
    assert ".tmp-" not in kept["flaky.ipynb"].decode() and str(folder) in kept["flaky.ipynb"].decode()
    cells = table_cells(kept["flaky.html"].decode())
    assert cells.count("1,378,000") == 2 and cells.count("1,234,567") == 2  # DataFrame and Styler
    assert [c for c in cells if E_PLUS.search(c)] == []

    code = cli.main(["report", "--scenario", str(TINY), "--notebook", str(_flaky(tmp_path / "bad", fail=True)),
                     "--out-root", str(out_root), "--no-pdf"])
    err = capsys.readouterr().err
    assert code == 1 and "flaky failed in cell In [" in err and BROKEN_MESSAGE in err
    assert {p.name: p.read_bytes() for p in folder.iterdir() if "FAILED" not in p.name} == kept
    assert BROKEN_MESSAGE in (folder / "flaky.FAILED.html").read_text(encoding="utf-8")
    assert (folder / "flaky.FAILED.ipynb").exists()
    assert not [p for p in folder.parent.iterdir() if ".tmp-" in p.name]  # no staging folder left
    index = (folder.parent / "index.html").read_text(encoding="utf-8")
    assert "FAILED" in index and "stale" in index
    hrefs = re.findall(r'href="([^"#]+)"', index)
    assert {"flaky/flaky.FAILED.html", "flaky/flaky.html", "flaky/flaky.pdf", "flaky/dashboard.html"} <= set(hrefs)
    entry = json.loads((folder.parent / "index.json").read_text())["notebooks"][0]
    assert entry["ok"] is False and entry["stale_since"] and entry["html"] == "flaky/flaky.html"

    again = reports.run_reports(TINY, notebooks=[_flaky(tmp_path / "good", fail=False)], out_root=out_root,
                                pdf=False, progress=False)
    assert again.ok and again["flaky"].stale_since is None
    assert sorted(p.name for p in folder.iterdir()) == ["dashboard.html", "flaky.html", "flaky.ipynb"]
