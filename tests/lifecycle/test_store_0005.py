"""Store revision 0005 (draft versions) upgrades a 0004 store holding segments, and downgrades cleanly."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from segmenta.store.database import MIGRATIONS, Store, create_store_engine, current_revision, head_revision, upgrade


def _columns(engine: object) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("segments")}  # type: ignore[arg-type]


def test_0005_adds_draft_version_to_a_0004_store_with_segments_and_downgrades(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine = create_store_engine(url)
    upgrade(engine, "0004")
    assert "draft_version" not in _columns(engine)
    with engine.begin() as con:
        con.execute(
            text(
                "INSERT INTO segments (id, name, audience, kind, status, status_reason, current_version, live_version, "
                "created_at, updated_at) VALUES (1, 'Old', 'contact', 'dynamic', 'live', 'ready', 1, 1, "
                "'2026-10-01 12:00:00', '2026-10-01 12:00:00')"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision() and "draft_version" in _columns(engine)
    with engine.connect() as con:
        assert con.execute(text("SELECT name, draft_version, current_version FROM segments")).all() == [("Old", None, 1)]
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as con:
        cfg.attributes["connection"] = con
        command.downgrade(cfg, "0004")
    assert "draft_version" not in _columns(engine)
    with engine.connect() as con:
        assert con.execute(text("SELECT name FROM segments")).scalars().all() == ["Old"]
    engine.dispose()
    with Store(url):  # opening upgrades again
        pass
    engine = create_store_engine(url)
    assert "draft_version" in _columns(engine)
    engine.dispose()
