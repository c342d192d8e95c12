"""Atomic file output: the one place where tomlib's writers put a file into place.

Every writer in tomlib (cubes, flows, reports, dashboards, scenarios, benchmark results, DIP message
files) writes to a hidden temporary sibling and renames it over the target only once the content is
complete and on disk. A crash or a kill part-way therefore leaves either the previous file or the new
one, never half of one, and a reader running at the same moment never sees a partial file.

The temporary name carries a random part, so two processes writing the same target do not share a
temporary file; the last rename wins.

A directory (a Zarr store) replaces an existing one in one step where the system can swap two names
atomically (Linux ``renameat2(RENAME_EXCHANGE)``): readers see the old store or the new one, never no
store. Elsewhere the old one is moved aside first, which leaves a moment without a target.

Kills. A process killed part-way leaves its hidden temporary (or the old store it was removing) behind;
the visible target is untouched. Those leftovers carry the writer's host and process id
(``.<stem>.tmp-<host>-<pid>-<random><suffix>``, ``.<name>.old-<host>-<pid>-<random>``), and the next
write of the same target removes the ones whose writer no longer runs on this host, so re-running
a killed command cleans up after it. Temporaries of live writers (a concurrent run) are left alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_target",
    "atomic_write_bytes",
    "atomic_write_text",
    "fsync_path",
    "remove_path",
    "remove_stale_siblings",
    "swap_in_directory",
    "temporary_sibling",
]


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _owner() -> str:
    """Host tag and process id that name a writer's leftovers (the pid is read per call: forks differ)."""
    return f"{_HOST}-{os.getpid()}"


def temporary_sibling(path: Path) -> Path:
    """A hidden, unique name beside ``path`` with the same suffix, naming this host and process."""
    # the suffix is kept: papermill, Panel, Chromium and xarray choose a format by it
    return path.with_name(f".{path.stem}.tmp-{_owner()}-{uuid.uuid4().hex[:12]}{path.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_siblings(path: str | os.PathLike) -> list[Path]:
    """Remove the leftovers of killed writers of ``path``: its hidden temporaries and moved-aside old
    copies whose writer process no longer runs on this host.

    Returns
    -------
    list of Path
        What was removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    patterns = (re.compile(rf"\.{re.escape(path.stem)}\.tmp-(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-[0-9a-f]+"
                           rf"{re.escape(path.suffix)}"),
                re.compile(rf"\.{re.escape(path.name)}\.old-(?P<host>[0-9a-f]{{8}})-(?P<pid>\d+)-[0-9a-f]+"))
    removed = []
    for entry in path.parent.iterdir():  # the folder of one target: a handful of names
        for pattern in patterns:
            m = pattern.fullmatch(entry.name)
            if m and m["host"] == _HOST and not _alive(int(m["pid"])):
                remove_path(entry)
                removed.append(entry)
    return removed


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


def _renameat2_exchange():
    """``exchange(a, b)``: swap two paths atomically (Linux renameat2 RENAME_EXCHANGE), or None."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2

    def exchange(a: Path, b: Path) -> None:
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(a), None, str(b))

    return exchange


#: Atomic swap of two paths, None where the system has none (then a directory is replaced in two renames).
_exchange = _renameat2_exchange()
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV}


def swap_in_directory(tmp: Path, path: Path) -> None:
    """Rename directory ``tmp`` to ``path``, replacing what was there; restore it on failure.

    Where the system can exchange two names atomically the new and old directories swap names in one
    step and the old one (now at ``tmp``) is removed. Otherwise the old one is moved aside first
    (a directory cannot be renamed over a non-empty one) and only removed once the new one is in place.
    """
    if not (path.exists() or path.is_symlink()):
        os.rename(tmp, path)
        return
    if _exchange is not None:
        try:
            _exchange(tmp, path)
        except OSError as err:
            if err.errno not in _NO_EXCHANGE:
                raise
        else:
            remove_path(tmp)  # the old directory, under the temporary's name
            return
    old = path.with_name(f".{path.name}.old-{_owner()}-{uuid.uuid4().hex[:12]}")
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
    remove_stale_siblings(path)  # what a killed earlier writer of this target left behind
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
