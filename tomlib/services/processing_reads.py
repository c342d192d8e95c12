"""Register reads in the Smart Processing Service: consumption checks, rollover and advances.

Part of :mod:`tomlib.services.processing` (mhhs-domain.md §2.5 steps 2-3, F-33). The intake checks
(unknown MPAN / meter / register, impossible or future-dated values, duplicates) are done before,
by :func:`tomlib.services.meter_reading.screen_reads`; here the reads of each register are put in
``read_at`` order and every pair of consecutive *actual* reads gives an **advance**:

``raw = R_new - R_old``; if ``raw < 0`` the register may have rolled over:
``adv = R_new + 10**digits - R_old`` (§2.5 step 3) -- accepted only if it passes the expected
consumption check below, else the pair fails as ``negative_advance``.

Checks on each advance against the **expected** consumption of the span (the MPAN's validated HH
data where it has them -- a DCC meter's register must agree with its own HH data -- else its annual
consumption x load shape, over the periods the register records; see
:func:`tomlib.services.processing_estimation.expected_cumulative`), [INF] thresholds in
:class:`ReadRules`:

=========================  ==============================================================
reason                     the pair fails when
=========================  ==============================================================
``negative_advance``       raw < 0 and the rollover advance is above the limit
``above_twice_expected``   adv > 2 x expected + ``margin_kwh`` (the margin keeps a one-day span
                           of a household from failing on a cold evening)
``zero_consumption``       adv == 0 while expected >= ``zero_expected_kwh``
=========================  ==============================================================

Which read of a failing pair is wrong? A read whose incoming *and* outgoing pairs fail is refused
-- a mistyped read breaks both of its pairs, its neighbours only one -- and so is a last read whose
incoming pair fails (unless that pair starts at a read refused in the same pass). When no read qualifies, the later read of each failing pair is
refused (the legacy rule: the new read fails validation). The checks then run again without the
refused reads, until no pair fails (a loop over a few passes, each vectorised over every read).

Deemed reads (``read_type == "deemed"``) are estimates: they are validated by nobody, never bound an
advance and are counted, not refused. Advances run from one *actual* read to the next, so the F-33
exception -- a negative advance after a deemed read is valid when the new read is not below the
previous actual one -- holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["READ_REASONS", "ReadRules", "ReadValidation", "advance", "validate_reads"]

#: Reasons the consumption checks give (the intake reasons are meter_reading.REJECT_REASONS).
READ_REASONS = ("negative_advance", "above_twice_expected", "zero_consumption", "read_at_not_period_boundary")


@dataclass(frozen=True)
class ReadRules:
    """[INF] Thresholds of the register-read checks.

    Attributes
    ----------
    margin_kwh : float
        Head room added to twice the expected consumption [kWh].
    zero_expected_kwh : float
        A zero advance fails only when at least this much was expected [kWh].
    max_passes : int
        Limit on the validation passes (each refuses at least one read per failing pair).
    """

    margin_kwh: float = 20.0
    zero_expected_kwh: float = 10.0
    max_passes: int = 20

    def __post_init__(self) -> None:
        if self.margin_kwh < 0 or self.zero_expected_kwh < 0:
            raise ValueError("ReadRules: margin_kwh and zero_expected_kwh must be >= 0 [kWh]")
        if int(self.max_passes) < 1:
            raise ValueError(f"ReadRules.max_passes must be >= 1, got {self.max_passes}")


@dataclass
class ReadValidation:
    """Result of :func:`validate_reads`.

    Attributes
    ----------
    reason : ndarray of object
        Per input read: "" (kept) or a :data:`READ_REASONS` reason.
    spans : DataFrame
        One row per consecutive pair of kept actual reads of a register: ``register`` (row of the
        register table), ``b1``, ``b2`` (boundary indices, b1 < b2), ``advance`` [kWh],
        ``rollover`` (bool), ``remote`` (both reads ``remote``), ``expected`` [kWh], ``read1``,
        ``read2`` (positions of the reads in the input).
    passes : int
        Validation passes run.
    unresolved : int
        Pairs still failing when ``max_passes`` ran out (they bound no span).
    """

    reason: np.ndarray
    spans: pd.DataFrame
    passes: int
    unresolved: int = 0


def advance(old, new, digits) -> tuple[np.ndarray, np.ndarray]:
    """Advance between two register values with rollover.

    Parameters
    ----------
    old, new : array-like of float
        Values shown by the register [kWh], ``0 <= v < 10**digits``.
    digits : array-like of int
        Register digits.

    Returns
    -------
    adv : ndarray of float
        ``new - old``, or ``new + 10**digits - old`` where that is negative [kWh].
    rolled : ndarray of bool
        Where the rollover form was used.
    """
    raw = np.asarray(new, dtype=float) - np.asarray(old, dtype=float)
    rolled = raw < 0
    return np.where(rolled, raw + 10.0 ** np.asarray(digits, dtype=float), raw), rolled


def _pairs(kept_pos: np.ndarray, register: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive (prev, cur) positions of the same register among the kept reads (already sorted)."""
    if kept_pos.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    prev, cur = kept_pos[:-1], kept_pos[1:]
    same = register[prev] == register[cur]
    return prev[same], cur[same]


def validate_reads(register, boundary, value, digits, deemed, remote, expected_cum: np.ndarray,
                   rules: ReadRules | None = None, expected_rows: np.ndarray | None = None) -> ReadValidation:
    """Consumption checks on register reads and the advances of the reads that pass.

    Parameters
    ----------
    register : array-like of int, shape (n,)
        Row of each read's register in the register table (one row per meter register).
    boundary : array-like of int, shape (n,)
        Index of ``read_at`` among the window's period boundaries (0 = window start).
    value : array-like of float, shape (n,)
        Register value read [kWh].
    digits : array-like of int, shape (n,)
        Digits of the register.
    deemed, remote : array-like of bool, shape (n,)
        Deemed (estimated) read; DCC remote read.
    expected_cum : ndarray (n_register, n_boundary)
        Cumulative expected energy of each register at each boundary [kWh]: the expected
        consumption between boundaries b1 < b2 is ``expected_cum[r, b2] - expected_cum[r, b1]``.
    rules : ReadRules, optional
    expected_rows : array-like of int, shape (n_register,), optional
        Row of ``expected_cum`` holding each register's (default: its own row), so that registers
        whose expected energy is never needed can share one row of zeros.

    Returns
    -------
    ReadValidation
    """
    rules = rules or ReadRules()
    reg = np.asarray(register, dtype=np.int64)
    b = np.asarray(boundary, dtype=np.int64)
    v = np.asarray(value, dtype=float)
    dg = np.asarray(digits, dtype=np.int64)
    dm = np.asarray(deemed, dtype=bool)
    rm = np.asarray(remote, dtype=bool)
    n = reg.size
    reason = np.full(n, "", dtype=object)
    order = np.lexsort((b, reg))
    kept = ~dm[order]  # positions in `order`
    reg_s, b_s, v_s, dg_s = reg[order], b[order], v[order], dg[order]
    row_s = reg_s if expected_rows is None else np.asarray(expected_rows, dtype=np.int64)[reg_s]
    def check(prev, cur):
        adv, rolled = advance(v_s[prev], v_s[cur], dg_s[cur])
        exp = expected_cum[row_s[cur], b_s[cur]] - expected_cum[row_s[cur], b_s[prev]]
        limit = 2.0 * exp + rules.margin_kwh
        why = np.where(rolled & (adv > limit), "negative_advance",
                       np.where(adv > limit, "above_twice_expected",
                                np.where((adv == 0) & (exp >= rules.zero_expected_kwh), "zero_consumption", "")))
        return adv, rolled, exp, why

    passes = 0
    for passes in range(1, int(rules.max_passes) + 1):  # a few passes, each over all reads at once
        prev, cur = _pairs(np.flatnonzero(kept), reg_s)
        why = check(prev, cur)[3]
        fail = why != ""
        if not fail.any():
            break
        bad_in = np.zeros(n, dtype=bool)
        bad_out = np.zeros(n, dtype=bool)
        in_reason = np.full(n, "", dtype=object)
        bad_in[cur[fail]] = True
        bad_out[prev[fail]] = True
        in_reason[cur[fail]] = why[fail]
        has_next = np.zeros(n, dtype=bool)
        has_next[prev] = True
        prev_of = np.full(n, -1, dtype=np.int64)
        prev_of[cur] = prev
        middle = bad_in & bad_out
        # a last read whose only failing pair starts at a refused middle read waits for the next pass
        last = bad_in & ~has_next & ~middle[np.maximum(prev_of, 0)]
        drop = middle | last
        if not drop.any():
            drop = bad_in
        reason[order[drop]] = in_reason[drop]
        kept &= ~drop
    prev, cur = _pairs(np.flatnonzero(kept), reg_s)
    adv, rolled, exp, why = check(prev, cur)
    good = why == ""  # pairs still failing after max_passes bound no span (counted as unresolved)
    prev, cur, adv, rolled, exp = prev[good], cur[good], adv[good], rolled[good], exp[good]
    spans = pd.DataFrame({
        "register": reg_s[cur], "b1": b_s[prev], "b2": b_s[cur], "advance": adv, "rollover": rolled,
        "remote": rm[order][prev] & rm[order][cur], "expected": exp,
        "read1": order[prev], "read2": order[cur],
    })
    return ReadValidation(reason=reason, spans=spans, passes=passes, unresolved=int((~good).sum()))
