"""Revision 0003 (users, tokens, sessions, audit log) upgrades an older store and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from segmenta.services.users import Users
from segmenta.store.database import MIGRATIONS, Store, create_store_engine, current_revision, head_revision, upgrade

TABLES = {"users", "api_tokens", "web_sessions", "audit_log"}


def _downgrade(engine: object, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as con:  # type: ignore[attr-defined]
        cfg.attributes["connection"] = con
        command.downgrade(cfg, revision)


def test_0003_upgrades_a_0002_store_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = create_store_engine(url)
    upgrade(engine, "0002")
    assert not TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= TABLES
    _downgrade(engine, "0002")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert {"segments", "audit"} <= set(inspect(engine).get_table_names())
    engine.dispose()
    with Store(url) as store:  # opening upgrades again, and the tables work
        first = Users(store).ensure_admin()
        assert first is not None and Users(store).by_token(first.token) is not None
