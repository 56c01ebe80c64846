"""CLI of sales sequences (issue 13 item 2): ``segmenta sequence create|activate|deactivate|connect|show|list``,
the sellers' ``activities`` and ``done``, ``track`` (an email opened / replied / clicked) and ``advance``
(one sequence's pass; ``segmenta worker --once`` advances every active one).

Registered on ``app`` of :mod:`segmenta.interfaces.cli` (imported at its end). Exit status:
0 done; 2 rejected input (a bad file names the step and field; nothing saved); 1 anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from segmenta.interfaces.cli import app
from segmenta.interfaces.cli_segments import with_segments

sequence_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Sales sequences fed by work-assignment segments.")
app.add_typer(sequence_app, name="sequence")

Name = Annotated[str, typer.Argument(help="Sequence name")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]
ActivityId = Annotated[int, typer.Argument(help="Activity id (from `sequence activities`)")]


def _sequences(fn: Any) -> Any:
    from segmenta.services.sequences import Sequences

    return with_segments(lambda segs: fn(Sequences(segs)))


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@sequence_app.command("create")
def create(file: Annotated[Path, typer.Argument(help="Sequence file (.json or .yaml)")], as_json: Json = False) -> None:
    """Save a sequence file as a draft (one of the same name that is not active is replaced)."""
    info = _sequences(lambda q: q.create(file))
    if as_json:
        _echo(info)
        return
    typer.echo(f"created sequence {info['name']} ({info['status']})")


@sequence_app.command("connect")
def connect(name: Name, segment: Annotated[str, typer.Option("--segment", help="Work-assignment segment")]) -> None:
    """Connect a work-assignment segment to the sequence (a segment feeds one sequence)."""
    _sequences(lambda q: q.connect(name, segment))
    typer.echo(f"sequence {name} is fed by work-assignment segment {segment}")


@sequence_app.command("activate")
def activate(name: Name) -> None:
    """Activate: the connected segment's records start it (at most 250 active sequences)."""
    info = _sequences(lambda q: q.activate(name))
    typer.echo(f"sequence {name} is active: {info['report']['running']} running")


@sequence_app.command("deactivate")
def deactivate(name: Name) -> None:
    """Deactivate: running records end, their open activities are cancelled."""
    _sequences(lambda q: q.deactivate(name))
    typer.echo(f"sequence {name} is inactive")


@sequence_app.command("show")
def show(name: Name, as_json: Json = False) -> None:
    """A sequence's file, status, segment and report (records at each step, overdue activities)."""
    info = _sequences(lambda q: q.show(name))
    if as_json:
        _echo(info)
        return
    typer.echo(f"{info['name']}\t{info['status']}\t{info['table']}\tsegment: {info['segment']}")
    for step, n in info["report"]["at_step"].items():
        typer.echo(f"at {step}: {n}")
    typer.echo(f"open activities: {info['report']['open_activities']} ({info['report']['overdue_activities']} overdue)")


@sequence_app.command("list")
def list_cmd(as_json: Json = False) -> None:
    """Every sequence with its status and segment."""
    rows = _sequences(lambda q: q.list_sequences())
    if as_json:
        _echo(rows)
        return
    for r in rows:
        typer.echo(f"{r['name']}\t{r['status']}\t{r['table']}\t{r['segment'] or '-'}")


@sequence_app.command("simulate")
def simulate(name: Name) -> None:
    """Where each record of the connected segment would be and when (activities done when due, no email opened); JSON."""
    _echo(_sequences(lambda q: q.simulate(name)))


@sequence_app.command("activities")
def activities(
    seller: Annotated[str, typer.Option("--seller", help="Seller key (as work assignment assigns it)")],
    as_json: Json = False,
) -> None:
    """A seller's open activities due today (overdue ones included)."""
    rows = _sequences(lambda q: q.activities(seller=seller))
    if as_json:
        _echo(rows)
        return
    for r in rows:
        late = " (overdue)" if r["overdue"] else ""
        typer.echo(f"{r['id']}\t{r['kind']}\t{r['sequence']}\trecord {r['record']}\t{r['subject']}\tdue {r['due_at']}{late}")


@sequence_app.command("done")
def done(
    activity: ActivityId,
    skip: Annotated[bool, typer.Option("--skip", help="Skip it instead (a condition on a skipped email takes no)")] = False,
    as_json: Json = False,
) -> None:
    """Mark an activity done (or skipped); the record goes on to its next step."""
    info = _sequences(lambda q: q.done(activity, skip=skip))
    if as_json:
        _echo(info)
        return
    typer.echo(f"activity {activity} {info['status']}")


@sequence_app.command("track")
def track(activity: ActivityId, event: Annotated[str, typer.Argument(help="opened, replied or clicked")]) -> None:
    """Record that an email was opened, replied to or had a link clicked (what condition steps read)."""
    _sequences(lambda q: q.track(activity, event))
    typer.echo(f"activity {activity}: {event}")


@sequence_app.command("advance")
def advance(name: Name, as_json: Json = False) -> None:
    """Advance one active sequence to the current clock now (what a worker pass does for each)."""
    from dataclasses import asdict

    r = _sequences(lambda q: q.advance(name))
    if as_json:
        _echo({**asdict(r), "advanced_to": sorted(r.advanced_to)})
    else:
        typer.echo(
            f"sequence {r.sequence}: +{r.started} started, {r.ended} ended, {r.activities} activities, "
            f"{r.sent} sent, {r.finished} finished"
        )
    for e in r.errors:
        typer.echo(f"error: {e}", err=True)
    if r.errors:
        raise typer.Exit(1)
