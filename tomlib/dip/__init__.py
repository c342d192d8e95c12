"""Speak MHHS: the services' DIP messages, written and read, validated against Elexon's official schemas.

Under MHHS the services exchange JSON messages over the Data Integration Platform (DIP). This package
writes the messages of tomlib's services and reads real ones back into tomlib data, checking each
against the DIP API v2.1.0 schemas packaged in ``tomlib/dip/schemas`` (provenance in its README;
nothing is fetched at run time).

==========  ======================================================  ==========================  =========================
interface   what                                                    written from                read into
==========  ======================================================  ==========================  =========================
IF-021      UTC settlement period consumption (data services ->     settled meter cube          meter cube
            volume allocation)                                      (:mod:`.if021`)             (:func:`read_if021`)
IF-041      smart/advanced meter readings                           read table (Meter Reading)  read table
IF-033      registration request for a metering service             registration events +       appointment table
            appointment                                             standing (+ metering)
IF-022      load shape period data (LSS)                            load shapes                 load shapes
IF-023      load shape totals (LSS)                                 load-shape totals           totals
REP-003     BM unit allocated demand volumes (zlib + base64 body)   settlement run              allocation Dataset
==========  ======================================================  ==========================  =========================

Entry points: :func:`export_messages` / :func:`import_messages` (files, streamed: JSON lines or a
file per day, :mod:`.files`), the ``*_payloads`` generators and ``read_*`` functions per interface,
:mod:`.schema` for validation (:func:`validate`), and :func:`register_cli` for ``tom export`` /
``tom import``.

Decisions
---------
- **sp** (DI-082) is the UTC **end** of the period, as the data catalogue defines it; the official
  v0.6 IF-021 example uses starts and reads with ``sp_convention="auto"`` or ``"start"``
  (:mod:`.if021`).
- **Quality codes**: the cube's uint8 codes map one-to-one onto DI-083 (code k = k-th catalogue entry,
  0 = MISSING = period not sent) and DI-076 (code = wire value, 0 = null); :func:`check_code_lists`
  proves the lists equal to the packaged catalogue.
- **Units**: IF-021/IF-022/IF-023/IF-041 values in kWh with 3 decimals (DT-016); REP-003 in MWh with
  6 decimals [INF]. Reading returns kWh; values come back rounded to the wire's last decimal.
- **Participants** are synthetic DIP ids [INF] (:mod:`.common`), environment ``DEV``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd

from tomlib.dip import schema
from tomlib.dip.common import DipConfig, dip_id
from tomlib.dip.files import (
    INTERFACES,
    LAYOUTS,
    export_messages,
    import_messages,
    iter_messages,
    write_messages,
)
from tomlib.dip.if021 import If021Data, if021_payloads, read_if021
from tomlib.dip.if033 import If033Data, if033_payloads, read_if033
from tomlib.dip.if041 import If041Data, if041_payloads, read_if041
from tomlib.dip.load_shapes import LoadShapeData, if022_payloads, if023_payloads, read_if022, read_if023
from tomlib.dip.rep003 import Rep003Data, read_rep003, rep003_payloads
from tomlib.dip.schema import DipValidationError, SchemaError

__all__ = [
    "INTERFACES",
    "LAYOUTS",
    "DipConfig",
    "DipValidationError",
    "If021Data",
    "If033Data",
    "If041Data",
    "LoadShapeData",
    "Rep003Data",
    "SchemaError",
    "bench_inputs",
    "check_code_lists",
    "dip_id",
    "export_messages",
    "if021_payloads",
    "if022_payloads",
    "if023_payloads",
    "if033_payloads",
    "if041_payloads",
    "import_messages",
    "iter_messages",
    "read_if021",
    "read_if022",
    "read_if023",
    "read_if033",
    "read_if041",
    "read_rep003",
    "register_cli",
    "rep003_payloads",
    "schema",
    "validate",
    "write_if021",
    "write_messages",
]


def validate(message: Any, interface: str | None = None, *, mode: str = "full") -> list[SchemaError]:
    """Schema errors of one DIP message (``{"payload": ...}``) or payload; empty list = valid.

    Parameters
    ----------
    message : dict
    interface : str, optional
        Default the message's ``CommonBlock.S0.interfaceID``.
    mode : {"full", "fast"}
        ``"fast"`` decides validity with the compiled validator and only then collects the errors.

    Returns
    -------
    list of SchemaError
        Each with the JSON path of the offending value (relative to the payload).
    """
    from tomlib.dip.common import unwrap

    payload = unwrap(message, "message")
    if mode == "fast" and schema.is_valid(payload, interface, mode="fast"):
        return []
    return schema.errors(payload, interface)


def check_code_lists() -> None:
    """Check that the cube's quality and estimation-reason codes are the catalogue's, one to one.

    Raises
    ------
    ValueError
        If DI-083 (quality indicator) or DI-076 (estimation reason) of the packaged data catalogue
        differs from :data:`tomlib.cube.QUALITY_CODES` / :data:`tomlib.cube.ESTIMATION_REASONS`
        (code k >= 1 = the k-th catalogue entry).
    """
    from tomlib import cube

    di083 = [c for c in schema.code_list("DI-083") if c is not None]
    ours = [cube.QUALITY_LABELS[k] for k in range(1, len(cube.QUALITY_LABELS))]
    if ours != di083:
        raise ValueError(f"tomlib.cube quality codes 1..{len(ours)} {ours} differ from DI-083 {di083}")
    di076 = [c for c in schema.code_list("DI-076") if c is not None]
    reasons = [str(k) for k in range(1, len(cube.ESTIMATION_REASONS))]
    if reasons != di076:
        raise ValueError(f"tomlib.cube estimation reasons 1..{len(reasons)} differ from DI-076 {di076}")


def write_if021(meters, out=None, *, layout: str | None = None, validate: str = "fast", config: Any = None,
                sent_at=None) -> dict:
    """Write (or, with ``out=None``, serialise and count) the IF-021 messages of a meter cube.

    Every message is validated (``validate``) and serialised to JSON; with ``out=None`` the text is
    measured and dropped, which is what the benchmark times.

    Parameters
    ----------
    meters : Dataset or SegmentResult
        Settled meter cube (:func:`if021_payloads`).
    out : path, optional
        ``.jsonl`` file or folder; None = no file.
    layout, validate, config, sent_at
        As for :func:`export_messages`.

    Returns
    -------
    dict
        ``messages``, ``periods``, ``bytes``, ``seconds`` and the writer's counters.
    """
    if out is not None:
        return export_messages(meters, out, interface="IF-021", layout=layout, validate=validate, config=config,
                               sent_at=sent_at)
    stats: dict = {}
    started = time.perf_counter()
    size = 0
    for n, (day, payload) in enumerate(if021_payloads(meters, config=config, sent_at=sent_at, stats=stats)):
        schema.check(payload, "IF-021", mode=validate, where=f"IF-021 message {n} ({day})")
        size += len(json.dumps({"payload": payload}, separators=(",", ":")))
    return {**stats, "bytes": size, "seconds": time.perf_counter() - started}


def bench_inputs(mpan_days: int = 100_000, days: int = 7, seed: int = 0) -> dict:
    """Keyword arguments of :func:`write_if021` for the benchmark: a synthetic settled meter cube.

    ``mpan_days // days`` MPANs over ``days`` settlement days from 2026-03-23 (the week holds the
    46-period day 2026-03-29), energy lognormal [kWh], quality mostly ``A`` with estimates (E2/E3/E9
    with their DI-076 reasons) and about 0.5 % MISSING periods. No market generator needed.

    Returns
    -------
    dict
        ``meters`` (meter cube, ``energy`` over mpan x time), ``sent_at``; ``out`` is None (messages
        are validated and serialised, not written).
    """
    from tomlib import calendar, cube
    from tomlib import mpan as mpan_mod

    rng = np.random.default_rng(seed)
    n = max(mpan_days // days, 1)
    first = pd.Timestamp("2026-03-23")
    times = calendar.time_axis(first, first + pd.Timedelta(days=days - 1))
    groups = np.array(["_C", "_P"])[rng.integers(0, 2, n)]
    cores = mpan_mod.generate_cores(groups, rng)
    energy = rng.lognormal(-1.6, 0.8, (n, times.size))
    q = np.full(energy.shape, cube.QUALITY_CODES["A"], dtype=np.uint8)
    r = np.zeros(energy.shape, dtype=np.uint8)
    draw = rng.random(energy.shape)
    for lo, hi, label, reason in ((0.0, 0.02, "E2", "Missing"), (0.02, 0.03, "E3", "NonSmart"),
                                  (0.03, 0.04, "E9", "CommsFault")):  # three estimate kinds
        cells = (draw >= lo) & (draw < hi)
        q[cells] = cube.QUALITY_CODES[label]
        r[cells] = cube.ESTIMATION_REASONS[reason]
    missing = draw > 0.995
    q[missing], r[missing], energy[missing] = cube.MISSING, 0, np.nan
    standing = pd.DataFrame({
        "mpan": cores, "gsp_group": groups, "market_segment": "S", "connection_type": "W", "domestic": True,
        "supplier": "ALFA", "bm_unit": np.char.add(np.char.add("2__", np.strings.slice(groups, 1, 2)), "ALFA001"),
        "llfc": "902", "measurement_quantity": "AI", "annual_consumption": 3100.0,
    })
    meters = cube.meter_cube(energy, times, cores, standing, quality=q, estimation_reason=r)
    return {"meters": meters, "sent_at": "2026-04-10T06:00:00", "out": None}


def register_cli(subparsers) -> None:
    """Add ``tom export`` and ``tom import`` to the ``tom`` command's subparsers (see :mod:`.cli`)."""
    from tomlib.dip.cli import register

    register(subparsers)
