"""The shared core of :class:`segmenta.services.segments.Segments`: lookup, evaluation into the
stored membership, list changes, the ``in_segment`` source and the audit trail."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from segmenta import clock
from segmenta.errors import DefinitionError, NotFound, Problem, RejectedInput
from segmenta.membership import Changes, MembershipStore, membership_for
from segmenta.membership.owners import RunOwner, owner_alive, sweep
from segmenta.model.schema import ColumnType, hint
from segmenta.model.validate import parse_definition
from segmenta.services import events
from segmenta.services.segment_config import SegmentConfig
from segmenta.services.segment_views import SegmentViews
from segmenta.services.states import Action, Kind, Status, can, transition
from segmenta.settings import load_settings
from segmenta.store.database import Store
from segmenta.store.models import AuditEntry, RefreshRun, Segment, SegmentVersion
from segmenta.workspace import Workspace

log = logging.getLogger("segmenta.lifecycle")


@dataclass(frozen=True)
class RefreshResult:
    """What one evaluation or membership change did (``note`` explains a no-op)."""

    name: str
    size: int
    entered: int
    exited: int
    version: int | None
    run_id: int | None
    note: str = ""


def open_workspace(path: str | Path | None, *, wait: float | None = None, engine: str | None = None) -> Workspace:
    """Open a workspace (``engine`` overrides segmenta.yaml), retrying while another process holds the DuckDB file.

    ``wait`` defaults to the setting ``lock_wait`` (``$SEGMENTA_LOCK_WAIT``, 30 s).
    """
    settings = load_settings(path, engine=engine)
    deadline = time.monotonic() + (wait if wait is not None else settings.lock_wait)
    delay = 0.05
    while True:
        try:
            return Workspace.open(settings=settings)
        except Exception as exc:  # duckdb.IOException: Could not set lock on file
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class SegmentsBase(SegmentViews):
    """A workspace (model + engine) and its metadata store."""

    def __init__(self, ws: Workspace, store: Store) -> None:
        self.ws = ws
        self.store = store
        self.config = SegmentConfig.from_workspace(ws.config)
        ws.segment_source = self.source
        try:
            self.reconcile()  # a crash may have left the store behind the membership: one truth first
        except Exception as exc:  # noqa: BLE001 - opening must not fail on it; the next open tries again
            log.warning("could not reconcile refresh runs: %s", exc)

    # -- lookup -------------------------------------------------------------------------

    def _get(self, s: Session, name: str) -> Segment:
        seg = s.scalar(select(Segment).where(Segment.name == name, Segment.deleted_at.is_(None)))
        if seg is None:
            names = s.scalars(select(Segment.name).where(Segment.deleted_at.is_(None))).all()
            raise NotFound([Problem(name, f"no saved segment has this name{hint(name, names)}")])
        return seg

    def _snapshot_of(self, name: str) -> Segment:
        """The segment row, detached (readable after the session)."""
        with self.store.session() as s:
            return self._get(s, name)

    def _snapshot(self, seg: Segment) -> Segment:
        return seg

    def _definition(self, s: Session, seg: Segment, version: int) -> dict[str, Any] | None:
        row = s.scalar(select(SegmentVersion).where(SegmentVersion.segment_id == seg.id, SegmentVersion.version == version))
        if row is None:
            raise NotFound([Problem(seg.name, f"has no version {version} (versions 1..{seg.current_version})")])
        return row.definition

    def _parse_stored(self, raw: Any) -> Any:
        """A stored version validated against the current model (Segments reuses what a publish under way parsed)."""
        return parse_definition(raw, self.ws.model)

    def membership(self, seg: Segment) -> MembershipStore:
        table = self.ws.model.table(seg.audience)
        return membership_for(self.ws.engine, seg.id, table.key, table.column(table.key).type)

    def _audit(self, s: Session, seg: Segment | None, action: str, detail: str) -> None:
        s.add(AuditEntry(at=clock.now(), segment_id=seg.id if seg else None, action=action, detail=detail))

    def source(self, name: str, table: str) -> exp.Query:
        """Resolves ``in_segment``: the stored members of a LIVE segment of audience ``table``."""
        with self.store.session() as s:
            seg = s.scalar(select(Segment).where(Segment.name == name, Segment.deleted_at.is_(None)))
            names = s.scalars(select(Segment.name).where(Segment.deleted_at.is_(None))).all()
        where = f"in_segment {name!r}"
        if seg is None:
            raise DefinitionError([Problem(where, f"no saved segment has this name{hint(name, names)}")])
        if seg.status != Status.LIVE:
            raise DefinitionError([Problem(where, f"is {seg.status}; in_segment reads only live segments (publish it first)")])
        if seg.audience != table:
            raise DefinitionError([Problem(where, f"is a segment of {seg.audience!r}, not {table!r}")])
        return self.membership(seg).source()

    def parse_keys(self, audience: str, raw: list[str]) -> list[Any]:
        """Record keys typed like the audience's key column (exit 2 naming a bad one)."""
        table = self.ws.model.table(audience)
        if table.column(table.key).type is not ColumnType.INTEGER:
            return [str(k) for k in raw]
        bad = [k for k in raw if not str(k).strip().lstrip("-").isdigit()]
        if bad:
            raise RejectedInput([Problem(k, f"is not a {audience} key ({table.key} is an integer)") for k in bad])
        return [int(k) for k in raw]

    # -- evaluation -------------------------------------------------------------------------

    def _evaluate(
        self,
        seg_id: int,
        *,
        trigger: str,
        version: int | None = None,
        keep_status: bool = False,
        cause: Mapping[str, Any] | None = None,
        within: exp.Query | None = None,
    ) -> RefreshResult:
        """Evaluate ``version`` (default: the current one) into the stored membership; status live (or error, then raise).

        ``version`` becomes the version in force only when its evaluation commits (a publish of a
        draft); a failure leaves the version in force, its members and the draft as they were.
        ``keep_status``: a failure records the run as error but leaves the segment's status (a live
        segment whose new version failed stays live with its old one). ``cause``: what the
        membership events say caused them (default: the trigger). ``within``: evaluate and write
        only for these keys (a record change); the other members stay as they are.
        """
        with self.store.session() as s:
            seg = s.get(Segment, seg_id)
            assert seg is not None
            version = seg.current_version if version is None else version
            raw = self._definition(s, seg, version)
        defn = self._parse_stored(raw)
        query = self._compile(defn, restrict_to=within)  # type: ignore[attr-defined]
        at = clock.now()
        with RunOwner(self.ws.path) as owner:
            run_id = self._start_run(seg, version, trigger, at, owner=owner)
            m = self.membership(seg)
            watched = events.last_offset(self) if events.has_subscribers(self) else None  # type: ignore[arg-type]
            next_at: dt.datetime | None = None
            try:
                # Everything that can fail runs before the membership commit, so a failure changes nothing.
                if within is None:  # a write for some keys leaves the schedule as it is
                    next_at = self._next_refresh_at(seg_id, version, at)
                changes: Changes | None = m.replace(
                    query,
                    run_id=run_id,
                    at=at,
                    version=version,
                    before_commit=self.ws.settings.hooks.before_refresh_commit,  # plugins (tests' kill points)
                    cause=cause or {"kind": trigger},
                    within=within.copy() if within is not None else None,
                )
            except Exception as exc:
                changes = self._committed_anyway(m, run_id, exc)
                if changes is None:
                    self._fail_run(seg_id, run_id, exc, keep_status=keep_status)
                    raise
            assert changes is not None
            with self.store.session() as s:
                seg = s.get(Segment, seg_id)
                assert seg is not None
                # kept even when it moved nobody: a deleted run's id would be handed out again (SQLite),
                # and events name their run; `segment history` leaves such runs out
                self._finish_run(s, run_id, changes.size, changes.entered, changes.exited)
                _promote(seg, version)
                if can(seg.status, Action.EVALUATED):  # stopped or set to draft meanwhile: that choice stands
                    seg.status, seg.status_reason = transition(seg.name, seg.status, Action.EVALUATED), "ready"
                seg.size, seg.live_version = changes.size, version
                if within is None:  # a write for some keys is no refresh: the schedule stands
                    seg.last_refresh_at, seg.next_refresh_at = at, next_at
        if watched is not None and (changes.entered or changes.exited):
            events.notify(self, seg_id, run_id, watched)  # type: ignore[arg-type]
        return RefreshResult(seg.name, changes.size, changes.entered, changes.exited, version, run_id)

    def _next_refresh_at(self, seg_id: int, version: int, at: dt.datetime) -> dt.datetime | None:
        """When a dynamic segment evaluated at ``at`` with ``version`` is next due (None: static).

        Computed before the membership is committed (the cadence reads the definition and the
        settings, either of which can be out of range), inside a store transaction that is rolled back.
        """
        with self.store.session() as s:
            seg = s.get(Segment, seg_id)
            assert seg is not None
            if seg.kind != Kind.DYNAMIC:
                return None
            seg.live_version = version  # the cadence of the version about to go live
            try:
                return at + self._cadence(s, seg)  # type: ignore[attr-defined,no-any-return]
            except OverflowError as exc:
                minutes = self.config.for_segment(seg.settings).refresh_minutes
                raise RejectedInput(
                    [
                        Problem(
                            "refresh_minutes",
                            f"{minutes} minutes after {at.isoformat()} is past the last date a calendar holds "
                            "(9999-12-31); set a smaller refresh_minutes (segment configure)",
                        )
                    ]
                ) from exc
            except RecursionError as exc:
                raise RejectedInput(
                    [Problem("/groups", f"version {version} is nested too deeply to schedule; flatten its all/any trees")]
                ) from exc
            finally:
                s.rollback()

    def change_members(self, seg: Segment, keys: exp.Query, action: str) -> RefreshResult:
        """Add (``add``/``import``) or remove (``remove``) keys of a static list, with history."""
        at = clock.now()
        with RunOwner(self.ws.path) as owner:
            run_id = self._start_run(seg, None, action, at, owner=owner)
            m = self.membership(seg)
            watched = events.last_offset(self) if events.has_subscribers(self) else None  # type: ignore[arg-type]
            try:
                write = m.remove if action == "remove" else m.add
                changes: Changes | None = write(keys, run_id=run_id, at=at, version=None, cause={"kind": action})
            except Exception as exc:
                changes = self._committed_anyway(m, run_id, exc)
                if changes is None:
                    self._fail_run(seg.id, run_id, exc, keep_status=True)
                    raise
            assert changes is not None
            with self.store.session() as s:
                row = s.get(Segment, seg.id)
                assert row is not None
                self._finish_run(s, run_id, changes.size, changes.entered, changes.exited)
                row.size, row.last_refresh_at, row.updated_at = changes.size, at, at
        if watched is not None and (changes.entered or changes.exited):
            events.notify(self, seg.id, run_id, watched)  # type: ignore[arg-type]
        return RefreshResult(seg.name, changes.size, changes.entered, changes.exited, None, run_id)

    def _committed_anyway(self, m: MembershipStore, run_id: int, exc: Exception) -> Changes | None:
        """The changes of a run whose write raised *after* its commit (the membership is the truth), else None."""
        try:
            record = m.committed(run_id)
        except Exception:  # noqa: BLE001 - the engine is failing; the original error is the one to report
            return None
        if record is None:
            return None
        log.warning("run %d committed its membership, then failed: %s", run_id, exc)
        return Changes(record.entered, record.exited, record.size)

    def _start_run(self, seg: Segment, version: int | None, trigger: str, at: Any, *, owner: RunOwner | None = None) -> int:
        with self.store.session() as s:
            run = RefreshRun(
                segment_id=seg.id,
                version=version,
                trigger=trigger,
                started_at=at,
                status="running",
                message=owner.message if owner else None,
            )
            s.add(run)
            s.flush()
            return run.id

    def _finish_run(self, s: Session, run_id: int, size: int, entered: int, exited: int) -> None:
        run = s.get(RefreshRun, run_id)
        assert run is not None
        run.status, run.finished_at, run.size, run.entered, run.exited = "done", clock.now(), size, entered, exited
        run.message = None

    def _fail_run(self, seg_id: int, run_id: int, exc: Exception, *, keep_status: bool = False) -> None:
        message = (str(exc).splitlines() or [type(exc).__name__])[0][:500]
        with self.store.session() as s:
            run = s.get(RefreshRun, run_id)
            seg = s.get(Segment, seg_id)
            assert run is not None and seg is not None
            run.status, run.finished_at, run.message = "error", clock.now(), message
            if not keep_status and can(seg.status, Action.FAIL):
                seg.status, seg.status_reason = transition(seg.name, seg.status, Action.FAIL), message
            self._audit(s, seg, "error", message)

    # -- one truth after a crash -------------------------------------------------------------

    def reconcile(self) -> list[int]:
        """Finish the runs whose process died: from the membership's record if it committed, else as interrupted.

        Runs on every open. A ``running`` run whose owner still holds its lock is left alone.
        Returns the ids of the runs it finished.
        """
        with self.store.session() as s:
            running = s.execute(
                select(RefreshRun.id, RefreshRun.segment_id, RefreshRun.message).where(RefreshRun.status == "running")
            ).all()
        finished: list[int] = []
        for run_id, seg_id, message in running:
            if owner_alive(self.ws.path, message):
                continue
            try:
                if self._reconcile_run(run_id, seg_id):
                    finished.append(run_id)
            except Exception as exc:  # noqa: BLE001 - one segment's trouble must not stop the others or the open
                log.warning("could not reconcile run %d of segment %d: %s", run_id, seg_id, exc)
        sweep(self.ws.path)
        return finished

    def _reconcile_run(self, run_id: int, seg_id: int) -> bool:
        with self.store.session() as s:
            seg, run = s.get(Segment, seg_id), s.get(RefreshRun, run_id)
            if seg is None or run is None or run.status != "running":
                return False
            m = self.membership(seg)
            record, latest = m.committed(run_id), m.latest()
            now = clock.now()
            if record is None:
                run.status, run.finished_at = "error", now
                run.message = "interrupted: the process ended before the membership was committed; the previous membership stands"
                if seg.status == Status.GOING_LIVE:  # a publish cut short: it did not go live
                    seg.status, seg.status_reason = transition(seg.name, seg.status, Action.FAIL), run.message
                self._audit(s, seg, "error", f"refresh {run_id} {run.message}")
                return True
            run.status, run.finished_at, run.message = "done", now, None
            run.size, run.entered, run.exited = record.size, record.entered, record.exited
            if latest is not None and latest.run_id == run_id:  # the current members come from this run
                seg.size, seg.last_refresh_at = record.size, record.at
                if run.version is None:
                    seg.updated_at = record.at
                else:
                    seg.live_version = record.version
                    _promote(seg, record.version)
                    if seg.status == Status.GOING_LIVE:
                        seg.status, seg.status_reason = transition(seg.name, seg.status, Action.EVALUATED), "ready"
                    if seg.status == Status.LIVE and seg.kind == Kind.DYNAMIC:
                        try:
                            seg.next_refresh_at = record.at + self._cadence(s, seg)  # type: ignore[attr-defined]
                        except Exception:  # noqa: BLE001 - due now: the next pass computes it again
                            seg.next_refresh_at = record.at
            self._audit(s, seg, "reconcile", f"refresh {run_id} had committed {record.size} members")
            return True


def _promote(seg: Segment, version: int | None) -> None:
    """``version`` committed its membership: it is the version in force, and no older draft is pending."""
    if version is None:
        return
    if version > seg.current_version:
        seg.current_version = version
    if seg.draft_version is not None and seg.draft_version <= version:
        seg.draft_version = None
