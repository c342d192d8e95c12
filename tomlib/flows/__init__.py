"""Readers and writers of interface files: the named places where file I/O happens.

One module per file family, each documenting its layout and raising errors that name the file, line
and field:

- :mod:`tomlib.flows.d0010` — DTC D0010 meter readings.
- :mod:`tomlib.flows.hh_consumption` — half-hourly consumption: a D0036/D0275-like record layout and
  plain CSVs by settlement date and period or by UTC start; read into / written from a meter cube.
- :mod:`tomlib.flows.neso_demand` — NESO historic demand (``demanddata_<year>.csv``), MW per settlement
  period.
- :mod:`tomlib.flows.load_shapes` — IF022/IF023 load shape records as JSON.
- :mod:`tomlib.flows.ums_inventory` — UMS inventories in a D0388-like layout.
- :mod:`tomlib.flows.gcf` — GSP group correction factors in Elexon's published layout.

Shared rules (:mod:`tomlib.flows._common`):

- **Errors.** Every reader and writer raises a subclass of :class:`FlowError` (a ``ValueError``) whose
  message names the file, the line (the record for JSON) and the field, says what was expected and
  shows what was found. Nothing is partly loaded: a reader returns only a wholly valid file, a
  writer checks its output with the reader's rules before it replaces the target (atomically, via
  :mod:`tomlib._io`), so a failed write leaves no file and the previous one untouched.
- **Dates** must lie in :data:`DATE_RANGE` (1996-2040, the years the calendar was checked for);
  settlement periods must exist on their day (46, 48 or 50, :mod:`tomlib.calendar`); all time
  arithmetic is on UTC instants.
- **Streaming.** The half-hourly, NESO and GCF readers read a block of lines at a time (``block_size``
  bytes, plain or ``.gz``) and parse each block with vectorised pyarrow / numpy operations; their
  ``iter_*`` functions yield checked blocks for callers that want one block in memory at a time.
  D0010, UMS inventories and IF022/IF023 JSON are small record-structured files, read whole.

Bad inputs for every reader are kept as small files in ``tests/data/bad_inputs`` (see ``docs/inputs.md``).

Modules are imported on use (``from tomlib.flows import d0010``) so that reading one flow does not
import the dependencies of all the others.
"""

from tomlib.flows._common import DATE_RANGE, FlowError

__all__ = ["DATE_RANGE", "FlowError"]
