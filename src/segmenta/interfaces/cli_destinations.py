"""``segmenta destination ...``: where segments are sent (contract section 8).

``create NAME --kind KIND [--set KEY=VALUE ...] [--secret KEY=@FILE ...]``, ``test NAME``,
``send NAME SEGMENT [--columns a,b] [--json]`` are the contract's; ``list``, ``show``, ``set``,
``delete``, ``history``, ``attach`` / ``detach`` (auto-send after refreshes), ``kinds`` and
``rotate-key`` are extensions. Secrets are read from files (``@FILE``; ``@-`` reads stdin), so
they appear in no shell history or process list, and are never printed back.
The command line acts as the workspace's owner: an admin.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from segmenta.errors import Problem, RejectedInput
from segmenta.interfaces.cli import app
from segmenta.interfaces.cli_segments import with_segments

T = TypeVar("T")

destination_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Send segments to Dynamics 365 and elsewhere.")
app.add_typer(destination_app, name="destination")

Name = Annotated[str, typer.Argument(help="Destination name")]
Sets = Annotated[list[str] | None, typer.Option("--set", help="A setting KEY=VALUE (repeatable)")]
Secrets = Annotated[list[str] | None, typer.Option("--secret", help="A secret KEY=@FILE read from FILE (repeatable)")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _with(fn: Any) -> Any:
    from segmenta.destinations.service import Destinations

    return with_segments(lambda segs: fn(Destinations(segs)))


def read_secrets(pairs: list[str] | None) -> dict[str, str]:
    """``KEY=@FILE`` pairs as {KEY: the file's text, trailing newline dropped}; exit 2 naming a bad one."""
    out: dict[str, str] = {}
    problems: list[Problem] = []
    for pair in pairs or []:
        key, sep, ref = pair.partition("=")
        key = key.strip()
        if not sep or not key or not ref.startswith("@"):
            problems.append(Problem(f"--secret {key or pair.split('=')[0]}", "must be KEY=@FILE (the value is read from FILE)"))
            continue
        path = ref[1:]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            problems.append(Problem(f"--secret {key}", f"cannot read {path}: {exc.strerror or exc}"))
            continue
        out[key] = text.rstrip("\r\n")
    if problems:
        raise RejectedInput(problems)
    return out


def _secrets(pairs: list[str] | None) -> dict[str, str]:
    from segmenta.interfaces.cli import errors

    with errors():
        return read_secrets(pairs)


@destination_app.command("create")
def create(
    name: Name,
    kind: Annotated[str, typer.Option("--kind", help="dynamics365-marketing, file, webhook, or an installed kind")],
    sets: Sets = None,
    secret: Secrets = None,
    as_json: Json = False,
) -> None:
    """Create a destination; settings are checked by its kind, secrets stored encrypted (never printed)."""
    values = _secrets(secret)
    view = _with(lambda d: d.create(name, kind=kind, sets=list(sets or []), secret_values=values))
    typer.echo(json.dumps(view) if as_json else f"destination {view['name']!r} created (kind {view['kind']})")


@destination_app.command("set")
def update(name: Name, sets: Sets = None, secret: Secrets = None, as_json: Json = False) -> None:
    """Change settings and replace secrets of a destination."""
    values = _secrets(secret)
    view = _with(lambda d: d.update(name, sets=list(sets or []), secret_values=values))
    typer.echo(json.dumps(view) if as_json else f"destination {view['name']!r} updated")


@destination_app.command("show")
def show(name: Name) -> None:
    """A destination as JSON: kind, settings, which secrets are set (never their values), auto-send segments."""
    typer.echo(json.dumps(_with(lambda d: d.show(name)), indent=2))


@destination_app.command("list")
def list_(as_json: Json = False) -> None:
    """Every destination."""
    rows = _with(lambda d: d.all())
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(
            f"{r['name']}\t{r['kind']}\tpii={'yes' if r['pii'] else 'no'}\tadmin_only={'yes' if r['admin_only'] else 'no'}"
        )


@destination_app.command("kinds")
def kinds_(as_json: Json = False) -> None:
    """The kinds of destination installed (built-in and from the segmenta.destinations entry points)."""
    from segmenta.destinations.service import Destinations

    rows = Destinations.kinds()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['kind']}\tsecrets: {', '.join(r['secrets']) or '-'}\t{r['description']}")


@destination_app.command("delete")
def delete(name: Name) -> None:
    """Delete a destination and its send history (nothing is removed at the receiver)."""
    _with(lambda d: d.delete(name))
    typer.echo(f"destination {name!r} deleted")


@destination_app.command("test")
def test(name: Name) -> None:
    """Check the destination's settings and credentials against the receiver (exit 1 when it fails)."""
    typer.echo(_with(lambda d: d.test(name)))


@destination_app.command("send")
def send(
    name: Name,
    segment: Annotated[str, typer.Argument(help="Saved segment name")],
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated columns of the audience to send")] = None,
    delta: Annotated[bool, typer.Option("--delta", help="Only what changed since the last successful send")] = False,
    as_json: Json = False,
) -> None:
    """Send a saved segment's members; --json prints {"rows", "calls", "retries", "rejected"}."""
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    mode = "delta" if delta else "full"
    result, send_id = _with(lambda d: d.send(name, segment, columns=cols, mode=mode))
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        typer.echo(
            f"sent {result.rows} rows to {name!r} in {result.calls} calls ({result.retries} retries, "
            f"{len(result.rejected)} rejected)"
        )
    if result.detail.get("rejected_file"):
        typer.echo(f"rejected ids: {result.detail['rejected_file']}", err=True)


@destination_app.command("history")
def history(name: Name, as_json: Json = False) -> None:
    """The destination's sends, newest first, failures with their message."""
    rows = _with(lambda d: d.history(name))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(
            f"{r['id']}\t{r['started_at']}\t{r['segment']}\t{r['mode']}\t{r['status']}\trows {r['rows']}\t"
            f"calls {r['calls']}\tretries {r['retries']}\trejected {r['rejected']}"
            + (f"\t{r['message']}" if r["message"] else "")
        )


@destination_app.command("attach")
def attach(
    name: Name,
    segment: Annotated[str, typer.Argument(help="Saved segment name")],
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated columns to send")] = None,
) -> None:
    """Send SEGMENT to NAME after each of its refreshes (what changed since the last send)."""
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    _with(lambda d: d.attach(name, segment, columns=cols))
    typer.echo(f"{segment!r} is sent to {name!r} after each refresh")


@destination_app.command("detach")
def detach(name: Name, segment: Annotated[str, typer.Argument(help="Saved segment name")]) -> None:
    """Stop sending SEGMENT to NAME after refreshes."""
    _with(lambda d: d.detach(name, segment))
    typer.echo(f"{segment!r} is no longer sent to {name!r} after refreshes")


@destination_app.command("sync")
def sync(as_json: Json = False) -> None:
    """Send every attached segment that changed since its last send (a delta); run it after refreshes.

    Exit 1 when a destination failed (the others are sent; the failure is in its history).
    """
    rows = _with(lambda d: d.sync())
    if as_json:
        typer.echo(json.dumps(rows))
    else:
        for r in rows:
            if r.get("error"):
                typer.echo(f"error: {r['segment']!r} to {r['destination']!r}: {r['error']}", err=True)
            else:
                typer.echo(f"sent {r['segment']!r} to {r['destination']!r}: {r['rows']} rows, {r['calls']} calls")
        if not rows:
            typer.echo("nothing changed since the last sends")
    if any(r.get("error") for r in rows):
        raise typer.Exit(1)


@destination_app.command("rotate-key")
def rotate_key() -> None:
    """Re-encrypt every destination's secrets with a new key (destinations.key), dropping the old key."""
    n = _with(lambda d: d.rotate_key())
    typer.echo(f"re-encrypted the secrets of {n} destinations")
