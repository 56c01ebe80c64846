"""The membership event stream over HTTP (issue 11): pages from an offset, Server-Sent Events, per-minute activity.

- ``GET /api/events?from=OFFSET&segment=NAME&limit=N``: the committed events after ``OFFSET``
  in offset order, ``{"events": [...], "next": OFFSET, "last": OFFSET}``; with
  ``Accept: application/x-ndjson`` the same page as JSON lines, the next offset in the
  ``Segmenta-Next-Offset`` header. A consumer keeps ``next`` and asks again from it.
- ``GET /api/events/stream?from=OFFSET&segment=NAME``: Server-Sent Events, one ``membership``
  event per membership event (``id:`` is its offset, ``data:`` its JSON), starting after
  ``Last-Event-ID`` when the browser reconnects (else ``from``; else the current end). A
  comment line every 15 s (the caller's ``heartbeat``) keeps proxies from closing an idle
  stream; the stream ends (an ``end`` event saying why) after an hour (or the caller's
  shorter ``max_seconds``) or when the server shuts down, and EventSource reconnects from
  the last id. A user may hold 4 streams at once (429 beyond). New events are noticed at once when they are written in this process
  (an in-process subscriber wakes the streams) and within a second otherwise (polling).
- ``GET /api/segments/{name}/activity?minutes=60``: entered/exited counts per minute from the
  events, for the web builder's live panel.

Any signed-in user may read events. For a PII-restricted user the keys of segments whose
audience key is PII are ``***``, as everywhere else in the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from segmenta import clock
from segmenta.errors import Problem, RejectedInput
from segmenta.interfaces.api.auth import Read, signed_in
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import key_is_pii
from segmenta.interfaces.api.routers.segments import resolve
from segmenta.interfaces.api.runtime import Service
from segmenta.workspace import PII_MASK

router = APIRouter(prefix="/api", tags=["events"], responses=RESPONSES)

PAGE_MAX = 10_000
#: A user's open streams at most (429 beyond), a stream's longest life, the heartbeat interval (seconds).
#: Fixed for now: segmenta.yaml's reserved ``realtime:`` section is where they would become settings.
MAX_STREAMS_PER_USER = 4
STREAM_MAX_SECONDS = 3600.0
HEARTBEAT_SECONDS = 15.0
#: How often a stream looks at the log when no in-process write woke it (seconds).
POLL_S = 1.0
#: Most events one activity answer counts (a publish of millions of members in the window: the rest are not counted).
ACTIVITY_MAX_EVENTS = 2_000_000


@dataclass(frozen=True)
class StreamSettings:
    max_streams_per_user: int
    max_seconds: float
    heartbeat_seconds: float


def stream_settings(_service: Service) -> StreamSettings:
    """The service's stream bounds (see :data:`MAX_STREAMS_PER_USER`)."""
    return StreamSettings(MAX_STREAMS_PER_USER, STREAM_MAX_SECONDS, HEARTBEAT_SECONDS)


class Streams:
    """Open streams per user (a bounded number each), and the wake-up of every stream when events commit here."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open: dict[str, int] = {}
        self.waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self.unsubscribe: Callable[[], None] | None = None
        self.stopping = False

    def enter(self, user: str, most: int) -> bool:
        with self.lock:
            if self.open.get(user, 0) >= most:
                return False
            self.open[user] = self.open.get(user, 0) + 1
            return True

    def leave(self, user: str) -> None:
        with self.lock:
            self.open[user] = self.open.get(user, 1) - 1
            if self.open[user] <= 0:
                del self.open[user]

    def wake(self, _events: Any = None) -> None:
        """Called by the events service after a membership write commits (any thread)."""
        with self.lock:
            waiters = list(self.waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)


def streams_of(request: Request) -> Streams:
    state = request.app.state
    found: Streams | None = getattr(state, "event_streams", None)
    if found is None:
        found = state.event_streams = Streams()
    return found


def _server_exiting() -> bool:
    """True once uvicorn was told to shut down (its signal handler is a method of the server, which says so).

    uvicorn waits for open responses before it runs the app's shutdown, so an endless stream
    would hold the server up: each stream checks this and ends itself.
    """
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))


# -- reading ------------------------------------------------------------------------------------


def _masked_ids(service: Service, segs: Any, ids: set[int], restricted: bool) -> set[int]:
    """Of segment ``ids``, those whose keys a restricted user may not see (their audience key is PII)."""
    if not restricted or not ids:
        return set()
    from segmenta.services.stores import segment_audiences

    audiences = segment_audiences(segs.store, ids)
    return {i for i, audience in audiences.items() if key_is_pii(service.model, audience) or audience not in service.model.tables}


def _page(service: Service, *, after: int, segment: str | None, limit: int, restricted: bool) -> tuple[list[dict[str, Any]], int]:
    """(events as JSON after ``after``, the log's last offset), keys masked as the user may see them."""
    from segmenta.services import events

    with service.segments() as segs:
        page = events.read(segs, after=after, segment=segment, limit=limit)
        last = events.last_offset(segs)
        hidden = _masked_ids(service, segs, {e.segment_id for e in page}, restricted)
    out = []
    for e in page:
        item = e.to_json()
        if e.segment_id in hidden and item.get("key") is not None:
            item["key"] = PII_MASK
        out.append(item)
    return out, last


def _last(service: Service) -> int:
    from segmenta.services import events

    with service.segments() as segs:
        return int(events.last_offset(segs))


@router.get("/events", responses={200: {"content": {"application/x-ndjson": {}}}})
def read_events(
    ctx: Read,
    request: Request,
    after: int = Query(0, alias="from", ge=0, le=2**62, description="the last offset already seen (0: from the start)"),
    segment: str | None = Query(None, description="only this segment's events (name, or id)"),
    limit: int = Query(1000, ge=1, le=PAGE_MAX),
) -> Any:
    """Committed membership events after ``from``, in offset order: ``{"events", "next", "last"}``.

    ``next`` is the offset to ask from next time (the last event's, or ``from`` when none came).
    With ``Accept: application/x-ndjson`` the events are JSON lines and ``next`` is the
    ``Segmenta-Next-Offset`` header.
    """
    name = resolve(ctx, segment) if segment is not None else None
    page, last = _page(ctx.service, after=after, segment=name, limit=limit, restricted=ctx.restricted)
    nxt = page[-1]["offset"] if page else after
    if "application/x-ndjson" in request.headers.get("accept", ""):
        body = "".join(json.dumps(e, default=str) + "\n" for e in page)
        headers = {"Segmenta-Next-Offset": str(nxt), "Segmenta-Last-Offset": str(last)}
        return Response(body, media_type="application/x-ndjson", headers=headers)
    return {"events": page, "next": nxt, "last": last}


@router.get("/events/stream", include_in_schema=False)
async def stream_events(
    request: Request,
    after: int | None = Query(None, alias="from", ge=0, le=2**62),
    segment: str | None = None,
    max_seconds: float | None = Query(None, gt=0, le=86_400, description="end the stream sooner than the server would"),
    heartbeat: float | None = Query(None, ge=0.5, le=3600, description="seconds between heartbeat comments"),
) -> StreamingResponse:
    """Server-Sent Events of the membership log (see the module's docstring); not in the OpenAPI document,
    which cannot describe an endless stream."""
    service: Service = request.app.state.service
    user = await to_thread.run_sync(lambda: signed_in(request))
    settings = stream_settings(service)
    settings = StreamSettings(
        settings.max_streams_per_user,
        min(max_seconds, settings.max_seconds) if max_seconds is not None else settings.max_seconds,
        heartbeat if heartbeat is not None else settings.heartbeat_seconds,
    )
    name: str | None = None
    if segment is not None:
        name = await to_thread.run_sync(lambda: _resolve_name(service, user, segment))
    resume = request.headers.get("last-event-id", "").strip()
    if resume:
        if not resume.isdigit() or len(resume) > 19:
            raise RejectedInput([Problem("Last-Event-ID", f"must be an event offset (a whole number), not {resume[:40]!r}")])
        start = int(resume)
    elif after is not None:
        start = after
    else:
        start = await to_thread.run_sync(lambda: _last(service))
    streams = streams_of(request)
    if not streams.enter(user.username, settings.max_streams_per_user):
        raise HTTPException(
            429,
            f"{user.username} already has {settings.max_streams_per_user} event streams open "
            "(events_max_streams_per_user); close one first",
            headers={"Retry-After": "5"},
        )
    _subscribe(service, streams)
    body = _sse(request, service, streams, user, settings, start=start, segment=name)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


def _resolve_name(service: Service, user: Any, ref: str) -> str:
    from segmenta.interfaces.api.auth import Ctx

    ctx = Ctx(service, user, "read")
    try:
        name = resolve(ctx, ref)
        ctx.segs._detached(name)  # NotFound (with a hint) before the stream starts
        return name
    finally:
        ctx.close()


def _subscribe(service: Service, streams: Streams) -> None:
    """Once per app: an in-process subscriber that wakes every stream after a membership write commits."""
    with streams.lock:
        if streams.unsubscribe is not None:
            return
    from segmenta.services import events

    with service.segments() as segs:
        unsubscribe = events.subscribe(segs, streams.wake)
    with streams.lock:
        if streams.unsubscribe is None:
            streams.unsubscribe = unsubscribe
            return
    unsubscribe()


async def _sse(
    request: Request, service: Service, streams: Streams, user: Any, settings: StreamSettings, *, start: int, segment: str | None
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    waiter = (loop, woken)
    with streams.lock:
        streams.waiters.add(waiter)
    cursor = start
    restricted = bool(user.pii_restricted)
    began = last_beat = time.monotonic()
    why = "max_seconds"
    try:
        yield f"retry: 2000\n: segmenta events after offset {cursor}\n\n"
        while True:
            if streams.stopping or _server_exiting():
                why = "shutdown"
                break
            if time.monotonic() - began >= settings.max_seconds:
                break
            if await request.is_disconnected():
                why = "disconnected"
                break
            woken.clear()
            page, _ = await to_thread.run_sync(
                partial(_page, service, after=cursor, segment=segment, limit=1000, restricted=restricted)
            )
            if page:
                for item in page:
                    yield f"id: {item['offset']}\nevent: membership\ndata: {json.dumps(item, default=str)}\n\n"
                cursor = page[-1]["offset"]
                last_beat = time.monotonic()
                continue
            if time.monotonic() - last_beat >= settings.heartbeat_seconds:
                yield ": heartbeat\n\n"
                last_beat = time.monotonic()
            wait = min(POLL_S, settings.heartbeat_seconds, max(0.0, settings.max_seconds - (time.monotonic() - began)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=wait)
        if why != "disconnected":
            yield f"event: end\ndata: {json.dumps({'reason': why, 'offset': cursor})}\n\n"
    finally:
        with streams.lock:
            streams.waiters.discard(waiter)
        streams.leave(user.username)


# -- activity -----------------------------------------------------------------------------------


def _first_offset_at(segs: Any, name: str, since: dt.datetime, last: int) -> int:
    """The offset after which the segment's events are at ``since`` or later (events are written in time order)."""
    from segmenta.services import events

    low, high = 0, last
    while low < high:
        mid = (low + high) // 2
        found = events.read(segs, after=mid, segment=name, limit=1)
        if not found or _utc(found[0].at) >= since:
            high = mid
        else:
            low = mid + 1
    return low


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def activity_counts(segs: Any, name: str, minutes: int, now: dt.datetime) -> dict[str, Any]:
    """Entered/exited per minute over the last ``minutes`` minutes (oldest first, every minute present)."""
    from segmenta.services import events

    end = now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    since = end - dt.timedelta(minutes=minutes)
    last = events.last_offset(segs)
    cursor = _first_offset_at(segs, name, since, last)
    buckets = {since + dt.timedelta(minutes=i): [0, 0] for i in range(minutes)}
    counted = 0
    truncated = False
    while True:
        page = events.read(segs, after=cursor, segment=name, limit=PAGE_MAX)
        if not page:
            break
        for e in page:
            at = _utc(e.at)
            minute = at.replace(second=0, microsecond=0)
            if minute in buckets:
                buckets[minute][0 if e.change == "entered" else 1] += 1
        counted += len(page)
        cursor = page[-1].offset
        if counted >= ACTIVITY_MAX_EVENTS:
            truncated = True
            break
    rows = [{"minute": m.isoformat(), "entered": v[0], "exited": v[1]} for m, v in buckets.items()]
    return {
        "segment": name,
        "minutes": rows,
        "entered": sum(r["entered"] for r in rows),
        "exited": sum(r["exited"] for r in rows),
        "last_offset": last,
        "truncated": truncated,
    }


@router.get("/segments/{name}/activity")
def activity(ctx: Read, name: str, minutes: int = Query(60, ge=1, le=1440)) -> dict[str, Any]:
    """Keys that entered and exited the segment per minute over the last ``minutes`` minutes, from its events.

    ``last_offset`` is where a live view continues with ``/api/events/stream?segment=...&from=last_offset``.
    """
    name = resolve(ctx, name)
    ctx.segs._detached(name)
    return activity_counts(ctx.segs, name, minutes, clock.now())
