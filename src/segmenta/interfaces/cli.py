"""The ``segmenta`` command line (contract section 5): a thin layer over :class:`segmenta.Workspace`.

Exit status: 0 done; 2 rejected input (nothing changed); 1 anything else.

Start-up is part of the interface: ``segmenta --help`` imports typer and nothing of segmenta's
engines, store or services, and each command imports what it uses inside its function. Keep it
so in command modules too (``cli_*.py`` register on :data:`app` when this module is imported):
heavy imports (pyarrow, duckdb, sqlglot, SQLAlchemy, the services, rich's tables and progress
bars) go inside the command functions. ``benchmarks/cli_startup.py`` measures it.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from segmenta.errors import Problem, RejectedInput, SegmentaError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from segmenta.settings import Settings
    from segmenta.workspace import Workspace

# rich_markup_mode=None: help and usage errors are formatted by click, without typer.rich_utils
# (rich's markdown and syntax highlighting), which would cost more than the rest of --help.
app = typer.Typer(
    no_args_is_help=True, add_completion=False, rich_markup_mode=None, help="segmenta: customer segments over your data."
)
segment_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Evaluate, inspect and manage segments.")
app.add_typer(segment_app, name="segment")


class _LazyConsole:
    """A rich Console made on first use, so commands that print nothing rich do not import rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def console(self) -> Console:
        """The rich Console itself (made now if need be)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console(), name)


out: Any = _LazyConsole()
err: Any = _LazyConsole(stderr=True)

T = TypeVar("T")


@dataclass(frozen=True)
class Flags:
    """The global options of one invocation, carried by click's context (no module state outlives a command)."""

    workspace: Path | None = None
    engine: str | None = None
    store: str | None = None


@app.callback()
def _main(
    ctx: typer.Context,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Workspace directory [default: $SEGMENTA_WORKSPACE or ./segmenta-workspace]"),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", help="duckdb, spark or postgres [default: 'engine' in the workspace's segmenta.yaml, else duckdb]"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Segment store URL, e.g. postgresql://user@host/db [default: $SEGMENTA_STORE_URL, else W/store.sqlite]",
        ),
    ] = None,
) -> None:
    token = _flags.set(Flags(workspace=workspace, engine=engine, store=store))
    ctx.call_on_close(lambda: _flags.reset(token))  # a later command in this process starts from the defaults


#: The running invocation's options; set by the callback and reset when its context closes.
_flags: ContextVar[Flags] = ContextVar("segmenta_cli_flags", default=Flags())  # noqa: B039 - Flags is frozen


def flags() -> Flags:
    """This invocation's global options (the defaults outside a command, e.g. a test calling a helper)."""
    return _flags.get()


def workspace_path() -> Path:
    given = flags().workspace
    if given is not None:
        return given
    from segmenta.settings import default_workspace

    return default_workspace()


def settings() -> Settings:
    """The settings of this invocation: its flags over the environment over the workspace's segmenta.yaml."""
    from segmenta.settings import load_settings

    f = flags()
    return load_settings(workspace_path(), engine=f.engine, store=f.store)


def fail(exc: BaseException) -> NoReturn:
    """Report an error on stderr, one problem per line, and exit with the contract's status."""
    if isinstance(exc, RejectedInput):
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(2)
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(1)


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except SegmentaError as exc:
        fail(exc)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(1) from None


def with_workspace(fn: Callable[[Workspace], T]) -> T:
    with errors():
        from segmenta.services.saved_segments import with_saved_segments  # no SQLAlchemy until in_segment
        from segmenta.workspace import Workspace

        ws = with_saved_segments(Workspace.open(settings=settings()))
        try:
            return fn(ws)
        finally:
            ws.close()


# -- workspace commands --------------------------------------------------------------


@app.command()
def init(
    model: Annotated[Path | None, typer.Option(help="The data model (model.yaml); default: the sample CRM model")] = None,
    sample: Annotated[bool, typer.Option("--sample", help="Fill the workspace with a generated sample CRM")] = False,
    contacts: Annotated[int, typer.Option(help="Sample size in contacts")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed for the sample")] = 42,
) -> None:
    """Create a workspace from a model, or from the sample CRM."""
    with errors():
        from segmenta.workspace import Workspace

        path = workspace_path()
        if sample:
            with _progress() as progress:
                tasks: dict[str, Any] = {}

                def report(table: str, done: int, total: int) -> None:
                    if table not in tasks:
                        tasks[table] = progress.add_task(table, total=total)
                    progress.update(tasks[table], completed=done)

                ws = Workspace.init(path, sample=True, contacts=contacts, seed=seed, progress=report, engine=flags().engine)
        else:
            ws = Workspace.init(path, model=model, engine=flags().engine)
        tables = ", ".join(ws.model.tables)
        ws.close()
    typer.echo(f"workspace ready at {path} (tables: {tables})")


@app.command()
def load(
    table: Annotated[str, typer.Argument(help="Model table to replace")],
    file: Annotated[Path, typer.Argument(help=".csv or .parquet file")],
) -> None:
    """Replace a table's rows with a file's; the whole file is checked first."""
    rows = with_workspace(lambda ws: ws.load(table, file))
    typer.echo(f"loaded {rows} rows into {table}")


@app.command("settings")
def show_settings() -> None:
    """Check every setting and print the effective ones (flags > environment > segmenta.yaml); exit 2 on a bad one."""
    with errors():
        import yaml

        from segmenta.settings import redact

        chosen = settings().check()
        shown = redact({"workspace": str(chosen.workspace), **chosen.config})  # no password on the screen
    typer.echo(yaml.safe_dump(shown, sort_keys=False).rstrip())
    for key, where in sorted(chosen.sources.items()):
        typer.echo(f"# {key} from {where}")


# -- segment commands ------------------------------------------------------------------

AsOf = Annotated[str | None, typer.Option("--as-of", help="Evaluation time, ISO 8601 (UTC unless it has an offset); default now")]


@segment_app.command("evaluate")
def evaluate(
    segment: Annotated[str, typer.Argument(help="Definition file (JSON or YAML)")],
    as_of: AsOf = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the member keys to this CSV")] = None,
) -> None:
    """Evaluate a definition; prints 'N members' last."""
    from segmenta.services.compiled import remember, replay  # hashlib and json only: the cache's hit path

    given, path = flags(), Path(segment)
    hit = replay(workspace_path(), path, as_of=as_of, engine=given.engine, store=given.store)
    if hit is not None:  # the SQL compiled before for this very input: no sqlglot, pydantic or model import
        key, keys = hit
    else:
        text = path.read_bytes() if path.is_file() else b""

        def run(ws: Workspace) -> Any:
            result = ws.evaluate(path, as_of=as_of)
            remember(ws, path, text, result, as_of=as_of, engine=given.engine, store=given.store)
            return result

        result = with_workspace(run)
        key, keys = result.key, result.keys
    if out_file is not None:
        with errors():
            write_keys(out_file, key, keys)
    typer.echo(f"{len(keys)} members")  # plain lines: rich is imported only for tables and progress bars


@segment_app.command("sql")
def sql(
    segment: Annotated[str, typer.Argument(help="Definition file (JSON or YAML)")],
    dialect: Annotated[
        str, typer.Option(help="Any sqlglot dialect: duckdb, spark, postgres, snowflake, bigquery, ...")
    ] = "duckdb",
    as_of: AsOf = None,
) -> None:
    """Print the SQL that selects the members."""
    text = with_workspace(lambda ws: ws.sql(Path(segment), dialect=dialect, as_of=as_of))
    typer.echo(text)


@segment_app.command("preview")
def preview(
    segment: Annotated[str, typer.Argument(help="Definition file (JSON or YAML)")],
    limit: Annotated[int, typer.Option(help="How many members to show")] = 10,
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to show")] = None,
    show_pii: Annotated[bool, typer.Option("--show-pii", help="Show PII columns unmasked")] = False,
    as_of: AsOf = None,
) -> None:
    """Member count and the first members, PII masked unless --show-pii."""
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    result = with_workspace(lambda ws: ws.preview(Path(segment), limit=limit, columns=cols, show_pii=show_pii, as_of=as_of))
    from rich.table import Table as RichTable

    table = RichTable(*result.columns)
    for row in result.rows:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in result.columns])
    out.print(table)
    if result.masked:
        out.print(f"masked PII columns: {', '.join(result.masked)} (use --show-pii to see them)", highlight=False)
    out.print(f"{result.count} members", highlight=False)


# -- helpers ------------------------------------------------------------------------------


def write_keys(path: Path, key: str, keys: list[Any]) -> None:
    """A one-column CSV of keys headed by the key column's name.

    Written through :func:`segmenta.fileio.atomic_output`: an exclusively created temporary
    file beside ``path`` (no planted ``.partial`` symlink is followed), renamed over it when complete.
    """
    from segmenta.fileio import atomic_output

    try:
        with atomic_output(path) as fh:
            writer = csv.writer(fh)
            writer.writerow([key])
            writer.writerows([k] for k in keys)
    except OSError as exc:
        raise RejectedInput([Problem(str(path), f"cannot write the keys: {exc.strerror or exc}")]) from None


def _progress() -> Progress:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:>14}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        console=err.console(),
        transient=True,
    )


def main() -> None:
    """Console entry point; click reports usage errors with exit status 2, like rejected input."""
    import os

    # pydantic looks for plugins through importlib.metadata on first use, a cost every command would
    # pay; a user who does use pydantic plugins can still set the variable themselves.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()


# Command modules register themselves on `app` / `segment_app` when imported.
from segmenta.interfaces import (  # noqa: E402,F401
    cli_assignment,
    cli_destinations,
    cli_events,
    cli_journeys,
    cli_records,
    cli_segments,
    cli_sequences,
    cli_serve,
    cli_users,
)

if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
