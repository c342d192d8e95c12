"""The packaged DIP API v2.1.0 schemas: provenance, offline resolution, nullable, and the samples."""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import re
import zlib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tomlib import cube, dip
from tomlib.dip import schema

DATA = Path(__file__).parent / "data" / "dip"
THIRD = DATA / "third-party"


@functools.cache
def _examples() -> dict:
    return yaml.load((DATA / "Examples-unresolved.yaml").read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def examples() -> dict:
    """The official example messages (a fresh copy each call)."""
    return copy.deepcopy(_examples()["components"]["examples"])


def renamed_if021_example() -> dict:
    """The official IF-021 example with the renames of the samples README (and nothing else)."""
    msg = copy.deepcopy(examples()["IF-021"]["value"][0])
    cb = msg["payload"]["CommonBlock"]
    cb["S0"]["interfaceID"] = cb["S0"].pop("interfaceId")
    for old, new in (("environment", "environmentTag"), ("sentTimestamp", "senderTimestamp"),
                     ("senderDIPId", "senderDIPID"), ("senderRole", "senderRoleID"),
                     ("senderCorrelationId", "senderCorrelationID"),
                     ("DIPConnectionProviderId", "DIPConnectionProviderID")):
        cb["S1"][new] = cb["S1"].pop(old)
    cu = msg["payload"]["CustomBlock"]
    cu["B900"] = cu.pop("B900List")[0]
    for day in cu["B900"]["settlementDayConsumptionPeriods"]:
        day["settlementDay"]["periodDuration"] = day["settlementDay"].pop("settlementPeriodDuration")
    return msg


def test_packaged_files_match_the_readme_sha256():
    readme = (schema.SCHEMA_DIR / "README.md").read_text()
    table = dict(re.findall(r"\| `([\w-]+\.yaml)` \| \d+ \| `([0-9a-f]{64})`", readme))
    assert sorted(table) == sorted(schema.SCHEMA_FILES)
    for name, digest in table.items():
        assert hashlib.sha256((schema.SCHEMA_DIR / name).read_bytes()).hexdigest() == digest, name


def test_fixture_files_match_the_readme_sha256():
    readme = (DATA / "README.md").read_text()
    rows = re.findall(r"\| `([\w/.-]+)` \| .*? \| `([0-9a-f]{64})`", readme)
    assert len(rows) == 4
    for name, digest in rows:
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_every_payload_schema_resolves_offline_without_refs():
    names = [n for n in schema.load_document("Interfaces-EventCodes-unresolved.yaml")["components"]["schemas"]]
    assert "IF-021-Payload" in names and "REP-003-Payload" in names
    for name in names:
        text = json.dumps(schema.resolved(name))
        assert "$ref" not in text and "nullable" not in text and "example" not in text, name
    assert "$ref" not in json.dumps(schema.resolved("REP-003-CustomBlock"))
    assert "$ref" not in json.dumps(schema.resolved("DIPMessageArray"))


def test_nullable_becomes_a_null_type_and_enum_member():
    e = schema.resolved("IF-021-Payload")["properties"]["CustomBlock"]["properties"]["B900"]["properties"][
        "settlementDayConsumptionPeriods"]["items"]["properties"]["consumptionPeriods"]["items"]["properties"]["e"]
    assert e["type"] == ["string", "null"] and e["enum"][-1] is None
    assert schema.code_list("DI-076") == [str(i) for i in range(1, 11)] + [None]


def test_unknown_keywords_and_refs_outside_the_spec_are_refused(monkeypatch):
    resolver = schema._Resolver()
    with pytest.raises(ValueError, match="not supported"):
        resolver.schema({"type": "string", "discriminator": {}}, "x.yaml", "x.yaml#/a", ())
    with pytest.raises(ValueError, match="outside the DIP spec"):
        schema._target("https://example.com/other.yaml#/a", "x.yaml")


def test_cube_codes_are_the_catalogue_code_lists():
    dip.check_code_lists()
    di083 = [c for c in schema.code_list("DI-083") if c is not None]
    assert len(di083) == 38 and di083[:3] == ["A", "E", "E0"] and di083[-1] == "EA13"
    assert [cube.QUALITY_LABELS[k] for k in range(1, 39)] == di083


def test_official_if021_example_passes_after_the_documented_renames_only():
    raw = examples()["IF-021"]["value"][0]
    errs = schema.errors(raw["payload"], "IF-021")
    paths = {e.path for e in errs}
    assert "$.CommonBlock.S0" in paths and "$.CustomBlock" in paths  # interfaceId, B900List
    assert dip.validate(renamed_if021_example()) == []
    assert dip.validate(renamed_if021_example(), mode="fast") == []


def test_official_rep002_example_body_is_a_valid_rep003_body():
    raw = examples()["REP-002"]["value"][0]["payload"]["CustomBlock"]["P03"]["compressedReport"]
    body = json.loads(zlib.decompress(base64.b64decode(raw)))
    assert schema.errors(body, schema="REP-003-CustomBlock") == []
    assert body["R013"]["GSPGroupID"] == "_N" and body["R002"]["settlementCode"] == "R2"


@pytest.mark.parametrize("path, interface, n_errors, some_paths", [
    ("reachtonavakanth-mhhs_poc/if-041.json", "IF-041", 12,
     {"$.CommonBlock.S0.eventCode", "$.CommonBlock.M0.MPANCore", "$.CommonBlock.S1.senderDIPID",
      "$.CustomBlock.B064List[0].cumulativeRegisterReading",
      "$.CustomBlock.B064List[0].cumulativeRegisterReadingDateTime", "$.CommonBlock.D0.publicationID"}),
    ("sureserve-mhhs-simulator/change_of_supplier.json", "IF-033", 14,
     {"$.CommonBlock.S0.schemaVersion", "$.CustomBlock.B032.SSC", "$.CustomBlock.B013",
      "$.CustomBlock.B908List[0].existingMeter.primaryMPAN", "$.CommonBlock.A0.always[0]"}),
])
def test_invalid_third_party_samples_are_refused_with_every_error_path(path, interface, n_errors, some_paths):
    with pytest.raises(dip.DipValidationError) as info:
        dip.import_messages(THIRD / path, interface=interface)
    err = info.value
    assert len(err.errors) == n_errors  # the counts of the samples README
    assert some_paths <= {e.path for e in err.errors}
    assert str(THIRD / path) in str(err) and "$.CommonBlock" in str(err)
    # the same with on_invalid="reject": one row per error, the path in `field`
    got = dip.import_messages(THIRD / path, interface=interface, on_invalid="reject")
    assert len(got.rejected) == n_errors and set(got.rejected["field"]) >= some_paths
    assert got.checks["invalid_messages"] == 1


def test_valid_third_party_if033_reads():
    got = dip.import_messages(THIRD / "sureserve-mhhs-simulator" / "if-033.json")
    row = got.appointments.iloc[0]
    assert len(got.appointments) == 1 and row["mpan"] == "1234567890123" and row["gsp_group"] == "_K"
    assert row["appointment_scenario"] == "COS" and row["ssc"] == "0123"


def test_fast_and_full_engines_agree_on_every_sample():
    samples = [(renamed_if021_example()["payload"], "IF-021"), (examples()["IF-021"]["value"][0]["payload"], "IF-021")]
    for p, iface in (("reachtonavakanth-mhhs_poc/if-041.json", "IF-041"),
                     ("sureserve-mhhs-simulator/change_of_supplier.json", "IF-033"),
                     ("sureserve-mhhs-simulator/if-033.json", "IF-033")):
        data = json.loads((THIRD / p).read_text())
        samples.append((data[0]["payload"] if isinstance(data, list) else data, iface))
    for payload, iface in samples:
        assert schema.is_valid(payload, iface, mode="fast") == schema.is_valid(payload, iface, mode="full")
    assert [schema.is_valid(p, i) for p, i in samples] == [True, False, False, False, True]


def test_whole_submission_against_dip_message_array():
    assert schema.envelope_errors([renamed_if021_example()]) == []
    assert schema.envelope_errors([]) != []  # minItems 1


# ------------------------------------------------------------------------------------------ fast engine = jsonschema

_SCALARS = st.none() | st.booleans() | st.integers(-5, 100) | st.sampled_from([1.0, 30.0, 2.5, -0.5]) | st.sampled_from(
    ["", "A", "E0", "ZE3", "1", "10", "11", "W", "AI", "RI", "_K", "_I", "9.901", "-0.000", "9.9", "1000000000.000",
     "2022-03-21T00:30:00+00:00", "2022-03-21T00:30:00Z", "x" * 26, "1234567890123", "[ActivePower]", "T", "011"])
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from(["sp", "v", "q", "e", "arc", "x", "MQID"]), inner, max_size=3),
                       max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _mutated(doc, path, op, value):
    doc = copy.deepcopy(doc)
    if not path:
        return value
    parent = doc
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "add" and isinstance(parent[last], dict):
        parent[last]["unexpected"] = value
    elif op == "append" and isinstance(parent[last], list):
        parent[last].extend([copy.deepcopy(parent[last][0])] * 50 if parent[last] else [value])
    else:
        parent[last] = value
    return doc


@functools.cache
def _engines(name):
    import jsonschema

    resolved = schema.resolved(name)
    return schema.compile_validator(resolved), jsonschema.Draft202012Validator(resolved)


@pytest.mark.parametrize("name, sample", [
    ("IF-021-Payload", lambda: renamed_if021_example()["payload"]),
    ("IF-033-Payload", lambda: json.loads((THIRD / "sureserve-mhhs-simulator" / "if-033.json").read_text())[0]["payload"]),
])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_engine_agrees_with_jsonschema_on_mutated_messages(name, sample, data):
    fast, full = _engines(name)
    doc = sample()
    paths = list(_paths(doc))
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["replace", "delete", "add", "append"] if path else ["replace"]))
    value = data.draw(_VALUES)
    mutated = _mutated(doc, path, op, value)
    assert fast(mutated) == full.is_valid(mutated), (path, op, value)


def test_fast_engine_keyword_semantics():
    check = schema.compile_validator
    assert check({"type": "integer"})(30.0) and not check({"type": "integer"})(True)
    assert not check({"type": "number"})(False) and check({"type": ["string", "null"]})(None)
    assert check({"enum": [1, "a"]})(1.0) and not check({"enum": [1]})(True)
    assert check({"minLength": 2})(5) and not check({"type": "string", "minLength": 2})("é")
    assert check({"pattern": "^a"})(3) and not check({"type": "string", "pattern": "^a"})("ba")
    assert check({"multipleOf": 15, "minimum": 30, "maximum": 30})(30) and not check({"multipleOf": 0.5})(0.3)
    assert check({"oneOf": [{"type": "string"}, {"type": "integer"}]})(1)
    assert not check({"oneOf": [{"type": "number"}, {"type": "integer"}]})(1)
    closed = check({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                    "additionalProperties": False})
    assert closed({"a": "x"}) and not closed({"a": "x", "b": 1}) and not closed({}) and not closed([])
    assert check({"type": "string", "enum": ["AB", "A"], "minLength": 2})("AB")
    assert not check({"type": "string", "enum": ["AB", "A"], "minLength": 2})("A")
