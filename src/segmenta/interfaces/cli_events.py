"""``segmenta events tail [--from OFFSET] [--segment NAME] [--follow] [--json]``: membership events out (contract 5.2).

Prints the workspace's membership events in offset order, from just after ``--from`` (default:
the start). ``--json`` prints one object per line, ``{"offset", "segment", "key", "change",
"at", "cause", "version"}``; without it, one aligned line per event. ``--follow`` keeps going,
printing each new event as it commits, until interrupted (Ctrl+C exits 0).

While following, the workspace is opened for each poll only: on DuckDB a process that holds the
data file blocks every other writer, so a follower must not keep it open between polls.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated

import typer

from segmenta.interfaces.cli import app
from segmenta.interfaces.cli_segments import with_segments

if TYPE_CHECKING:
    from segmenta.services.events import Event

events_app = typer.Typer(no_args_is_help=True, help="Membership events: who entered and left which segment, in order.")
app.add_typer(events_app, name="events")


@events_app.command("tail")
def tail(
    from_offset: Annotated[int, typer.Option("--from", min=0, help="Start after this offset (0: from the start)")] = 0,
    segment: Annotated[str | None, typer.Option("--segment", help="Only this segment's events")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events as they commit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60.0, help="Seconds between looks while following")] = 0.5,
) -> None:
    """Print membership events after --from, oldest first (--follow: and new ones as they come)."""
    from segmenta.services import events

    cursor = from_offset
    try:
        while True:
            while True:
                page: list[Event] = with_segments(
                    lambda segs, after=cursor: events.read(segs, after=after, segment=segment)  # type: ignore[misc]
                )
                for event in page:
                    _print(event, as_json=as_json)
                if not page:
                    break
                cursor = page[-1].offset
            if not follow:
                return
            time.sleep(poll)
    except KeyboardInterrupt:
        return


def _print(event: Event, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(event.to_json(), default=str))
        return
    cause = event.cause.get("kind", "")
    typer.echo(f"{event.offset:>10}  {event.at.isoformat()}  {event.change:<7}  {event.segment}  {event.key}  ({cause})")
