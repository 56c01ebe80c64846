"""``segmenta assignment ...``: work-assignment segments (contract section 6).

The contract's commands, exactly: ``create``, ``activate``, ``deactivate``, ``priority``,
``simulate``, ``show`` and ``list``; besides them ``rerun`` (apply the order in force to every
record its segment lets move, and say what moved) and ``history`` (who moved where, when,
why). ``--json`` prints one JSON document on stdout. Exit 0 done, 2 rejected input (nothing
changed), 1 anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from segmenta.interfaces.cli import app, out
from segmenta.interfaces.cli_segments import with_segments

if TYPE_CHECKING:
    from segmenta.services.segments import Segments

assignment_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="Work-assignment segments: exclusive, prioritised segments of a table."
)
app.add_typer(assignment_app, name="assignment")

Name = Annotated[str, typer.Argument(help="Work-assignment segment name")]
Table = Annotated[str, typer.Argument(help="Model table")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON")]


def _wa(fn: Any) -> Any:
    """``fn(assignments)`` inside an open workspace and store."""
    from segmenta.services.assignment import Assignments

    def run(segs: Segments) -> Any:
        return fn(Assignments(segs))

    return with_segments(run)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _say(text: str) -> None:
    typer.echo(text)


def _routing(r: dict[str, int]) -> str:
    return f"{r['routed']} records routed, {r['moved']} moved, {r['removed']} removed, {r['kept']} kept by --no-move"


@assignment_app.command("create")
def create(
    segment: Annotated[str, typer.Argument(help="Definition file (JSON or YAML); its audience is the table")],
    name: Annotated[str | None, typer.Option(help='Name (default: the definition\'s "name")')] = None,
    priority: Annotated[
        int | None, typer.Option(help="Position in the table's list, 1 is the highest [default: after the last one created]")
    ] = None,
    no_move: Annotated[bool, typer.Option("--no-move", help="A record routed here keeps this segment when updated")] = False,
    description: Annotated[str | None, typer.Option(help='Description (default: the definition\'s "description")')] = None,
    as_json: Json = False,
) -> None:
    """Save a definition as a draft work-assignment segment of its audience table."""
    info = _wa(lambda wa: wa.create(Path(segment), name=name, priority=priority, no_move=no_move, description=description))
    if as_json:
        _echo_json(info)
        return
    _say(f"created work-assignment segment {info['name']} of {info['table']} (draft, priority {info['priority']})")


@assignment_app.command("activate")
def activate(name: Name, as_json: Json = False) -> None:
    """Activate a segment and route its table again (records their segment lets move)."""
    info = _wa(lambda wa: wa.activate(name))
    if as_json:
        _echo_json(info)
        return
    _say(f"{info['name']} is active ({info['size']} records); {_routing(info['routing'])}")


@assignment_app.command("deactivate")
def deactivate(name: Name, as_json: Json = False) -> None:
    """Deactivate a segment; its records, and every record its segment lets move, are routed again."""
    info = _wa(lambda wa: wa.deactivate(name))
    if as_json:
        _echo_json(info)
        return
    _say(f"{info['name']} is inactive; {_routing(info['routing'])}")


@assignment_app.command("priority")
def priority(name: Name, position: Annotated[int, typer.Argument(metavar="N", help="New position, 1 is the highest")]) -> None:
    """Move a segment to position N; the others shift. Routes nothing: the order applies to later changes."""
    info = _wa(lambda wa: wa.priority(name, position))
    _say(f"{info['name']} is now priority {info['priority']} of {info['table']} (nothing routed; `assignment rerun` applies it)")


@assignment_app.command("simulate")
def simulate(name: Name, as_json: Json = False) -> None:
    """The records activating NAME now would route to it; changes nothing."""
    result = _wa(lambda wa: wa.simulate(name))
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    for k in result["keys"]:
        typer.echo(str(k))
    typer.echo(f"{result['count']} records")


@assignment_app.command("show")
def show(table: Table, key: Annotated[str, typer.Argument(help="The record's key")], as_json: Json = False) -> None:
    """The work-assignment segment one record is in (none when inactive or absent)."""
    info = _wa(lambda wa: wa.show(table, key))
    if as_json:
        _echo_json(info)
        return
    where = info["segment"] if info["segment"] is not None else "no segment"
    _say(f"{table} {info['key']}: {where}" + (f" (since {info['since']}, {info['reason']})" if info["since"] else ""))


@assignment_app.command("list")
def list_cmd(table: Table, as_json: Json = False) -> None:
    """The table's work-assignment segments in priority order, default last."""
    rows = _wa(lambda wa: wa.list_segments(table))
    if as_json:
        _echo_json(rows)
        return
    from rich.table import Table as RichTable

    t = RichTable("priority", "name", "status", "size", "no move")
    for r in rows:
        t.add_row(str(r["priority"]), r["name"], r["status"], str(r["size"]), "yes" if r["no_move"] else "")
    out.print(t)


@assignment_app.command("rerun")
def rerun(table: Table, as_json: Json = False) -> None:
    """Apply the priority order in force to every record its segment lets move ("re-run now"); what moved."""
    report = _wa(lambda wa: wa.rerun(table))
    if as_json:
        _echo_json(report)
        return
    _say(f"{table}: {_routing(report)}")


@assignment_app.command("history")
def history(
    table: Table,
    key: Annotated[str | None, typer.Option("--record", help="Only this record's history")] = None,
    limit: Annotated[int, typer.Option(help="At most this many entries, newest first")] = 100,
    as_json: Json = False,
) -> None:
    """Routing history: which record moved from which segment to which, when and why (newest first)."""
    rows = _wa(lambda wa: wa.history(table, key, limit=limit))
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        _say(
            f"{r['at']} {r['key']}: {r['from'] or '-'} -> {r['to'] or '-'} ({r['reason']}{' ' + r['detail'] if r['detail'] else ''})"
        )


# -- assignment rules, sellers and the unassigned queue (issue 12 items 2 and 3) ----------------

rules_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Assignment rules of a work-assignment segment.")
assignment_app.add_typer(rules_app, name="rules")


def _rules(fn: Any) -> Any:
    from segmenta.services.assignment import Assignments
    from segmenta.services.assignment_rules import Rules

    return with_segments(lambda segs: fn(Rules(Assignments(segs))))


@rules_app.command("add")
def rules_add(
    segment: Name,
    rule: Annotated[Path, typer.Argument(help="Rule file (JSON or YAML): name, where, pool, distribution, ...")],
    position: Annotated[
        int | None, typer.Option(help="Place in the segment's rules, 1 is evaluated first [default: last]")
    ] = None,
) -> None:
    """Add an (inactive) assignment rule to a segment."""
    from segmenta.workspace import read_definition

    def run(r: Any) -> Any:
        return r.add(segment, dict(read_definition(rule)), position=position)

    info = _rules(run)
    _say(f"{segment}: {len(info['rules'])} rules")


@rules_app.command("activate")
def rules_activate(segment: Name, rule: Annotated[str, typer.Argument(help="Rule name")]) -> None:
    """Activate a rule (at most 10 active per segment)."""
    _rules(lambda r: r.set_active(segment, rule, True))
    _say(f"{segment}: rule {rule} is active")


@rules_app.command("deactivate")
def rules_deactivate(segment: Name, rule: Annotated[str, typer.Argument(help="Rule name")]) -> None:
    """Deactivate a rule."""
    _rules(lambda r: r.set_active(segment, rule, False))
    _say(f"{segment}: rule {rule} is inactive")


@rules_app.command("list")
def rules_list(segment: Name, as_json: Json = False) -> None:
    """A segment's rules in evaluation order."""
    rows = _rules(lambda r: r.list_rules(segment))
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        _say(f"{row['position']}. {row['name']} ({'active' if row['active'] else 'inactive'})")


@assignment_app.command("queue")
def queue(table: Table, as_json: Json = False) -> None:
    """The unassigned queue: records no seller could take, with why."""
    rows = _rules(lambda r: r.queue(table))
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        _say(f"{row['key']}: {row['reason']} (since {row['since']})")
    _say(f"{len(rows)} queued")


@assignment_app.command("retry")
def retry(table: Table, as_json: Json = False) -> None:
    """Try the unassigned queue again."""
    counts = _rules(lambda r: r.retry(table))
    if as_json:
        _echo_json(counts)
        return
    _say(f"{table}: {counts['assigned']} assigned, {counts['queued']} still queued")


@assignment_app.command("assign")
def assign(
    table: Table,
    key: Annotated[str, typer.Argument(help="The record's key")],
    seller: Annotated[str, typer.Argument(help="The seller's key")],
) -> None:
    """Assign a record to a seller by hand (counts toward the seller's capacity)."""
    _rules(lambda r: r.manual(table, key, seller))
    _say(f"{table} {key}: assigned to {seller} by hand")


@assignment_app.command("seller")
def seller(
    table: Annotated[str, typer.Argument(help="The sellers' model table")],
    key: Annotated[str, typer.Argument(help="The seller's key")],
    as_json: Json = False,
) -> None:
    """One seller's load against capacity, availability now and assigned records."""
    info = _rules(lambda r: r.seller(table, key))
    if as_json:
        _echo_json(info)
        return
    _say(f"seller {info['seller']}: {info['load']} of {info['capacity']} ({'available' if info['available_now'] else 'off'})")
