"""Fixtures of the real-time tests: the lifecycle tests' small workspace, driven through the CLI, with the
store on SQLite and on PostgreSQL (the real server; skipped on a laptop without it, failing in CI)."""

from __future__ import annotations

from tests.lifecycle.conftest import life, pg_schema_url, store_kind, template_ws  # noqa: F401 - fixtures
