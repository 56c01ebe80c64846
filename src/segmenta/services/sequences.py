"""Sales sequences (issue 13 item 2): a work-assignment segment feeds a sequence of seller activities.

A sequence runs on the journeys' step engine model (:mod:`segmenta.services.journeys`): one
store row per record and start with its step and a durable timer (``due_s``, epoch seconds
on the injectable clock, :func:`segmenta.clock.now`), logical time kept from step to step
(a record whose 2-day wait began at T reaches the next step at T + 2 days however late the
worker runs), waits moved as sets (one ``UPDATE`` per step), and automated emails sent
through the journeys' SMTP outbox (:mod:`segmenta.services.journeys.outbox`: the same
``sending`` -> ``delivering`` -> ``sent`` ledger, Message-ID and resend rule). What differs is
who enters: not segment membership events but the work-assignment routing results.

A pass (:meth:`Sequences.advance`) of an active sequence:

1. **Start.** Every record in its connected work-assignment segment now
   (``assignment_members``, which routing keeps: contract 6) without a running state from
   that segment starts at the first step; a record that left and came back starts again.
2. **End.** A running record whose segment no longer holds it (routed elsewhere, or gone
   inactive or deleted: routing removes it) ends wherever it is; its open activities are
   cancelled.
3. **Steps**, in order until nothing moves: an email / phone call / task creates one activity
   for the record's assigned seller (the current ``assignment_decisions`` row) and waits until
   the seller marks it done or skipped; an automated email is sent; a wait moves when due; a
   condition goes ``yes`` when the email it reads was opened / replied / clicked within its
   time limit, ``no`` when the limit passed or the email step was skipped (or had no address);
   an update goes through :func:`segmenta.services.records.upsert`, so segments and routing
   follow; advance ends this sequence and starts the named one.

Activities and emails are exactly once per record, start and step: their row's unique
(sequence, record, run, step) is the idempotency key, written before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from segmenta import clock
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.model.schema import hint
from segmenta.services.journeys import outbox
from segmenta.services.journeys.service import _address, _chunks, epoch_s, from_s, read_file
from segmenta.services.journeys.spec import render
from segmenta.services.sequences_spec import END, SequenceSpec, Step, parse_sequence
from segmenta.store.sequence_models import Sequence, SequenceActivity, SequenceState

if TYPE_CHECKING:
    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.sequences")

DRAFT, ACTIVE, INACTIVE = "draft", "active", "inactive"
RUNNING, FINISHED, ENDED = "running", "finished", "ended"
OPEN, DONE, SKIPPED, CANCELLED = "open", "done", "skipped", "cancelled"
SENDING, DELIVERING, SENT, FAILED = "sending", "delivering", "sent", "failed"
SELLER_KINDS = ("email", "phone_call", "task")
#: Active sequences at one time (Dynamics 365 Sales: 250); ``SEGMENTA_SEQUENCES_MAX_ACTIVE`` changes it.
MAX_ACTIVE = 250
MAX_ENV = "SEGMENTA_SEQUENCES_MAX_ACTIVE"
MAX_ATTEMPTS = 5
DAY = 86400
LEASE = dt.timedelta(minutes=3)


def _wall() -> dt.datetime:
    """Leases are wall-clock (a worker's life), not the injectable clock (the records' time)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def max_active() -> int:
    raw = os.environ.get(MAX_ENV)
    if raw is None or not raw.strip():
        return MAX_ACTIVE
    try:
        n = int(raw)
    except ValueError:
        raise RejectedInput([Problem(MAX_ENV, f"{raw!r} is not a whole number of sequences")]) from None
    if n < 1:
        raise RejectedInput([Problem(MAX_ENV, f"{n} is not a limit; give 1 or more")])
    return n


def message_id(seq_id: int, key: str, run: int, step: str) -> str:
    """Stable across retries and crashes; ``s`` keeps sequences' ids apart from journeys' (``j``)."""
    return outbox.message_id(seq_id, key, run, step).replace("<j", "<s", 1)


@dataclass
class SequenceReport:
    """What one pass did to one sequence."""

    sequence: str
    started: int = 0
    ended: int = 0
    moved: int = 0
    activities: int = 0
    sent: int = 0
    finished: int = 0
    errors: list[str] = field(default_factory=list)
    #: Another worker holds the sequence's lease: this pass did nothing to it.
    busy: bool = False
    #: Sequences that records advanced to in this pass.
    advanced_to: set[str] = field(default_factory=set)


class Sequences:
    """Sequence use cases on an open :class:`Segments` (workspace + store)."""

    def __init__(self, segs: Segments) -> None:
        self.segs = segs
        self.store = segs.store

    # -- definitions -----------------------------------------------------------------------

    def parse(self, source: Any) -> tuple[dict[str, Any], SequenceSpec]:
        raw = read_file(source) if isinstance(source, (str, Path)) else source
        spec = parse_sequence(raw)
        tables = self.segs.ws.model.tables
        if spec.table not in tables:
            raise RejectedInput(
                [Problem("/table", f"{spec.table!r} is not a table of the model{hint(spec.table, list(tables))}")]
            )
        parse_sequence(raw, columns=set(tables[spec.table].columns))
        return dict(raw), spec

    def _get(self, s: Session, name: str) -> Sequence:
        q = s.scalar(select(Sequence).where(Sequence.name == name))
        if q is None:
            names = s.scalars(select(Sequence.name)).all()
            raise NotFound([Problem(name, f"no sequence has this name{hint(name, names)}")])
        return q

    def create(self, source: Any) -> dict[str, Any]:
        """Save a sequence as a draft; one of the same name that is not active is replaced."""
        raw, spec = self.parse(source)
        now = clock.now()
        with self.store.session() as s:
            q = s.scalar(select(Sequence).where(Sequence.name == spec.name))
            if q is not None and q.status == ACTIVE:
                raise Conflict([Problem("/name", f"sequence {spec.name!r} is active; deactivate it before replacing it")])
            if q is None:
                q = Sequence(name=spec.name, table_name=spec.table, status=DRAFT, definition=raw, created_at=now, updated_at=now)
                s.add(q)
            else:
                if q.table_name != spec.table and q.segment_id is not None:
                    raise Conflict([Problem("/table", f"sequence {spec.name!r} is connected to a segment of {q.table_name!r}")])
                q.definition, q.table_name, q.updated_at = raw, spec.table, now
            s.flush()
            return self._info(s, q)

    def connect(self, name: str, segment: str) -> dict[str, Any]:
        """Connect a work-assignment segment (of the sequence's table) to the sequence; one sequence per segment."""
        from segmenta.store.assignment_models import AssignmentSegment

        with self.store.session() as s:
            q = self._get(s, name)
            if q.status == ACTIVE:
                raise Conflict([Problem(name, "is active; deactivate it before connecting another segment")])
            seg = s.scalar(select(AssignmentSegment).where(AssignmentSegment.name == segment))
            if seg is None:
                names = s.scalars(select(AssignmentSegment.name)).all()
                raise NotFound(
                    [Problem("--segment", f"{segment!r}: no work-assignment segment has this name{hint(segment, names)}")]
                )
            if seg.table_name != q.table_name:
                raise RejectedInput(
                    [
                        Problem(
                            "--segment", f"{segment!r} is a segment of {seg.table_name!r}; this sequence is for {q.table_name!r}"
                        )
                    ]
                )
            other = s.scalar(select(Sequence).where(Sequence.segment_id == seg.id, Sequence.id != q.id))
            if other is not None:
                raise Conflict(
                    [Problem("--segment", f"{segment!r} is connected to sequence {other.name!r}; a segment feeds one sequence")]
                )
            q.segment_id, q.updated_at = seg.id, clock.now()
            s.flush()
            return self._info(s, q)

    def activate(self, name: str) -> dict[str, Any]:
        """Draft or inactive -> active (at most :func:`max_active` at a time); its segment's records start."""
        limit = max_active()
        with self.store.session() as s:
            q = self._get(s, name)
            if q.status == ACTIVE:
                return self._info(s, q)
            spec = parse_sequence(q.definition)
            for i, st in enumerate(spec.steps):
                if st.advance is not None:
                    target = s.scalar(select(Sequence).where(Sequence.name == st.advance.sequence))
                    if target is None:
                        raise RejectedInput(
                            [Problem(f"/steps/{i}/advance/sequence", f"{st.advance.sequence!r}: no sequence has this name")]
                        )
                    if target.table_name != q.table_name:
                        raise RejectedInput(
                            [
                                Problem(
                                    f"/steps/{i}/advance/sequence",
                                    f"{st.advance.sequence!r} is a sequence of {target.table_name!r}",
                                )
                            ]
                        )
            active = int(s.scalar(select(func.count()).select_from(Sequence).where(Sequence.status == ACTIVE)) or 0)
            if active >= limit:
                raise Conflict([Problem(name, f"{active} sequences are active, the limit is {limit}; deactivate one first")])
            q.status, q.activated_at, q.updated_at = ACTIVE, clock.now(), clock.now()
        self.advance(name)
        return self.show(name)

    def deactivate(self, name: str) -> dict[str, Any]:
        """Active -> inactive: its running records end and their open activities are cancelled."""
        now_s = epoch_s(clock.now())
        with self.store.session() as s:
            q = self._get(s, name)
            if q.status != ACTIVE:
                raise Conflict([Problem(name, f"is {q.status}; only an active sequence can be deactivated")])
            q.status, q.updated_at = INACTIVE, clock.now()
            ids = [
                i
                for i in s.scalars(
                    select(SequenceState.id).where(SequenceState.sequence_id == q.id, SequenceState.status == RUNNING)
                )
            ]
            self._end(s, ids, now_s, "sequence deactivated")
            for chunk in _chunks(ids):  # they start again if it is activated again
                s.execute(update(SequenceState).where(SequenceState.id.in_(chunk)).values(left_s=now_s))
        return self.show(name)

    # -- views -------------------------------------------------------------------------------

    def _info(self, s: Session, q: Sequence) -> dict[str, Any]:
        from segmenta.store.assignment_models import AssignmentSegment

        seg = s.get(AssignmentSegment, q.segment_id) if q.segment_id is not None else None
        return {
            "name": q.name,
            "table": q.table_name,
            "status": q.status,
            "segment": seg.name if seg is not None else None,
            "created_at": q.created_at.isoformat(),
            "activated_at": q.activated_at.isoformat() if q.activated_at else None,
        }

    def list_sequences(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            return [self._info(s, q) for q in s.scalars(select(Sequence).order_by(Sequence.name))]

    def show(self, name: str) -> dict[str, Any]:
        with self.store.session() as s:
            q = self._get(s, name)
            info = self._info(s, q)
            info["definition"] = q.definition
        info["report"] = self.report(name)
        return info

    def report(self, name: str) -> dict[str, Any]:
        """Records at each step now (every step, 0 included), started/finished/ended, open and overdue activities."""
        today = _day_start(epoch_s(clock.now()))
        with self.store.session() as s:
            q = self._get(s, name)
            spec = parse_sequence(q.definition)
            by_status = dict(
                s.execute(
                    select(SequenceState.status, func.count())
                    .where(SequenceState.sequence_id == q.id)
                    .group_by(SequenceState.status)
                ).all()
            )
            at = dict(
                s.execute(
                    select(SequenceState.step, func.count())
                    .where(SequenceState.sequence_id == q.id, SequenceState.status == RUNNING)
                    .group_by(SequenceState.step)
                ).all()
            )
            opened = s.execute(
                select(SequenceActivity.due_s).where(SequenceActivity.sequence_id == q.id, SequenceActivity.status == OPEN)
            ).all()
            sent = int(
                s.scalar(select(func.count()).where(SequenceActivity.sequence_id == q.id, SequenceActivity.status == SENT)) or 0
            )
        return {
            "started": int(sum(by_status.values())),
            "running": int(by_status.get(RUNNING, 0)),
            "finished": int(by_status.get(FINISHED, 0)),
            "ended": int(by_status.get(ENDED, 0)),
            "at_step": {st.id: int(at.get(st.id, 0)) for st in spec.steps},
            "open_activities": len(opened),
            "overdue_activities": sum(1 for (d,) in opened if d < today),
            "sent": sent,
        }

    def states(self, name: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            q = self._get(s, name)
            rows = s.scalars(select(SequenceState).where(SequenceState.sequence_id == q.id).order_by(SequenceState.id)).all()
            return [
                {
                    "key": r.record_key,
                    "run": r.run,
                    "status": r.status,
                    "step": r.step,
                    "due_at": from_s(r.due_s).isoformat() if r.due_s is not None else None,
                    "reason": r.reason,
                }
                for r in rows
            ]

    def simulate(self, name: str) -> dict[str, Any]:
        """Where each record of the connected segment would be and when, from now, changing and sending nothing.

        Assumptions (a fast clock, nobody acts early): a seller's activity is done when it is
        due; no email is opened, replied to or clicked, so a condition takes ``no`` at its time
        limit, or at once when its email step had no address (an automated email is skipped).
        """
        now_s = epoch_s(clock.now())
        with self.store.session() as s:
            q = self._get(s, name)
            spec = parse_sequence(q.definition)
            keys = sorted(self._members(s, {q.segment_id})[q.segment_id], key=_key_order) if q.segment_id is not None else []
        records = self._records(spec, keys) if keys else {}
        out = []
        for key in keys:
            at, sid, path, skipped = now_s, spec.steps[0].id, [], set()
            while sid != END:
                st = spec.step(sid)
                path.append({"step": st.id, "kind": st.kind, "at": from_s(at).isoformat()})
                if st.kind == "automated_email" and not _address(records.get(key)):
                    skipped.add(st.id)
                if st.condition is not None:
                    if st.condition.on in skipped:
                        sid = st.no or END
                    else:
                        at, sid = at + st.condition.within.seconds, st.no or END
                    continue
                if st.wait is not None:
                    at += st.wait.seconds
                elif st.activity is not None and st.kind != "automated_email" and st.activity.due is not None:
                    at += st.activity.due.seconds
                if st.advance is not None:
                    break
                sid = spec.next_of(st)
            out.append({"record": key, "path": path, "finished_at": from_s(at).isoformat()})
        return {"sequence": name, "records": out}

    # -- activities ----------------------------------------------------------------------------

    def activities(
        self, *, seller: str | None = None, sequence: str | None = None, due_today: bool = True
    ) -> list[dict[str, Any]]:
        """Open seller activities (email, phone call, task); ``due_today``: due before tomorrow (overdue ones included)."""
        now_s = epoch_s(clock.now())
        tomorrow = _day_start(now_s) + DAY
        with self.store.session() as s:
            names = dict(s.execute(select(Sequence.id, Sequence.name)).all())
            q = select(SequenceActivity).where(SequenceActivity.status == OPEN, SequenceActivity.kind.in_(SELLER_KINDS))
            if seller is not None:
                q = q.where(SequenceActivity.seller == seller)
            if sequence is not None:
                q = q.where(SequenceActivity.sequence_id == self._get(s, sequence).id)
            if due_today:
                q = q.where(SequenceActivity.due_s < tomorrow)
            rows = s.scalars(q.order_by(SequenceActivity.due_s, SequenceActivity.id)).all()
            return [self._activity(r, names, now_s) for r in rows]

    @staticmethod
    def _activity(r: SequenceActivity, names: dict[int, str], now_s: int) -> dict[str, Any]:
        return {
            "id": r.id,
            "sequence": names.get(r.sequence_id),
            "record": r.record_key,
            "step": r.step,
            "kind": r.kind,
            "subject": r.subject,
            "seller": r.seller,
            "status": r.status,
            "due_at": from_s(r.due_s).isoformat(),
            "overdue": r.status == OPEN and r.due_s < _day_start(now_s),
        }

    def activity(self, activity_id: int) -> dict[str, Any]:
        with self.store.session() as s:
            r = s.get(SequenceActivity, activity_id)
            if r is None:
                raise NotFound([Problem(str(activity_id), "no sequence activity has this id")])
            names = dict(s.execute(select(Sequence.id, Sequence.name)).all())
            out = self._activity(r, names, epoch_s(clock.now()))
            out.update(
                {
                    k: (from_s(v).isoformat() if v is not None else None)
                    for k, v in (("opened_at", r.opened_s), ("replied_at", r.replied_s), ("clicked_at", r.clicked_s))
                }
            )
            return out

    def done(self, activity_id: int, *, skip: bool = False) -> dict[str, Any]:
        """Mark a seller's activity done (or skipped); the record goes on to its next step at once."""
        now_s = epoch_s(clock.now())
        with self.store.session() as s:
            r = s.get(SequenceActivity, activity_id)
            if r is None:
                raise NotFound([Problem(str(activity_id), "no sequence activity has this id")])
            if r.kind not in SELLER_KINDS:
                raise RejectedInput(
                    [Problem(str(activity_id), f"is an {r.kind} step; only a seller's email, phone call or task is marked done")]
                )
            if r.status != OPEN:
                raise Conflict([Problem(str(activity_id), f"is {r.status}; only an open activity can be marked done or skipped")])
            r.status, r.done_s = (SKIPPED if skip else DONE), now_s
            seq_name = s.get(Sequence, r.sequence_id).name  # type: ignore[union-attr]
            status = s.get(Sequence, r.sequence_id).status  # type: ignore[union-attr]
        if status == ACTIVE:
            self.advance(seq_name)
        return self.activity(activity_id)

    def track(self, activity_id: int, event: str) -> dict[str, Any]:
        """Record that an email activity was opened, replied to or had a link clicked (what condition steps read)."""
        if event not in ("opened", "replied", "clicked"):
            raise RejectedInput([Problem("event", f"{event!r}: use opened, replied or clicked")])
        now_s = epoch_s(clock.now())
        with self.store.session() as s:
            r = s.get(SequenceActivity, activity_id)
            if r is None:
                raise NotFound([Problem(str(activity_id), "no sequence activity has this id")])
            if r.kind not in ("email", "automated_email"):
                raise RejectedInput(
                    [Problem(str(activity_id), f"is a {r.kind} step; only emails are opened, replied to or clicked")]
                )
            col = f"{event}_s"
            if getattr(r, col) is None:
                setattr(r, col, now_s)
            seq = s.get(Sequence, r.sequence_id)
            assert seq is not None
            seq_name, status = seq.name, seq.status
        if status == ACTIVE:
            self.advance(seq_name)
        return self.activity(activity_id)

    # -- the step engine --------------------------------------------------------------------------

    def advance_all(self) -> list[SequenceReport]:
        with self.store.session() as s:
            names = list(s.scalars(select(Sequence.name).where(Sequence.status == ACTIVE).order_by(Sequence.id)))
        out = []
        for n in names:
            try:
                out.append(self.advance(n))
            except Exception as exc:  # noqa: BLE001 - one sequence's trouble never stops the others
                log.exception("sequence %s: the pass failed", n)
                out.append(SequenceReport(n, errors=[str(exc).splitlines()[0] if str(exc) else type(exc).__name__]))
        return out

    def advance(self, name: str, *, _depth: int = 0) -> SequenceReport:
        """One pass of an active sequence to the current clock (start, end, then steps until nothing moves).

        Records advanced to another sequence get that sequence's pass at once (a few levels
        deep: two sequences advancing to each other wait for the next worker pass).
        """
        from segmenta.membership.owners import RunOwner

        with self.store.session() as s:
            sid = self._get(s, name).id
        with RunOwner(self.segs.ws.path) as owner:
            if not self._claim(sid, owner.message):
                return SequenceReport(name, busy=True)
            try:
                return self._advance(sid, name, _depth)
            finally:
                with self.store.session() as s:
                    s.execute(
                        update(Sequence)
                        .where(Sequence.id == sid, Sequence.lease_owner == owner.message)
                        .values(lease_owner=None, lease_until=None)
                    )

    def _claim(self, sid: int, me: str) -> bool:
        """Take the sequence's lease unless a live worker holds it (a killed worker's lease is free at once)."""
        from segmenta.membership.owners import owner_alive

        with self.store.session() as s:
            q = select(Sequence).where(Sequence.id == sid)
            row = s.scalar(q.with_for_update() if self.store.postgres else q)
            assert row is not None
            if row.status != ACTIVE:
                return False
            wall = _wall()
            held = row.lease_owner is not None and row.lease_until is not None and row.lease_until > wall
            if held and owner_alive(self.segs.ws.path, row.lease_owner):
                return False
            row.lease_owner, row.lease_until = me, wall + LEASE
            return True

    def _advance(self, sid: int, name: str, _depth: int) -> SequenceReport:
        now_s = epoch_s(clock.now())
        with self.store.session() as s:
            q = s.get(Sequence, sid)
            assert q is not None
            seg_id = q.segment_id
            spec = parse_sequence(q.definition)
        report = SequenceReport(name)
        with self.store.session() as s:
            if seg_id is not None:
                self._start(s, sid, seg_id, spec, now_s, report)
            self._ends(s, sid, now_s, report)
        with outbox.Mailer() as mailer:
            for _sweep in range(len(spec.steps) + 2):
                moved = sum(self._run_step(sid, spec, st, now_s, report, mailer) for st in spec.steps)
                if not moved:
                    break
        for target in sorted(report.advanced_to):
            if _depth < 3:
                self.advance(target, _depth=_depth + 1)
        return report

    def _members(self, s: Session, seg_ids: set[int]) -> dict[int, set[str]]:
        from segmenta.store.assignment_models import AssignmentMember

        out: dict[int, set[str]] = {i: set() for i in seg_ids}
        for sid, key in s.execute(
            select(AssignmentMember.segment_id, AssignmentMember.key).where(AssignmentMember.segment_id.in_(sorted(seg_ids)))
        ).all():
            out[int(sid)].add(str(key))
        return out

    def _start(self, s: Session, sid: int, seg_id: int, spec: SequenceSpec, now_s: int, report: SequenceReport) -> None:
        members = self._members(s, {seg_id})[seg_id]
        latest: dict[str, tuple[int, str, int | None, int]] = {}  # key -> (state id, status, left_s, run here)
        runs: dict[str, int] = {}
        for i, key, status, left, run, seq in s.execute(
            select(
                SequenceState.id,
                SequenceState.record_key,
                SequenceState.status,
                SequenceState.left_s,
                SequenceState.run,
                SequenceState.sequence_id,
            ).where(SequenceState.segment_id == seg_id)
        ).all():
            if key not in latest or i > latest[key][0]:
                latest[key] = (i, status, left, run)
            if seq == sid:
                runs[key] = max(runs.get(key, 0), run)
        first = spec.steps[0]
        n = 0
        for key in sorted(members - {k for k, v in latest.items() if v[1] == RUNNING or v[2] is None}):
            s.add(
                SequenceState(
                    sequence_id=sid,
                    record_key=key,
                    run=runs.get(key, 0) + 1,
                    status=RUNNING,
                    step=first.id,
                    arrived_s=now_s,
                    due_s=now_s + _delay(first),
                    entered_s=now_s,
                    segment_id=seg_id,
                )
            )
            n += 1
        s.flush()
        report.started += n

    def _ends(self, s: Session, sid: int, now_s: int, report: SequenceReport) -> None:
        """Running records out of the segment that started them end; anyone out of it is marked as having left."""
        from segmenta.store.assignment_models import AssignmentMember

        rows = s.execute(
            select(SequenceState.id, SequenceState.record_key, SequenceState.segment_id, SequenceState.status).where(
                SequenceState.sequence_id == sid, SequenceState.left_s.is_(None), SequenceState.segment_id.is_not(None)
            )
        ).all()
        if not rows:
            return
        members = self._members(s, {int(r[2] or 0) for r in rows})
        gone = [r for r in rows if r[1] not in members[int(r[2] or 0)]]
        if not gone:
            return
        anywhere = set()
        for chunk in _chunks(sorted({r[1] for r in gone})):
            anywhere |= {str(k) for k in s.scalars(select(AssignmentMember.key).where(AssignmentMember.key.in_(chunk)))}
        for why, ids in (
            ("left segment", [r[0] for r in gone if r[3] == RUNNING and r[1] in anywhere]),
            ("inactive", [r[0] for r in gone if r[3] == RUNNING and r[1] not in anywhere]),
        ):
            self._end(s, ids, now_s, why)
            report.ended += len(ids)
        for chunk in _chunks([r[0] for r in gone]):
            s.execute(update(SequenceState).where(SequenceState.id.in_(chunk)).values(left_s=now_s))

    def _end(self, s: Session, ids: list[int], now_s: int, why: str) -> None:
        for chunk in _chunks(ids):
            pairs = s.execute(
                select(SequenceState.sequence_id, SequenceState.record_key, SequenceState.run).where(SequenceState.id.in_(chunk))
            ).all()
            s.execute(
                update(SequenceState).where(SequenceState.id.in_(chunk)).values(status=ENDED, step=None, due_s=None, reason=why)
            )
            for seq_id, key, run in pairs:
                s.execute(
                    update(SequenceActivity)
                    .where(
                        SequenceActivity.sequence_id == seq_id,
                        SequenceActivity.record_key == key,
                        SequenceActivity.run == run,
                        SequenceActivity.status == OPEN,
                    )
                    .values(status=CANCELLED, done_s=now_s)
                )

    def _due(self, sid: int, step: Step, now_s: int) -> Any:
        return and_(
            SequenceState.sequence_id == sid,
            SequenceState.status == RUNNING,
            SequenceState.step == step.id,
            SequenceState.due_s <= now_s,
        )

    def _arrive(self, s: Session, spec: SequenceSpec, ids: list[int], target: str, at_s: int, report: SequenceReport) -> None:
        for chunk in _chunks(ids):
            if target == END:
                s.execute(
                    update(SequenceState)
                    .where(SequenceState.id.in_(chunk))
                    .values(status=FINISHED, step=None, due_s=None, arrived_s=at_s, reason="finished")
                )
                report.finished += len(chunk)
            else:
                s.execute(
                    update(SequenceState)
                    .where(SequenceState.id.in_(chunk))
                    .values(step=target, arrived_s=at_s, due_s=at_s + _delay(spec.step(target)))
                )
            report.moved += len(chunk)

    def _run_step(
        self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport, mailer: outbox.Mailer
    ) -> int:
        kind = step.kind
        if kind == "wait":
            with self.store.session() as s:
                target = spec.next_of(step)
                nxt = spec.step(target)
                n = s.execute(
                    update(SequenceState)
                    .where(self._due(sid, step, now_s))
                    .values(step=target, arrived_s=SequenceState.due_s, due_s=SequenceState.due_s + _delay(nxt))
                ).rowcount  # type: ignore[attr-defined]
            report.moved += int(n)
            return int(n)
        if kind in SELLER_KINDS:
            return self._seller_step(sid, spec, step, now_s, report)
        if kind == "automated_email":
            return self._email_step(sid, spec, step, now_s, report, mailer)
        if kind == "condition":
            return self._condition(sid, spec, step, now_s, report)
        if kind == "update_field":
            return self._update(sid, spec, step, now_s, report)
        return self._advance_to(sid, spec, step, now_s, report)

    def _due_rows(self, s: Session, sid: int, step: Step, now_s: int) -> list[Any]:
        return list(
            s.execute(
                select(SequenceState.id, SequenceState.record_key, SequenceState.run, SequenceState.due_s)
                .where(self._due(sid, step, now_s))
                .order_by(SequenceState.id)
            ).all()
        )

    def _seller_step(self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport) -> int:
        """Create the missing activities (one per record, run and step), then move the records whose activity is settled."""
        act = step.activity
        assert act is not None
        with self.store.session() as s:
            rows = self._due_rows(s, sid, step, now_s)
            if not rows:
                return 0
            existing = self._rows(s, sid, step, rows)
            missing = [r for r in rows if (r[1], r[2]) not in existing]
            if missing:
                records = self._records(spec, [r[1] for r in missing])
                sellers = self._sellers(spec.table, [r[1] for r in missing])
                for _, key, run, due in missing:
                    s.add(
                        SequenceActivity(
                            sequence_id=sid,
                            record_key=key,
                            run=run,
                            step=step.id,
                            kind=step.kind,
                            seller=sellers.get(key),
                            subject=render(act.subject, records.get(key, {})),
                            status=OPEN,
                            due_s=int(due or 0) + (act.due.seconds if act.due is not None else 0),
                            attempts=0,
                        )
                    )
                report.activities += len(missing)
            groups: dict[int, list[int]] = defaultdict(list)
            for state_id, key, run, _due in rows:
                a = existing.get((key, run))
                if a is not None and a.status in (DONE, SKIPPED):
                    groups[int(a.done_s or now_s)].append(state_id)
            for at_s, ids in groups.items():
                self._arrive(s, spec, ids, spec.next_of(step), at_s, report)
            return sum(len(v) for v in groups.values())

    def _rows(self, s: Session, sid: int, step: Step, rows: list[Any]) -> dict[tuple[str, int], SequenceActivity]:
        out: dict[tuple[str, int], SequenceActivity] = {}
        for chunk in _chunks(sorted({r[1] for r in rows})):
            for a in s.scalars(
                select(SequenceActivity).where(
                    SequenceActivity.sequence_id == sid, SequenceActivity.step == step.id, SequenceActivity.record_key.in_(chunk)
                )
            ):
                out[(a.record_key, a.run)] = a
        return out

    def _sellers(self, table: str, keys: list[str]) -> dict[str, str]:
        """The assigned seller of each record now (work assignment's current decisions)."""
        from segmenta.store.assignment_models import AssignmentDecision

        out: dict[str, str] = {}
        with self.store.session() as s:
            for chunk in _chunks(sorted(set(keys))):
                for key, seller in s.execute(
                    select(AssignmentDecision.key, AssignmentDecision.seller).where(
                        AssignmentDecision.table_name == table,
                        AssignmentDecision.current.is_(True),
                        AssignmentDecision.status == "assigned",
                        AssignmentDecision.key.in_(chunk),
                    )
                ).all():
                    if seller is not None:
                        out[str(key)] = str(seller)
        return out

    def _records(self, spec: SequenceSpec, keys: list[str]) -> dict[str, dict[str, Any]]:
        from sqlglot import exp

        from segmenta.membership import key_literal

        table = self.segs.ws.model.table(spec.table)
        typed = self.segs.parse_keys(spec.table, keys)
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(typed):
            q = (
                exp.select(exp.Star())
                .from_(exp.Table(this=exp.to_identifier(spec.table, quoted=True)))
                .where(exp.column(table.key, quoted=True).isin(*[key_literal(k) for k in chunk]))
            )
            for row in self.segs.ws.engine.run(q).to_pylist():
                out[str(row[table.key])] = row
        return out

    def _email_step(
        self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport, mailer: outbox.Mailer
    ) -> int:
        """Automated email through the journeys' SMTP outbox: the row (``sending``) commits before the SMTP call."""
        act = step.automated_email
        assert act is not None
        with self.store.session() as s:
            rows = self._due_rows(s, sid, step, now_s)
            if not rows:
                return 0
            existing = self._rows(s, sid, step, rows)
            records = self._records(spec, [r[1] for r in rows])
            for _, key, run, due in rows:
                if (key, run) in existing:
                    continue
                address = _address(records.get(key))
                s.add(
                    SequenceActivity(
                        sequence_id=sid,
                        record_key=key,
                        run=run,
                        step=step.id,
                        kind="automated_email",
                        seller=None,
                        subject=render(act.subject, records.get(key, {})),
                        status=SENDING if address else SKIPPED,
                        due_s=int(due or 0),
                        done_s=None if address else int(due or 0),
                        message_id=message_id(sid, key, run, step.id),
                        attempts=0,
                        error=None if address else "no email address",
                    )
                )
        with self.store.session() as s:
            ledger = {k: (a.id, a.status) for k, a in self._rows(s, sid, step, rows).items()}
        settled: dict[int, list[int]] = defaultdict(list)
        for state_id, key, run, due in rows:
            aid, status = ledger[(key, run)]
            if status in (SENDING, DELIVERING):
                status = self._deliver(aid, key, run, status == DELIVERING, records.get(key, {}), act, sid, step, report, mailer)
                if status == SENDING:  # the server failed for now: the rest waits for the next pass
                    break
            if status in (SENT, SKIPPED, FAILED):
                settled[int(due or 0)].append(state_id)
        with self.store.session() as s:
            for at_s, ids in settled.items():
                self._arrive(s, spec, ids, spec.next_of(step), at_s, report)
        return sum(len(v) for v in settled.values())

    def _deliver(
        self,
        aid: int,
        key: str,
        run: int,
        resend: bool,
        rec: dict[str, Any],
        act: Any,
        sid: int,
        step: Step,
        report: SequenceReport,
        mailer: outbox.Mailer,
    ) -> str:
        def mark(status: str, error: str | None, *, attempt: bool = False) -> int:
            values: dict[str, Any] = {"status": status, "error": error}
            if status in (SENT, FAILED):
                values["done_s"] = epoch_s(clock.now())
            if attempt:
                values["attempts"] = SequenceActivity.attempts + 1
            with self.store.engine.begin() as con:
                con.execute(update(SequenceActivity).where(SequenceActivity.id == aid).values(**values))
                return int(con.scalar(select(SequenceActivity.attempts).where(SequenceActivity.id == aid)) or 0)

        mail = outbox.Email(
            to=_address(rec),
            subject=render(act.subject, rec),
            body=render(act.body or "", rec),
            message_id=message_id(sid, key, run, step.id),
            resend=resend,
        )

        def delivering() -> None:
            mark(DELIVERING, None, attempt=True)
            outbox.hang_point("before_dot")

        outbox.hang_point("before_smtp")
        try:
            mailer.send(mail, delivering)
        except outbox.Refused as exc:
            mark(FAILED, str(exc))
            return FAILED
        except outbox.Transient as exc:
            if mark(SENDING, str(exc), attempt=True) >= MAX_ATTEMPTS:
                mark(FAILED, f"{exc} ({MAX_ATTEMPTS} attempts)")
                return FAILED
            report.errors.append(f"step {step.id}, record {key}: {exc} (retried on the next pass)")
            return SENDING
        outbox.hang_point("after_dot")
        mark(SENT, None)
        report.sent += 1
        return SENT

    def _condition(self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport) -> int:
        """``yes`` when the email was opened/replied/clicked within the limit; ``no`` at the limit, or at once when it was skipped."""
        cond = step.condition
        assert cond is not None and step.yes is not None and step.no is not None
        col = getattr(SequenceActivity, f"{cond.event}_s")
        with self.store.session() as s:
            rows = s.execute(
                select(
                    SequenceState.id, SequenceState.record_key, SequenceState.run, SequenceState.arrived_s, SequenceState.due_s
                ).where(SequenceState.sequence_id == sid, SequenceState.status == RUNNING, SequenceState.step == step.id)
            ).all()
            if not rows:
                return 0
            emails: dict[tuple[str, int], tuple[str, int | None]] = {}
            for chunk in _chunks(sorted({r[1] for r in rows})):
                for key, run, status, at in s.execute(
                    select(SequenceActivity.record_key, SequenceActivity.run, SequenceActivity.status, col).where(
                        SequenceActivity.sequence_id == sid,
                        SequenceActivity.step == cond.on,
                        SequenceActivity.record_key.in_(chunk),
                    )
                ).all():
                    emails[(key, run)] = (status, at)
            moves: dict[tuple[str, int], list[int]] = defaultdict(list)
            for state_id, key, run, arrived, due in rows:
                status, at = emails.get((key, run), (SKIPPED, None))  # the email step never ran for it: skipped
                if status in (SKIPPED, FAILED, CANCELLED):
                    moves[(step.no, int(arrived))].append(state_id)
                elif at is not None and at <= int(due or 0):
                    moves[(step.yes, max(int(at), int(arrived)))].append(state_id)
                elif int(due or 0) <= now_s:
                    moves[(step.no, int(due or 0))].append(state_id)
            for (target, at_s), ids in moves.items():
                self._arrive(s, spec, ids, target, at_s, report)
            return sum(len(v) for v in moves.values())

    def _update(self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport) -> int:
        """One ``records upsert`` of every due record's field (segments and routing follow), then the records move."""
        from segmenta.services.records import upsert

        upd = step.update_field
        assert upd is not None
        with self.store.session() as s:
            rows = self._due_rows(s, sid, step, now_s)
        if not rows:
            return 0
        key_col = self.segs.ws.model.table(spec.table).key
        typed = self.segs.parse_keys(spec.table, [r[1] for r in rows])
        data = [{key_col: k, upd.attribute: upd.value} for k in typed]
        with tempfile.TemporaryDirectory(prefix="segmenta-sequence-") as tmp:
            path = Path(tmp) / "update.json"
            path.write_text(json.dumps(data, default=str), encoding="utf-8")
            upsert(self.segs, spec.table, path)
        with self.store.session() as s:
            groups: dict[int, list[int]] = defaultdict(list)
            for state_id, _key, _run, due in rows:
                groups[int(due or 0)].append(state_id)
            for at_s, ids in groups.items():
                self._arrive(s, spec, ids, spec.next_of(step), at_s, report)
        return len(rows)

    def _advance_to(self, sid: int, spec: SequenceSpec, step: Step, now_s: int, report: SequenceReport) -> int:
        """End here and start the named sequence (when it is active) at its first step, from the same segment."""
        assert step.advance is not None
        with self.store.session() as s:
            rows = s.execute(
                select(SequenceState.id, SequenceState.record_key, SequenceState.due_s, SequenceState.segment_id).where(
                    self._due(sid, step, now_s)
                )
            ).all()
            if not rows:
                return 0
            target = s.scalar(select(Sequence).where(Sequence.name == step.advance.sequence))
            ok = target is not None and target.status == ACTIVE
            why = f"advanced to {step.advance.sequence}" if ok else f"{step.advance.sequence} is not active"
            for chunk in _chunks([r[0] for r in rows]):
                s.execute(
                    update(SequenceState)
                    .where(SequenceState.id.in_(chunk))
                    .values(status=FINISHED, step=None, due_s=None, reason=why)
                )
            report.finished += len(rows)
            if ok:
                assert target is not None
                report.advanced_to.add(target.name)
                tspec = parse_sequence(target.definition)
                first = tspec.steps[0]
                runs = dict(
                    s.execute(
                        select(SequenceState.record_key, func.max(SequenceState.run))
                        .where(SequenceState.sequence_id == target.id)
                        .group_by(SequenceState.record_key)
                    ).all()
                )
                for _, key, due, seg_id in rows:
                    s.add(
                        SequenceState(
                            sequence_id=target.id,
                            record_key=key,
                            run=int(runs.get(key, 0)) + 1,
                            status=RUNNING,
                            step=first.id,
                            arrived_s=int(due or 0),
                            due_s=int(due or 0) + _delay(first),
                            entered_s=int(due or 0),
                            segment_id=seg_id,
                        )
                    )
        return len(rows)


def _delay(step: Step) -> int:
    if step.wait is not None:
        return step.wait.seconds
    if step.condition is not None:
        return step.condition.within.seconds
    return 0


def _key_order(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def _day_start(seconds: int) -> int:
    return seconds - seconds % DAY


def advance_sequences(worker: Any, report: Any) -> None:
    """The sequences' part of a worker pass: advance every active sequence; failures go to ``report.failed``."""
    from segmenta.store.sequence_models import Sequence as Seq

    try:
        with worker.store.session() as s:
            active = int(s.scalar(select(func.count()).select_from(Seq).where(Seq.status == ACTIVE)) or 0)
        if not active:
            return
        if worker._segments is not None:
            with worker._segments() as segs:
                results = Sequences(segs).advance_all()
        else:
            from segmenta.services.lifecycle_base import open_workspace
            from segmenta.services.segments import Segments

            ws = open_workspace(worker.path, engine=worker.engine)
            try:
                results = Sequences(Segments(ws, worker.store)).advance_all()
            finally:
                ws.close()
    except Exception as exc:  # noqa: BLE001 - the refreshes of the pass stand
        report.failed.append(("(sequences)", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return
    for r in results:
        for e in r.errors:
            report.failed.append((f"sequence {r.sequence}", e))


__all__ = ["SequenceReport", "Sequences", "advance_sequences", "max_active"]
