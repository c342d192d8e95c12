"""Declarative validation of nested settings read from YAML (used by :mod:`tomlib.scenario`).

Kept apart from ``scenario.py`` so that the scenario module holds only the settings themselves;
any later settings file can reuse the same field specs and error style:
``"<file>: <dotted.key> <what was expected>, got <value> (line N)"``.

A field spec has ``expected() -> str`` (used in "is missing" messages), ``parse(ctx, key, value)``
(validate and convert) and ``dump(value)`` (back to plain YAML/JSON data). A spec with a
``depends_on`` attribute gets the already parsed sibling of that name as a fourth argument.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml


@dataclass
class Context:
    """Where settings come from: ``source`` (file name) and the line of each dotted key."""

    source: str
    lines: dict[str, int]
    error_type: type[Exception] = ValueError

    def error(self, key: str, message: str) -> Exception:
        line = self.lines.get(key)
        where = f" (line {line})" if line else ""
        return self.error_type(f"{self.source}: {key} {message}{where}")


def got(value: Any) -> str:
    """Show a bad value and its YAML-ish type, e.g. ``'abc' (a string)``."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "a mapping", type(None): "empty"}
    kind = next((name for t, name in kinds.items() if type(value) is t), type(value).__name__)
    return f"{value!r} ({kind})"


def join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


@dataclass(frozen=True)
class Number:
    """A finite real number, optionally bounded (``lo_open``/``hi_open`` exclude the bound)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def range_text(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"within {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "finite"

    def expected(self) -> str:
        return f"a number {self.range_text()}"

    def parse(self, ctx: Context, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        x = float(value)
        below = self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo)
        above = self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        if not math.isfinite(x) or below or above:
            raise ctx.error(key, f"must be {self.range_text()}, got {value!r}")
        return x

    def dump(self, value: float) -> float:
        return float(value)


FRACTION = Number(0.0, 1.0)


@dataclass(frozen=True)
class Integer:
    """An integer >= ``minimum`` (booleans and floats such as 3.0 are refused)."""

    minimum: int = 0

    def expected(self) -> str:
        return {0: "a non-negative integer", 1: "a positive integer"}.get(
            self.minimum, f"an integer >= {self.minimum}"
        )

    def parse(self, ctx: Context, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        return int(value)

    def dump(self, value: int) -> int:
        return int(value)


@dataclass(frozen=True)
class Text:
    """A string, non-empty unless ``allow_empty``, matching ``pattern`` if given."""

    pattern: str | None = None
    what: str = "a non-empty string"
    allow_empty: bool = False

    def expected(self) -> str:
        return self.what

    def parse(self, ctx: Context, key: str, value: Any) -> str:
        ok = isinstance(value, str) and (self.allow_empty or value.strip() != "")
        if ok and self.pattern is not None:
            ok = re.fullmatch(self.pattern, value) is not None
        if not ok:
            raise ctx.error(key, f"must be {self.what}, got {got(value)}")
        return value

    def dump(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class Bool:
    """true or false (YAML booleans only: 'yes', 1 or "true" are refused, to catch typos)."""

    def expected(self) -> str:
        return "true or false"

    def parse(self, ctx: Context, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        return value

    def dump(self, value: bool) -> bool:
        return value


@dataclass(frozen=True)
class OptionalIsoDate:
    """null, or an ISO date kept as its ``YYYY-MM-DD`` text (a settlement date, not an instant)."""

    def expected(self) -> str:
        return "null or an ISO date YYYY-MM-DD"

    def parse(self, ctx: Context, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            value = value.isoformat()
        if not isinstance(value, str) or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is None:
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        try:
            _dt.date.fromisoformat(value)
        except ValueError:
            raise ctx.error(key, f"must be {self.expected()}, got {value!r} (no such date)") from None
        return value

    def dump(self, value: str | None) -> str | None:
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def expected(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def parse(self, ctx: Context, key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        return value

    def dump(self, value: str) -> str:
        return value


@dataclass(frozen=True)
class Date:
    """An ISO calendar date -> tz-naive midnight ``pandas.Timestamp``."""

    def expected(self) -> str:
        return "an ISO date YYYY-MM-DD"

    def parse(self, ctx: Context, key: str, value: Any) -> pd.Timestamp:
        # Files are read with Loader, which leaves dates as text; dicts may hold date objects.
        if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
            return pd.Timestamp(value)
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            try:
                return pd.Timestamp(_dt.date.fromisoformat(value))
            except ValueError:
                pass
        raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")

    def dump(self, value: pd.Timestamp) -> str:
        return value.date().isoformat()


@dataclass(frozen=True)
class ListOf:
    """A non-empty list of ``item`` -> tuple; items are keyed ``key[i]`` in errors."""

    item: Any
    what: str

    def expected(self) -> str:
        return f"a non-empty list of {self.what}"

    def parse(self, ctx: Context, key: str, value: Any) -> tuple:
        if not isinstance(value, list) or not value:
            raise ctx.error(key, f"must be {self.expected()}, got {got(value)}")
        return tuple(self.item.parse(ctx, f"{key}[{i}]", v) for i, v in enumerate(value))

    def dump(self, value: tuple) -> list:
        return [self.item.dump(v) for v in value]


@dataclass(frozen=True)
class Section:
    """A mapping of named fields parsed into dataclass ``cls``; ``check`` does cross-field rules.

    Every key of ``fields`` is required, keys of ``optional`` may be left out (the dataclass
    default applies), and any other key is an error with a "did you mean" hint.
    """

    cls: type
    fields: dict[str, Any]
    what: str
    optional: dict[str, Any] = dataclasses.field(default_factory=dict)
    check: Callable[[Context, str, Any], None] | None = None

    def expected(self) -> str:
        return f"a mapping with keys {', '.join(self.fields)} ({self.what})"

    def parse(self, ctx: Context, key: str, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ctx.error(key or "the top level", f"must be {self.expected()}, got {got(value)}")
        known = list(self.fields) + list(self.optional)
        for k in value:
            if k not in known:
                hint = difflib.get_close_matches(str(k), known, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ctx.error(
                    join(key, str(k)), f"is not a known setting{extra}; expected one of {', '.join(known)}"
                )
        for k, spec in self.fields.items():
            if k not in value:
                raise ctx.error(join(key, k), f"is missing (expected {spec.expected()})")
        parsed: dict[str, Any] = {}
        for k, spec in {**self.fields, **self.optional}.items():
            if k not in value:
                continue
            needs = getattr(spec, "depends_on", None)
            extra_args = (parsed[needs],) if needs else ()
            parsed[k] = spec.parse(ctx, join(key, k), value[k], *extra_args)
        obj = self.cls(**parsed)
        if self.check is not None:
            self.check(ctx, key, obj)
        return obj

    def dump(self, obj: Any) -> dict[str, Any]:
        return {k: spec.dump(getattr(obj, k)) for k, spec in {**self.fields, **self.optional}.items()}


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------


class Loader(yaml.SafeLoader):
    """SafeLoader that leaves timestamps as text and reads ``2e-3`` as a number.

    PyYAML turns an unquoted ``2026-02-30`` into a ValueError that names no key; as text it
    reaches :class:`Date`, which reports the file, key and line.
    """


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
# YAML 1.1 wants a dot in floats, so PyYAML reads 2e-3 as a string; accept exponent forms too.
Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _key_lines(node: yaml.Node, source: str, error_type: type[Exception]) -> dict[str, int]:
    """Line (1-based) of every dotted key; rejects duplicate keys, which YAML would silently merge."""
    lines: dict[str, int] = {}

    def walk(n: yaml.Node, path: str) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: set[str] = set()
            for k_node, v_node in n.value:
                k = str(k_node.value)
                dotted = join(path, k)
                if k in seen:
                    raise error_type(f"{source}: {dotted} is given twice (line {k_node.start_mark.line + 1}); "
                                     "expected each key once")
                seen.add(k)
                lines[dotted] = k_node.start_mark.line + 1
                walk(v_node, dotted)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                lines[f"{path}[{i}]"] = item.start_mark.line + 1
                walk(item, f"{path}[{i}]")

    walk(node, "")
    return lines


def read_yaml_mapping(path: Path, error_type: type[Exception], what: str) -> tuple[dict, dict[str, int]]:
    """Read a YAML file whose top level is a mapping.

    Parameters
    ----------
    path : Path
    error_type : type of Exception
        Raised for every problem, with a message naming the file (and line/column for syntax).
    what : str
        What the mapping holds, for messages ("scenario settings").

    Returns
    -------
    data : dict
        The parsed mapping (dates left as text).
    lines : dict
        Line of every dotted key, for error messages.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error_type(f"{source}: expected UTF-8 text, got an undecodable byte at offset {exc.start}") from exc
    try:
        node = yaml.compose(text, Loader=Loader)
        data = yaml.load(text, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise error_type(f"{source}: {where}invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise error_type(f"{source}: invalid YAML: {exc}") from exc
    if node is None:
        raise error_type(f"{source}: the file is empty; expected a mapping of {what}")
    if not isinstance(node, yaml.MappingNode):
        raise error_type(f"{source}: expected a mapping of {what} at the top level, got {got(data)}")
    return data, _key_lines(node, source, error_type)
