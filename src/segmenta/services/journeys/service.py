"""Journeys (contract section 7): create, publish, stop, report, and the step engine a worker pass runs.

State is in the metadata store (:mod:`segmenta.store.journey_models`): one row per record and
entry with its step and a durable timer (``due_s``, epoch seconds on the injectable clock,
:func:`segmenta.clock.now`). A pass (:meth:`Journeys.advance`) moves a live journey to the
current clock, driven by membership:

1. It reads the membership events (:mod:`segmenta.services.events`) of the journey's
   segments after the offset it stored, up to the log's last offset.
2. **Entry.** A record whose entry condition may have changed (it entered an entry segment,
   or left an exclude segment) enters when it is now a member of any entry segment and of
   no exclude segment (checked at entry only); ``once``: if it never entered; ``reenter``:
   also if it left the journey and then joined an entry segment again (an entry event later
   than its leaving). At publish, every current member of the entry segments is a candidate.
   An optional ``rate_limit`` lets at most N records in per hour or day; the rest stay
   candidates for the next window (they are kept in order of their key).
3. **Exit.** A record in the journey that is a member of an exit segment, or joined one
   since it entered, leaves at once, wherever it is: no further step runs for it.
4. **wait_until_member.** A waiting record that is a member now (before its timeout), or
   joined the segment at or before its timeout by the event's time, goes to ``yes``.
5. **Timers**, as sets, step by step in graph order until nothing is due: a ``wait`` that
   ended moves every such record with one UPDATE (``due_s`` moves by the next step's delay);
   a ``wait_until_member`` whose timeout passed goes to ``no``; a ``send`` sends one message
   per record through the outbox (:mod:`.outbox`); a branch picks its path on arrival. Logical
   time is kept: a record that reaches a step at T because its wait ended at T gets its next
   timer from T, so a clock moved by 10 days runs every step due in those 10 days in one pass.

The offset and the entry/exit/wait moves commit in one store transaction, so a pass killed
part way re-reads the same events and decides the same (entries and exits are idempotent).
One worker at a time advances a journey: a lease on the journey row, held by a lock file
(:class:`segmenta.membership.owners.RunOwner`) so a killed worker's lease is free at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from segmenta import clock
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.model.schema import hint
from segmenta.services.journeys import outbox
from segmenta.services.journeys.spec import EMAIL_COLUMNS, END, JourneySpec, Step, branch_holds, parse_journey, render
from segmenta.store.journey_models import Journey, JourneyOutbox, JourneyState

if TYPE_CHECKING:
    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.journeys")

DRAFT, LIVE, PAUSED, STOPPED = "draft", "live", "paused", "stopped"
ACTIVE, EXITED, FINISHED = "active", "exited", "finished"
#: An entry held back by the rate limit: not in the journey yet, tried again on the next pass.
PENDING = "pending"
#: Outbox phases (see :mod:`.outbox`).
SENDING, DELIVERING, SENT, SKIPPED, FAILED = "sending", "delivering", "sent", "skipped", "failed"
#: A transient send failure is retried on later passes, this many attempts in all, then counted failed.
MAX_ATTEMPTS = 5
#: Keys per ``IN (...)`` list in one statement.
CHUNK = 500
EPOCH = dt.datetime(1970, 1, 1)
LEASE = dt.timedelta(minutes=3)


def epoch_s(at: dt.datetime) -> int:
    return int((at - EPOCH).total_seconds())


def from_s(seconds: int) -> dt.datetime:
    return EPOCH + dt.timedelta(seconds=seconds)


def _chunks(items: list[Any], n: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def read_file(path: str | Path) -> Any:
    """The raw data of a journey file (.json, .yaml or .yml)."""
    from segmenta.model.validate import load_definition_text

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RejectedInput([Problem(str(p), f"cannot read the journey file: {exc.strerror or exc}")]) from None
    return load_definition_text(text, source=str(p))


@dataclass
class AdvanceReport:
    """What one pass did to one journey (counts of this pass)."""

    journey: str
    entered: int = 0
    exited: int = 0
    moved: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    finished: int = 0
    errors: list[str] = field(default_factory=list)
    busy: bool = False


class Journeys:
    """Journey use cases on an open :class:`Segments` (workspace + store)."""

    def __init__(self, segs: Segments) -> None:
        self.segs = segs
        self.store = segs.store
        #: Members read in this pass, by segment (a pass changes no membership; the next pass reads again).
        self._pass_members: dict[str, set[str]] = {}

    # -- definitions ---------------------------------------------------------------------

    def parse(self, source: Any) -> tuple[dict[str, Any], JourneySpec]:
        raw = read_file(source) if isinstance(source, (str, Path)) else source
        columns = {name: set(t.columns) for name, t in self.segs.ws.model.tables.items()}
        spec = parse_journey(raw, columns=columns)
        self._check_segments(spec, missing_ok=True)
        return dict(raw), spec

    def _check_segments(self, spec: JourneySpec, *, missing_ok: bool = False) -> None:
        """Every named segment is a segment of the journey's audience; ``missing_ok``: a draft may name one not made yet."""
        from segmenta.store.models import Segment

        wanted = {n for names in spec.segments().values() for n in names}
        with self.store.session() as s:
            rows = {
                seg.name: seg
                for seg in s.scalars(select(Segment).where(Segment.name.in_(sorted(wanted)), Segment.deleted_at.is_(None)))
            }
            names = s.scalars(select(Segment.name).where(Segment.deleted_at.is_(None))).all()
        problems = []
        for listed, where in (
            (spec.entry.segments, "/entry/segments"),
            (spec.entry.exclude, "/entry/exclude"),
            (spec.exit.segments, "/exit/segments"),
        ):
            for i, n in enumerate(listed):
                problems += self._segment_problem(rows.get(n), n, f"{where}/{i}", spec.audience, names)
        for i, step in enumerate(spec.steps):
            if step.wait_until_member is not None:
                n = step.wait_until_member.segment
                problems += self._segment_problem(rows.get(n), n, f"/steps/{i}/wait_until_member/segment", spec.audience, names)
        problems = [p for p in problems if not (missing_ok and "no saved segment" in p.message)]
        if problems:
            raise RejectedInput(problems)

    @staticmethod
    def _segment_problem(seg: Any, name: str, where: str, audience: str, names: Iterable[str]) -> list[Problem]:
        if seg is None:
            return [Problem(where, f"{name!r}: no saved segment has this name{hint(name, list(names))}")]
        if seg.audience != audience:
            return [Problem(where, f"{name!r} is a segment of {seg.audience!r}; this journey's audience is {audience!r}")]
        return []

    def _get(self, s: Session, name: str) -> Journey:
        j = s.scalar(select(Journey).where(Journey.name == name))
        if j is None:
            names = s.scalars(select(Journey.name)).all()
            raise NotFound([Problem(name, f"no journey has this name{hint(name, names)}")])
        return j

    def spec_of(self, j: Journey) -> JourneySpec:
        return parse_journey(j.definition)

    # -- lifecycle ------------------------------------------------------------------------

    def create(self, source: Any) -> dict[str, Any]:
        """Save a journey file as a draft (a draft of the same name is replaced; a published one is refused)."""
        raw, spec = self.parse(source)
        now = clock.now()
        with self.store.session() as s:
            j = s.scalar(select(Journey).where(Journey.name == spec.name))
            if j is not None and j.status != DRAFT:
                raise Conflict([Problem("/name", f"journey {spec.name!r} exists and is {j.status}; choose another name")])
            if j is None:
                j = Journey(name=spec.name, audience=spec.audience, status=DRAFT, definition=raw, created_at=now, updated_at=now)
                s.add(j)
            else:
                j.definition, j.audience, j.updated_at = raw, spec.audience, now
            s.flush()
            return self._info(j)

    def publish(self, name: str) -> dict[str, Any]:
        """Draft -> live: mark its segments used (refusing any that is not live) and enter the entry segments' members."""
        from segmenta.services.usages import register_usage
        from segmenta.store.models import Segment

        with self.store.session() as s:
            j = self._get(s, name)
            if j.status != DRAFT:
                raise Conflict([Problem(name, f"is {j.status}; only a draft journey can be published")])
            definition = j.definition
        spec = parse_journey(definition)
        self._check_segments(spec)  # a segment may have been deleted since create
        roles = spec.segments()
        with self.store.session() as s:
            status = dict(
                s.execute(
                    select(Segment.name, Segment.status).where(
                        Segment.name.in_(sorted({n for ns in roles.values() for n in ns})), Segment.deleted_at.is_(None)
                    )
                ).all()
            )
        bad = [
            Problem(f"{role} segment {n}", f"is {status[n]}; a journey uses live segments only (publish it first)")
            for role, ns in roles.items()
            for n in ns
            if status.get(n) != "live"
        ]
        if bad:
            raise RejectedInput(bad)
        done: list[tuple[str, str]] = []
        try:
            for role, ns in roles.items():
                for n in ns:
                    register_usage(self.segs, n, kind="journey", user=spec.name, role=role)
                    done.append((n, role))
        except Exception:
            for n, role in done:
                register_usage_undo(self.segs, n, spec.name, role)
            raise
        events = _events_api()
        offset = events.last_offset(self.segs) if events is not None else 0
        now = clock.now()
        with self.store.session() as s:
            j = self._get(s, name)
            j.status, j.published_at, j.updated_at, j.event_offset = LIVE, now, now, offset
            jid = j.id
        report = AdvanceReport(spec.name)
        self._pass_members = {}
        with self.store.session() as s:
            candidates = self._members(roles["entry"])
            self._enter(s, jid, spec, candidates, epoch_s(now), offset, report)
            self._exits(s, jid, spec, {}, epoch_s(now), offset, report)
        return self.show(name)

    def pause(self, name: str) -> dict[str, Any]:
        """Live -> paused: no step runs and nobody enters; its segments stay in use, records stay where they are."""
        return self._set_status(name, LIVE, PAUSED)

    def resume(self, name: str) -> dict[str, Any]:
        """Paused -> live: the next pass catches up, in logical time, on what fell due while paused."""
        return self._set_status(name, PAUSED, LIVE)

    def _set_status(self, name: str, current: str, new: str) -> dict[str, Any]:
        with self.store.session() as s:
            j = self._get(s, name)
            if j.status != current:
                raise Conflict([Problem(name, f"is {j.status}; only a {current} journey can become {new}")])
            j.status, j.updated_at = new, clock.now()
        return self.show(name)

    def stop(self, name: str) -> dict[str, Any]:
        """Live -> stopped: no step runs any more, and its segments are released (records stay where they were)."""
        with self.store.session() as s:
            j = self._get(s, name)
            if j.status == STOPPED:
                return self._info(j)
            was_live = j.status in (LIVE, PAUSED)
            j.status, j.stopped_at, j.updated_at = STOPPED, clock.now(), clock.now()
            definition = j.definition
        if was_live:
            spec = parse_journey(definition)
            for role, ns in spec.segments().items():
                for n in ns:
                    register_usage_undo(self.segs, n, spec.name, role)
        return self.show(name)

    # -- views -----------------------------------------------------------------------------

    def _info(self, j: Journey) -> dict[str, Any]:
        return {
            "name": j.name,
            "audience": j.audience,
            "status": j.status,
            "created_at": j.created_at.isoformat(),
            "published_at": j.published_at.isoformat() if j.published_at else None,
            "stopped_at": j.stopped_at.isoformat() if j.stopped_at else None,
            "event_offset": j.event_offset,
        }

    def show(self, name: str) -> dict[str, Any]:
        with self.store.session() as s:
            j = self._get(s, name)
            info = self._info(j)
            info["definition"] = j.definition
        info["report"] = self.report(name)
        return info

    def list_journeys(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            return [self._info(j) for j in s.scalars(select(Journey).order_by(Journey.name))]

    def report(self, name: str) -> dict[str, Any]:
        """``{"entered", "exited", "finished", "sent", "skipped", "failed", "at_step": {STEP_ID: N}}`` (contract 7).

        ``entered`` counts entries (a re-entry counts again); ``exited`` the entries that left by
        an exit segment; ``finished`` those that reached the end; ``sent``/``skipped``/``failed``
        the messages; ``at_step`` the records at each step now (every step listed, 0 included).
        """
        with self.store.session() as s:
            j = self._get(s, name)
            spec = parse_journey(j.definition)
            by_status = dict(
                s.execute(
                    select(JourneyState.status, func.count()).where(JourneyState.journey_id == j.id).group_by(JourneyState.status)
                ).all()
            )
            at = dict(
                s.execute(
                    select(JourneyState.step, func.count())
                    .where(JourneyState.journey_id == j.id, JourneyState.status == ACTIVE)
                    .group_by(JourneyState.step)
                ).all()
            )
            sends = dict(
                s.execute(
                    select(JourneyOutbox.status, func.count())
                    .where(JourneyOutbox.journey_id == j.id)
                    .group_by(JourneyOutbox.status)
                ).all()
            )
            exits = dict(
                s.execute(
                    select(JourneyState.exit_segment, func.count())
                    .where(JourneyState.journey_id == j.id, JourneyState.status == EXITED)
                    .group_by(JourneyState.exit_segment)
                ).all()
            )
        return {
            "entered": int(sum(n for st, n in by_status.items() if st != PENDING)),
            "exited": int(by_status.get(EXITED, 0)),
            "finished": int(by_status.get(FINISHED, 0)),
            "sent": int(sends.get(SENT, 0)),
            "skipped": int(sends.get(SKIPPED, 0)),
            "failed": int(sends.get(FAILED, 0)),
            "at_step": {st.id: int(at.get(st.id, 0)) for st in spec.steps},
            "exited_by": {str(k): int(v) for k, v in exits.items()},
        }

    def states(self, name: str) -> list[dict[str, Any]]:
        """Every record's state (for inspection and tests)."""
        with self.store.session() as s:
            j = self._get(s, name)
            rows = s.scalars(select(JourneyState).where(JourneyState.journey_id == j.id).order_by(JourneyState.id)).all()
            return [
                {
                    "key": r.record_key,
                    "run": r.run,
                    "status": r.status,
                    "step": r.step,
                    "due_at": from_s(r.due_s).isoformat() if r.due_s is not None else None,
                    "exit_segment": r.exit_segment,
                }
                for r in rows
            ]

    # -- membership ---------------------------------------------------------------------------

    def _members(self, names: Iterable[str]) -> set[str]:
        """The current members (as text keys) of the named segments, together (read once per segment in a pass)."""
        out: set[str] = set()
        for n in names:
            if n not in self._pass_members:
                _, keys = self.segs.members(n)
                self._pass_members[n] = {str(k) for k in keys}
            out |= self._pass_members[n]
        return out

    def _events(self, spec: JourneySpec, after: int) -> tuple[list[Any], int]:
        """The membership events of the journey's segments after ``after``, and the offset read up to."""
        from segmenta.store.models import Segment

        events = _events_api()
        if events is None:
            return [], after
        last = events.last_offset(self.segs)
        if last <= after:
            return [], after
        names = sorted({n for ns in spec.segments().values() for n in ns})
        with self.store.session() as s:
            ids = [int(i) for i in s.scalars(select(Segment.id).where(Segment.name.in_(names)))]
        id_to_name = {}
        with self.store.session() as s:
            for i, n in s.execute(select(Segment.id, Segment.name).where(Segment.id.in_(ids))).all():
                id_to_name[int(i)] = n
        out: list[Any] = []
        cursor = after
        while cursor < last:
            page = events.read(self.segs, after=cursor, segment_ids=ids)
            if not page:
                break
            out += [e for e in page if e.offset <= last]
            cursor = page[-1].offset
        # names as the journey knows them (an event carries the name at read time)
        return [(id_to_name.get(e.segment_id, e.segment), e) for e in out], last

    # -- the step engine -----------------------------------------------------------------------

    def advance_all(self, *, owner: str | None = None) -> list[AdvanceReport]:
        """Advance every live journey to the current clock (one worker pass)."""
        with self.store.session() as s:
            names = list(s.scalars(select(Journey.name).where(Journey.status == LIVE).order_by(Journey.id)))
        reports = []
        for n in names:
            try:
                reports.append(self.advance(n))
            except Exception as exc:  # noqa: BLE001 - one journey's trouble never stops the others
                log.exception("journey %s: the pass failed", n)
                reports.append(AdvanceReport(n, errors=[str(exc).splitlines()[0] if str(exc) else type(exc).__name__]))
        return reports

    def advance(self, name: str) -> AdvanceReport:
        from segmenta.membership.owners import RunOwner

        with RunOwner(self.segs.ws.path) as owner:
            with self.store.session() as s:
                j = self._get(s, name)
                jid = j.id
            if not self._claim(jid, owner.message):
                return AdvanceReport(name, busy=True)
            try:
                return self._advance(jid)
            finally:
                with self.store.session() as s:
                    s.execute(
                        update(Journey)
                        .where(Journey.id == jid, Journey.lease_owner == owner.message)
                        .values(lease_owner=None, lease_until=None)
                    )

    def _claim(self, jid: int, me: str) -> bool:
        from segmenta.membership.owners import owner_alive

        with self.store.session() as s:
            q = select(Journey).where(Journey.id == jid)
            j = s.scalar(q.with_for_update() if self.store.postgres else q)
            assert j is not None
            if j.status != LIVE:
                return False
            held = j.lease_owner is not None and j.lease_until is not None and j.lease_until > _wall()
            if held and owner_alive(self.segs.ws.path, j.lease_owner):
                return False
            j.lease_owner, j.lease_until = me, _wall() + LEASE
            return True

    def _advance(self, jid: int) -> AdvanceReport:
        self._pass_members = {}
        with self.store.session() as s:
            j = s.get(Journey, jid)
            assert j is not None
            spec = parse_journey(j.definition)
            after = j.event_offset or 0
        report = AdvanceReport(spec.name)
        now_s = epoch_s(clock.now())
        batch, last = self._events(spec, after)
        roles = spec.segments()
        with self.store.session() as s:
            # 2. entry: records whose entry condition may have changed
            entry, exclude = set(roles["entry"]), set(roles["exclude"])
            triggers = {
                str(e.key) for n, e in batch if (n in entry and e.change == "entered") or (n in exclude and e.change == "exited")
            }
            joined: dict[str, int] = {}
            for n, e in batch:
                if n in entry and e.change == "entered":
                    joined[str(e.key)] = max(joined.get(str(e.key), 0), e.offset)
            # the state, not only the events: a current member that never entered (the events of a
            # join may predate the journey, or an exclusion ended) is a candidate too
            triggers |= self._members(entry)
            triggers |= self._waiting_entry(s, jid)
            if triggers:
                self._enter(s, jid, spec, triggers, now_s, last, report, joined=joined)
            # 3. exit
            self._exits(s, jid, spec, batch_exits(batch, set(roles["exit"])), now_s, last, report)
            # 4. wait_until_member: yes
            self._wait_yes(s, jid, spec, batch, now_s, report)
            j = s.get(Journey, jid)
            assert j is not None
            j.event_offset = last
        # 5. timers, as sets, in graph order until nothing is due
        self._timers(jid, spec, now_s, report)
        return report

    def _waiting_entry(self, s: Session, jid: int) -> set[str]:
        """Keys a rate limit held back earlier (kept as pending entries)."""
        return set(
            s.scalars(select(JourneyState.record_key).where(JourneyState.journey_id == jid, JourneyState.status == PENDING))
        )

    def _enter(
        self,
        s: Session,
        jid: int,
        spec: JourneySpec,
        candidates: set[str],
        now_s: int,
        offset: int,
        report: AdvanceReport,
        *,
        joined: dict[str, int] | None = None,
    ) -> None:
        roles = spec.segments()
        eligible = (candidates & self._members(roles["entry"])) - self._members(roles["exclude"])
        history: dict[str, tuple[int, str, int | None]] = {}  # key -> (last run, its status, its left offset)
        wanted = eligible | candidates
        for key, run, status, left in s.execute(  # one read of the journey's states (not one query per chunk of keys)
            select(JourneyState.record_key, JourneyState.run, JourneyState.status, JourneyState.left_offset).where(
                JourneyState.journey_id == jid
            )
        ).all():
            if key in wanted and (key not in history or run > history[key][0]):
                history[key] = (run, status, left)
        # pending entries (rate limited) that are no longer eligible are dropped
        stale = [k for k, (_, st, _) in history.items() if st == PENDING and k not in eligible]
        for chunk in _chunks(stale):
            s.execute(
                JourneyState.__table__.delete().where(  # type: ignore[attr-defined]
                    JourneyState.journey_id == jid, JourneyState.status == PENDING, JourneyState.record_key.in_(chunk)
                )
            )
        entering: list[tuple[str, int, bool]] = []  # (key, run, is a pending row already)
        for key in sorted(eligible, key=_key_order):
            past = history.get(key)
            if past is None:
                entering.append((key, 1, False))
            elif past[1] == PENDING:
                entering.append((key, past[0], True))
            elif past[1] == ACTIVE:
                continue
            elif spec.entry.frequency == "reenter" and joined is not None and joined.get(key, 0) > (past[2] or 0):
                entering.append((key, past[0] + 1, False))
        if spec.entry.rate_limit is not None:
            rl = spec.entry.rate_limit
            window = now_s - now_s % rl.window_s
            used = int(
                s.scalar(
                    select(func.count()).where(
                        JourneyState.journey_id == jid, JourneyState.status != PENDING, JourneyState.entered_s >= window
                    )
                )
                or 0
            )
            room = max(rl.max - used, 0)
            held, entering = entering[room:], entering[:room]
            for key, run, is_pending in held:
                if not is_pending:
                    s.add(
                        JourneyState(
                            journey_id=jid,
                            record_key=key,
                            run=run,
                            status=PENDING,
                            step=None,
                            arrived_s=now_s,
                            due_s=None,
                            entered_s=now_s,
                            entry_offset=offset,
                        )
                    )
        first = spec.steps[0]
        for key, run, is_pending in entering:
            if is_pending:
                s.execute(
                    update(JourneyState)
                    .where(JourneyState.journey_id == jid, JourneyState.record_key == key, JourneyState.run == run)
                    .values(
                        status=ACTIVE,
                        step=first.id,
                        arrived_s=now_s,
                        due_s=now_s + _delay(first),
                        entered_s=now_s,
                        entry_offset=offset,
                    )
                )
            else:
                s.add(
                    JourneyState(
                        journey_id=jid,
                        record_key=key,
                        run=run,
                        status=ACTIVE,
                        step=first.id,
                        arrived_s=now_s,
                        due_s=now_s + _delay(first),
                        entered_s=now_s,
                        entry_offset=offset,
                    )
                )
        s.flush()
        report.entered += len(entering)

    def _exits(
        self,
        s: Session,
        jid: int,
        spec: JourneySpec,
        joined: dict[str, dict[str, int]],
        now_s: int,
        offset: int,
        report: AdvanceReport,
    ) -> None:
        """Records in the journey that are members of an exit segment, or joined one since they entered, leave now."""
        for seg in spec.segments()["exit"]:
            members = self._members([seg])
            by_event = joined.get(seg, {})
            active = s.execute(
                select(JourneyState.id, JourneyState.record_key, JourneyState.entry_offset).where(
                    JourneyState.journey_id == jid, JourneyState.status == ACTIVE
                )
            ).all()
            leaving = [i for i, key, entry_off in active if key in members or by_event.get(key, -1) > (entry_off or 0)]
            for chunk in _chunks(leaving):
                s.execute(
                    update(JourneyState)
                    .where(JourneyState.id.in_(chunk))
                    .values(status=EXITED, step=None, due_s=None, left_s=now_s, left_offset=offset, exit_segment=seg)
                )
            report.exited += len(leaving)

    def _wait_yes(self, s: Session, jid: int, spec: JourneySpec, batch: list[Any], now_s: int, report: AdvanceReport) -> None:
        for step in spec.steps:
            if step.wait_until_member is None:
                continue
            seg = step.wait_until_member.segment
            members = self._members([seg])
            joined_at: dict[str, int] = {}
            for n, e in batch:
                if n == seg and e.change == "entered":
                    at = epoch_s(
                        e.at.replace(tzinfo=None) if e.at.tzinfo is None else e.at.astimezone(dt.UTC).replace(tzinfo=None)
                    )
                    joined_at[str(e.key)] = min(joined_at.get(str(e.key), at), at)
            waiting = s.execute(
                select(JourneyState.id, JourneyState.record_key, JourneyState.arrived_s, JourneyState.due_s).where(
                    JourneyState.journey_id == jid, JourneyState.status == ACTIVE, JourneyState.step == step.id
                )
            ).all()
            moves: dict[int, list[int]] = defaultdict(list)  # arrival time at "yes" -> state ids
            for i, key, arrived, due_or_none in waiting:
                due = int(due_or_none or 0)
                joined = joined_at.get(key)
                if joined is not None and joined <= due:
                    moves[max(min(joined, now_s), arrived)].append(i)
                elif key in members and due >= now_s:  # at the timeout itself it has not passed yet
                    moves[now_s].append(i)
            for at_s, ids in moves.items():
                self._arrive(s, spec, ids, step.yes or END, at_s, report)

    def _arrive(self, s: Session, spec: JourneySpec, ids: list[int], target: str, at_s: int, report: AdvanceReport) -> None:
        """Move the states ``ids`` to ``target`` (a step or end), arriving at ``at_s``."""
        for chunk in _chunks(ids):
            if target == END:
                s.execute(
                    update(JourneyState)
                    .where(JourneyState.id.in_(chunk))
                    .values(status=FINISHED, step=None, due_s=None, arrived_s=at_s, left_s=at_s)
                )
                report.finished += len(chunk)
            else:
                step = spec.step(target)
                s.execute(
                    update(JourneyState)
                    .where(JourneyState.id.in_(chunk))
                    .values(step=target, arrived_s=at_s, due_s=at_s + _delay(step))
                )
            report.moved += len(chunk)

    def _timers(self, jid: int, spec: JourneySpec, now_s: int, report: AdvanceReport) -> None:
        order = spec.order()
        with outbox.Mailer() as mailer:
            for _sweep in range(len(order) + 2):
                moved = 0
                for sid in order:
                    moved += self._run_step(jid, spec, spec.step(sid), now_s, report, mailer)
                if not moved:
                    return

    def _due(self, s: Session, jid: int, step: Step, now_s: int) -> Any:
        return and_(
            JourneyState.journey_id == jid,
            JourneyState.status == ACTIVE,
            JourneyState.step == step.id,
            JourneyState.due_s <= now_s,
        )

    def _run_step(self, jid: int, spec: JourneySpec, step: Step, now_s: int, report: AdvanceReport, mailer: outbox.Mailer) -> int:
        """Run every record due at ``step``; returns how many moved on."""
        if step.kind in ("wait", "wait_until_member"):
            target = spec.next_of(step) if step.kind == "wait" else (step.no or END)
            return self._move_due(jid, spec, step, target, now_s, report)
        if step.kind == "branch":
            return self._branch(jid, spec, step, now_s, report)
        return self._send(jid, spec, step, now_s, report, mailer)

    def _move_due(self, jid: int, spec: JourneySpec, step: Step, target: str, now_s: int, report: AdvanceReport) -> int:
        """One UPDATE moves every record whose timer at ``step`` ended: arrival = its due time."""
        with self.store.session() as s:
            cond = self._due(s, jid, step, now_s)
            if target == END:
                n = s.execute(
                    update(JourneyState)
                    .where(cond)
                    .values(status=FINISHED, step=None, arrived_s=JourneyState.due_s, left_s=JourneyState.due_s, due_s=None)
                ).rowcount  # type: ignore[attr-defined]
                report.finished += n
            else:
                nxt = spec.step(target)
                n = s.execute(
                    update(JourneyState)
                    .where(cond)
                    .values(step=target, arrived_s=JourneyState.due_s, due_s=JourneyState.due_s + _delay(nxt))
                ).rowcount  # type: ignore[attr-defined]
                if n and nxt.wait_until_member is not None:
                    self._arrived_waiting(s, spec, jid, nxt, now_s, report)
        report.moved += n
        return int(n)

    def _arrived_waiting(self, s: Session, spec: JourneySpec, jid: int, step: Step, now_s: int, report: AdvanceReport) -> None:
        """Records that just reached a wait_until_member step and are members already go to ``yes`` at once."""
        assert step.wait_until_member is not None
        members = self._members([step.wait_until_member.segment])
        rows = s.execute(
            select(JourneyState.id, JourneyState.record_key, JourneyState.arrived_s).where(
                JourneyState.journey_id == jid, JourneyState.status == ACTIVE, JourneyState.step == step.id
            )
        ).all()
        groups: dict[int, list[int]] = defaultdict(list)
        for i, key, arrived in rows:
            if key in members:
                groups[arrived].append(i)
        for at_s, ids in groups.items():
            self._arrive(s, spec, ids, step.yes or END, at_s, report)

    def _records(self, spec: JourneySpec, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The audience rows of ``keys`` (by text key)."""
        from sqlglot import exp

        from segmenta.membership import key_literal

        table = self.segs.ws.model.table(spec.audience)
        typed = self.segs.parse_keys(spec.audience, keys)
        out: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(typed):
            q = (
                exp.select(exp.Star())
                .from_(exp.Table(this=exp.to_identifier(spec.audience, quoted=True)))
                .where(exp.column(table.key, quoted=True).isin(*[key_literal(k) for k in chunk]))
            )
            for row in self.segs.ws.engine.run(q).to_pylist():
                out[str(row[table.key])] = row
        return out

    def _branch(self, jid: int, spec: JourneySpec, step: Step, now_s: int, report: AdvanceReport) -> int:
        assert step.branch is not None
        with self.store.session() as s:
            rows = s.execute(
                select(JourneyState.id, JourneyState.record_key, JourneyState.due_s).where(self._due(s, jid, step, now_s))
            ).all()
            if not rows:
                return 0
            records = self._records(spec, [r[1] for r in rows])
            groups: dict[tuple[str, int], list[int]] = defaultdict(list)
            for i, key, due in rows:
                rec = records.get(key, {})
                target = next((b.next for b in step.branch.branches if branch_holds(b.when, rec)), step.branch.otherwise)
                groups[(target, int(due or now_s))].append(i)
            for (target, due), ids in groups.items():
                self._arrive(s, spec, ids, target, due, report)
                if target != END and spec.step(target).wait_until_member is not None:
                    self._arrived_waiting(s, spec, jid, spec.step(target), now_s, report)
        return len(rows)

    # -- sending -----------------------------------------------------------------------------------

    def _send(self, jid: int, spec: JourneySpec, step: Step, now_s: int, report: AdvanceReport, mailer: outbox.Mailer) -> int:
        """Send the due records' messages at ``step``, a chunk at a time, then move the chunk on as a set.

        Per chunk: one commit writes the outbox rows (``sending``, or ``skipped`` without an
        address); per message: ``delivering`` before the final dot and ``sent`` after the
        server's reply (the exactly-once ledger, :mod:`.outbox`); per chunk again: one move of
        every record whose message is settled. A crash between ``sent`` and the move leaves
        rows that are settled: the next pass moves those records and sends nothing.
        """
        assert step.send is not None
        moved = 0
        target = spec.next_of(step)
        while True:
            with self.store.session() as s:
                rows = s.execute(
                    select(JourneyState.id, JourneyState.record_key, JourneyState.run, JourneyState.due_s)
                    .where(self._due(s, jid, step, now_s))
                    .order_by(JourneyState.id)
                    .limit(CHUNK)
                ).all()
            if not rows:
                return moved
            records = self._records(spec, [r[1] for r in rows])
            ledger = self._ledger(jid, spec, step, [(k, run) for _, k, run, _ in rows], records, report)
            settled: dict[int, list[int]] = defaultdict(list)  # arrival time at the next step -> state ids
            stalled = False
            for state_id, key, run, due in rows:
                status, resend = ledger[(key, run)]
                if status == SENDING and not stalled:
                    status = self._deliver(jid, spec, step, key, run, records.get(key), resend, report, mailer)
                    stalled = status == SENDING
                if status in (SENT, SKIPPED, FAILED):
                    settled[int(due or now_s)].append(state_id)
            with self.store.session() as s:
                for at_s, ids in settled.items():
                    self._arrive(s, spec, ids, target, at_s, report)
                if settled and target != END and spec.step(target).wait_until_member is not None:
                    self._arrived_waiting(s, spec, jid, spec.step(target), now_s, report)
            moved += sum(len(ids) for ids in settled.values())
            if stalled:  # the server failed for now: the rest waits for the next pass
                return moved

    def _ledger(
        self,
        jid: int,
        spec: JourneySpec,
        step: Step,
        wanted: list[tuple[str, int]],
        records: dict[str, dict[str, Any]],
        report: AdvanceReport,
    ) -> dict[tuple[str, int], tuple[str, bool]]:
        """The outbox rows of a chunk, written in one commit: (key, run) -> (status, whether a send is a resend)."""
        assert step.send is not None
        now = clock.now()
        out: dict[tuple[str, int], tuple[str, bool]] = {}
        with self.store.session() as s:
            keys = sorted({k for k, _ in wanted})
            existing = {
                (r.record_key, r.run): r
                for r in s.scalars(
                    select(JourneyOutbox).where(
                        JourneyOutbox.journey_id == jid, JourneyOutbox.step == step.id, JourneyOutbox.record_key.in_(keys)
                    )
                )
            }
            for key, run in wanted:
                row = existing.get((key, run))
                if row is not None:
                    # delivering: the one ambiguous window (see .outbox): sent again, same Message-ID, marked
                    out[(key, run)] = (SENDING if row.status == DELIVERING else row.status, row.status == DELIVERING)
                    continue
                address = _address(records.get(key)) if step.send.channel == "email" else "webhook"
                status = SENDING if address else SKIPPED
                s.add(
                    JourneyOutbox(
                        journey_id=jid,
                        record_key=key,
                        run=run,
                        step=step.id,
                        status=status,
                        message_id=outbox.message_id(jid, key, run, step.id),
                        recipient=address or None,
                        attempts=0,
                        created_at=now,
                        updated_at=now,
                        error=None if address else "no email address",
                    )
                )
                if not address:
                    report.skipped += 1
                out[(key, run)] = (status, False)
        return out

    def _deliver(
        self,
        jid: int,
        spec: JourneySpec,
        step: Step,
        key: str,
        run: int,
        record: dict[str, Any] | None,
        resend: bool,
        report: AdvanceReport,
        mailer: outbox.Mailer,
    ) -> str:
        """Deliver one message whose row is committed as ``sending``; returns its status now (sending: try later)."""
        assert step.send is not None
        mid = outbox.message_id(jid, key, run, step.id)
        rec = record or {}
        outbox.hang_point("before_smtp")

        def delivering() -> None:
            self._mark(jid, key, run, step.id, DELIVERING, None, attempt=True)
            outbox.hang_point("before_dot")

        try:
            if step.send.channel == "email":
                mail = outbox.Email(
                    to=_address(record),
                    subject=render(step.send.subject or "", rec),
                    body=render(step.send.body or "", rec),
                    message_id=mid,
                    resend=resend,
                )
                mailer.send(mail, delivering)
            else:
                delivering()
                payload = {
                    "journey": spec.name,
                    "step": step.id,
                    "key": key,
                    "run": run,
                    "record": rec,
                    "message_id": mid,
                    "resend": resend,
                }
                outbox.post_webhook(step.send.url or "", step.send.secret_env, payload, mid)
        except outbox.Refused as exc:
            self._mark(jid, key, run, step.id, FAILED, str(exc))
            report.failed += 1
            return FAILED
        except outbox.Transient as exc:
            attempts = self._mark(jid, key, run, step.id, SENDING, str(exc), attempt=True)
            if attempts >= MAX_ATTEMPTS:
                self._mark(jid, key, run, step.id, FAILED, f"{exc} ({attempts} attempts)")
                report.failed += 1
                return FAILED
            report.errors.append(f"step {step.id}, record {key}: {exc} (retried on the next pass)")
            return SENDING
        outbox.hang_point("after_dot")
        self._mark(jid, key, run, step.id, SENT, None)
        report.sent += 1
        return SENT

    def _mark(self, jid: int, key: str, run: int, step: str, status: str, error: str | None, *, attempt: bool = False) -> int:
        """Set one outbox row's status (``attempt``: count one more try); returns its attempts."""
        where = and_(
            JourneyOutbox.journey_id == jid,
            JourneyOutbox.record_key == key,
            JourneyOutbox.run == run,
            JourneyOutbox.step == step,
        )
        values: dict[str, Any] = {"status": status, "error": error, "updated_at": clock.now()}
        if attempt:
            values["attempts"] = JourneyOutbox.attempts + 1
        with self.store.engine.begin() as con:  # one statement, one commit: no ORM session per message
            con.execute(update(JourneyOutbox).where(where).values(**values))
            return int(con.scalar(select(JourneyOutbox.attempts).where(where)) or 0) if attempt else 0

    def outbox_rows(self, name: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            j = self._get(s, name)
            rows = s.scalars(select(JourneyOutbox).where(JourneyOutbox.journey_id == j.id).order_by(JourneyOutbox.id)).all()
            return [
                {
                    "key": r.record_key,
                    "run": r.run,
                    "step": r.step,
                    "status": r.status,
                    "message_id": r.message_id,
                    "attempts": r.attempts,
                    "error": r.error,
                }
                for r in rows
            ]


def _events_api() -> Any:
    """:mod:`segmenta.services.events`, or None in a build without the membership event log.

    Without it a journey still runs on the current membership (entry of new members,
    exits and waits by membership now); only ``reenter`` needs the events (a re-join).
    """
    try:
        from segmenta.services import events
    except ImportError:  # pragma: no cover - the log ships with segmenta
        return None
    return events


def _delay(step: Step) -> int:
    """Seconds from arriving at ``step`` to its timer (a send or branch runs at once)."""
    if step.wait is not None:
        return step.wait.seconds
    if step.wait_until_member is not None:
        return step.wait_until_member.timeout.seconds
    return 0


def _address(record: dict[str, Any] | None) -> str:
    if not record:
        return ""
    for c in EMAIL_COLUMNS:
        v = record.get(c)
        if isinstance(v, str) and v.strip():
            return v.strip()
    return ""


def _key_order(key: str) -> tuple[int, Any]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def batch_exits(batch: list[Any], exit_segments: set[str]) -> dict[str, dict[str, int]]:
    """For each exit segment, the keys that joined it in ``batch`` with their latest offset."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for n, e in batch:
        if n in exit_segments and e.change == "entered":
            out[n][str(e.key)] = max(out[n].get(str(e.key), 0), e.offset)
    return out


def register_usage_undo(segs: Segments, segment: str, journey: str, role: str) -> None:
    """Release one use (a deleted segment has nothing to release)."""
    from segmenta.services.usages import unregister_usage

    with contextlib.suppress(NotFound):
        unregister_usage(segs, segment, kind="journey", user=journey, role=role)


__all__ = ["AdvanceReport", "Journeys", "epoch_s", "from_s"]
