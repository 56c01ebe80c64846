"""``segmenta records upsert|delete TABLE FILE|-``: record changes in (contract 5.2).

Each command checks the whole file like ``load`` (exit 2 naming the row and column, nothing
applied), applies it in one engine transaction, and then refreshes IN FULL the live dynamic
segments whose reads include a changed column (and their ``in_segment`` readers); a segment
whose refresh fails does not stop the others: it is named on stderr, made due now, and the
command exits 1 (the change itself is applied). The full
refresh is the temporary membership path until the membership store's partial-write API
exists; it is not incremental yet.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from segmenta.interfaces.cli import app
from segmenta.interfaces.cli_segments import with_segments

if TYPE_CHECKING:
    from segmenta.services import records as records_service

records_app = typer.Typer(no_args_is_help=True, help="Record changes: upsert or delete records of a model table.")
app.add_typer(records_app, name="records")

Source = Annotated[str, typer.Argument(help=".csv, .json (an array) or .ndjson file; - reads NDJSON from stdin")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object")]


@records_app.command("upsert")
def upsert(
    table: Annotated[str, typer.Argument(help="Model table")],
    source: Source,
    as_json: AsJson = False,
) -> None:
    """Insert records with new keys, update the others (only the columns a row gives; empty or null sets null).

    A row's _change_id seen before is skipped. Afterwards the live dynamic segments that read
    a changed column are refreshed in full (temporary: not incremental yet).
    """
    from segmenta.services import records

    result = with_segments(lambda segs: records.upsert(segs, table, source))
    _report(result, as_json=as_json)


@records_app.command("delete")
def delete(
    table: Annotated[str, typer.Argument(help="Model table")],
    source: Source,
    as_json: AsJson = False,
) -> None:
    """Delete the records whose keys the rows give (unknown keys are counted, not an error).

    Afterwards the live dynamic segments that read the table are refreshed in full
    (temporary: not incremental yet).
    """
    from segmenta.services import records

    result = with_segments(lambda segs: records.delete(segs, table, source))
    _report(result, as_json=as_json)


def _report(result: records_service.RecordsResult, *, as_json: bool) -> None:
    """The summary; then, when a segment's refresh failed, each one on stderr and exit 1 (the change itself is applied)."""
    typer.echo(json.dumps(result.to_dict()) if as_json else result.summary())
    if result.failed:
        for f in result.failed:
            typer.echo(
                f"error: segment {f['segment']!r} was not refreshed ({f['error']}); "
                "its members stay as they were and it is due now: `segmenta worker --once` refreshes it",
                err=True,
            )
        raise typer.Exit(1)
