"""Membership events: every key that enters or leaves a saved segment, in one ordered, durable log.

The log lives in the data engine beside the membership (``Engine.event_log``), and each event
is written in the same transaction as the membership change it describes, so the two can never
disagree: a change that committed has its events, a change that was rolled back (or killed)
has none. The events are also the membership history (``segment history``): one log, not two.

Each event has an ``offset``, strictly increasing over the workspace and never reused. A
consumer that keeps the last offset it handled and reads on from there sees every event once,
whatever crashed in between::

    for event in events.follow(segs, after=saved_offset):
        handle(event)
        saved_offset = event.offset

In-process subscribers (:func:`subscribe`) are called after a membership write commits, with
the events it made; they run in the writer's thread, so they should be quick (hand work to a
queue) and must not raise (an error is logged and the write stands).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segmenta.errors import NotFound, Problem
from segmenta.model.schema import ColumnType, hint

if TYPE_CHECKING:
    import pyarrow as pa

    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.events")

#: At most this many events in one read.
MAX_READ = 10_000


@dataclass(frozen=True)
class Event:
    """One key entering or leaving one segment."""

    offset: int
    segment: str
    segment_id: int
    version: int | None
    key: Any
    change: str  # "entered" | "exited"
    at: dt.datetime
    cause: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The shape ``events tail --json`` prints (contract 5.2), plus the segment's version."""
        return {
            "offset": self.offset,
            "segment": self.segment,
            "key": self.key,
            "change": self.change,
            "at": self.at.isoformat(),
            "cause": self.cause,
            "version": self.version,
        }


Subscriber = Callable[[list[Event]], None]

_subscribers: dict[Path, list[Subscriber]] = {}
_lock = threading.Lock()


def subscribe(segs: Segments, callback: Subscriber) -> Callable[[], None]:
    """Call ``callback`` with the events of every membership write of this workspace (in this process), after commit.

    Returns the function that unsubscribes.
    """
    path = Path(segs.ws.path).resolve()
    with _lock:
        _subscribers.setdefault(path, []).append(callback)

    def unsubscribe() -> None:
        with _lock:
            subs = _subscribers.get(path, [])
            if callback in subs:
                subs.remove(callback)

    return unsubscribe


def has_subscribers(segs: Segments) -> bool:
    with _lock:
        return bool(_subscribers.get(Path(segs.ws.path).resolve()))


def notify(segs: Segments, segment_id: int, run_id: int, after: int) -> None:
    """Hand the events of run ``run_id`` of segment ``segment_id`` (offsets above ``after``) to the subscribers."""
    with _lock:
        subs = list(_subscribers.get(Path(segs.ws.path).resolve(), []))
    if not subs:
        return
    made: list[Event] = []
    cursor = after
    while True:
        page = read(segs, after=cursor, segment_ids=[segment_id])
        if not page:
            break
        made += [e for e in page if e.cause.get("run") == run_id]
        cursor = page[-1].offset
    for callback in subs:
        try:
            callback(made)
        except Exception:  # noqa: BLE001 - a subscriber's failure is its own; the write has committed
            log.exception("a membership event subscriber failed")


def last_offset(segs: Segments) -> int:
    """The last offset handed out in this workspace (0: no event yet)."""
    return segs.ws.engine.event_log().last()


def segment_id(segs: Segments, name: str) -> int:
    """The id of the saved segment ``name`` (a deleted one's too: its events stay in the log)."""
    from sqlalchemy import select

    from segmenta.store.models import Segment

    with segs.store.session() as s:
        found = s.scalars(select(Segment.id).where(Segment.name == name).order_by(Segment.deleted_at.is_(None).desc())).first()
        if found is None:
            names = s.scalars(select(Segment.name).where(Segment.deleted_at.is_(None))).all()
    if found is None:
        raise NotFound([Problem(name, f"no saved segment has this name{hint(name, names)}")])
    return int(found)


def read(
    segs: Segments,
    *,
    after: int = 0,
    segment: str | None = None,
    segment_ids: list[int] | None = None,
    limit: int = MAX_READ,
) -> list[Event]:
    """Committed events with an offset above ``after``, in offset order (of ``segment`` only, if given)."""
    if segment is not None:
        segment_ids = [segment_id(segs, segment)]
    rows = segs.ws.engine.event_log().read(after=after, segment_ids=segment_ids, limit=max(1, min(limit, MAX_READ)))
    return _events(segs, rows)


def follow(
    segs: Segments,
    *,
    after: int = 0,
    segment: str | None = None,
    poll_s: float = 0.2,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Every event above ``after``, then each new one as it commits, until ``stop()`` says so (polling the log)."""
    ids = [segment_id(segs, segment)] if segment is not None else None
    cursor = after
    while True:
        page = read(segs, after=cursor, segment_ids=ids)
        yield from page
        if page:
            cursor = page[-1].offset
            continue
        if stop is not None and stop():
            return
        time.sleep(poll_s)


def _events(segs: Segments, rows: pa.Table) -> list[Event]:
    if rows.num_rows == 0:
        return []
    ids = sorted(set(rows.column("segment_id").to_pylist()))
    names, integer_keys = _segments(segs, ids)
    out: list[Event] = []
    for r in rows.to_pylist():
        sid = int(r["segment_id"])
        key: Any = r["key"]
        if sid in integer_keys and key is not None:
            key = int(key)
        out.append(
            Event(
                offset=int(r["log_offset"]),
                segment=names.get(sid, f"#{sid}"),
                segment_id=sid,
                version=r["version"],
                key=key,
                change=r["change"],
                at=r["at"],
                cause=json.loads(r["cause"]) if r["cause"] else {},
            )
        )
    return out


def _segments(segs: Segments, ids: list[int]) -> tuple[dict[int, str], set[int]]:
    """Names of segments ``ids``, and those whose audience has an integer key."""
    from sqlalchemy import select

    from segmenta.store.models import Segment

    with segs.store.session() as s:
        rows = s.execute(select(Segment.id, Segment.name, Segment.audience).where(Segment.id.in_(ids))).all()
    names = {int(i): n for i, n, _ in rows}
    integer: set[int] = set()
    for i, _, audience in rows:
        if audience in segs.ws.model.tables:
            table = segs.ws.model.table(audience)
            if table.column(table.key).type is ColumnType.INTEGER:
                integer.add(int(i))
    return names, integer
