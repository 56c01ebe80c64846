"""CLI of saved segments (contract 5.1): ``segmenta segment create|edit|publish|...`` and ``segmenta worker``.

Registered on ``segment_app`` and ``app`` of :mod:`segmenta.interfaces.cli` (imported at its end).
Besides the contract's commands: ``rename``, ``delete``, ``restore``, ``versions``, ``add`` and
``remove`` (static lists, by key), ``configure`` (a segment's refresh/expiry settings), ``use`` /
``unuse`` (register a user such as a journey by hand). ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from segmenta.errors import RejectedInput
from segmenta.interfaces.cli import app, err, errors, flags, out, segment_app, settings, workspace_path, write_keys

if TYPE_CHECKING:  # imported inside the commands: registering them must stay cheap (cli.py)
    from segmenta.services.lifecycle_base import RefreshResult
    from segmenta.services.segments import Segments

T = TypeVar("T")
Name = Annotated[str, typer.Argument(help="Saved segment name")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _store_url() -> str | None:
    return flags().store


def RichTable(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - stands in for rich.table.Table, imported on use
    from rich.table import Table

    return Table(*args, **kwargs)


def with_segments(fn: Callable[[Segments], T]) -> T:
    from segmenta.services.segments import Segments

    with errors(), Segments.open(workspace_path(), store_url=_store_url(), engine=flags().engine) as segs:
        return fn(segs)


#: How long a read-only command waits for the workspace's data before it shows the store's view.
READ_WAIT = 2.0


def with_views(fn: Callable[[Any], T]) -> T:
    """``fn`` on the segments, or, while another process holds the data (a worker refreshing, serve),
    on the metadata store alone: show, list, versions and history need nothing else."""
    from segmenta.errors import WorkspaceBusy
    from segmenta.services.segments import Segments

    with errors():
        try:
            with Segments.open(workspace_path(), store_url=_store_url(), engine=flags().engine, wait=READ_WAIT) as segs:
                return fn(segs)
        except WorkspaceBusy as exc:
            err.print(
                f"note: {exc}; showing the metadata store (sizes as of the last finished refresh)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return _on_store(fn)


def _on_store(fn: Callable[[Any], T]) -> T:
    from segmenta.services.segment_views import StoredSegments
    from segmenta.services.stores import open_store

    chosen = settings()
    store = open_store(chosen.workspace, chosen.config)
    try:
        return fn(StoredSegments(store))
    finally:
        store.close()


@contextmanager
def _busy(what: str) -> Iterator[None]:
    """A spinner on stderr while a refresh or import runs (silent when stderr is not a terminal)."""
    with err.status(what):
        yield


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _say(text: str) -> None:
    out.print(text, highlight=False, markup=False)


def _result(r: RefreshResult, verb: str) -> None:
    if r.note:
        _say(f"{r.name}: {r.note}")
    version = f", version {r.version}" if r.version is not None else ""
    _say(f"{r.name} {verb}: {r.size} members (+{r.entered} entered, -{r.exited} exited{version})")


# -- create and change ------------------------------------------------------------------


@segment_app.command("create")
def create(
    segment: Annotated[str | None, typer.Argument(help="Definition file (JSON or YAML)")] = None,
    name: Annotated[str | None, typer.Option(help='Name (default: the definition\'s "name")')] = None,
    snapshot: Annotated[bool, typer.Option("--snapshot", help="A static snapshot: members fixed when published")] = False,
    as_list: Annotated[bool, typer.Option("--list", help="An empty static list (needs --audience and --name)")] = False,
    audience: Annotated[str | None, typer.Option(help="Audience table of a --list")] = None,
) -> None:
    """Save a definition as a Draft segment, or create an empty static list."""

    def run(segs: Segments) -> dict[str, Any]:
        if as_list:
            if segment is not None or snapshot:
                raise RejectedInput("--list creates an empty list: give --audience and --name, no definition file or --snapshot")
            if not audience or not name:
                raise RejectedInput("--list needs --audience TABLE and --name NAME")
            return segs.create_list(audience=audience, name=name)
        if segment is None:
            raise RejectedInput("give a definition file (or --list --audience TABLE --name NAME)")
        return segs.create(Path(segment), name=name, snapshot=snapshot)

    info = with_segments(run)
    _say(f"created {info['kind']} segment {info['name']} ({info['status']}, version {info['version']})")


@segment_app.command("edit")
def edit(name: Name, segment: Annotated[str, typer.Argument(help="Definition file (JSON or YAML)")]) -> None:
    """Save a new version; a published segment keeps its live version and members until publish."""
    with _busy(f"saving {name}"):
        info = with_segments(lambda s: s.edit(name, Path(segment)))
    if info["live_version"] is not None and info["draft_version"] is not None:
        _say(
            f"{info['name']}: draft version {info['draft_version']} saved; version {info['current_version']} "
            f"stays in force ({info['status']}, {info['size']} members) until: segmenta segment publish {info['name']}"
        )
    else:
        _say(f"{info['name']}: version {info['version']} is current ({info['status']}, {info['size']} members)")


@segment_app.command("rename")
def rename(name: Name, new_name: Annotated[str, typer.Argument(help="New name")]) -> None:
    """Rename a segment."""
    with_segments(lambda s: s.rename(name, new_name))
    _say(f"renamed {name} to {new_name}")


@segment_app.command("delete")
def delete(name: Name) -> None:
    """Delete a segment (soft: 'segment restore' brings it back)."""
    with_segments(lambda s: s.delete(name))
    _say(f"deleted {name} (restore with: segmenta segment restore {name})")


@segment_app.command("restore")
def restore(name: Name) -> None:
    """Bring back a deleted segment."""
    info = with_segments(lambda s: s.restore(name))
    _say(f"restored {name} ({info['status']})")


@segment_app.command("configure")
def configure(
    name: Name,
    refresh_minutes: Annotated[int | None, typer.Option(help="Fixed refresh cadence in minutes")] = None,
    expiry_days: Annotated[int | None, typer.Option(help="Days unused before it expires")] = None,
    interaction_tables: Annotated[str | None, typer.Option(help="Comma-separated interaction-like tables")] = None,
) -> None:
    """Set a segment's own refresh and expiry settings (over segmenta.yaml's)."""
    settings = {"refresh_minutes": refresh_minutes, "expiry_days": expiry_days, "interaction_tables": interaction_tables}
    info = with_segments(lambda s: s.configure(name, {k: v for k, v in settings.items() if v is not None}))
    _say(f"{name}: settings {json.dumps(info['settings'])}; next refresh {info['next_refresh_at']}")


# -- status -------------------------------------------------------------------------------


@segment_app.command("publish")
def publish(name: Name) -> None:
    """Draft -> Live: validate against the current model and evaluate."""
    with _busy(f"publishing {name}"):
        r, dependents = with_segments(lambda s: (s.publish(name), s.last_dependents))
    _result(r, "is live")
    _followers(dependents)


def _followers(dependents: tuple[list[RefreshResult], list[tuple[str, str]]]) -> None:
    """The live segments reading the one just changed, refreshed after it."""
    done, failed = dependents
    for d in done:
        _result(d, "refreshed after it")
    for n, why in failed:
        err.print(f"failed to refresh {n} after it: {why}", markup=False, highlight=False)


@segment_app.command("refresh")
def refresh(name: Name) -> None:
    """Re-evaluate a live dynamic segment now."""
    with _busy(f"refreshing {name}"):
        r, dependents = with_segments(lambda s: (s.refresh(name), s.last_dependents))
    if r.run_id is None:
        _say(f"{r.name}: {r.note}")
        return
    _result(r, "refreshed")
    _followers(dependents)


@segment_app.command("stop")
def stop(name: Name) -> None:
    """Live -> Stopped (refused while live segments or journeys use it)."""
    with_segments(lambda s: s.stop(name))
    _say(f"{name} stopped")


@segment_app.command("activate")
def activate(
    name: Name,
    status_reason: Annotated[str, typer.Option("--status-reason", help="draft or ready")],
) -> None:
    """Set to draft, or ready (go live); an expired segment goes to draft first."""
    info = with_segments(lambda s: s.activate(name, status_reason))
    _say(f"{name} is {info['status']} ({info['size']} members)")


@segment_app.command("use")
def use(
    name: Name,
    kind: Annotated[str, typer.Option(help="Kind of user: journey, destination, work_assignment")] = "journey",
    user: Annotated[str, typer.Option(help="The user's name")] = "",
    role: Annotated[str, typer.Option(help="Role, e.g. entry, exclusion, exit")] = "",
) -> None:
    """Record that something (a journey...) uses a live segment."""
    from segmenta.services.usages import register_usage

    with_segments(lambda s: register_usage(s, name, kind=kind, user=user, role=role))
    _say(f"{name} is used by {kind} {user}")


@segment_app.command("unuse")
def unuse(
    name: Name,
    kind: Annotated[str, typer.Option(help="Kind of user")] = "journey",
    user: Annotated[str, typer.Option(help="The user's name")] = "",
    role: Annotated[str, typer.Option(help="Role")] = "",
) -> None:
    """Record that a user stopped using a segment."""
    from segmenta.services.usages import unregister_usage

    with_segments(lambda s: unregister_usage(s, name, kind=kind, user=user, role=role))
    _say(f"{name} is no longer used by {kind} {user}")


# -- members ------------------------------------------------------------------------------


@segment_app.command("members")
def members(
    name: Name,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the member keys to this CSV")] = None,
) -> None:
    """The stored members (no re-evaluation); prints 'N members' last."""
    key, keys = with_segments(lambda s: s.members(name))
    if out_file is not None:
        with errors():
            write_keys(out_file, key, keys)
    _say(f"{len(keys)} members")


@segment_app.command("add")
def add(name: Name, keys: Annotated[list[str], typer.Argument(help="Record keys")]) -> None:
    """Add records to a static list by key."""
    r, dependents = with_segments(lambda s: (s.add(name, keys), s.last_dependents))
    _result(r, "updated")
    _followers(dependents)


@segment_app.command("remove")
def remove(name: Name, keys: Annotated[list[str], typer.Argument(help="Record keys")]) -> None:
    """Remove records from a static list by key."""
    r, dependents = with_segments(lambda s: (s.remove(name, keys), s.last_dependents))
    _result(r, "updated")
    _followers(dependents)


@segment_app.command("import-csv")
def import_csv_cmd(
    name: Name,
    file: Annotated[Path, typer.Argument(help="CSV with a header and an email (or emailaddress1) column")],
    not_found: Annotated[Path | None, typer.Option("--not-found", help="Write the rows not found here (CSV)")] = None,
    as_json: Json = False,
    column: Annotated[
        str | None, typer.Option("--column", help="The file's email column, when its header is not email/E-mail Address/...")
    ] = None,
) -> None:
    """Add the active records whose email matches the file's to a static list."""
    from rich.console import Console
    from rich.progress import Progress

    from segmenta.services.csvimport import STEPS, import_csv

    console = err if isinstance(err, Console) else err.console()  # the CLI's stderr console may be made lazily
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing", total=len(STEPS))

        def step(what: str) -> None:
            progress.update(task, description=what, completed=STEPS.index(what))

        result = with_segments(lambda s: import_csv(s, name, file, not_found=not_found, progress=step, column=column))
    if as_json:
        _echo_json(result.to_json())
        return
    _say(f"read {result.read}, found {result.found}, not found {result.not_found}, duplicates {result.duplicates}")
    for warning in result.warnings():
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    _say(f"{result.members} members")


# -- inspection ---------------------------------------------------------------------------


@segment_app.command("list")
def list_cmd(
    as_json: Json = False, deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted segments")] = False
) -> None:
    """Saved segments with status, kind, version and size."""
    rows = with_views(lambda s: s.list_segments(deleted=deleted))
    if as_json:
        _echo_json(rows)
        return
    table = RichTable("name", "status", "kind", "audience", "version", "size", "next refresh")
    for r in rows:
        kind = r["static_type"] or r["kind"]
        table.add_row(
            r["name"] + (" (deleted)" if r["deleted"] else ""),
            r["status"] + (f" (draft v{r['draft_version']})" if r["live_version"] and r["draft_version"] else ""),
            kind,
            r["audience"],
            str(r["version"]),
            str(r["size"]),
            r["next_refresh_at"] or "",
        )
    out.print(table)


@segment_app.command("show")
def show(
    name: Name,
    as_json: Json = False,
    version: Annotated[int | None, typer.Option(help="Print this saved version's definition")] = None,
) -> None:
    """One segment's status, kind, version, size and schedule (or a version's definition)."""

    def run(segs: Any) -> dict[str, Any]:
        info = segs.show(name)
        versions = segs.versions(name)
        wanted = version if version is not None else info["version"]
        match = [v for v in versions if v["version"] == wanted]
        if not match:
            raise RejectedInput(f"--version: {name} has versions 1..{info['version']}, not {wanted}")
        info["definition"] = match[0]["definition"]
        return info

    info = with_views(run)
    if as_json or version is not None:
        _echo_json(info if as_json else info["definition"])
        return
    table = RichTable("field", "value", show_header=False)
    for k, v in info.items():
        if k == "used_by":
            v = ", ".join(f"{u['kind']} {u['name']}" + (f" ({u['role']})" if u["role"] else "") for u in v) or None
        elif k == "lease":
            continue  # said in full by "waiting"
        if k != "definition":
            table.add_row(k, "" if v is None else str(v))
    out.print(table)


@segment_app.command("versions")
def versions(name: Name, as_json: Json = False) -> None:
    """Every saved version of a segment's definition."""
    rows = with_views(lambda s: s.versions(name))
    if as_json:
        _echo_json(rows)
        return
    table = RichTable("version", "saved at", "definition")
    for r in rows:
        table.add_row(str(r["version"]), r["created_at"] or "", json.dumps(r["definition"])[:80])
    out.print(table)


@segment_app.command("history")
def history(
    name: Name,
    record: Annotated[str | None, typer.Option("--record", help="One record's entries and exits")] = None,
    as_json: Json = False,
) -> None:
    """Sizes over time (each refresh with who entered and exited), or one record's history."""

    def run(segs: Any) -> list[dict[str, Any]]:
        if record is None:
            return segs.history(name)
        seg = segs._detached(name)
        return segs.record_history(name, segs.parse_keys(seg.audience, [record])[0])

    rows = with_views(run) if record is None else with_segments(run)
    if as_json:
        _echo_json(rows)
        return
    cols = (
        ["at", "change", "version", "refresh"]
        if record is not None
        else ["refresh", "at", "trigger", "status", "version", "size", "entered", "exited"]
    )
    table = RichTable(*cols)
    for r in rows:
        table.add_row(*["" if r[c] is None else str(r[c]) for c in cols])
    out.print(table)


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit")] = False,
    interval: Annotated[
        float | None,
        typer.Option(min=1, max=86_400, help="Seconds between passes (default: segments.worker.interval_seconds, 60)"),
    ] = None,
) -> None:
    """Run due refreshes (dependency order) and expiry checks; several workers may share a PostgreSQL store.

    Exit status with --once: 0 when every step succeeded, 1 when any segment failed (the others were done).
    """
    import time

    from segmenta.services.worker import Worker

    with errors():
        w = Worker(workspace_path(), store_url=_store_url(), engine=flags().engine)
        try:
            while True:
                report = w.run_once()
                for r in report.refreshed:
                    _say(f"refreshed {r.name}: {r.size} members (+{r.entered} -{r.exited})")
                for n in report.expired:
                    _say(f"expired {n}")
                for j in report.journeys:
                    if j.entered or j.exited or j.moved or j.sent or j.skipped or j.failed:
                        _say(
                            f"journey {j.journey}: +{j.entered} entered, {j.exited} exited, {j.sent} sent, "
                            f"{j.skipped} skipped, {j.failed} failed, {j.finished} finished"
                        )
                for n, why in report.failed:
                    err.print(f"failed {n}: {why}", markup=False, highlight=False)
                if once:
                    break
                time.sleep(interval if interval is not None else w.config.interval_seconds)
        finally:
            w.close()
    if report.failed:
        raise typer.Exit(1)
