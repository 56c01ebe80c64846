"""The worker: due refreshes (in dependency order) and expiry, for ``segmenta worker`` and ``serve``.

Several workers may share one store. A worker claims a due segment before refreshing it:
on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED`` then a lease, on SQLite (one
writer at a time) with a conditional UPDATE of the lease. The lease is wall-clock time and
short (``segments.worker.lease_seconds``, default 3 minutes); a heartbeat thread renews it
while the refresh runs, so a killed worker's claim lapses within minutes, and ``segment
show`` says who holds it until when. The DuckDB file is single-writer across processes, so
the worker opens the workspace per job (retrying briefly while it is locked) and never
holds it while idle; inside ``serve`` it uses the service's own workspace instead.

Every per-segment step (the expiry check, the claim, the refresh with its next-refresh
computation, the release) runs inside its own error handling: one bad segment is reported
in :attr:`PassReport.failed` and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update

from segmenta import clock
from segmenta.errors import SegmentaError
from segmenta.services.lifecycle_base import RefreshResult, open_workspace
from segmenta.services.segment_graph import dependency_order, readers, reference_graph
from segmenta.services.states import Action, Kind, Status, transition
from segmenta.settings import load_settings
from segmenta.store.database import Store, resolve_url
from segmenta.store.models import Segment, SegmentVersion, Usage

if TYPE_CHECKING:
    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.worker")

#: The lease of a worker that does not read the workspace's settings (``segments.worker.lease_seconds``).
LEASE = dt.timedelta(minutes=3)


@dataclass
class PassReport:
    """What one pass did; ``failed`` lists (segment or step, why) and makes ``worker --once`` exit 1."""

    refreshed: list[RefreshResult] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: One :class:`segmenta.services.journeys.AdvanceReport` per live journey advanced.
    journeys: list[Any] = field(default_factory=list)


def _wall() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, SegmentaError) else f"{type(exc).__name__}: {text}"


class Worker:
    """Runs due refreshes and expiry checks of one workspace's saved segments.

    ``store`` and ``segments`` (a factory of a :class:`Segments` context) let a host that already
    holds the workspace and the store, such as the REST service, run passes on them.
    """

    def __init__(
        self,
        workspace: str | Path,
        *,
        store_url: str | None = None,
        owner: str | None = None,
        engine: str | None = None,
        store: Store | None = None,
        segments: Callable[[], AbstractContextManager[Segments]] | None = None,
        lease: dt.timedelta | None = None,
    ) -> None:
        self.path = Path(workspace)
        self.engine = engine  # overrides segmenta.yaml's engine (the --engine option)
        settings = load_settings(self.path, engine=engine, store=store_url)
        self.config = settings.segments
        self.store_url = store_url
        self._own_store = store is None
        self.store = store if store is not None else Store(resolve_url(self.path, settings.config))
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.lease = lease if lease is not None else dt.timedelta(seconds=self.config.lease_seconds)
        self._segments = segments
        #: Set to end a pass early (between segments) and :meth:`run_forever`.
        self.stopping = threading.Event()
        #: Ids that :meth:`due` found due because the clock moves their membership (a window).
        self._moved: set[int] = set()
        #: Of those, the ones due for no other reason, with the clock they were last evaluated at.
        self._clock_only: dict[int, dt.datetime] = {}

    def close(self) -> None:
        if self._own_store:
            self.store.close()

    def run_once(self) -> PassReport:
        report = PassReport()
        try:
            self.touch_used()
        except Exception as exc:  # noqa: BLE001 - the pass goes on without it
            report.failed.append(("(last-used times)", _why(exc)))
        report.expired = self.expire(report)
        self._pending_changes(report)
        try:
            due = self.due()
        except Exception as exc:  # noqa: BLE001 - nothing is known to be due
            report.failed.append(("(due segments)", _why(exc)))
            return report
        for seg_id, name in due:
            if self.stopping.is_set():  # shutting down: the rest stays due for the next pass
                break
            self._one(seg_id, name, report)
        self._followers(report)
        from segmenta.services.journeys.worker_pass import advance_journeys

        advance_journeys(self, report)  # after the refreshes: journeys act on the membership they committed
        from segmenta.services.sequences import advance_sequences

        advance_sequences(self, report)  # sales sequences: started and ended by work-assignment routing
        self._send_to_destinations(report)
        return report

    def _send_to_destinations(self, report: PassReport) -> None:
        """After the refreshes: every attached segment whose membership moved goes to its destinations (a delta).

        A destination's failure is recorded in its own history and never stops the pass.
        """
        from segmenta.destinations.service import Destinations

        try:
            sent = self._with_segments(lambda segs: Destinations(segs).sync())
        except Exception as exc:  # noqa: BLE001 - retried next pass: the delta since the last good send stays
            report.failed.append(("(destinations)", _why(exc)))
            return
        for item in sent or []:
            if item.get("error"):
                report.failed.append((f"destination {item.get('destination')}", str(item["error"])))

    def _followers(self, report: PassReport) -> None:
        """Refresh the live readers (in_segment) of segments this pass changed, not refreshed in it, in dependency order.

        So a reader on a slower cadence than the segment it reads never lags it (issue 8 section 5).
        """
        changed = [r.name for r in report.refreshed if r.entered or r.exited]
        if not changed or self.stopping.is_set():
            return
        try:
            with self.store.session() as s:
                graph = reference_graph(s)
                live = dict(
                    s.execute(
                        select(Segment.name, Segment.id).where(
                            Segment.status == Status.LIVE, Segment.kind == Kind.DYNAMIC, Segment.deleted_at.is_(None)
                        )
                    ).all()
                )
        except Exception as exc:  # noqa: BLE001 - they are refreshed when they are due
            report.failed.append(("(readers of changed segments)", _why(exc)))
            return
        done = {r.name for r in report.refreshed} | {n for n, _ in report.failed}
        todo: set[str] = set()
        frontier = list(changed)
        while frontier:
            for r in readers(graph, frontier.pop()):
                if r in live and r not in todo and r not in done:
                    todo.add(r)
                    frontier.append(r)
        for name in dependency_order(todo, graph):
            if self.stopping.is_set():
                break
            self._one(live[name], name, report, due=False)

    def run_forever(self, interval: float | None = None) -> None:
        """Passes every ``interval`` seconds (default: the setting) until :attr:`stopping` is set."""
        wait = float(interval if interval is not None else self.config.interval_seconds)
        while not self.stopping.is_set():
            try:
                report = self.run_once()
            except Exception:  # noqa: BLE001 - a scheduler outlives one bad pass (the store was unreachable...)
                log.exception("segmenta scheduler: the worker pass failed")
            else:
                for name, why in report.failed:
                    log.warning("segmenta scheduler: %s: %s", name, why)
            self.stopping.wait(wait)

    def _one(self, seg_id: int, name: str, report: PassReport, *, due: bool = True) -> None:
        """Claim, refresh and release one segment (due, or a reader following); any failure is this segment's alone."""
        try:
            if not self.claim(seg_id, due=due):
                report.skipped.append(name)
                return
        except Exception as exc:  # noqa: BLE001
            report.failed.append((name, f"could not claim it: {_why(exc)}"))
            return
        try:
            with self._heartbeat(seg_id):
                report.refreshed.append(self._refresh(seg_id, trigger="worker" if due else "dependency"))
        except SegmentaError as exc:
            report.failed.append((name, _why(exc)))
            self._mark_error(seg_id, exc)
        except Exception as exc:  # noqa: BLE001 - e.g. the DuckDB file stayed locked: transient, retried next pass
            report.failed.append((name, _why(exc)))
        finally:
            try:
                self.release(seg_id)
            except Exception as exc:  # noqa: BLE001 - the lease lapses by itself
                report.failed.append((name, f"could not release its lease: {_why(exc)}"))

    # -- steps --------------------------------------------------------------------------

    def touch_used(self) -> None:
        """A segment with an active user is in use now."""
        with self.store.session() as s:
            used = select(Usage.segment_id).where(Usage.active)
            s.execute(update(Segment).where(Segment.id.in_(used)).values(last_used_at=clock.now()))

    def expire(self, report: PassReport | None = None) -> list[str]:
        """Mark live dynamic segments unused for their expiry period ``expired`` (no data is dropped)."""
        with self.store.session() as s:
            graph = reference_graph(s)
            live = set(s.scalars(select(Segment.name).where(Segment.status == Status.LIVE, Segment.deleted_at.is_(None))))
            used = set(s.scalars(select(Usage.segment_id).where(Usage.active)))
            candidates = s.execute(
                select(Segment.id, Segment.name).where(
                    Segment.status == Status.LIVE, Segment.kind == Kind.DYNAMIC, Segment.deleted_at.is_(None)
                )
            ).all()
        done: list[str] = []
        for seg_id, name in candidates:
            if seg_id in used or any(r in live for r in readers(graph, name)):
                continue
            try:
                if self._expire_one(seg_id):
                    done.append(name)
            except Exception as exc:  # noqa: BLE001 - one bad segment never stops the others
                if report is not None:
                    report.failed.append((name, f"expiry check: {_why(exc)}"))
        return done

    def _expire_one(self, seg_id: int) -> bool:
        now = clock.now()
        with self.store.session() as s:
            q = select(Segment).where(Segment.id == seg_id, Segment.status == Status.LIVE)
            seg = s.scalar(q.with_for_update(skip_locked=True) if self.store.postgres else q)
            if seg is None:
                return False
            last = max(t for t in (seg.last_used_at, seg.published_at, seg.created_at) if t is not None)
            days = self.config.for_segment(seg.settings).expiry_days
            if now < last + dt.timedelta(days=days):
                return False
            seg.status = transition(seg.name, seg.status, Action.EXPIRE)
            seg.status_reason = f"unused for {days} days (last used {last.isoformat()})"
            seg.next_refresh_at = None
            return True

    def due(self) -> list[tuple[int, str]]:
        """(id, name) of the segments due for a refresh, readers after the segments they read.

        Due are those whose ``next_refresh_at`` has passed, and those whose membership the clock
        moves (contract 5.2): a live dynamic segment reading a relative window (``in_last``,
        ``not_in_last``, ``in_next``; directly, in a related block's or a measure's ``where``, or
        through ``in_segment`` of such a segment) evaluated before the pass's clock.
        """
        with self.store.session() as s:
            graph = reference_graph(s)
            rows: list[tuple[int, str]] = [
                (i, n) for i, n in s.execute(select(Segment.id, Segment.name).where(self._due_clause())).all()
            ]
            moved = self._clock_moved(s, graph)
            scheduled = {n for _, n in rows}
            rows += [(i, n) for i, n, _ in moved if n not in scheduled]
            # due only because the clock moved: written incrementally, for the records crossing a window's edge
            self._clock_only = {i: at for i, n, at in moved if n not in scheduled and at is not None}
            order = dependency_order([n for _, n in rows], graph)
        ids = {n: i for i, n in rows}
        self._moved = {i for i, _, _ in moved}
        return [(ids[n], n) for n in order]

    def _clock_moved(self, s: Any, graph: dict[str, set[str]]) -> list[tuple[int, str, dt.datetime | None]]:
        """(id, name, last evaluated) of the free live dynamic segments that read a relative window, last evaluated before now."""
        now = clock.now()
        candidates = s.execute(select(Segment.id, Segment.name, Segment.last_refresh_at).where(self._free_clause())).all()
        if not candidates:
            return []
        in_force = s.execute(  # only the versions in force: a refresh evaluates those
            select(SegmentVersion.segment_id, SegmentVersion.definition)
            .join(Segment, SegmentVersion.segment_id == Segment.id)
            .where(SegmentVersion.version == Segment.current_version, Segment.id.in_([c.id for c in candidates]))
        ).all()
        definitions = dict(in_force)
        measures = self._measure_filters()
        windowed = {c.name for c in candidates if _reads_window(definitions.get(c.id), measures)}
        frontier = list(windowed)
        while frontier:  # readers of a windowed segment move with it
            for r in readers(graph, frontier.pop()):
                if r not in windowed:
                    windowed.add(r)
                    frontier.append(r)
        return [
            (c.id, c.name, c.last_refresh_at)
            for c in candidates
            if c.name in windowed and (c.last_refresh_at is None or c.last_refresh_at < now)
        ]

    def _measure_filters(self) -> dict[str, Any]:
        """Each model measure's raw ``where`` (empty when the model cannot be read: only direct windows count)."""
        from segmenta.model.schema import Model
        from segmenta.workspace import MODEL_FILE

        try:
            model = Model.from_file(self.path / MODEL_FILE)
        except Exception as exc:  # noqa: BLE001 - the refresh itself reports a broken model
            log.warning("could not read the model for window measures: %s", exc)
            return {}
        return {name: m.where for name, m in model.measures.items()}

    def _due_clause(self, seg_id: int | None = None) -> Any:
        due = Segment.next_refresh_at <= clock.now()
        if seg_id is not None and seg_id in self._moved:  # the clock moves its membership: due once evaluated before now
            due = or_(due, Segment.last_refresh_at.is_(None), Segment.last_refresh_at < clock.now())
        return and_(self._free_clause(), due)

    def _free_clause(self) -> Any:
        """Live, dynamic, not deleted and not leased: may be refreshed now (due or not)."""
        return and_(
            Segment.status == Status.LIVE,
            Segment.kind == Kind.DYNAMIC,
            Segment.deleted_at.is_(None),
            or_(Segment.lease_until.is_(None), Segment.lease_until < _wall()),
        )

    def claim(self, seg_id: int, *, due: bool = True) -> bool:
        """Take the lease on a still-due (or, ``due=False``, any free live) segment; False if another worker has it."""
        lease = {"lease_until": _wall() + self.lease, "lease_owner": self.owner}
        clause = self._due_clause(seg_id) if due else self._free_clause()
        with self.store.session() as s:
            if self.store.postgres:
                got = s.scalar(select(Segment.id).where(Segment.id == seg_id, clause).with_for_update(skip_locked=True))
                if got is None:
                    return False
                s.execute(update(Segment).where(Segment.id == seg_id).values(**lease))
                return True
            result = s.execute(update(Segment).where(Segment.id == seg_id, clause).values(**lease))
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def renew(self, seg_id: int) -> bool:
        """Extend this worker's lease on ``seg_id`` by one lease from now; False if it is no longer ours."""
        with self.store.session() as s:
            result = s.execute(
                update(Segment)
                .where(Segment.id == seg_id, Segment.lease_owner == self.owner)
                .values(lease_until=_wall() + self.lease)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release(self, seg_id: int) -> None:
        with self.store.session() as s:
            s.execute(
                update(Segment)
                .where(Segment.id == seg_id, Segment.lease_owner == self.owner)
                .values(lease_until=None, lease_owner=None)
            )

    @contextmanager
    def _heartbeat(self, seg_id: int) -> Iterator[None]:
        """Renew the lease every third of it while the body runs (a refresh may outlast one lease)."""
        stop = threading.Event()
        period = max(self.lease.total_seconds() / 3, 0.1)

        def beat() -> None:
            while not stop.wait(period):
                try:
                    self.renew(seg_id)
                except Exception:  # noqa: BLE001, S112 - a missed beat is retried; the lease is long enough for two
                    continue

        thread = threading.Thread(target=beat, name=f"segmenta-lease-{seg_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _pending_changes(self, report: PassReport) -> None:
        """Write the membership of record changes a crashed process left pending (each segment's failure its own)."""
        from segmenta.services.incremental import apply_pending

        def step(segs: Segments) -> None:
            _written, failed = apply_pending(segs)
            report.failed += [(n, f"record change not written: {why}") for n, why in failed]

        try:
            self._with_segments(step)
        except Exception as exc:  # noqa: BLE001 - retried next pass; the segments are due meanwhile
            report.failed.append(("(pending record changes)", _why(exc)))

    def _with_segments(self, fn: Callable[[Segments], Any]) -> Any:
        if self._segments is not None:
            with self._segments() as segs:
                return fn(segs)
        from segmenta.services.segments import Segments

        ws = open_workspace(self.path, engine=self.engine)
        try:
            return fn(Segments(ws, self.store))
        finally:
            ws.close()

    def _refresh(self, seg_id: int, *, trigger: str = "worker") -> RefreshResult:
        """A full refresh, or, for a segment due only because the clock moved, the incremental clock move."""
        from segmenta.services.incremental import clock_move

        before = self._clock_only.pop(seg_id, None) if trigger == "worker" else None

        def step(segs: Segments) -> RefreshResult:
            if before is not None:
                return clock_move(segs, seg_id, before=before)
            return segs.refresh(seg_id, trigger=trigger)

        result: RefreshResult = self._with_segments(step)
        return result

    def _mark_error(self, seg_id: int, exc: Exception) -> None:
        try:
            with self.store.session() as s:
                seg = s.get(Segment, seg_id)
                if seg is not None and seg.status == Status.LIVE:
                    seg.status = transition(seg.name, seg.status, Action.FAIL)
                    seg.status_reason, seg.next_refresh_at = str(exc).splitlines()[0][:500], None
        except Exception:  # noqa: BLE001, S110 - already reported in the pass; the status is best effort
            pass


#: The operators whose answer depends on the clock (contract: relative windows).
WINDOW_OPS = frozenset({"in_last", "not_in_last", "in_next"})


def _reads_window(raw: Any, measures: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    """Whether raw definition data (or a condition of it) uses a relative window, measures' ``where`` included."""
    if isinstance(raw, dict):
        if raw.get("op") in WINDOW_OPS:
            return True
        name = raw.get("measure")
        if isinstance(name, str) and name not in seen and _reads_window(measures.get(name), measures, seen | {name}):
            return True
        return any(_reads_window(v, measures, seen) for v in raw.values() if isinstance(v, (dict, list)))
    if isinstance(raw, list):
        return any(_reads_window(v, measures, seen) for v in raw)
    return False


class Scheduler:
    """Worker passes on a background thread every ``interval`` seconds (``segmenta serve``), until :meth:`stop`."""

    def __init__(self, worker: Worker, interval: float | None = None) -> None:
        self.worker = worker
        self.interval = interval
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.worker.run_forever, args=(self.interval,), name="segmenta-scheduler")
        self._thread.daemon = True  # never keeps a dying process alive; stop() is the clean way out
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the segment being refreshed (no new one starts), then end the thread."""
        self.worker.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.worker.close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()
