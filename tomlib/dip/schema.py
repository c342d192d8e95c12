"""Elexon's DIP API v2.1.0 schemas, resolved offline, and message validation.

The packaged files (``tomlib/dip/schemas``, byte copies with provenance in its README) are OpenAPI 3.0
YAML whose cross-file ``$ref`` are absolute URLs under :data:`SOURCE_PREFIX`. :func:`load_document`
reads one file and turns its OpenAPI-only keywords into JSON Schema: ``nullable: true`` becomes
``type: [<type>, "null"]`` (and ``null`` joins an ``enum``), ``example`` is dropped (documentation).
:func:`resolved` then inlines every ``$ref`` -- the URL prefix is mapped to the packaged folder, so
nothing is fetched -- giving one plain JSON Schema per interface payload. The spec has no recursive
reference (checked on resolution: a cycle raises).

Validation
----------
Two engines check the same resolved schema:

- ``"full"``: :mod:`jsonschema` (Draft 2020-12). Reports every error with the JSON path of the
  instance (``$.CustomBlock.B900.settlementDayConsumptionPeriods[0].consumptionPeriods[3].v``); the
  authority, used for every error message.
- ``"fast"``: the same schema compiled into closures by :func:`compile_validator` -- about 10x
  faster per message, and cheap under ``tracemalloc``. It answers valid / not valid; when a message
  is not valid, jsonschema is run on it to report the errors. It implements exactly the keywords of
  :data:`KEYWORDS`; :func:`resolved` refuses a schema with any other keyword, so the two engines
  cannot silently diverge (the tests compare them on valid, invalid and mutated messages).
  Formats are not asserted by either engine (``format`` is an annotation in OpenAPI 3.0; the spec
  pins date-times by an exact length of 25 instead).

``mode="none"`` skips validation (for trusted round trips in benchmarks of the writer alone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "KEYWORDS",
    "MODES",
    "SCHEMA_DIR",
    "SCHEMA_FILES",
    "SOURCE_PREFIX",
    "DipValidationError",
    "SchemaError",
    "check",
    "code_list",
    "compile_validator",
    "envelope_errors",
    "errors",
    "interface_of",
    "is_valid",
    "load_document",
    "payload_schema_name",
    "resolved",
]

#: Folder of the packaged schema files.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
#: URL prefix of every cross-file ``$ref`` in the spec; mapped to :data:`SCHEMA_DIR`.
SOURCE_PREFIX = "https://raw.githubusercontent.com/elexon-data/dip-api-documentation/main/"
#: The packaged files (the spec's Examples and ResponseCodes are not needed to validate messages).
SCHEMA_FILES = (
    "SubmitEvents-unresolved.yaml",
    "Interfaces-EventCodes-unresolved.yaml",
    "RealCommonBlocks-unresolved.yaml",
    "DataCatalogue-unresolved.yaml",
    "DataTypes-unresolved.yaml",
    "ECS-CommonBlocks-unresolved.yaml",
    "ECS-Reports-unresolved.yaml",
)
_INTERFACES = "Interfaces-EventCodes-unresolved.yaml"
_REPORTS = "ECS-Reports-unresolved.yaml"
_SUBMIT = "SubmitEvents-unresolved.yaml"
#: Validation modes.
MODES = ("full", "fast", "none")
#: JSON Schema keywords the resolved schemas may use (same meaning in draft 7 and 2020-12), plus
#: annotations. Anything else makes :func:`resolved` raise.
KEYWORDS = frozenset({
    "type", "properties", "required", "additionalProperties", "enum", "minLength", "maxLength", "pattern",
    "items", "minItems", "maxItems", "oneOf", "anyOf", "allOf", "minimum", "maximum", "multipleOf",
    "format", "description", "title",
})
_SCHEMA_VALUED = ("items", "additionalProperties")
_SCHEMA_LISTS = ("oneOf", "anyOf", "allOf")

try:  # libyaml parses the ~1 MB of YAML in a fraction of the pure-Python time
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on the PyYAML build
    _Loader = yaml.SafeLoader


# ------------------------------------------------------------------------------------------ loading


def _openapi_to_json_schema(node: Any) -> Any:
    """``nullable`` -> null type (and null in ``enum``); ``example`` dropped; recursively."""
    if isinstance(node, dict):
        out = {k: _openapi_to_json_schema(v) for k, v in node.items() if k != "example"}
        if out.pop("nullable", False) is True:
            t = out.get("type")
            if isinstance(t, str):
                out["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                out["type"] = [*t, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out
    if isinstance(node, list):
        return [_openapi_to_json_schema(v) for v in node]
    return node


@cache
def load_document(name: str) -> dict:
    """One packaged schema file as a JSON Schema document (nullable converted, examples dropped).

    Parameters
    ----------
    name : str
        File name, one of :data:`SCHEMA_FILES`.

    Returns
    -------
    dict
        The parsed document (cached; do not modify).
    """
    if name not in SCHEMA_FILES:
        raise ValueError(f"DIP schema file {name!r} is not packaged; expected one of {list(SCHEMA_FILES)}")
    path = SCHEMA_DIR / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the DIP schema file ({exc.strerror})") from exc
    return _openapi_to_json_schema(yaml.load(text, Loader=_Loader))


def _target(ref: str, base: str) -> tuple[str, str]:
    """(file, JSON pointer) of a ``$ref`` found in file ``base``."""
    file, _, pointer = ref.partition("#")
    if not file:
        return base, pointer
    if not file.startswith(SOURCE_PREFIX):
        raise ValueError(f"{base}: $ref {ref!r} points outside the DIP spec ({SOURCE_PREFIX}...)")
    return file[len(SOURCE_PREFIX):], pointer


def _pointer(doc: dict, pointer: str, where: str) -> Any:
    node: Any = doc
    for part in pointer.strip("/").split("/") if pointer.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise ValueError(f"{where}: JSON pointer {pointer!r} does not resolve (no {part!r})")
        node = node[part]
    return node


class _Resolver:
    """Inlines ``$ref`` (memoised per target) and checks the keywords of every schema node."""

    def __init__(self) -> None:
        self.done: dict[tuple[str, str], Any] = {}

    def target(self, file: str, pointer: str, stack: tuple = ()) -> Any:
        key = (file, pointer)
        if key in stack:
            chain = " -> ".join(f"{f}#{p}" for f, p in (*stack, key))
            raise ValueError(f"DIP schema: recursive $ref {chain}")
        if key not in self.done:
            node = _pointer(load_document(file), pointer, file)
            self.done[key] = self.schema(node, file, f"{file}#{pointer}", (*stack, key))
        return self.done[key]

    def schema(self, node: Any, file: str, where: str, stack: tuple) -> Any:
        if isinstance(node, bool):
            return node
        if not isinstance(node, dict):
            raise TypeError(f"{where}: expected a schema object, got {type(node).__name__}")
        if "$ref" in node:
            extra = sorted(set(node) - {"$ref", "description"})
            if extra:  # OpenAPI 3.0 ignores siblings of $ref; JSON Schema 2020-12 would apply them
                raise ValueError(f"{where}: keywords {extra} beside $ref are not supported")
            return self.target(*_target(node["$ref"], file), stack)
        unknown = sorted(set(node) - KEYWORDS)
        if unknown:
            raise ValueError(f"{where}: schema keyword(s) {unknown} are not supported by tomlib.dip "
                             f"(known: {sorted(KEYWORDS)})")
        out = dict(node)
        if "properties" in node:
            out["properties"] = {k: self.schema(v, file, f"{where}/properties/{k}", stack)
                                 for k, v in node["properties"].items()}
        for kw in _SCHEMA_VALUED:
            if isinstance(node.get(kw), dict):
                out[kw] = self.schema(node[kw], file, f"{where}/{kw}", stack)
        for kw in _SCHEMA_LISTS:
            if kw in node:
                out[kw] = [self.schema(v, file, f"{where}/{kw}/{i}", stack) for i, v in enumerate(node[kw])]
        return out


@cache
def _resolved(file: str, pointer: str) -> Any:
    return _Resolver().target(file, pointer)


def resolved(name: str, file: str = _INTERFACES) -> dict:
    """A schema of the spec with every ``$ref`` inlined: a plain JSON Schema.

    Parameters
    ----------
    name : str
        Schema name under ``components/schemas``, e.g. ``"IF-021-Payload"``,
        ``"IF-033-MSAppSPRequest"``, ``"REP-003-CustomBlock"`` (with ``file`` the reports file) or
        ``"DIPMessageArray"`` (SubmitEvents).
    file : str
        The packaged file that defines it; default the interfaces file. ``"REP-xxx-CustomBlock"``
        and ``"DIPMessage..."`` names find their file themselves.

    Returns
    -------
    dict
        Cached; deep-copy before modifying.
    """
    if file == _INTERFACES and name.endswith("-CustomBlock") and name.startswith("REP-"):
        file = _REPORTS
    if file == _INTERFACES and name.startswith("DIPMessage"):
        file = _SUBMIT
    schemas = load_document(file).get("components", {}).get("schemas", {})
    if name not in schemas:
        raise ValueError(f"{file}: no schema {name!r} under components/schemas")
    return _resolved(file, f"/components/schemas/{name}")


def code_list(data_item: str) -> list:
    """The ``enum`` of a data item of the data catalogue (e.g. ``"DI-083"``), in the spec's order.

    Parameters
    ----------
    data_item : str
        ``"DI-083"`` or the full name ``"DI-083-Settlement-Period-Quality-Indicator"``.

    Returns
    -------
    list
        Codes; ``None`` is included where the item is nullable.
    """
    schemas = load_document("DataCatalogue-unresolved.yaml")["components"]["schemas"]
    names = [n for n in schemas if n == data_item or n.startswith(data_item + "-")]
    if len(names) != 1:
        raise ValueError(f"data catalogue: {data_item!r} matches {names or 'no item'}; expected one item")
    node = _resolved("DataCatalogue-unresolved.yaml", f"/components/schemas/{names[0]}")
    if "enum" not in node:
        raise ValueError(f"data catalogue: {names[0]} has no code list")
    return list(node["enum"])


# ------------------------------------------------------------------------------------------ fast engine


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_integer(x: Any) -> bool:  # JSON Schema: a number with no fractional part (1.0 counts)
    return (isinstance(x, int) and not isinstance(x, bool)) or (isinstance(x, float) and x.is_integer())


_TYPE_TESTS = {
    "string": lambda x: isinstance(x, str),
    "object": lambda x: isinstance(x, dict),
    "array": lambda x: isinstance(x, list),
    "boolean": lambda x: isinstance(x, bool),
    "null": lambda x: x is None,
    "number": _is_number,
    "integer": _is_integer,
}


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 == 1.0, containers compared deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


_LEAF_KEYWORDS = frozenset({"type", "enum", "minLength", "maxLength", "pattern", "format", "description", "title"})


def _string_leaf(node: dict):
    """Fast path for the commonest node, a (nullable) string data item; None if ``node`` is not one."""
    import re

    t = node.get("type")
    if not set(node) <= _LEAF_KEYWORDS or t not in ("string", ["string", "null"], ["null", "string"]):
        return None
    nullable = t != "string"
    lo, hi = node.get("minLength", 0), node.get("maxLength", float("inf"))
    search = re.compile(node["pattern"]).search if "pattern" in node else None

    def ok(x: str) -> bool:
        return lo <= len(x) <= hi and (search is None or search(x) is not None)
    if "enum" in node:
        # the valid values are the enum's that pass the other checks (exact: enum fixes the value)
        values = node["enum"]
        if not all(isinstance(v, str) or v is None for v in values):
            return None
        allowed = frozenset(v for v in values if isinstance(v, str) and ok(v))
        null_ok = nullable and None in values
        return lambda x: (x is None and null_ok) or (isinstance(x, str) and x in allowed)
    if search is None:
        if nullable:
            return lambda x: x is None or (isinstance(x, str) and lo <= len(x) <= hi)
        return lambda x: isinstance(x, str) and lo <= len(x) <= hi
    if nullable:
        return lambda x: x is None or (isinstance(x, str) and lo <= len(x) <= hi and search(x) is not None)
    return lambda x: isinstance(x, str) and lo <= len(x) <= hi and search(x) is not None


def compile_validator(node: Any):
    """Compile a resolved schema (keywords of :data:`KEYWORDS`) into ``check(instance) -> bool``.

    Each schema node becomes a closure; the checks are JSON Schema's (as jsonschema implements
    them): ``type`` (integer = no fractional part, booleans are not numbers), ``enum`` (JSON
    equality), string lengths in code points, ``pattern`` by ``re.search``, numeric bounds and
    ``multipleOf`` on numbers only, array and object keywords on arrays and objects only,
    ``oneOf`` exactly one, ``format``/``description``/``title`` as annotations. In the common case
    nothing is allocated, so the checks stay cheap under ``tracemalloc`` too.
    """
    import re

    if node is True:
        return lambda x: True
    if node is False:
        return lambda x: False
    leaf = _string_leaf(node)
    if leaf is not None:
        return leaf
    checks = []
    t = node.get("type")
    if t is not None:
        tests = tuple(_TYPE_TESTS[name] for name in ([t] if isinstance(t, str) else t))
        if len(tests) == 1:
            checks.append(tests[0])
        else:
            checks.append(lambda x, tests=tests: any(test(x) for test in tests))
    if "enum" in node:
        values = list(node["enum"])
        if all(isinstance(v, str) or v is None for v in values):
            strings, nullable = frozenset(v for v in values if v is not None), None in values
            checks.append(lambda x: (isinstance(x, str) and x in strings) or (nullable and x is None))
        else:
            checks.append(lambda x: any(_json_equal(x, v) for v in values))
    lo, hi = node.get("minLength"), node.get("maxLength")
    if lo is not None or hi is not None:
        lo, hi = lo or 0, hi if hi is not None else float("inf")
        checks.append(lambda x: not isinstance(x, str) or lo <= len(x) <= hi)
    if "pattern" in node:
        search = re.compile(node["pattern"]).search
        checks.append(lambda x: not isinstance(x, str) or search(x) is not None)
    if "minimum" in node:
        low = node["minimum"]
        checks.append(lambda x: not _is_number(x) or x >= low)
    if "maximum" in node:
        high = node["maximum"]
        checks.append(lambda x: not _is_number(x) or x <= high)
    if "multipleOf" in node:
        step = node["multipleOf"]

        def multiple(x):
            if not _is_number(x):
                return True
            if isinstance(step, float):
                q = x / step
                return int(q) == q
            return x % step == 0
        checks.append(multiple)
    if isinstance(node.get("items"), dict):
        item = compile_validator(node["items"])
        checks.append(lambda x: not isinstance(x, list) or all(item(v) for v in x))
    n_lo, n_hi = node.get("minItems"), node.get("maxItems")
    if n_lo is not None or n_hi is not None:
        n_lo, n_hi = n_lo or 0, n_hi if n_hi is not None else float("inf")
        checks.append(lambda x: not isinstance(x, list) or n_lo <= len(x) <= n_hi)
    if "required" in node:
        required = frozenset(node["required"])
        checks.append(lambda x: not isinstance(x, dict) or required <= x.keys())
    props = {k: compile_validator(v) for k, v in node.get("properties", {}).items()}
    extra = node.get("additionalProperties", True)
    if props or extra is not True:
        extra_check = None if isinstance(extra, bool) else compile_validator(extra)
        closed = extra is False

        def properties(x):
            if not isinstance(x, dict):
                return True
            for k, v in x.items():
                check = props.get(k)
                if check is not None:
                    if not check(v):
                        return False
                elif closed or (extra_check is not None and not extra_check(v)):
                    return False
            return True
        checks.append(properties)
    for kw, rule in (("allOf", all), ("anyOf", any)):
        if kw in node:
            subs = [compile_validator(sub) for sub in node[kw]]
            checks.append(lambda x, subs=subs, rule=rule: rule(sub(x) for sub in subs))
    if "oneOf" in node:
        subs = [compile_validator(sub) for sub in node["oneOf"]]
        checks.append(lambda x: sum(1 for sub in subs if sub(x)) == 1)
    if not checks:
        return lambda x: True
    if len(checks) == 1:
        return checks[0]
    checks = tuple(checks)

    def check_all(x):
        for c in checks:
            if not c(x):
                return False
        return True
    return check_all


# ------------------------------------------------------------------------------------------ which schema


def interface_of(payload: Any) -> str | None:
    """``CommonBlock.S0.interfaceID`` of a payload, or None if it has none."""
    try:
        value = payload["CommonBlock"]["S0"]["interfaceID"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _event_of(payload: Any) -> str | None:
    try:
        value = payload["CommonBlock"]["S0"]["eventCode"]
    except (KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def payload_schema_name(interface: str, event_code: str | None = None) -> str:
    """Name of the schema a payload is checked against.

    The event-specific schema where the spec has one (``IF-033`` + ``[MSAppSPRequest]`` ->
    ``IF-033-MSAppSPRequest``: one set of errors instead of a ``oneOf`` over all events), else
    ``<interface>-Payload``.
    """
    schemas = load_document(_INTERFACES)["components"]["schemas"]
    if event_code:
        specific = f"{interface}-{event_code.strip('[]')}"
        if specific in schemas:
            return specific
    name = f"{interface}-Payload"
    if name not in schemas:
        known = sorted({n.rsplit("-Payload", 1)[0] for n in schemas if n.endswith("-Payload")})
        raise ValueError(f"unknown DIP interface {interface!r}; the v2.1.0 spec defines {', '.join(known)}")
    return name


# ------------------------------------------------------------------------------------------ errors


@dataclass(frozen=True)
class SchemaError:
    """One schema violation.

    Attributes
    ----------
    path : str
        JSON path of the offending instance, ``$`` = the checked document.
    message : str
        What the validator found.
    schema_path : str
        Where in the resolved schema the failing keyword is.
    """

    path: str
    message: str
    schema_path: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DipValidationError(ValueError):
    """A DIP message that does not pass its schema; ``errors`` lists every violation."""

    def __init__(self, where: str, schema: str, errors: list[SchemaError]):
        self.where = where
        self.schema = schema
        self.errors = list(errors)
        shown = "\n  ".join(str(e) for e in self.errors[:20])
        more = f"\n  ... and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__(f"{where}: {len(self.errors)} error(s) against {schema} (DIP API v2.1.0):\n  {shown}{more}")


def json_path(parts: Iterable) -> str:
    """``["a", 0, "b"]`` -> ``"$.a[0].b"``."""
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


@cache
def _jsonschema_validator(key: tuple[str, str]):
    import jsonschema

    return jsonschema.Draft202012Validator(_schema_by_key(key))


@cache
def _fast_validator(key: tuple[str, str]):
    return compile_validator(_schema_by_key(key))


def _schema_by_key(key: tuple[str, str]) -> dict:
    name, file = key
    return resolved(name, file)


def _key_for(payload: Any, interface: str | None, schema: str | None) -> tuple[str, str]:
    if schema is not None:
        return (schema, _REPORTS if schema.endswith("-CustomBlock") else
                _SUBMIT if schema.startswith("DIPMessage") else _INTERFACES)
    iface = interface or interface_of(payload)
    if iface is None:
        raise DipValidationError("message", "DIP payload", [SchemaError(
            "$.CommonBlock.S0.interfaceID", "missing; cannot tell which interface schema applies")])
    return payload_schema_name(iface, _event_of(payload)), _INTERFACES


def _jsonschema_errors(key: tuple[str, str], instance: Any, prefix: tuple = ()) -> list[SchemaError]:
    validator = _jsonschema_validator(key)
    found = []
    for err in validator.iter_errors(instance):
        found.append(SchemaError(json_path((*prefix, *err.absolute_path)), err.message,
                                 "/".join(str(p) for p in err.absolute_schema_path)))
    return sorted(found, key=lambda e: (e.path, e.message))


def errors(payload: Any, interface: str | None = None, *, schema: str | None = None,
           prefix: tuple = ()) -> list[SchemaError]:
    """Every schema error of one payload (jsonschema; empty list = valid).

    Parameters
    ----------
    payload : dict
        ``{"CommonBlock": ..., "CustomBlock": ...}`` (not wrapped in ``{"payload": ...}``).
    interface : str, optional
        Interface id; default ``CommonBlock.S0.interfaceID`` of the payload.
    schema : str, optional
        Check against this named schema instead (e.g. ``"REP-003-CustomBlock"``).
    prefix : tuple
        Path parts put before each error's path (e.g. ``(0, "payload")`` for a message array).

    Returns
    -------
    list of SchemaError
        Sorted by path.
    """
    try:
        key = _key_for(payload, interface, schema)
    except DipValidationError:
        return [SchemaError(json_path((*prefix, "CommonBlock", "S0", "interfaceID")),
                            "missing; cannot tell which interface schema applies")]
    return _jsonschema_errors(key, payload, prefix)


def is_valid(payload: Any, interface: str | None = None, *, schema: str | None = None, mode: str = "fast") -> bool:
    """Whether a payload passes its schema (``mode`` "fast" or "full")."""
    if mode not in ("fast", "full"):
        raise ValueError(f"is_valid: mode must be 'fast' or 'full', got {mode!r}")
    try:
        key = _key_for(payload, interface, schema)
    except DipValidationError:
        return False
    if mode == "full":
        return _jsonschema_validator(key).is_valid(payload)
    return _fast_validator(key)(payload)


def check(payload: Any, interface: str | None = None, *, schema: str | None = None, mode: str = "fast",
          where: str = "DIP message") -> None:
    """Raise :class:`DipValidationError` (every error with its path) unless the payload is valid.

    Parameters
    ----------
    payload : dict
    interface, schema : str, optional
        As for :func:`errors`.
    mode : {"fast", "full", "none"}
        Engine deciding validity (module docstring); errors always come from jsonschema.
    where : str
        Names the message in the error (file and index, MPAN, ...).
    """
    if mode == "none":
        return
    if mode not in MODES:
        raise ValueError(f"check: mode must be one of {MODES}, got {mode!r}")
    if mode == "fast" and is_valid(payload, interface, schema=schema, mode="fast"):
        return
    try:
        key = _key_for(payload, interface, schema)
    except DipValidationError as err:
        raise DipValidationError(where, err.schema, err.errors) from None
    found = _jsonschema_errors(key, payload)
    if found:
        raise DipValidationError(where, key[0], found)


def envelope_errors(messages: Any) -> list[SchemaError]:
    """Errors of a whole submission against the spec's root ``DIPMessageArray`` (jsonschema).

    Slow (a ``oneOf`` over every interface's payload schema per message): meant for tests and
    spot checks, not for streams.
    """
    return _jsonschema_errors(("DIPMessageArray", _SUBMIT), messages)
