"""``segmenta serve``: the REST service and the web builder on uvicorn.

On first start (no user in the store) it creates the user ``admin`` and prints its
generated password and an API token ONCE; only their hashes are stored.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from segmenta.interfaces.cli import app, errors, flags, settings, workspace_path


def first_start_message(username: str, password: str, token: str, url: str) -> str:
    """What the console shows when the first admin is created (the only time the secrets are shown)."""
    return (
        f"First start: created the admin user.\n"
        f"  sign in at {url} as '{username}' with password: {password}\n"
        f"  API token (Authorization: Bearer ...): {token}\n"
        f"These are shown once and stored only as hashes; keep them now."
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run due refreshes and expiry in-process (worker passes)")
    ] = True,
    scheduler_interval: Annotated[
        float | None,
        typer.Option(min=1, max=86_400, help="Seconds between passes (default: segments.worker.interval_seconds, 60)"),
    ] = None,
) -> None:
    """Serve the REST API (/api, docs at /docs) and the web segment builder (/) over this workspace.

    By default it also refreshes due dynamic segments and marks unused ones expired, as
    `segmenta worker` does, every 60 seconds, so no separate worker is needed.
    """
    import uvicorn

    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    with errors():
        service = Service(workspace_path(), store_url=flags().store)
        first = service.users.ensure_admin()
        web = create_app(service=service)
        every = with_scheduler(web, service, scheduler_interval) if scheduler else None
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    if first is not None:
        typer.echo(first_start_message(first.username, first.password, first.token, url))  # plain: no wrapping of secrets
    typer.echo(f"segmenta serving {service.ws.path} at {url} (API docs: {url}docs)")
    typer.echo(f"refresh scheduler: every {every:g} s" if every is not None else "refresh scheduler: off (--no-scheduler)")
    import logging  # here, not at registration: every command imports this module (start-up)

    logging.getLogger("segmenta").setLevel(logging.WARNING)
    uvicorn.run(web, host=host, port=port, log_level=log_level)


def with_scheduler(web: Any, service: Any, interval: float | None) -> float:
    """Run worker passes beside ``web`` while it serves: started after startup, stopped before the service closes.

    Each refresh takes the service's write lock and its workspace, as a request would. Returns the interval.
    """
    from contextlib import asynccontextmanager, contextmanager

    from starlette.concurrency import run_in_threadpool

    from segmenta.services.worker import Scheduler, Worker

    @contextmanager
    def segments() -> Any:
        with service.write_lock, service.segments() as segs:
            yield segs

    worker = Worker(service.ws.path, store=service.store, store_url=service.store_url, segments=segments)
    every = float(interval if interval is not None else worker.config.interval_seconds)
    sched = Scheduler(worker, every)
    inner = web.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with inner(app) as state:
            sched.start()
            try:
                yield state
            finally:
                await run_in_threadpool(sched.stop)

    web.router.lifespan_context = lifespan
    web.state.scheduler = sched
    return every


# -- local user administration (whoever can open the workspace is its administrator) --------

users_app = typer.Typer(no_args_is_help=True, help="Service users: list them, or give one a new password or API token.")
app.add_typer(users_app, name="users")


def _users(fn: Any) -> Any:
    """Run ``fn`` on the workspace's store only (not its data), so it works while the service runs."""
    from types import SimpleNamespace

    from segmenta.errors import NotFound, Problem
    from segmenta.services.stores import open_store
    from segmenta.services.users import Users
    from segmenta.workspace import MODEL_FILE

    with errors():
        path = workspace_path()
        if not (path / MODEL_FILE).is_file():
            raise NotFound([Problem(str(path), "is not a segmenta workspace (no model.yaml); create it with 'segmenta init'")])
        chosen = settings()
        store = open_store(path, chosen.config)
        try:
            return fn(SimpleNamespace(users=Users(store), store=store))
        finally:
            store.close()


@users_app.command("list")
def users_list() -> None:
    """Every user with role, PII restriction and token count."""
    for u in _users(lambda svc: svc.users.list_users()):
        flags = " pii-restricted" if u["pii_restricted"] else ""
        flags += " disabled" if u["disabled"] else ""
        typer.echo(f"{u['username']}\t{u['role']}\ttokens={u['tokens']}{flags}")


@users_app.command("reset-password")
def users_reset_password(username: Annotated[str, typer.Argument(help="The user (e.g. admin)")]) -> None:
    """Give USERNAME a new generated password, printed once (their browser sessions end)."""
    import secrets

    password = secrets.token_urlsafe(12)

    def reset(svc: Any) -> None:
        svc.users.update_user(username, {"password": password})
        from segmenta.services import audit  # SQLAlchemy: imported when used

        audit.record(svc.store, user="(cli)", action="cli.reset_password", obj=username)

    _users(reset)
    typer.echo(f"new password for {username}: {password}")


@users_app.command("token")
def users_token(
    username: Annotated[str, typer.Argument(help="The user")],
    label: Annotated[str, typer.Option(help="What the token is for")] = "cli",
) -> None:
    """A new API token for USERNAME, printed once."""

    def make(svc: Any) -> str:
        token: str = svc.users.create_token(username, label=label)
        from segmenta.services import audit  # SQLAlchemy: imported when used

        audit.record(svc.store, user="(cli)", action="cli.create_token", obj=username)
        return token

    typer.echo(_users(make))
