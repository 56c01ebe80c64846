"""``segmenta serve``: the REST service and the web builder on uvicorn.

On first start (no user in the store) it creates the user ``admin`` and prints its
generated password and an API token ONCE; only their hashes are stored.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from segmenta.interfaces.cli import app, errors, workspace_path


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
) -> None:
    """Serve the REST API (/api, docs at /docs) and the web segment builder (/) over this workspace."""
    import uvicorn

    from segmenta.interfaces.api.app import create_app
    from segmenta.interfaces.api.runtime import Service

    with errors():
        service = Service(workspace_path())
        first = service.users.ensure_admin()
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown}:{port}/"
    if first is not None:
        typer.echo(first_start_message(first.username, first.password, first.token, url))  # plain: no wrapping of secrets
    typer.echo(f"segmenta serving {service.ws.path} at {url} (API docs: {url}docs)")
    logging.getLogger("segmenta").setLevel(logging.WARNING)
    uvicorn.run(create_app(service=service), host=host, port=port, log_level=log_level)
