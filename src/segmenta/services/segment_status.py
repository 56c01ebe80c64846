"""Status changes of saved segments: publish, refresh, stop, activate, and dependents after a publish.

Every change goes through :func:`segmenta.services.states.transition`, the one table of what
each status allows; a change it does not allow raises ``Conflict`` (API 409, CLI exit 2).

Publishing evaluates the pending draft version if there is one (it becomes the version in
force), else the current one. A publish parses and compiles its definition once: the query
compiled to validate it is the query that is evaluated. When the published segment's
membership may have changed, the live dynamic segments that read it through ``in_segment``
(directly or through others) are refreshed right after it, readers after the segments they
read, so nobody sees a reader that lags the segment it reads (issue 8 section 5). The same
happens after a refresh a user asks for and after a static list's add, remove or import
when they changed members; the worker's own refreshes already run in dependency order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlglot import exp

from segmenta import clock
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput, SegmentaError
from segmenta.model.definition import Definition
from segmenta.model.validate import parse_definition
from segmenta.services.lifecycle_base import RefreshResult, SegmentsBase
from segmenta.services.segment_graph import dependency_order, readers, reference_graph
from segmenta.services.states import Action, Kind, StaticType, Status, transition
from segmenta.store.models import Segment, Usage

#: RefreshRun.trigger of a refresh caused by a publish of a segment it reads.
DEPENDENCY_TRIGGER = "dependency"


class SegmentCommands(SegmentsBase):
    """Status changes (the lifecycle's commands); :class:`segmenta.services.segments.Segments` adds the rest."""

    #: (stored definition, parsed, compiled query) of the publish under way: its evaluation reuses them.
    _prepared: tuple[Any, Definition, exp.Select] | None = None
    #: What the last publish did to the segments reading the published one: results, and (name, error) failures.
    last_dependents: tuple[list[RefreshResult], list[tuple[str, str]]] = ([], [])

    def _get(self, s: Session, name: str | int) -> Segment:
        """A segment not deleted, by name, or by id when ``name`` is an int."""
        if not isinstance(name, str):
            seg = s.scalar(select(Segment).where(Segment.id == name, Segment.deleted_at.is_(None)))
            if seg is None:
                raise NotFound([Problem(f"segment id {name}", "no saved segment has this id")])
            return seg
        return super()._get(s, name)

    # -- publish --------------------------------------------------------------------------

    def publish(self, name: str | int) -> RefreshResult:
        """Draft (or stopped/error/live) -> going_live -> live, evaluating the pending draft or current version."""
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.static_type == StaticType.LIST:
                note = "a static list is live from creation; nothing to publish"
                return RefreshResult(seg.name, seg.size or 0, 0, 0, seg.current_version, None, note)
            transition(seg.name, seg.status, Action.PUBLISH)
            seg_id, seg_name, version = seg.id, seg.name, seg.draft_version or seg.current_version
            raw = self._definition(s, seg, version)
        defn = parse_definition(raw, self.ws.model)  # against the current model
        query = self._compile(defn)  # and the live segments it reads; nothing has changed yet
        with self.store.session() as s:
            row = s.get(Segment, seg_id)
            assert row is not None
            seg = row
            target = transition(seg.name, seg.status, Action.PUBLISH)  # again: it may have changed meanwhile
            was_live = seg.status == Status.LIVE
            if not was_live:  # a live one stays readable by in_segment while it is re-evaluated
                seg.status, seg.status_reason = target, "publishing"
            # The version goes in force (current_version, draft cleared) only when its evaluation
            # commits: a failed publish leaves the live version, its members, its status and the draft.
            seg.last_used_at = clock.now()
        self._prepared = (raw, defn, query)
        try:
            result = self._evaluate(seg_id, trigger="publish", version=version, keep_status=was_live)
        finally:
            self._prepared = None
        with self.store.session() as s:
            row = s.get(Segment, seg_id)
            assert row is not None
            row.published_at = clock.now()
            self._audit(s, row, "publish", f"version {version}")
        self.last_dependents = self._refresh_dependents(seg_name)
        return result

    def change_members(self, seg: Segment, keys: exp.Query, action: str) -> RefreshResult:
        """A static list's add/remove/import, then its live readers are refreshed as after a publish."""
        result = super().change_members(seg, keys, action)
        if result.entered or result.exited:
            self.last_dependents = self._refresh_dependents(result.name)
        return result

    def _refresh_dependents(self, name: str) -> tuple[list[RefreshResult], list[tuple[str, str]]]:
        """Refresh the live dynamic segments reading ``name`` (transitively), in dependency order.

        One failing reader is recorded (it goes to ``error`` as any failed refresh) and the others still run.
        """
        with self.store.session() as s:
            graph = reference_graph(s)
            live = {
                n: i
                for n, i in s.execute(
                    select(Segment.name, Segment.id).where(
                        Segment.status == Status.LIVE, Segment.kind == Kind.DYNAMIC, Segment.deleted_at.is_(None)
                    )
                ).all()
            }
        todo: set[str] = set()
        frontier = [name]
        while frontier:
            for r in readers(graph, frontier.pop()):
                if r in live and r not in todo and r != name:
                    todo.add(r)
                    frontier.append(r)
        done: list[RefreshResult] = []
        failed: list[tuple[str, str]] = []
        for r in dependency_order(todo, graph):
            try:
                done.append(self.refresh(live[r], trigger=DEPENDENCY_TRIGGER))
            except SegmentaError as exc:
                failed.append((r, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return done, failed

    # -- refresh, stop, activate ---------------------------------------------------------------

    def refresh(self, name: str | int, *, trigger: str = "refresh") -> RefreshResult:
        """Re-evaluate a live dynamic segment now (a static one: nothing changes, and the result says so)."""
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.kind == Kind.STATIC:
                why = (
                    "a static list changes only by add, remove and import-csv"
                    if seg.static_type == StaticType.LIST
                    else "a static snapshot's members are fixed at publish; publish it again to re-evaluate"
                )
                return RefreshResult(seg.name, seg.size or 0, 0, 0, seg.live_version, None, f"nothing changed: {why}")
            transition(seg.name, seg.status, Action.REFRESH)
            seg_id = seg.id
        result = self._evaluate(seg_id, trigger=trigger)
        if trigger == "refresh" and (result.entered or result.exited):  # asked for by a user: readers follow now
            self.last_dependents = self._refresh_dependents(result.name)
        return result

    def stop(self, name: str | int) -> dict[str, Any]:
        """Live -> stopped; refused while live segments or active users depend on it (they are listed)."""
        with self.store.session() as s:
            seg = self._get(s, name)
            target = transition(seg.name, seg.status, Action.STOP)
            self._refuse_dependents(s, seg, "stop")
            seg.status, seg.status_reason, seg.next_refresh_at = target, "stopped", None
            self._audit(s, seg, "stop", "")
        return self.show(seg.name)

    def activate(self, name: str | int, reason: str) -> dict[str, Any]:
        """``draft``: back to draft (membership kept); ``ready``: go live (an expired segment must be set to draft first)."""
        if reason not in (Action.DRAFT, Action.READY):
            raise RejectedInput([Problem("--status-reason", f"must be draft or ready, not {reason!r}")])
        with self.store.session() as s:
            seg = self._get(s, name)
            if reason == Action.DRAFT:
                if seg.status in (Status.LIVE, Status.GOING_LIVE):
                    self._refuse_dependents(s, seg, "set to draft")
                if seg.status == Status.EXPIRED:
                    self._check_limit(s, seg.kind)
                seg.status = transition(seg.name, seg.status, Action.DRAFT)
                seg.status_reason, seg.next_refresh_at, seg.updated_at = "draft", None, clock.now()
                self._audit(s, seg, "activate", "draft")
                return self.show_in(s, seg)
            target = transition(seg.name, seg.status, Action.READY)
            if target == Status.LIVE:  # already live: nothing to do
                return self.show_in(s, seg)
            if seg.static_type == StaticType.LIST:
                seg.status, seg.status_reason = Status.LIVE, "ready"
                self._audit(s, seg, "activate", "ready")
                return self.show_in(s, seg)
            seg_name = seg.name
        self.publish(seg_name)
        return self.show(seg_name)

    # -- checks shared by the commands ------------------------------------------------------------

    def _count(self, s: Session, kind: str) -> int:
        q = (
            select(func.count())
            .select_from(Segment)
            .where(Segment.kind == kind, Segment.deleted_at.is_(None), Segment.status != Status.EXPIRED)
        )
        return int(s.scalar(q) or 0)

    def _check_limit(self, s: Session, kind: str) -> None:
        from segmenta.services import limits

        limits.check(self.config.limits, kind, self._count(s, kind))

    def _refuse_dependents(self, s: Session, seg: Segment, action: str) -> None:
        """Conflict while live segments read ``seg`` or active users (journeys...) use it; they are listed."""
        graph = reference_graph(s)
        live = set(
            s.scalars(
                select(Segment.name).where(Segment.status.in_((Status.LIVE, Status.GOING_LIVE)), Segment.deleted_at.is_(None))
            )
        )
        users = [f"segment {n}" for n in readers(graph, seg.name) if n in live]
        users += [
            f"{u.user_kind} {u.user_name}" for u in s.scalars(select(Usage).where(Usage.segment_id == seg.id, Usage.active))
        ]
        if users:
            raise Conflict([Problem(seg.name, f"cannot {action}: used by {', '.join(users)}")])

    def _active_users(self, s: Session, seg: Segment, *, kind: str | None = None) -> list[str]:
        q = select(Usage.user_name).where(Usage.segment_id == seg.id, Usage.active)
        if kind is not None:
            q = q.where(Usage.user_kind == kind)
        return sorted(set(s.scalars(q)))

    def _parse_stored(self, raw: Any) -> Definition:
        """A stored version, validated (the one a publish under way parsed, when it is that version)."""
        prepared = self._prepared
        if prepared is not None and prepared[0] == raw:
            return prepared[1]
        return parse_definition(raw, self.ws.model)

    def _compile(self, defn: Definition, *, restrict_to: exp.Query | None = None) -> exp.Select:
        """The definition's query (the one a publish under way compiled, when it is that definition).

        ``restrict_to``: a query of audience keys; the query then reads only what they reach.
        """
        from segmenta.compiler.compile import compile_definition

        prepared = self._prepared
        if prepared is not None and prepared[1] is defn and restrict_to is None:
            return prepared[2]
        return compile_definition(defn, self.ws.model, as_of=clock.now(), segments=self.source, restrict_to=restrict_to)

    def _cadence(self, s: Session, seg: Segment) -> dt.timedelta:
        """How long after a refresh ``seg`` is due again (its version in force, its users, its settings)."""
        from segmenta.services.segment_config import reads_interactions

        cfg = self.config.for_segment(seg.settings)
        raw = self._definition(s, seg, seg.live_version or seg.current_version)
        interactions = raw is not None and reads_interactions(self._parse_stored(raw), self.ws.model, cfg.interaction_tables)
        return cfg.cadence(in_use=bool(self._active_users(s, seg, kind="journey")), reads_interactions=interactions)
