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
from typing import TYPE_CHECKING, Annotated, Any

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


@records_app.command("consume")
def consume(
    nats_url: Annotated[str, typer.Option("--nats", help="NATS server URL, e.g. nats://127.0.0.1:4222")],
    stream: Annotated[str, typer.Option("--stream", help="JetStream stream (created when missing)")] = "SEGMENTA_RECORDS",
    durable: Annotated[str, typer.Option("--durable", help="Durable consumer name (keeps its place across restarts)")] = (
        "segmenta-records"
    ),
    subject: Annotated[str, typer.Option("--subject", help="Subject prefix: messages are PREFIX.<table>.<upsert|delete>")] = (
        "segmenta.records"
    ),
    dead_letter: Annotated[
        str | None, typer.Option("--dead-letter", help="Subject of rejected messages (default segmenta.deadletter.<stream>)")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=100_000, help="Most messages fetched and applied at once")] = 500,
    ack_wait: Annotated[
        float, typer.Option("--ack-wait", min=0.5, max=86_400, help="Seconds before an unacked message is delivered again")
    ] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Apply every message not yet acked, then exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per applied batch, and the totals at the end")] = False,
) -> None:
    """Apply record changes from a NATS JetStream stream (an extension of contract 5.2).

    Each message is PREFIX.<table>.<upsert|delete> with a JSON array, one object or NDJSON of
    rows, applied like `records upsert|delete` and acked only after it is committed (at least
    once; a message delivered again is skipped by its change id, the Nats-Msg-Id header or the
    stream sequence). A bad message is rejected whole, sent to the dead-letter subject with its
    reason and never blocks the next. Stops on SIGTERM/SIGINT after the batch in hand; exit 1
    when a change could not be applied for a reason not its own (with --once) or NATS is unreachable.
    """
    from segmenta.realtime.nats import NatsOptions

    options = NatsOptions(
        url=nats_url, stream=stream, durable=durable, prefix=subject.rstrip("."), dead_letter=dead_letter, ack_wait_s=ack_wait
    )
    totals = with_segments(lambda segs: _consume(segs, options, batch=batch, once=once, as_json=as_json))
    if totals is None:
        raise typer.Exit(1)
    typer.echo(json.dumps({"totals": totals.to_dict()}) if as_json else _totals_line(totals), err=not as_json)
    if totals.retried:
        raise typer.Exit(1)


def _consume(segs: Any, options: Any, *, batch: int, once: bool, as_json: bool) -> Any:
    """Run the consumer until drained (--once) or a signal; None when NATS could not be reached (said on stderr)."""
    import asyncio
    import signal

    from nats.errors import Error as NatsError

    from segmenta.realtime.consumer import consume as run
    from segmenta.realtime.nats import NatsSource

    # checked before anything is consumed: on Spark every message would be refused (and dead-lettered)
    if not segs.ws.engine.supports_record_changes:
        from segmenta.errors import Problem, RejectedInput

        raise RejectedInput(
            [
                Problem(
                    "--engine", f"record changes need a transactional engine (duckdb or postgres), not {segs.ws.engine.dialect}"
                )
            ]
        )
    stopping = False

    def stop() -> bool:
        return stopping

    def report(kind: str, what: Any, where: list[str]) -> None:
        named = where[0] if len(where) == 1 else f"{where[0]} .. {where[-1]} ({len(where)} messages)"
        if kind == "applied":
            line = (
                json.dumps({"applied": named, "messages": len(where), **what.to_dict()})
                if as_json
                else f"{named}: {what.summary()}"
            )
            typer.echo(line)
            for f in what.failed:
                typer.echo(f"error: segment {f['segment']!r} was not refreshed ({f['error']}); it is due now", err=True)
        else:
            typer.echo(f"{kind}: {named}: {what}", err=True)

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        connected = False

        def on_signal() -> None:  # consuming: stop after the batch in hand; still connecting: give up now
            nonlocal stopping
            stopping = True
            if not connected and task is not None:
                task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        source = NatsSource(options)
        try:
            await source.__aenter__()
        except (OSError, TimeoutError, NatsError) as exc:
            typer.echo(f"error: cannot reach NATS at {options.url}: {exc or type(exc).__name__}", err=True)
            return None
        except asyncio.CancelledError:
            typer.echo("stopped before the consumer was connected", err=True)
            return None
        connected = True
        try:
            return await run(source, segs, batch=batch, once=once, stop=stop, report=report)
        finally:
            await source.__aexit__(None, None, None)

    return asyncio.run(main())


def _totals_line(totals: Any) -> str:
    return (
        f"consumed {totals.messages} messages: {totals.applied} applied, {totals.rejected} rejected, "
        f"{totals.retried} to retry; {totals.inserted} inserted, {totals.updated} updated, {totals.deleted} deleted, "
        f"{totals.skipped} skipped duplicates"
    )
