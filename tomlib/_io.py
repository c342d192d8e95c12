"""Atomic file output: the one place where tomlib's writers put a file into place.

Every writer in tomlib (cubes, flows, reports, dashboards, scenarios, benchmark results, DIP message
files) writes to a hidden temporary sibling and renames it over the target only once the content is
complete and on disk. A crash or a kill part-way therefore leaves either the previous file or the new
one, never half of one, and a reader running at the same moment never sees a partial file.

The temporary name carries a random part, so two processes writing the same target do not share a
temporary file; the last rename wins.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["temporary_sibling", "atomic_target", "atomic_write_text", "atomic_write_bytes", "fsync_path", "remove_path",
           "swap_in_directory"]


def temporary_sibling(path: Path) -> Path:
    """A hidden, unique name beside ``path`` with the same suffix."""
    # the suffix is kept: papermill, Panel, Chromium and xarray choose a format by it
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:12]}{path.suffix}")


def fsync_path(path: Path) -> None:
    """Flush a written file's bytes to the disk (no-op for directories)."""
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def remove_path(path: Path) -> None:
    """Remove a file or a directory tree if it exists."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def swap_in_directory(tmp: Path, path: Path) -> None:
    """Rename directory ``tmp`` to ``path``, replacing what was there; restore it on failure.

    A directory cannot be renamed over a non-empty one, so the old one is moved aside first and only
    removed once the new one is in place.
    """
    if not (path.exists() or path.is_symlink()):
        os.rename(tmp, path)
        return
    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
    os.rename(path, old)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(old, path)
        raise
    remove_path(old)


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The block writes the temporary file (or directory) by any means. On success its bytes are
    flushed and it is renamed over ``path``; on any exception it is removed and ``path`` is left as
    it was.

    Parameters
    ----------
    path : path-like
        Final file or directory; its parent folder is created.

    Yields
    ------
    Path
        The temporary path to write, in the same folder and with the same suffix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if tmp.is_dir():
            swap_in_directory(tmp, path)
        else:
            fsync_path(tmp)  # the bytes reach the disk before the name points at them
            os.replace(tmp, path)
    finally:
        if tmp.exists() or tmp.is_symlink():
            remove_path(tmp)


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (LF line ends kept as given).

    Parameters
    ----------
    path : path-like
    text : str
    encoding : str
        ``"ascii"`` for the fixed-width industry flows: a non-ASCII character is refused, and
        nothing is written.
    """
    data = text.encode(encoding)
    return atomic_write_bytes(path, data)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
