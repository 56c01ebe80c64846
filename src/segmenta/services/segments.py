"""Saved segments: versioned definitions with a lifecycle (contract section 5.1).

Statuses (:mod:`segmenta.services.states`, one transition table): ``draft`` -> (publish)
``going_live`` -> ``live``; ``stopped``; ``expired`` (unused, read-only, not evaluated);
``error`` (an evaluation failed). ``edit`` never changes who is a member: on a published
segment it saves a draft version that waits until ``publish`` (the live version and its
members stay as they are). Metadata lives in the SQLAlchemy store; membership and history
in the data engine (:mod:`segmenta.services.membership_store`). Status changes live in
:mod:`segmenta.services.segment_status`, views in :mod:`segmenta.services.segment_views`.

Segment names are trimmed, 1 to 200 characters, without control characters, not made only
of digits (the REST API reads digits as an id), and may contain ``/``; every segment also has
an integer ``id`` (the REST API addresses by id).

Example::

    with Segments.open("crm") as segs:
        segs.create("gold.json", name="Gold")
        segs.publish("Gold")
        print(segs.show("Gold")["size"])
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlglot import exp

from segmenta import clock
from segmenta.errors import Conflict, DefinitionError, NotFound, Problem, RejectedInput, SegmentaError
from segmenta.model.definition import Definition
from segmenta.model.validate import parse_definition
from segmenta.services.lifecycle_base import RefreshResult, SegmentsBase, open_workspace
from segmenta.services.segment_config import check_segment_settings
from segmenta.services.segment_graph import find_cycle, raw_refs, readers, reference_graph
from segmenta.services.segment_status import SegmentCommands
from segmenta.services.states import Action, Kind, StaticType, Status, transition
from segmenta.store.database import Store, resolve_url
from segmenta.store.models import Segment, SegmentVersion

if TYPE_CHECKING:
    from segmenta.services.events import Event

__all__ = ["NAME_MAX", "RefreshResult", "Segments", "clean_name"]

#: The longest segment name, in characters (issue 8 section 4).
NAME_MAX = 200


def clean_name(name: Any, *, where: str = "name") -> str:
    """``name`` trimmed; RejectedInput unless it is 1..NAME_MAX characters without control characters, not all digits."""
    if not isinstance(name, str):
        raise RejectedInput([Problem(where, f"a segment name is text, not {type(name).__name__}")])
    chosen = name.strip()
    if not chosen:
        raise RejectedInput([Problem(where, f"a segment needs a name of 1 to {NAME_MAX} characters")])
    if len(chosen) > NAME_MAX:
        raise RejectedInput([Problem(where, f"a segment name is at most {NAME_MAX} characters; this one has {len(chosen)}")])
    if any(ord(c) < 32 or ord(c) == 127 for c in chosen):
        raise RejectedInput([Problem(where, "a segment name cannot contain control characters (NUL, tab, newline...)")])
    if chosen.isdigit():  # "7" would be ambiguous: /api/segments/7 is the segment with id 7
        raise RejectedInput(
            [
                Problem(
                    where,
                    f"{chosen!r}: a segment name needs at least one character that is not a digit; "
                    "the REST API reads digits as an id",
                )
            ]
        )
    return chosen


class Segments(SegmentCommands):
    """Use cases on saved segments, addressed by name (or by id, given as an int)."""

    @classmethod
    @contextmanager
    def open(
        cls,
        workspace: str | Path | None = None,
        *,
        store_url: str | None = None,
        engine: str | None = None,
        wait: float | None = None,
    ) -> Iterator[Segments]:
        """Open a workspace (``engine`` overrides segmenta.yaml) and its store (DuckDB locked: retried ``wait`` s)."""
        ws = open_workspace(workspace, engine=engine, wait=wait)
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

    def subscribe(self, callback: Callable[[list[Event]], None]) -> Callable[[], None]:
        """Call ``callback`` after every membership write of this workspace (in this process) with its events.

        Returns the function that unsubscribes. See :mod:`segmenta.services.events`.
        """
        from segmenta.services import events

        return events.subscribe(self, callback)

    def resolve(self, ref: str | int, *, deleted: bool = False) -> str:
        """The name ``ref`` addresses: an int, or an all-digit string naming an existing id, is an id; else a name."""
        if isinstance(ref, str) and not (ref.isascii() and ref.isdigit() and len(ref) < 19):
            return ref
        with self.store.session() as s:
            q = select(Segment.name).where(Segment.id == int(ref))
            found = s.scalar(q if deleted else q.where(Segment.deleted_at.is_(None)))
        if found is None and isinstance(ref, int):
            raise NotFound([Problem(f"segment id {ref}", "no saved segment has this id")])
        return found if found is not None else str(ref)

    # -- creating and editing ----------------------------------------------------------

    def create(self, source: Any, *, name: str | None = None, snapshot: bool = False) -> dict[str, Any]:
        """Save a definition as a new Draft segment (``snapshot``: a static snapshot, else dynamic)."""
        raw, defn = self._parse(source)
        if not (name or defn.name or "").strip():
            raise RejectedInput([Problem("--name", 'the segment needs a name: give --name or a "name" in the definition')])
        chosen = clean_name(name or defn.name, where="--name" if name else "/name")
        kind = Kind.STATIC if snapshot else Kind.DYNAMIC
        now = clock.now()
        with self.store.session() as s:
            self._check_new_name(s, chosen)
            self._check_cycle(s, chosen, raw)
            self._check_limit(s, kind)
            seg = Segment(
                name=chosen,
                audience=defn.audience,
                kind=kind,
                static_type=StaticType.SNAPSHOT if snapshot else None,
                status=Status.DRAFT,
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
        chosen = clean_name(name, where="--name")
        now = clock.now()
        with self.store.session() as s:
            self._check_new_name(s, chosen)
            self._check_limit(s, Kind.STATIC)
            seg = Segment(
                name=chosen,
                audience=audience,
                kind=Kind.STATIC,
                static_type=StaticType.LIST,
                status=Status.LIVE,
                status_reason="ready",
                current_version=1,
                live_version=1,
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
        self.membership(self._snapshot_of(chosen)).ensure()
        return self.show(chosen)

    def edit(self, name: str | int, source: Any) -> dict[str, Any]:
        """Save a new version; never changes who is a member (contract 5.1).

        A segment never published takes the version at once. A published one keeps its live
        version and members: the new version waits as ``draft_version`` until :meth:`publish`.
        A definition equal to the newest version saves nothing; one equal to the version in
        force drops the pending draft (nothing saved either).
        """
        raw, defn = self._parse(source)
        with self.store.session() as s:
            seg = self._get(s, name)
            if seg.static_type == StaticType.LIST:
                raise RejectedInput(
                    [Problem(seg.name, "is a static list without a definition; change it with add, remove or import-csv")]
                )
            transition(seg.name, seg.status, Action.EDIT)
            if defn.audience != seg.audience:
                raise RejectedInput(
                    [
                        Problem(
                            "/audience",
                            f"{seg.name!r} is a segment of {seg.audience!r}; its audience cannot change to {defn.audience!r}",
                        )
                    ]
                )
            journeys = self._active_users(s, seg, kind="journey")
            if seg.status == Status.LIVE and journeys:
                raise Conflict([Problem(seg.name, f"is used by live journey(s) {', '.join(journeys)}; stop them before editing")])
            self._check_cycle(s, seg.name, raw)
            newest = seg.draft_version or seg.current_version
            if self._same(self._definition(s, seg, newest), defn):
                return self.show_in(s, seg)
            if seg.draft_version is not None and self._same(self._definition(s, seg, seg.current_version), defn):
                seg.draft_version, seg.updated_at = None, clock.now()
                self._audit(s, seg, "edit", f"draft version {newest} dropped: back to version {seg.current_version}")
                return self.show_in(s, seg)
            version = newest + 1
            s.add(SegmentVersion(segment_id=seg.id, version=version, definition=raw, created_at=clock.now()))
            if seg.live_version is None and seg.status != Status.GOING_LIVE:  # nothing evaluates it yet
                seg.current_version = version
                what = f"version {version}"
            else:
                seg.draft_version = version
                what = f"draft version {version} (version {seg.current_version} stays in force until publish)"
            seg.updated_at = clock.now()
            self._audit(s, seg, "edit", what)
            return self.show_in(s, seg)

    def rename(self, name: str | int, new_name: str) -> dict[str, Any]:
        chosen = clean_name(new_name, where="new name")
        with self.store.session() as s:
            seg = self._get(s, name)
            old = seg.name
            if chosen == old:
                return self.show_in(s, seg)
            self._check_new_name(s, chosen)
            used_by = readers(reference_graph(s, drafts=True), old)
            if used_by:
                raise Conflict([Problem(old, f"is read by in_segment in {', '.join(used_by)}; change them first, then rename")])
            users = self._active_users(s, seg)
            if users:  # journeys, destinations and work assignment name their segments
                raise Conflict([Problem(old, f"is in use by {', '.join(users)}; stop or detach them first, then rename")])
            seg.name = chosen
            seg.updated_at = clock.now()
            self._audit(s, seg, "rename", f"{old} -> {chosen}")
        return self.show(chosen)

    def delete(self, name: str | int) -> None:
        """Soft delete (restorable); refused while other segments or active users depend on it."""
        with self.store.session() as s:
            seg = self._get(s, name)
            self._refuse_dependents(s, seg, "delete")
            target = transition(seg.name, seg.status, Action.DELETE)
            if target != seg.status:
                seg.status, seg.status_reason = target, "deleted"
            seg.deleted_at = clock.now()
            seg.next_refresh_at = None
            self._audit(s, seg, "delete", "")

    def restore(self, name: str | int) -> dict[str, Any]:
        with self.store.session() as s:
            q = select(Segment).where(Segment.id == name if isinstance(name, int) else Segment.name == name)
            seg = s.scalar(q)
            if seg is None or seg.deleted_at is None:
                raise NotFound([Problem(str(name), "is not a deleted segment")])
            if seg.status != Status.EXPIRED:
                self._check_limit(s, seg.kind)
            seg.deleted_at = None
            seg.updated_at = clock.now()
            self._audit(s, seg, "restore", "")
            restored = seg.name
        return self.show(restored)

    def configure(self, name: str | int, settings: dict[str, Any]) -> dict[str, Any]:
        """Set a segment's own refresh/expiry settings (None removes an override); out-of-range values are refused."""
        checked = check_segment_settings(settings)
        with self.store.session() as s:
            seg = self._get(s, name)
            merged = {
                k: v for k, v in {**(seg.settings or {}), **checked}.items() if k in checked or settings.get(k, 0) is not None
            }
            seg.settings = merged or None
            self._audit(s, seg, "configure", repr(merged))
            if seg.status == Status.LIVE and seg.kind == Kind.DYNAMIC and seg.last_refresh_at is not None:
                seg.next_refresh_at = seg.last_refresh_at + self._cadence(s, seg)
            return self.show_in(s, seg)

    # -- static lists -----------------------------------------------------------------------

    def add(self, name: str | int, keys: list[str]) -> RefreshResult:
        return self._change_list(name, keys, "add")

    def remove(self, name: str | int, keys: list[str]) -> RefreshResult:
        return self._change_list(name, keys, "remove")

    def _change_list(self, name: str | int, raw_keys: list[str], action: str) -> RefreshResult:
        from segmenta.services.membership_store import values_query

        with self.store.session() as s:
            seg = self._get(s, name)
            self._require_list(seg, action)
            snap = self._snapshot(seg)
        keys = self.parse_keys(snap.audience, raw_keys)
        key = self.ws.model.table(snap.audience).key
        return self.change_members(snap, values_query(key, keys), action)

    def _require_list(self, seg: Segment, action: str) -> None:
        if seg.static_type != StaticType.LIST:
            what = "snapshot" if seg.static_type else "segment"
            raise RejectedInput([Problem(seg.name, f"is a {seg.kind} {what}; only a static list takes {action}")])
        if seg.status == Status.EXPIRED:
            raise Conflict([Problem(seg.name, "is expired and read-only")])

    # -- checks --------------------------------------------------------------------------------

    def _parse(self, source: Any) -> tuple[dict[str, Any], Definition]:
        """(raw JSON data, validated definition) of a file path, text or mapping."""
        from segmenta.workspace import read_definition

        raw = read_definition(source, limits=self.ws.limits)
        defn = parse_definition(raw, self.ws.model, limits=self.ws.limits)  # the workspace's limits: settings
        return dict(raw), defn

    def _same(self, stored: dict[str, Any] | None, defn: Definition) -> bool:
        """Whether a stored version says the same as ``defn`` (compared after validation, so defaults agree)."""
        if stored is None:
            return False
        try:
            return parse_definition(stored, self.ws.model) == defn
        except SegmentaError:  # written against an older model: compare the data itself
            return json.dumps(stored, sort_keys=True) == defn.model_dump_json()

    def _check_new_name(self, s: Session, name: str) -> None:
        existing = s.scalar(select(Segment).where(Segment.name == name))
        if existing is not None:
            extra = " (a deleted segment; restore it or choose another name)" if existing.deleted_at else ""
            raise Conflict([Problem(name, f"a segment with this name already exists{extra}")])

    def _check_cycle(self, s: Session, name: str, raw: dict[str, Any]) -> None:
        """Refuse a definition whose in_segment references would close a cycle, drafts counted (they will be published)."""
        graph = reference_graph(s, drafts=True)
        published = s.scalar(select(Segment.live_version).where(Segment.name == name)) is not None
        # Until this version is published, the version in force still reads what it reads.
        graph[name] = (reference_graph(s).get(name, set()) if published else set()) | raw_refs(raw)
        cycle = find_cycle(graph, name)
        if cycle:
            raise DefinitionError(
                [Problem("/groups", f"in_segment makes a cycle {' -> '.join(cycle)}; a segment cannot contain itself")]
            )


def stored_segment_source(ws: Any, name: str, table: str) -> exp.Query:
    """``in_segment`` for a plain :class:`Workspace`: opens its store for the lookup (the default segment source)."""
    store = Store(resolve_url(ws.path, ws.config))
    previous = ws.segment_source
    try:
        return SegmentsBase(ws, store).source(name, table)
    finally:
        ws.segment_source = previous
        store.close()
