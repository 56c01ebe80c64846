"""``in_segment`` references between saved segments: who reads whom, cycles, dependency order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from segmenta.store.models import Segment, SegmentVersion


def raw_refs(node: Any) -> set[str]:
    """Every ``in_segment`` name in a raw (JSON-like) definition."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        if isinstance(node.get("in_segment"), str):
            found.add(node["in_segment"])
        for v in node.values():
            found |= raw_refs(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            found |= raw_refs(v)
    return found


def reference_graph(s: Session, *, drafts: bool = False) -> dict[str, set[str]]:
    """name -> names its version in force reads, for every segment not deleted (``drafts``: its pending draft's too)."""
    in_force = SegmentVersion.version == Segment.current_version
    if drafts:
        in_force = in_force | (SegmentVersion.version == Segment.draft_version)
    rows = s.execute(
        select(Segment.name, SegmentVersion.definition)
        .join(SegmentVersion, (SegmentVersion.segment_id == Segment.id) & in_force)
        .where(Segment.deleted_at.is_(None))
    ).all()
    graph: dict[str, set[str]] = {}
    for name, defn in rows:
        graph.setdefault(name, set()).update(raw_refs(defn))
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start through references, if there is one."""
    stack: list[tuple[str, list[str]]] = [(r, [start, r]) for r in graph.get(start, ())]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((r, [*path, r]) for r in graph.get(node, ()))
    return None


def readers(graph: Mapping[str, Iterable[str]], name: str) -> list[str]:
    """Segments whose current definition reads ``name``."""
    return sorted(n for n, refs in graph.items() if name in refs and n != name)


def dependency_order(names: Iterable[str], graph: Mapping[str, Iterable[str]]) -> list[str]:
    """``names`` ordered so a segment comes after the segments it reads (ties by name)."""
    todo = sorted(set(names))
    chosen = set(todo)
    done: list[str] = []
    placed: set[str] = set()

    def visit(n: str, trail: frozenset[str]) -> None:
        if n in placed or n in trail:
            return
        for r in sorted(graph.get(n, ())):
            if r in chosen:
                visit(r, trail | {n})
        placed.add(n)
        done.append(n)

    for n in todo:
        visit(n, frozenset())
    return done
