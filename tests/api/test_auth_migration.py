"""Revision 0004 (token expiry/revocation, login throttle, audit counts) upgrades a 0003 store, keeps its tokens, and downgrades."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import inspect

from segmenta.services import audit
from segmenta.services.users import Users, digest
from segmenta.store.database import Store, create_store_engine, upgrade
from tests.api.test_store_migration import _downgrade


def _columns(engine: object, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table)}  # type: ignore[arg-type]


def test_0004_upgrades_a_0003_store_and_its_tokens_keep_working(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = create_store_engine(url)
    upgrade(engine, "0003")
    assert "login_throttle" not in inspect(engine).get_table_names()
    engine.dispose()
    # A 0003 store with a user, a token and an audit row, written by the 0003 schema.
    con = sqlite3.connect(tmp_path / "store.sqlite")
    con.execute(
        "INSERT INTO users (id, username, role, pii_restricted, password_hash, disabled, created_at, updated_at) "
        "VALUES (1, 'old', 'admin', 0, NULL, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    con.execute(
        "INSERT INTO api_tokens (user_id, token_hash, prefix, label, created_at) VALUES (1, ?, 'sgt_old', '', '2026-01-01 00:00:00')",
        (digest("sgt_old-token"),),
    )
    con.execute(
        "INSERT INTO audit_log (at, username, action, object, outcome, detail) "
        "VALUES ('2026-01-01 00:00:00', 'old', 'x', '', 'ok', '')"
    )
    con.commit()
    con.close()
    with Store(url) as store:  # opening upgrades to head
        users = Users(store)
        assert users.by_token("sgt_old-token") is not None  # no expiry, not revoked
        assert users.list_tokens("old")[0]["state"] == "active"
        assert audit.entries(store)[0]["count"] == 1
    engine = create_store_engine(url)
    assert {"expires_at", "revoked_at"} <= _columns(engine, "api_tokens")
    assert "count" in _columns(engine, "audit_log")
    assert "login_throttle" in inspect(engine).get_table_names()
    _downgrade(engine, "0003")
    assert not {"expires_at", "revoked_at"} & _columns(engine, "api_tokens")
    assert "count" not in _columns(engine, "audit_log")
    assert "login_throttle" not in inspect(engine).get_table_names()
    engine.dispose()
