"""Incremental membership: write what a record change or a clock move did, for the keys it can affect.

Record changes (:mod:`segmenta.services.records`) commit together with a pending batch: the
changed rows' old and new versions. :func:`apply_pending` then writes, for each live dynamic
segment whose reads (:mod:`segmenta.compiler.reads`) include a changed column, the membership
of the audience records the change can reach (:func:`segmenta.compiler.affected.affected_keys`),
evaluated for those keys only (``compile_definition(restrict_to=...)``) and written for those
keys only (``MembershipStore.replace(within=...)``), with their events. Segments that read a
written one through ``in_segment`` follow, for the keys that moved. The work grows with the
change and the records linked to it, not with the data.

A clock move (:func:`apply_clock`) is the same with other keys: the audience records that reach
a row whose relative window (``in_last``, ``not_in_last``, ``in_next``) answers differently at
the new clock than at the old (:func:`segmenta.compiler.affected.clock_affected_keys`), so its
cost grows with the records that cross a window's edge.

Why restricted queries rather than per-key state (counts, sums) kept up to date: the same
compiler that answers a full evaluation answers for the affected keys, so the two cannot
disagree (the consistency property test checks it), every operator and aggregate works
without a second implementation, and the state is the data itself (nothing to rebuild after
a crash). The price is a query per touched segment per batch, which is why changes are
applied in batches.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from segmenta import clock
from segmenta.compiler.affected import KEY, affected_by_segment, affected_keys, clock_affected_keys
from segmenta.compiler.reads import Reads, segment_reads
from segmenta.errors import SegmentaError
from segmenta.model.validate import parse_definition
from segmenta.services.loading import arrow_schema
from segmenta.services.records import BATCHES_TABLE, TRIGGER, _col, _ident, meta_table, versions_table

if TYPE_CHECKING:
    from segmenta.model.definition import Definition
    from segmenta.services.lifecycle_base import RefreshResult
    from segmenta.services.segments import Segments
    from segmenta.workspace import Workspace

#: The trigger of the runs a clock move writes.
CLOCK_TRIGGER = "clock"


def live_dynamic(segs: Segments) -> dict[str, Definition]:
    """The live dynamic segments, by name, with the definitions refreshes evaluate (the version in force, not a draft)."""
    from sqlalchemy import select

    from segmenta.services.states import Kind, Status
    from segmenta.store.models import Segment, SegmentVersion

    out: dict[str, Definition] = {}
    with segs.store.session() as s:
        rows = s.execute(
            select(Segment.name, SegmentVersion.definition)
            .join(SegmentVersion, (SegmentVersion.segment_id == Segment.id) & (SegmentVersion.version == Segment.current_version))
            .where(Segment.status == Status.LIVE, Segment.kind == Kind.DYNAMIC, Segment.deleted_at.is_(None))
        ).all()
    cache: dict[str, Definition] = segs.ws.__dict__.setdefault("_segmenta_parsed", {})
    for seg_name, raw in rows:
        text = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
        if text not in cache:  # parsing (pydantic) every live definition for every change would dominate a small one
            cache[text] = parse_definition(raw, segs.ws.model)
        out[seg_name] = cache[text]
    return out


def reads_of(segs: Segments, live: dict[str, Definition]) -> dict[str, Reads]:
    """What each definition reads (kept with the parsed definition: both depend only on it and the model)."""
    cache: dict[int, tuple[Definition, Reads]] = segs.ws.__dict__.setdefault("_segmenta_reads", {})
    out: dict[str, Reads] = {}
    for n, d in live.items():
        hit = cache.get(id(d))
        if hit is None or hit[0] is not d:
            hit = (d, segment_reads(d, segs.ws.model))
            cache[id(d)] = hit
        out[n] = hit[1]
    return out


@dataclass(frozen=True)
class Batch:
    """A record change whose membership consequences are pending."""

    batch: str
    table: str
    columns: set[str] | None
    cause: dict[str, Any]


def pending_batches(segs: Segments) -> list[Batch]:
    """The pending record changes, oldest first (none on an engine without record changes)."""
    ws = segs.ws
    if not ws.engine.supports_record_changes:
        return []
    tables = exp.select(_col("table_name")).from_(exp.Table(this=_ident("tables"), db=_ident("information_schema")))
    tables = tables.where(exp.EQ(this=_col("table_schema"), expression=exp.Literal.string(ws.engine.meta_schema)))
    if BATCHES_TABLE not in set(ws.engine.column(tables)):
        return []
    q = exp.select("batch", "table_name", "columns", "cause").from_(meta_table(ws, BATCHES_TABLE)).order_by("at", "batch")
    return [
        Batch(
            r["batch"],
            r["table_name"],
            None if r["columns"] is None else set(json.loads(r["columns"])),
            json.loads(r["cause"]) if r["cause"] else {"kind": TRIGGER},
        )
        for r in ws.engine.run(q).to_pylist()
    ]


def apply_pending(segs: Segments) -> tuple[list[str], list[tuple[str, str]]]:
    """Write the membership consequences of every pending record change, oldest first; then forget them.

    Idempotent: each write evaluates the affected keys against the data as it is now, so a
    batch handled twice (a crash after some of its writes, two processes at once) writes
    nothing the second time. Returns the segments written (each once, in order) and those
    whose write failed, with why (those are due now: the worker refreshes them in full).
    """
    written: list[str] = []
    failed: list[tuple[str, str]] = []
    for b in pending_batches(segs):
        done, bad = _apply_batch(segs, b)
        written += [r.name for r in done if r.name not in written]
        failed += [f for f in bad if f[0] not in {n for n, _ in failed}]
        _forget(segs, b.batch)
    return written, failed


def _forget(segs: Segments, batch: str) -> None:
    ws = segs.ws
    where = exp.EQ(this=_col("batch"), expression=exp.Literal.string(batch))
    ws.engine.execute(
        [
            exp.Delete(this=meta_table(ws, BATCHES_TABLE), where=exp.Where(this=where)),
            exp.Drop(tables=[versions_table(ws, batch)], kind="TABLE", exists=True),
        ]
    )


def _apply_batch(segs: Segments, b: Batch) -> Written:
    """The live dynamic segments a change of ``b.table`` can affect, written for the keys it affects.

    A segment is concerned when its reads include a changed column (``columns`` None: every
    column, records inserted or deleted); the keys are the audience records that reach a
    changed row, old or new version (:func:`segmenta.compiler.affected.affected_keys`).
    """
    ws, model = segs.ws, segs.ws.model
    live = live_dynamic(segs)
    reads = reads_of(segs, live)
    columns = set(model.table(b.table).columns) if b.columns is None else b.columns
    versions = exp.select("*").from_(versions_table(ws, b.batch))
    direct: dict[str, list[Any]] = {}
    for n in sorted(n for n, r in reads.items() if r.touches(b.table, columns)):
        q = affected_keys(model, reads[n], b.table, versions, columns=b.columns)
        audience = live[n].audience
        if q is not None and audience != b.table:
            # a key no audience record has is no member before or after (an order naming no contact);
            # a change of the audience table itself keeps every key: a deleted record must leave
            key = model.table(audience).key
            existing = exp.select(_col(key)).from_(exp.Table(this=_ident(audience)))
            q = exp.select(_col(KEY)).from_(q.subquery("a")).where(exp.In(this=_col(KEY), query=existing.subquery()))
        if q is not None:
            keys = ws.engine.column(q)
            if keys:
                direct[n] = keys
    return write_affected(segs, live, reads, direct, b.cause)


def apply_clock(segs: Segments, names: list[str], *, before: dt.datetime, after: dt.datetime | None = None) -> Written:
    """Bring live dynamic segments ``names`` (and their ``in_segment`` readers) from clock ``before`` to ``after`` (now).

    Only the audience records that reach a row crossing a window's edge are evaluated and
    written, with events whose cause is the clock move.
    """
    after = clock.now() if after is None else after
    model = segs.ws.model
    live = live_dynamic(segs)
    reads = reads_of(segs, live)
    direct: dict[str, list[Any]] = {}
    for n in sorted(set(names) & live.keys()):
        q = clock_affected_keys(model, reads[n], before, after)
        if q is not None:
            keys = segs.ws.engine.column(q)
            if keys:
                direct[n] = keys
    cause = {"kind": CLOCK_TRIGGER, "from": before.isoformat(), "to": after.isoformat()}
    return write_affected(segs, live, reads, direct, cause, trigger=CLOCK_TRIGGER)


#: What :func:`write_affected` did: the runs written (one per segment, in order) and the segments that failed, with why.
Written = tuple[list["RefreshResult"], list[tuple[str, str]]]


def clock_move(segs: Segments, seg_id: int, *, before: dt.datetime) -> RefreshResult:
    """The worker's step for a window segment whose clock moved since ``before`` (its last evaluation): incremental.

    Afterwards the segment (and what reads it) equals a full evaluation at the current clock,
    which becomes its last refresh time.
    """
    from sqlalchemy import update

    from segmenta.services.lifecycle_base import RefreshResult
    from segmenta.store.models import Segment

    now = clock.now()
    with segs.store.session() as s:
        seg = s.get(Segment, seg_id)
        assert seg is not None
        name = seg.name
    written, failed = apply_clock(segs, [name], before=before, after=now)
    if failed and failed[0][0] == name:
        raise SegmentaError(failed[0][1])
    with segs.store.session() as s:
        s.execute(update(Segment).where(Segment.id == seg_id).values(last_refresh_at=now))
        seg = s.get(Segment, seg_id)
        assert seg is not None
        size, version = seg.size or 0, seg.live_version
    mine = [r for r in written if r.name == name]
    entered, exited = sum(r.entered for r in mine), sum(r.exited for r in mine)
    run_id = mine[-1].run_id if mine else 0
    return RefreshResult(name, size, entered, exited, version, run_id, note="clock")


def write_affected(
    segs: Segments,
    live: dict[str, Definition],
    reads: dict[str, Reads],
    direct: dict[str, list[Any]],
    cause: dict[str, Any],
    *,
    trigger: str = TRIGGER,
) -> Written:
    """Write each live segment for its ``direct`` keys, in dependency order, and its ``in_segment`` readers for the keys that moved.

    For a segment reading another through ``in_segment``, the keys are also the records that
    reach a key which entered or left that one
    (:func:`segmenta.compiler.affected.affected_by_segment`). Each segment is evaluated for
    its keys only and its membership written for them only (``within``).

    A failure is that segment's alone: the others are still written, and the failed one
    stays live with its members as they were and is due now, so the worker (or the service's
    scheduler) refreshes it in full on its next pass. Returns (written, failed with why).
    """
    moved: dict[str, list[Any]] = {}  # written, with the keys that entered or exited
    done: list[RefreshResult] = []
    failed: list[tuple[str, str]] = []
    pending = set(live)
    while pending:
        ready = sorted(n for n in pending if reads[n].segments.isdisjoint(pending - {n}))
        for n in ready or sorted(pending):  # a cycle cannot be published; the rest in name order
            pending.discard(n)
            keys = set(direct.get(n, ()))
            for upstream in sorted(reads[n].segments & moved.keys()):
                keys |= set(_reached_from(segs, reads[n], upstream, moved[upstream]))
            if not keys:
                continue
            try:
                outcome, changed = _write_for_keys(segs, n, live[n], sorted(keys, key=str), cause, trigger)
            except SegmentaError as exc:
                failed.append((n, (str(exc).splitlines() or [type(exc).__name__])[0]))
                continue
            done.append(outcome)
            if changed:
                moved[n] = changed
    if failed:
        _due_now(segs, [n for n, _ in failed])
    return done, failed


def _stage_keys(ws: Workspace, audience: str, keys: list[Any]) -> tuple[str, exp.Table]:
    table = ws.model.table(audience)
    key_type = arrow_schema(table).field(table.key).type
    name = f"__segmenta_keys_{uuid.uuid4().hex[:16]}"
    return name, ws.engine.stage(name, pa.table({KEY: pa.array(keys, key_type)}))


def _reached_from(segs: Segments, reads: Reads, upstream: str, keys: list[Any]) -> list[Any]:
    """The audience keys of a segment reading ``upstream`` that reach one of ``keys`` (which changed in ``upstream``)."""
    ws = segs.ws
    name, staged = _stage_keys(ws, _audience_of(segs, upstream), keys)
    try:
        q = affected_by_segment(ws.model, reads, upstream, exp.select(_col(KEY)).from_(staged))
        return ws.engine.column(q) if q is not None else []
    finally:
        ws.engine.drop_staged(name)


def _audience_of(segs: Segments, name: str) -> str:
    from sqlalchemy import select

    from segmenta.store.models import Segment

    with segs.store.session() as s:
        found = s.scalar(select(Segment.audience).where(Segment.name == name, Segment.deleted_at.is_(None)))
    assert found is not None, name
    return str(found)


def _write_for_keys(
    segs: Segments, name: str, definition: Definition, keys: list[Any], cause: dict[str, Any], trigger: str
) -> tuple[RefreshResult, list[Any]]:
    """Evaluate live segment ``name`` for ``keys`` and write its membership for them; returns the run and the keys that moved."""
    from segmenta.services.states import Action, transition

    with segs.store.session() as s:
        seg = segs._get(s, name)
        transition(seg.name, seg.status, Action.REFRESH)
        seg_id = seg.id
    staged_name, staged = _stage_keys(segs.ws, definition.audience, keys)
    try:
        within = exp.select(_col(KEY)).from_(staged)
        outcome = segs._evaluate(seg_id, trigger=trigger, keep_status=True, cause=cause, within=within)
    finally:
        segs.ws.engine.drop_staged(staged_name)
    moved: list[Any] = []
    if outcome.entered or outcome.exited:
        with segs.store.session() as s:
            seg = segs._get(s, name)
            m = segs.membership(seg)
        for batch in m.delta(outcome.run_id or 0):
            moved += batch.column(0).to_pylist()
    return outcome, moved


def _due_now(segs: Segments, names: list[str]) -> None:
    """Make ``names`` due now: the worker refreshes them on its next pass."""
    from sqlalchemy import update

    from segmenta.store.models import Segment

    with segs.store.session() as s:
        s.execute(
            update(Segment).where(Segment.name.in_(names), Segment.deleted_at.is_(None)).values(next_refresh_at=clock.now())
        )
