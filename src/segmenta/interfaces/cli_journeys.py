"""CLI of journeys (contract section 7): ``segmenta journey create|publish|stop|report``, plus ``list``,
``show``, ``pause``/``resume`` and ``advance`` (one journey's pass; ``segmenta worker --once``
advances every live one).

Registered on ``app`` of :mod:`segmenta.interfaces.cli` (imported at its end). Exit status:
0 done; 2 rejected input (a bad file names the step and field; nothing changed); 1 anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from segmenta.interfaces.cli import app
from segmenta.interfaces.cli_segments import with_segments

journey_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Journeys: entry, exit and wait by segment.")
app.add_typer(journey_app, name="journey")

Name = Annotated[str, typer.Argument(help="Journey name")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _journeys(fn: Any) -> Any:
    from segmenta.services.journeys import Journeys

    return with_segments(lambda segs: fn(Journeys(segs)))


def _echo(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@journey_app.command("create")
def create(file: Annotated[Path, typer.Argument(help="Journey file (.json or .yaml)")], as_json: Json = False) -> None:
    """Save a journey file as a draft (a draft of the same name is replaced)."""
    info = _journeys(lambda j: j.create(file))
    if as_json:
        _echo(info)
        return
    typer.echo(f"created journey {info['name']} (draft)")


@journey_app.command("publish")
def publish(name: Name, as_json: Json = False) -> None:
    """Draft -> live: its segments become used (they must be live); the entry segments' members enter."""
    info = _journeys(lambda j: j.publish(name))
    if as_json:
        _echo(info)
        return
    typer.echo(f"journey {name} is live: {info['report']['entered']} entered")


@journey_app.command("pause")
def pause(name: Name) -> None:
    """Pause a live journey: no step runs and nobody enters until resume; its segments stay in use."""
    _journeys(lambda j: j.pause(name))
    typer.echo(f"journey {name} paused")


@journey_app.command("resume")
def resume(name: Name) -> None:
    """Resume a paused journey; the next pass catches up on what fell due meanwhile."""
    _journeys(lambda j: j.resume(name))
    typer.echo(f"journey {name} is live again")


@journey_app.command("stop")
def stop(name: Name) -> None:
    """Stop a journey: no step runs any more; its segments are released."""
    _journeys(lambda j: j.stop(name))
    typer.echo(f"journey {name} stopped")


@journey_app.command("report")
def report(name: Name, as_json: Json = False) -> None:
    """Entered, exited, finished, sent, skipped, failed, and the records at each step."""
    data = _journeys(lambda j: j.report(name))
    if as_json:
        typer.echo(json.dumps({k: data[k] for k in ("entered", "exited", "finished", "sent", "skipped", "failed", "at_step")}))
        return
    for k in ("entered", "exited", "finished", "sent", "skipped", "failed"):
        typer.echo(f"{k}: {data[k]}")
    for step, n in data["at_step"].items():
        typer.echo(f"at {step}: {n}")


@journey_app.command("list")
def list_cmd(as_json: Json = False) -> None:
    """Every journey with its status."""
    rows = _journeys(lambda j: j.list_journeys())
    if as_json:
        _echo(rows)
        return
    for r in rows:
        typer.echo(f"{r['name']}\t{r['status']}\t{r['audience']}")


@journey_app.command("show")
def show(name: Name) -> None:
    """A journey's file, status and report (JSON)."""
    _echo(_journeys(lambda j: j.show(name)))


@journey_app.command("advance")
def advance(name: Name, as_json: Json = False) -> None:
    """Advance one live journey to the current clock now (what a worker pass does for each)."""
    from dataclasses import asdict

    r = _journeys(lambda j: j.advance(name))
    if as_json:
        _echo(asdict(r))
    else:
        typer.echo(
            f"journey {r.journey}: +{r.entered} entered, {r.exited} exited, {r.sent} sent, "
            f"{r.skipped} skipped, {r.failed} failed, {r.finished} finished"
        )
    for e in r.errors:
        typer.echo(f"error: {e}", err=True)
    if r.errors:
        raise typer.Exit(1)
