"""What every flow reader shares: the error class, the date range, and streaming, vectorised parsing.

:class:`FlowError` is the base of every reader's and writer's error (``D0010Error``,
``UmsInventoryError``, ``GcfError``, ...); it is a ``ValueError``. Its message names the file, the
line (for line-based files; the record for JSON) and the field, says what was expected and shows
what was found. The parts are also attributes (``source``, ``line``, ``field``) for programs.

Streaming: :func:`blocks` reads a text file (plain or ``.gz``) a block of ``block_size`` bytes at a
time, cut at a line end (or at a record-group boundary a reader chooses), so a reader holds one block,
never the whole file. Each :class:`Block` knows its line numbers; its lines are split into fields by
pyarrow's CSV parser (:func:`fields`, C++), after a numpy check that every line has the right number
of fields, and the fields are checked with pyarrow compute / numpy. No Python loop runs per line.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = [
    "DATE_RANGE",
    "DEFAULT_BLOCK_SIZE",
    "GSP_GROUPS",
    "Block",
    "FlowError",
    "blocks",
    "check_date_range",
    "encode",
    "fields",
    "first_rows",
    "first_true",
    "matches",
    "open_bytes",
    "parse_dates",
    "period_starts",
    "show",
]

#: Settlement dates a reader accepts, inclusive: the years for which :mod:`tomlib.calendar`'s clock
#: changes and bank holidays were checked (1996-2040). A date outside is a typo or a unit mix-up
#: (e.g. an Excel serial number) more often than data.
DATE_RANGE = (pd.Timestamp("1996-01-01"), pd.Timestamp("2040-12-31"))

#: Bytes of text parsed at a time when streaming (about 100 000 half-hourly CSV rows).
DEFAULT_BLOCK_SIZE = 4 * 2**20

#: DI-037 GSP group ids.
GSP_GROUPS = ("_A", "_B", "_C", "_D", "_E", "_F", "_G", "_H", "_J", "_K", "_L", "_M", "_N", "_P")


#: A CCYYMMDDHHMMSS date-time field of a flow record.
TIMESTAMP = r"\d{14}"


def zhv_fields(flow_version: str) -> tuple[tuple[str, str, str], ...]:
    """The ZHV header fields (name, pattern, what is expected) of a DTC-style flow of one version.

    The UMS inventory and the half-hourly consumption layout share this eight-field header; D0010's
    own header carries three extra free-text fields and is defined in its module.
    """
    return (("file_id", r"[0-9A-Za-z]{1,10}", "1-10 letters or digits"),
            ("flow_version", re.escape(flow_version), flow_version),
            ("from_role", r"[A-Z0-9]", "a 1-character role code"),
            ("from_participant", r"[A-Z0-9]{4}", "a 4-character market participant id"),
            ("to_role", r"[A-Z0-9]", "a 1-character role code"),
            ("to_participant", r"[A-Z0-9]{4}", "a 4-character market participant id"),
            ("created_at", TIMESTAMP, "a CCYYMMDDHHMMSS date-time"),
            ("test_flag", r"[A-Z]{4}", "a 4-letter test/live flag such as OPER"))


_LINE = re.compile(r"^[^:]*?[,:] line (\d+)\b")


class FlowError(ValueError):
    """A file (or what is to be written to one) is not valid; the message names file, line and field.

    Parameters
    ----------
    message : str
        The whole message.
    source, line, field : optional
        The parts, for programs (``line`` is None for files that are not line-based). A line not given
        is read from the message (``"<file>, line <n>"`` or ``"<file>: line <n>"``, the form every
        reader writes).
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None):
        super().__init__(message)
        if line is None:
            found = _LINE.search(message)
            line = int(found.group(1)) if found else None
        self.source, self.line, self.field = source, line, field

    @classmethod
    def at(cls, source: str, line: int | None, field: str | None, expected: str, got=None, *,
           note: str = ""):
        """The standard message: ``"<source>, line <n>, field <f>: expected <what>, got <value><note>"``."""
        line = None if line is None else int(line)
        where = source + (f", line {line}" if line is not None else "") + (f", field {field}" if field else "")
        shown = "" if got is None else f", got {show(got)}"
        return cls(f"{where}: expected {expected}{shown}{note}", source=source, line=line, field=field)


def show(value) -> str:
    """A value for a message: repr, shortened to 60 characters."""
    text = str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def first_true(mask) -> int | None:
    """Index of the first True of a boolean array, or None."""
    mask = np.asarray(mask, dtype=bool)
    return int(np.argmax(mask)) if mask.any() else None


def check_date_range(cls: type[FlowError], source: str, dates, lines, field: str,
                     date_range=DATE_RANGE) -> None:
    """Raise ``cls`` for the first date outside ``date_range`` (inclusive), naming its line."""
    d = np.asarray(dates, dtype="datetime64[ns]")
    lo, hi = (np.datetime64(pd.Timestamp(x), "ns") for x in date_range)
    i = first_true((d < lo) | (d > hi))
    if i is not None:
        line = None if lines is None else np.broadcast_to(np.asarray(lines), d.shape)[i]
        raise cls.at(source, line, field, f"a date from {date_range[0]:%Y-%m-%d} to {date_range[1]:%Y-%m-%d}",
                     f"{pd.Timestamp(d[i]):%Y-%m-%d}")


def open_bytes(path: Path) -> io.BufferedIOBase:
    """Open a file for binary reading, decompressing ``.gz`` on the fly."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


@dataclass
class Block:
    """Whole lines of a file.

    Attributes
    ----------
    data : bytes
        The lines, each ending with a line feed (CR LF already turned into LF where accepted).
    first_line : int
        Line number (1-based) of the first line.
    last : bool
        Whether the block ends the file.
    starts, ends : ndarray of int64
        Byte offset of each line's first character and of its line feed.
    name : str
        File name, for messages.
    """

    data: bytes
    first_line: int
    last: bool
    starts: np.ndarray
    ends: np.ndarray
    name: str = "<file>"

    def __len__(self) -> int:
        return self.starts.size

    @property
    def line_numbers(self) -> np.ndarray:
        return np.arange(self.first_line, self.first_line + len(self), dtype=np.int64)

    def text(self, i: int) -> str:
        """Line ``i`` of the block (0-based), without its line end."""
        return self.data[self.starts[i]:self.ends[i]].decode("ascii", errors="replace")

    def lines_starting(self, prefix: bytes) -> np.ndarray:
        """Mask of the lines that start with ``prefix``."""
        arr = np.frombuffer(self.data, np.uint8)
        ok = (self.ends - self.starts) >= len(prefix)
        for k, byte in enumerate(prefix):
            ok &= arr[np.minimum(self.starts + k, arr.size - 1)] == byte
        return ok

    def count(self, byte: bytes) -> np.ndarray:
        """Occurrences of a byte in each line."""
        at = np.flatnonzero(np.frombuffer(self.data, np.uint8) == ord(byte))
        return np.searchsorted(at, self.ends) - np.searchsorted(at, self.starts)

    def select(self, mask) -> bytes:
        """The lines where ``mask`` is True, as bytes (each with its line feed)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.all():
            return self.data
        arr = np.frombuffer(self.data, np.uint8)
        return arr[np.repeat(mask, self.ends - self.starts + 1)].tobytes()


def _make_block(data: bytes, first_line: int, last: bool, cls: type[FlowError], name: str, crlf: bool) -> Block:
    if crlf:
        data = data.replace(b"\r\n", b"\n")
    arr = np.frombuffer(data, np.uint8)
    nl = np.flatnonzero(arr == 10)
    if not data.endswith(b"\n"):
        # only the last block can end without a line feed: the file was cut short
        raise cls.at(name, first_line + nl.size, None,
                     "a line feed at the end of the last line (the file looks truncated)")
    for bad, what in ((arr == 13, "carriage return found; expected LF line endings"),
                      (arr > 127, "is not ASCII")):
        k = first_true(bad)
        if k is not None:
            line = first_line + int(np.searchsorted(nl, k))
            msg = what if what.startswith("carriage") else f"byte 0x{arr[k]:02x} {what}"
            raise cls(f"{name}, line {line}: {msg}", source=name, line=line)
    starts = np.r_[0, nl[:-1] + 1].astype(np.int64)
    return Block(data, first_line, last, starts, nl.astype(np.int64), name)


def blocks(path: Path, cls: type[FlowError], block_size: int = DEFAULT_BLOCK_SIZE, *, crlf: bool = True,
           cut: Callable[[bytes], int] | None = None, name: str | None = None) -> Iterator[Block]:
    """Stream a text file as blocks of whole lines of about ``block_size`` bytes.

    Parameters
    ----------
    path : Path
        Plain or ``.gz`` file, ASCII.
    cls : type of FlowError
        Raised for a byte that is not ASCII, a carriage return (if not ``crlf``) or a last line
        without a line feed (a file cut short: every writer ends its last line with one).
    block_size : int
        Bytes read at a time.
    crlf : bool
        Accept CR LF line ends (as LF).
    cut : callable, optional
        ``cut(buffer) -> offset`` where the next block must start (> 0), or 0 if the buffer holds no
        boundary yet; default: after the last line feed. A record reader uses it to keep record
        groups within one block.
    name : str, optional
        The file's name in messages (default ``path.name``; a writer checking its temporary file
        gives the target's name).

    Yields
    ------
    Block
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    cut = cut or (lambda buf: buf.rfind(b"\n") + 1)
    line_no = 1
    name = name or path.name
    with open_bytes(path) as fh:
        buf = fh.read(block_size)
        while buf:
            more = fh.read(block_size)
            while more and cut(buf) <= 0:
                buf += more
                more = fh.read(block_size)
            if more:
                at = cut(buf)
                data, buf = buf[:at], buf[at:] + more
            else:
                data, buf = buf, b""
            block = _make_block(data, line_no, not buf, cls, name, crlf)
            yield block
            line_no += len(block)


def fields(block: Block, data: bytes, names: list[str], sep: str, cls: type[FlowError], what: str,
           line_numbers: np.ndarray, *, counts: np.ndarray | None = None, quote: bool = False) -> dict[str, pa.Array]:
    """Split lines into named string fields with pyarrow's CSV parser.

    Parameters
    ----------
    block : Block
        For messages (the line text).
    data : bytes
        The lines to split (all of the block or :meth:`Block.select` of it).
    names : list of str
        One name per field; a line must have exactly this many.
    sep : str
        Field separator.
    line_numbers : ndarray
        Line number of each line of ``data``.
    counts : ndarray, optional
        Separators per line of ``data`` (default: counted).
    quote : bool
        Double quotes around a field are removed (such a field may not hold ``sep``).

    Returns
    -------
    dict of str -> pyarrow.Array of string
    """
    if counts is None:
        arr = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(arr == 10)
        at = np.flatnonzero(arr == ord(sep))
        counts = np.searchsorted(at, nl) - np.searchsorted(at, np.r_[0, nl[:-1] + 1])
    bad = first_true(counts != len(names) - 1)
    if bad is not None:
        line = int(line_numbers[bad])
        text = block.text(line - block.first_line)
        note = " (an empty line)" if text == "" else ""
        raise cls(f"{block.name}, line {line}: {what} has {counts[bad] + 1} fields, expected "
                  f"{len(names)}{note}: {show(text)}", source=block.name, line=line)
    if not data:
        return {n: pa.array([], pa.string()) for n in names}
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(data), 1 << 20)),
        parse_options=pacsv.ParseOptions(delimiter=sep, quote_char='"' if quote else False,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    return {n: table[n].combine_chunks() for n in names}


def matches(values: pa.Array, pattern: str) -> np.ndarray:
    """Whether each string matches ``pattern`` entirely (RE2 syntax), as a numpy bool array."""
    return pc.match_substring_regex(values, f"^(?:{pattern})$").to_numpy(zero_copy_only=False)


def encode(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and the code of each: (codes int64, uniques as an object array of str)."""
    d = pc.dictionary_encode(values)
    return (d.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            np.asarray(d.dictionary.to_pylist(), dtype=object))


def first_rows(codes: np.ndarray) -> np.ndarray:
    """Row of the first occurrence of each code 0..k-1."""
    return np.unique(codes, return_index=True)[1]


def parse_dates(cls: type[FlowError], source: str, values: pa.Array, lines: np.ndarray, field: str,
                formats: tuple[tuple[str, str], ...], shown: str,
                date_range=DATE_RANGE) -> tuple[np.ndarray, np.ndarray]:
    """Settlement dates, parsed once per distinct text.

    Parameters
    ----------
    formats : tuple of (regex, strptime format)
        Accepted forms, tried in order.
    shown : str
        How the form is named in messages (``"YYYY-MM-DD"``).

    Returns
    -------
    codes : ndarray of int64
        Per row, the position of its date in ``days``.
    days : ndarray of datetime64[ns]
        The distinct dates (tz-naive midnight).
    """
    codes, uniq = encode(values)
    s = pd.Series(uniq, dtype=object).astype(str)
    parsed = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")
    for pattern, fmt in formats:
        todo = parsed.isna() & s.str.fullmatch(pattern)
        if todo.any():
            parsed[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce").astype("datetime64[ns]")
    bad = parsed.isna().to_numpy()
    if bad.any():
        u = int(np.argmax(bad))
        raise cls.at(source, lines[int(np.argmax(codes == u))], field, f"a date {shown}", uniq[u])
    days = parsed.to_numpy().astype("datetime64[ns]")
    check_date_range(cls, source, days, lines[first_rows(codes)], field, date_range)
    return codes, days


def period_starts(cls: type[FlowError], source: str, values: pa.Array, codes: np.ndarray, days: np.ndarray,
                  lines: np.ndarray, field: str) -> tuple[np.ndarray, np.ndarray]:
    """UTC start and number of each row's settlement period; its date is ``days[codes]``.

    The period must be an integer that exists on its day (``tomlib.calendar.periods_in_day``: 46, 48
    or 50). The start follows the calendar's rule: SP j of day D starts 30 min x (j - 1) after the UTC
    instant of D's local midnight (:func:`tomlib.calendar.to_utc` of period 1, once per distinct day).

    Returns
    -------
    times : ndarray of datetime64[ns]
    periods : ndarray of int64
    """
    from tomlib import calendar as cal

    i = first_true(~matches(values, r"\d{1,2}"))
    if i is not None:
        raise cls.at(source, lines[i], field, "a settlement period 1..50", values[i].as_py())
    sp = pc.cast(values, pa.int64()).to_numpy()
    n = np.asarray(cal.periods_in_day(days)).reshape(-1)[codes]
    i = first_true((sp < 1) | (sp > n))
    if i is not None:
        day = f"{pd.Timestamp(days[codes[i]]):%Y-%m-%d}"
        raise cls.at(source, lines[i], field, f"a settlement period of {day} (1..{n[i]})", values[i].as_py(),
                     note=f"; settlement period {sp[i]} does not exist on {day}")
    first = cal.to_utc(days, 1).to_numpy()
    return first[codes] + (sp - 1) * np.timedelta64(30, "m"), sp
