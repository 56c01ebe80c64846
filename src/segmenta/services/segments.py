"""Saved segments: versioned definitions with a lifecycle (contract section 5.1).

Statuses: ``draft`` -> (publish) ``going_live`` -> ``live``; ``stopped``; ``expired``
(unused, read-only, not evaluated); ``error`` (an evaluation failed). Metadata lives in
the SQLAlchemy store; membership and history in the data engine
(:mod:`segmenta.services.membership_store`).

Example::

    with Segments.open("crm") as segs:
        segs.create("gold.json", name="Gold")
        segs.publish("Gold")
        print(segs.show("Gold")["size"])
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlglot import exp

from segmenta import clock
from segmenta.errors import DefinitionError, NotFound, Problem, RejectedInput
from segmenta.model.definition import Definition
from segmenta.model.validate import parse_definition
from segmenta.services import limits
from segmenta.services.lifecycle_base import RefreshResult, SegmentsBase, open_workspace
from segmenta.services.segment_config import check_segment_settings
from segmenta.services.segment_graph import find_cycle, readers, reference_graph
from segmenta.store.database import Store, resolve_url
from segmenta.store.models import Segment, SegmentVersion, Usage

__all__ = ["RefreshResult", "Segments"]


class Segments(SegmentsBase):
    """Use cases on saved segments; every method takes and names segments by name."""

    @classmethod
    @contextmanager
    def open(
        cls, workspace: str | Path | None = None, *, store_url: str | None = None, engine: str | None = None
    ) -> Iterator[Segments]:
        """Open a workspace (``engine`` overrides segmenta.yaml) and its store (DuckDB locked: retried briefly)."""
        ws = open_workspace(workspace, engine=engine)
        try:
            store = Store(resolve_url(ws.path, ws.config, store_url))
        except BaseException:
            ws.close()
            raise
        try:
            yield cls(ws, store)
        finally:
            store.close()
            ws.close()

    # -- creating and editing ----------------------------------------------------------

    def create(self, source: Any, *, name: str | None = None, snapshot: bool = False) -> dict[str, Any]:
        """Save a definition as a new Draft segment (``snapshot``: a static snapshot, else dynamic)."""
        raw, defn = self._parse(source)
        chosen = (name or defn.name or "").strip()
        if not chosen:
            raise RejectedInput([Problem("--name", 'the segment needs a name: give --name or a "name" in the definition')])
        kind = "static" if snapshot else "dynamic"
        now = clock.now()
        with self.store.session() as s:
            self._check_new_name(s, chosen)
            self._check_cycle(s, chosen, raw)
            limits.check(self.config.limits, kind, self._count(s, kind))
            seg = Segment(
                name=chosen,
                audience=defn.audience,
                kind=kind,
                static_type="snapshot" if snapshot else None,
                status="draft",
                status_reason="draft",
                current_version=1,
                created_at=now,
                updated_at=now,
            )
            s.add(seg)
            s.flush()
            s.add(SegmentVersion(segment_id=seg.id, version=1, definition=raw, created_at=now))
            self._audit(s, seg, "create", f"{kind} on {defn.audience}")
        return self.show(chosen)

    def create_list(self, *, audience: str, name: str) -> dict[str, Any]:
        """An empty static list, live at once (nothing to evaluate; members come by add/remove/import-csv)."""
        if audience not in self.ws.model.tables:
            from segmenta.model.schema import hint

            raise NotFound([Problem("--audience", f"unknown table {audience!r}{hint(audience, self.ws.model.tables)}")])
        if not name or not name.strip():
            raise RejectedInput([Problem("--name", "a list needs a name")])
        now = clock.now()
        with self.store.session() as s:
            self._check_new_name(s, name.strip())
            limits.check(self.config.limits, "static", self._count(s, "static"))
            seg = Segment(
                name=name.strip(),
                audience=audience,
                kind="static",
                static_type="list",
                status="live",
                status_reason="ready",
                current_version=1,
                size=0,
                created_at=now,
                updated_at=now,
                published_at=now,
                last_used_at=now,
            )
            s.add(seg)
            s.flush()
            s.add(SegmentVersion(segment_id=seg.id, version=1, definition=None, created_at=now))
            self._audit(s, seg, "create", f"static list on {audience}")
        self.membership(self._snapshot_of(name.strip())).ensure()
        return self.show(name.strip())

    def edit(self, name: str, source: Any) -> dict[str, Any]:
        """Save a new version; a live dynamic segment is re-evaluated with it right away."""
        raw, defn = self._parse(source)
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.static_type == "list":
                raise RejectedInput(
                    [Problem(name, "is a static list without a definition; change it with add, remove or import-csv")]
                )
            if seg.status == "expired":
                raise RejectedInput(
                    [
                        Problem(
                            name, "is expired and read-only; set it to draft first (segment activate NAME --status-reason draft)"
                        )
                    ]
                )
            if defn.audience != seg.audience:
                raise RejectedInput(
                    [
                        Problem(
                            "/audience",
                            f"{name!r} is a segment of {seg.audience!r}; its audience cannot change to {defn.audience!r}",
                        )
                    ]
                )
            journeys = self._active_users(s, seg, kind="journey")
            if seg.status == "live" and journeys:
                raise RejectedInput(
                    [Problem(name, f"is used by live journey(s) {', '.join(journeys)}; stop them before editing")]
                )
            self._check_cycle(s, seg.name, raw)
            live_dynamic = seg.status == "live" and seg.kind == "dynamic"
            audience = seg.audience
        if live_dynamic:  # validate references and compile before anything is saved
            self._compile(defn)
        with self.store.session() as s:
            seg = self._get(s, name)
            seg.current_version += 1
            seg.updated_at = clock.now()
            s.add(SegmentVersion(segment_id=seg.id, version=seg.current_version, definition=raw, created_at=clock.now()))
            self._audit(s, seg, "edit", f"version {seg.current_version} ({audience})")
            seg_id = seg.id
        if live_dynamic:
            self._evaluate(seg_id, trigger="edit")
        return self.show(name)

    def rename(self, name: str, new_name: str) -> dict[str, Any]:
        new_name = new_name.strip()
        with self.store.session() as s:
            seg = self._get(s, name)
            self._check_new_name(s, new_name)
            used_by = readers(reference_graph(s), seg.name)
            if used_by:
                raise RejectedInput(
                    [Problem(name, f"is read by in_segment in {', '.join(used_by)}; change them first, then rename")]
                )
            seg.name = new_name
            seg.updated_at = clock.now()
            self._audit(s, seg, "rename", f"{name} -> {new_name}")
        return self.show(new_name)

    def delete(self, name: str) -> None:
        """Soft delete (restorable); refused while other segments or active users depend on it."""
        with self.store.session() as s:
            seg = self._get(s, name)
            self._refuse_dependents(s, seg, "delete")
            seg.deleted_at = clock.now()
            if seg.status in ("live", "going_live"):
                seg.status, seg.status_reason = "stopped", "deleted"
            seg.next_refresh_at = None
            self._audit(s, seg, "delete", "")

    def restore(self, name: str) -> dict[str, Any]:
        with self.store.session() as s:
            seg = s.scalar(select(Segment).where(Segment.name == name))
            if seg is None or seg.deleted_at is None:
                raise NotFound([Problem(name, "is not a deleted segment")])
            if seg.status != "expired":
                limits.check(self.config.limits, seg.kind, self._count(s, seg.kind))
            seg.deleted_at = None
            seg.updated_at = clock.now()
            self._audit(s, seg, "restore", "")
        return self.show(name)

    def configure(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """Set a segment's own refresh/expiry settings (None removes an override)."""
        checked = check_segment_settings(settings)
        with self.store.session() as s:
            seg = self._get(s, name)
            merged = {
                k: v for k, v in {**(seg.settings or {}), **checked}.items() if k in checked or settings.get(k, 0) is not None
            }
            seg.settings = merged or None
            self._audit(s, seg, "configure", repr(merged))
            if seg.status == "live" and seg.kind == "dynamic" and seg.last_refresh_at is not None:
                seg.next_refresh_at = seg.last_refresh_at + self._cadence(s, seg)
        return self.show(name)

    # -- status ---------------------------------------------------------------------------

    def publish(self, name: str) -> RefreshResult:
        """Draft (or stopped/error/live) -> going_live -> live, evaluating the current version."""
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.static_type == "list":
                return RefreshResult(
                    seg.name,
                    seg.size or 0,
                    0,
                    0,
                    seg.current_version,
                    None,
                    "a static list is live from creation; nothing to publish",
                )
            if seg.status == "expired":
                raise RejectedInput(
                    [Problem(name, "is expired; set it to draft first (segment activate NAME --status-reason draft), then ready")]
                )
            seg_id, raw = seg.id, self._definition(s, seg, seg.current_version)
        self._compile(parse_definition(raw, self.ws.model))  # validate against the current model and live references
        with self.store.session() as s:
            row = s.get(Segment, seg_id)
            assert row is not None
            seg = row
            if seg.status != "live":
                seg.status, seg.status_reason = "going_live", "publishing"
            seg.published_at = seg.last_used_at = clock.now()
            self._audit(s, seg, "publish", f"version {seg.current_version}")
        return self._evaluate(seg_id, trigger="publish")

    def refresh(self, name: str, *, trigger: str = "refresh") -> RefreshResult:
        """Re-evaluate a live dynamic segment now (a static one: nothing changes, and the result says so)."""
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.kind == "static":
                why = (
                    "a static list changes only by add, remove and import-csv"
                    if seg.static_type == "list"
                    else ("a static snapshot's members are fixed at publish; publish it again to re-evaluate")
                )
                return RefreshResult(seg.name, seg.size or 0, 0, 0, seg.live_version, None, f"nothing changed: {why}")
            if seg.status == "expired":
                raise RejectedInput(
                    [Problem(name, "is expired and not evaluated; set it to draft, then ready, to bring it back")]
                )
            if seg.status != "live":
                raise RejectedInput([Problem(name, f"is {seg.status}; only live segments are refreshed (publish it first)")])
            seg_id = seg.id
        return self._evaluate(seg_id, trigger=trigger)

    def stop(self, name: str) -> dict[str, Any]:
        """Live -> stopped; refused while live segments or active users depend on it (they are listed)."""
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.status not in ("live", "going_live", "error"):
                raise RejectedInput([Problem(name, f"is {seg.status}; only a live segment can be stopped")])
            self._refuse_dependents(s, seg, "stop")
            seg.status, seg.status_reason, seg.next_refresh_at = "stopped", "stopped", None
            self._audit(s, seg, "stop", "")
        return self.show(name)

    def activate(self, name: str, reason: str) -> dict[str, Any]:
        """``draft``: back to draft (membership kept); ``ready``: go live (an expired segment must be set to draft first)."""
        if reason not in ("draft", "ready"):
            raise RejectedInput([Problem("--status-reason", f"must be draft or ready, not {reason!r}")])
        with self.store.session() as s:
            seg = self._get(s, name)
            if reason == "draft":
                if seg.status in ("live", "going_live"):
                    self._refuse_dependents(s, seg, "set to draft")
                if seg.status == "expired":
                    limits.check(self.config.limits, seg.kind, self._count(s, seg.kind))
                seg.status, seg.status_reason, seg.next_refresh_at = "draft", "draft", None
                seg.updated_at = clock.now()
                self._audit(s, seg, "activate", "draft")
                return self.show_in(s, seg)
            if seg.status == "expired":
                raise RejectedInput(
                    [
                        Problem(
                            name,
                            "is expired and cannot go straight to ready; set it to draft first: segment activate NAME --status-reason draft",
                        )
                    ]
                )
            if seg.status == "live":
                return self.show_in(s, seg)
            if seg.static_type == "list":
                seg.status, seg.status_reason = "live", "ready"
                self._audit(s, seg, "activate", "ready")
                return self.show_in(s, seg)
        self.publish(name)
        return self.show(name)

    # -- static lists -----------------------------------------------------------------------

    def add(self, name: str, keys: list[str]) -> RefreshResult:
        return self._change_list(name, keys, "add")

    def remove(self, name: str, keys: list[str]) -> RefreshResult:
        return self._change_list(name, keys, "remove")

    def _change_list(self, name: str, raw_keys: list[str], action: str) -> RefreshResult:
        from segmenta.services.membership_store import values_query

        with self.store.session() as s:
            seg = self._get(s, name)
            self._require_list(seg, action)
            snap = self._snapshot(seg)
        keys = self.parse_keys(snap.audience, raw_keys)
        key = self.ws.model.table(snap.audience).key
        return self.change_members(snap, values_query(key, keys), action)

    def _require_list(self, seg: Segment, action: str) -> None:
        if seg.static_type != "list":
            raise RejectedInput(
                [
                    Problem(
                        seg.name,
                        f"is a {seg.kind} {'snapshot' if seg.static_type else 'segment'}; only a static list takes {action}",
                    )
                ]
            )
        if seg.status == "expired":
            raise RejectedInput([Problem(seg.name, "is expired and read-only")])

    # -- checks --------------------------------------------------------------------------------

    def _parse(self, source: Any) -> tuple[dict[str, Any], Definition]:
        """(raw JSON data, validated definition) of a file path, text or mapping."""
        from segmenta.workspace import read_definition

        raw = read_definition(source)
        defn = parse_definition(raw, self.ws.model)
        return dict(raw), defn

    def _check_new_name(self, s: Session, name: str) -> None:
        existing = s.scalar(select(Segment).where(Segment.name == name))
        if existing is not None:
            extra = " (a deleted segment; restore it or choose another name)" if existing.deleted_at else ""
            raise RejectedInput([Problem(name, f"a segment with this name already exists{extra}")])

    def _check_cycle(self, s: Session, name: str, raw: dict[str, Any]) -> None:
        from segmenta.services.segment_graph import raw_refs

        graph = reference_graph(s)
        graph[name] = raw_refs(raw)
        cycle = find_cycle(graph, name)
        if cycle:
            raise DefinitionError(
                [Problem("/groups", f"in_segment makes a cycle {' -> '.join(cycle)}; a segment cannot contain itself")]
            )

    def _count(self, s: Session, kind: str) -> int:
        q = (
            select(func.count())
            .select_from(Segment)
            .where(Segment.kind == kind, Segment.deleted_at.is_(None), Segment.status != "expired")
        )
        return int(s.scalar(q) or 0)

    def _refuse_dependents(self, s: Session, seg: Segment, action: str) -> None:
        graph = reference_graph(s)
        live = set(
            s.scalars(select(Segment.name).where(Segment.status.in_(("live", "going_live")), Segment.deleted_at.is_(None)))
        )
        users = [f"segment {n}" for n in readers(graph, seg.name) if n in live]
        users += [
            f"{u.user_kind} {u.user_name}" for u in s.scalars(select(Usage).where(Usage.segment_id == seg.id, Usage.active))
        ]
        if users:
            raise RejectedInput([Problem(seg.name, f"cannot {action}: used by {', '.join(users)}")])

    def _active_users(self, s: Session, seg: Segment, *, kind: str | None = None) -> list[str]:
        q = select(Usage.user_name).where(Usage.segment_id == seg.id, Usage.active)
        if kind is not None:
            q = q.where(Usage.user_kind == kind)
        return sorted(set(s.scalars(q)))

    def _compile(self, defn: Definition) -> exp.Select:
        from segmenta.compiler.compile import compile_definition

        return compile_definition(defn, self.ws.model, as_of=clock.now(), segments=self.source)

    def _cadence(self, s: Session, seg: Segment) -> dt.timedelta:
        from segmenta.services.segment_config import reads_interactions

        cfg = self.config.for_segment(seg.settings)
        raw = self._definition(s, seg, seg.live_version or seg.current_version)
        interactions = raw is not None and reads_interactions(
            parse_definition(raw, self.ws.model), self.ws.model, cfg.interaction_tables
        )
        return cfg.cadence(in_use=bool(self._active_users(s, seg, kind="journey")), reads_interactions=interactions)


def stored_segment_source(ws: Any, name: str, table: str) -> exp.Query:
    """``in_segment`` for a plain :class:`Workspace`: opens its store for the lookup (the default segment source)."""
    store = Store(resolve_url(ws.path, ws.config))
    previous = ws.segment_source
    try:
        return SegmentsBase(ws, store).source(name, table)
    finally:
        ws.segment_source = previous
        store.close()
