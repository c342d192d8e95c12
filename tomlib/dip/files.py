"""DIP message files: writing the workbench's messages and reading anyone's, as streams.

Layouts
-------
- ``"jsonl"``: one file, one DIP message ``{"payload": {...}}`` per line (JSON lines). Written and
  read a message at a time: memory does not grow with the volume. The choice for large exports.
- ``"daily"``: a folder with one file per day, ``<interface>_<YYYY-MM-DD>.json``, each a DIP
  submission (``DIPMessageArray``: a JSON array of messages, one message per line). The day is the
  UTC day for IF-021 and IF-022, the settlement date for IF-023 and REP-003, the local date of the
  send time for IF-033 and IF-041. Written a message at a time; a file is read whole.

Every file is written atomically (a hidden temporary sibling, renamed over the target once complete),
and every message is validated against its official schema before it is written (``validate``:
``"fast"`` by default, see :mod:`tomlib.dip.schema`); an invalid message stops the export with every
schema error and its path, and nothing half-written is left behind.

Reading takes files (``.json``, ``.jsonl``) and folders of them (sorted by name). A ``.json`` file may
hold an array of messages, one message or a bare payload. Each message is labelled ``file[index]``
(``file:line`` for JSON lines), the label errors name.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tomlib._io import temporary_sibling
from tomlib.dip import schema

__all__ = ["INTERFACES", "LAYOUTS", "export_messages", "import_messages", "iter_messages", "write_messages"]

#: Layouts of :func:`write_messages`.
LAYOUTS = ("jsonl", "daily")


def _writers() -> dict[str, Callable]:
    from tomlib.dip import if021, if033, if041, load_shapes, rep003

    return {"IF-021": if021.if021_payloads, "IF-022": load_shapes.if022_payloads,
            "IF-023": load_shapes.if023_payloads, "IF-033": if033.if033_payloads,
            "IF-041": if041.if041_payloads, "REP-003": rep003.rep003_payloads}


def _readers() -> dict[str, Callable]:
    from tomlib.dip import if021, if033, if041, load_shapes, rep003

    return {"IF-021": if021.read_if021, "IF-022": load_shapes.read_if022, "IF-023": load_shapes.read_if023,
            "IF-033": if033.read_if033, "IF-041": if041.read_if041, "REP-003": rep003.read_rep003}


#: Interfaces tomlib writes and reads.
INTERFACES = ("IF-021", "IF-022", "IF-023", "IF-033", "IF-041", "REP-003")


def _line(payload: dict) -> str:
    return json.dumps({"payload": payload}, separators=(",", ":"))


class _AtomicFile:
    """A text file written to a hidden temporary sibling and renamed over ``path`` on commit."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = temporary_sibling(path)
        self.handle = self.tmp.open("w", encoding="utf-8")
        self.bytes = 0

    def write(self, text: str) -> None:
        self.handle.write(text)
        self.bytes += len(text)

    def commit(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.handle.close()
        self.tmp.unlink(missing_ok=True)


def write_messages(messages: Iterable[tuple[str, dict]], out, *, interface: str, layout: str | None = None,
                   validate: str = "fast") -> dict:
    """Validate and write ``(group, payload)`` pairs (as the ``*_payloads`` writers yield them).

    Parameters
    ----------
    messages : iterable of (str, dict)
        Group (day, for the daily layout) and payload.
    out : path
        A ``.jsonl`` file, or a folder for the daily layout.
    interface : str
        Names the files and the messages in errors.
    layout : {"jsonl", "daily"}, optional
        Default: ``"jsonl"`` if ``out`` ends in ``.jsonl``, else ``"daily"``.
    validate : {"fast", "full", "none"}

    Returns
    -------
    dict
        ``interface``, ``layout``, ``messages``, ``files`` (paths written), ``bytes``, ``seconds``.

    Raises
    ------
    DipValidationError
        For the first message that fails its schema (message number, group and every error path).
    """
    out = Path(out)
    layout = layout or ("jsonl" if out.suffix == ".jsonl" else "daily")
    if layout not in LAYOUTS:
        raise ValueError(f"write_messages: layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "daily" and out.suffix in (".json", ".jsonl"):
        raise ValueError(f"{out}: the daily layout writes a folder; give a folder path (or layout='jsonl' with a "
                         ".jsonl file)")
    started = time.perf_counter()
    files: list[str] = []
    total_bytes = n = 0
    current: _AtomicFile | None = None
    group_now: str | None = None
    seen: set[str] = set()
    try:
        if layout == "jsonl":
            out.parent.mkdir(parents=True, exist_ok=True)
            current = _AtomicFile(out)
        else:
            out.mkdir(parents=True, exist_ok=True)
        for group, payload in messages:
            schema.check(payload, interface, mode=validate, where=f"{interface} message {n} ({group})")
            if layout == "daily" and group != group_now:
                if group in seen:
                    raise ValueError(f"write_messages: messages of {group} arrive after another day's; the daily "
                                     "layout needs them grouped by day")
                if current is not None:
                    current.write("\n]\n")
                    current.commit()
                    files.append(str(current.path))
                    total_bytes += current.bytes
                current = _AtomicFile(out / f"{interface}_{group}.json")
                current.write("[\n")
                group_now = group
                seen.add(group)
                first = True
            if layout == "daily":
                current.write(("" if first else ",\n") + _line(payload))
                first = False
            else:
                current.write(_line(payload) + "\n")
            n += 1
        if current is not None:
            if layout == "daily":
                current.write("\n]\n")
            current.commit()
            files.append(str(current.path))
            total_bytes += current.bytes
            current = None
    except BaseException:
        if current is not None:
            current.abort()
        raise
    return {"interface": interface, "layout": layout, "messages": n, "files": files, "bytes": total_bytes,
            "seconds": time.perf_counter() - started}


def export_messages(source: Any, out, *, interface: str = "IF-021", layout: str | None = None, validate: str = "fast",
                    config: Any = None, **options) -> dict:
    """Write the DIP messages of a service's output.

    Parameters
    ----------
    source
        What the interface is made from: IF-021 a settled meter cube (or SegmentResult); IF-041 a read
        table; IF-033 registration events (``standing=`` required, ``metering=`` optional); IF-022
        load shapes; IF-023 load-shape totals; REP-003 a settlement run Dataset.
    out : path
        ``.jsonl`` file or folder (see :func:`write_messages`).
    interface : str
        One of :data:`INTERFACES`.
    layout, validate
        As for :func:`write_messages`.
    config : DipConfig or mapping, optional
        Environment and DIP ids.
    **options
        Passed to the interface's writer (``sent_at``, ``standing``, ``metering``, ``registers``,
        ``run_code``, ...).

    Returns
    -------
    dict
        The summary of :func:`write_messages` plus the writer's counters.
    """
    writers = _writers()
    if interface not in writers:
        raise ValueError(f"export_messages: interface must be one of {list(writers)}, got {interface!r}")
    stats: dict = {}
    if interface == "IF-033":
        standing = options.pop("standing", None)
        if standing is None:
            raise ValueError("export_messages: IF-033 needs standing= (a meter cube or standing table)")
        payloads = writers[interface](source, standing, config=config, stats=stats, **options)
    else:
        payloads = writers[interface](source, config=config, stats=stats, **options)
    summary = write_messages(payloads, out, interface=interface, layout=layout, validate=validate)
    summary.update({k: v for k, v in stats.items() if k != "messages"})
    return summary


def _files(paths) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".json", ".jsonl") and not q.name.startswith("."))
            if not found:
                raise ValueError(f"{p}: no .json or .jsonl files in the folder")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return out


def iter_messages(paths) -> Iterator[tuple[str, Any]]:
    """``(label, message)`` of every message in the files (and folders), in order, streamed per line
    for ``.jsonl``."""
    for path in _files(paths):
        if path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as fh:
                for i, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield f"{path}:{i}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}, line {i}: not JSON ({exc.msg} at column {exc.colno})") from None
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {exc.lineno}: not JSON ({exc.msg})") from None
        if isinstance(data, list):
            for i, item in enumerate(data):
                yield f"{path}[{i}]", item
        else:
            yield str(path), data


def import_messages(paths, *, interface: str | None = None, validate: str = "full", on_invalid: str = "raise",
                    **options):
    """Read DIP message files back into tomlib data.

    Parameters
    ----------
    paths : path or list of paths
        Files and folders (:func:`iter_messages`).
    interface : str, optional
        Expected interface; default that of the first message. Messages of another interface raise
        (``on_invalid="raise"``) or are refused.
    validate : {"full", "fast", "none"}
    on_invalid : {"raise", "reject"}
    **options
        Passed to the interface's reader (IF-021: ``sp_convention``, ``standing``, ``times``,
        ``measurement_quantities``; IF-022: ``sp_convention``).

    Returns
    -------
    If021Data, If041Data, If033Data, LoadShapeData or Rep003Data
        As the interface's ``read_*`` function returns.
    """
    readers = _readers()
    stream = iter_messages(paths)
    first = next(stream, None)
    if first is None:
        raise ValueError(f"import_messages: no messages in {paths}")
    if interface is None:
        from tomlib.dip.common import unwrap

        interface = schema.interface_of(unwrap(first[1], first[0]))
        if interface is None:
            raise ValueError(f"{first[0]}: the first message has no CommonBlock.S0.interfaceID; pass interface=")
    if interface not in readers:
        raise ValueError(f"import_messages: tomlib reads {list(readers)}, not {interface!r}")

    def chained():
        yield first
        yield from stream

    return readers[interface](chained(), validate=validate, on_invalid=on_invalid, **options)
