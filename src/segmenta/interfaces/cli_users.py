"""``segmenta users tokens list|create|revoke``: API tokens from the command line (on the store alone).

Like the other ``users`` commands, these work while the service runs; each change is audited
as ``(cli)``. A token is shown once, when it is created; listings show its prefix only.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from segmenta.interfaces.cli_serve import _users, users_app

tokens_app = typer.Typer(no_args_is_help=True, help="API tokens of a user: list, create (with an expiry), revoke.")
users_app.add_typer(tokens_app, name="tokens")


@tokens_app.command("list")
def tokens_list(username: Annotated[str, typer.Argument(help="The user")]) -> None:
    """USERNAME's tokens, newest first: id, prefix, state, label, created, expires, last used (never the secret)."""
    for t in _users(lambda svc: svc.users.list_tokens(username)):
        typer.echo(
            f"{t['id']}\t{t['prefix']}…\t{t['state']}\t{t['label'] or '-'}\tcreated {t['created_at']}"
            f"\texpires {t['expires_at'] or 'never'}\tlast used {t['last_used_at'] or 'never'}"
        )


@tokens_app.command("create")
def tokens_create(
    username: Annotated[str, typer.Argument(help="The user")],
    label: Annotated[str, typer.Option(help="What the token is for")] = "cli",
    expires_in_days: Annotated[int | None, typer.Option(help="Refuse the token after this many days (1-3650)")] = None,
) -> None:
    """A new API token for USERNAME, printed once (the only line of output)."""

    def make(svc: Any) -> str:
        token: str = svc.users.create_token(username, label=label, expires_in_days=expires_in_days)
        from segmenta.services import audit  # SQLAlchemy: imported when used

        audit.record(
            svc.store,
            user="(cli)",
            action="cli.create_token",
            obj=username,
            detail=f"expires in {expires_in_days} days" if expires_in_days else "never expires",
        )
        return token

    typer.echo(_users(make))


@tokens_app.command("revoke")
def tokens_revoke(
    username: Annotated[str, typer.Argument(help="The user")],
    token_id: Annotated[int, typer.Argument(help="The token's id (see 'segmenta users tokens list')")],
) -> None:
    """Revoke one of USERNAME's tokens; it is refused from now on."""

    def revoke(svc: Any) -> dict[str, Any]:
        done: dict[str, Any] = svc.users.revoke_token(username, token_id)
        from segmenta.services import audit  # SQLAlchemy: imported when used

        audit.record(svc.store, user="(cli)", action="cli.revoke_token", obj=f"{username}/{token_id}")
        return done

    done = _users(revoke)
    typer.echo(f"revoked token {done['id']} ({done['prefix']}…) of {username}")
