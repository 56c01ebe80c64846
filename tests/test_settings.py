"""One typed Settings (segmenta.settings): precedence, a bad value in any section, unknown keys, plugins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from segmenta.errors import RejectedInput
from segmenta.interfaces.cli import app, flags
from segmenta.settings import SECTION_KEYS, load_settings

runner = CliRunner()


def settings_file(path: Path, data: Any) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "segmenta.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env=env)


def test_defaults_without_a_file_or_environment(tmp_path: Path) -> None:
    s = load_settings(tmp_path, environ={})
    assert (s.workspace, s.engine, s.store, s.lock_wait, s.plugins) == (tmp_path, "duckdb", None, 30.0, ())
    assert s.segments.interval_seconds == 60 and s.limits.max_depth == 32 and s.hooks.before_refresh_commit is None


def test_flags_win_over_environment_over_file(tmp_path: Path) -> None:
    settings_file(tmp_path, {"engine": "spark", "store": "sqlite:///file.db", "lock_wait": 5})
    env = {"SEGMENTA_STORE_URL": "sqlite:///env.db", "SEGMENTA_ENGINE": "postgres", "SEGMENTA_LOCK_WAIT": "7"}
    assert (load_settings(tmp_path, environ={}).store, load_settings(tmp_path, environ={}).engine) == (
        "sqlite:///file.db",
        "spark",
    )
    from_env = load_settings(tmp_path, environ=env)
    assert (from_env.store, from_env.engine, from_env.lock_wait) == ("sqlite:///env.db", "postgres", 7.0)
    assert from_env.sources == {
        "workspace": "--workspace",
        "store": "$SEGMENTA_STORE_URL",
        "engine": "$SEGMENTA_ENGINE",
        "lock_wait": "$SEGMENTA_LOCK_WAIT",
    }
    from_flags = load_settings(tmp_path, engine="duckdb", store="sqlite:///flag.db", environ=env)
    assert (from_flags.store, from_flags.engine) == ("sqlite:///flag.db", "duckdb")
    assert from_flags.sources["store"] == "--store" and from_flags.config["store"] == "sqlite:///flag.db"


def test_the_workspace_comes_from_the_flag_else_the_environment(tmp_path: Path) -> None:
    settings_file(tmp_path / "env", {"engine": "spark"})
    assert load_settings(environ={"SEGMENTA_WORKSPACE": str(tmp_path / "env")}).engine == "spark"
    assert load_settings(tmp_path / "flag", environ={"SEGMENTA_WORKSPACE": str(tmp_path / "env")}).engine == "duckdb"


def test_environment_sets_engine_sections_and_names_itself_in_errors(tmp_path: Path) -> None:
    settings_file(tmp_path, {"engine": "postgres", "postgres": {"url": "postgresql://u@127.0.0.1/file"}, "spark": {}})
    env = {"SEGMENTA_POSTGRES_URL": "postgresql://u@127.0.0.1/env", "SEGMENTA_SPARK_MASTER": "local[3]"}
    s = load_settings(tmp_path, environ=env)
    assert s.postgres.url == "postgresql://u@127.0.0.1/env" and s.spark.master == "local[3]"
    with pytest.raises(RejectedInput) as info:
        load_settings(tmp_path, environ={"SEGMENTA_POSTGRES_URL": "not a url"}).postgres  # noqa: B018
    assert str(info.value).startswith("$SEGMENTA_POSTGRES_URL: is not a PostgreSQL URL")
    assert load_settings(tmp_path, environ={}).postgres.url == "postgresql://u@127.0.0.1/file"


PG = {"engine": "postgres", "postgres": {"url": "postgresql://u@127.0.0.1/db"}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"engine": "sprak"},
            "segmenta.yaml: engine: unknown engine 'sprak' (did you mean 'spark'?); known: duckdb, spark, postgres",
        ),
        ({"store": 5}, "segmenta.yaml: store: must be a database URL"),
        ({"lock_wait": -1}, "segmenta.yaml: lock_wait: must be a number of seconds from 0 to 86,400, not -1"),
        ({"plugins": 3}, "segmenta.yaml: plugins: must be a list of Python module names"),
        ({"version": "one"}, 'segmenta.yaml: version: must be a whole number (1), not "one"'),
        ({"duckdb": 3}, "segmenta.yaml: duckdb: must be a mapping of settings (memory_limit, threads), not 3"),
        ({"duckdb": {"threads": 0}}, "segmenta.yaml: duckdb.threads: must be a whole number from 1 to "),
        ({"duckdb": {"memory_limit": "lots"}}, "segmenta.yaml: duckdb.memory_limit: must be a size from 64MiB to "),
        ({**PG, "postgres": {**PG["postgres"], "pool_size": 0}}, "segmenta.yaml: postgres.pool_size: 0 is not a whole number"),
        ({"engine": "postgres"}, "segmenta.yaml: postgres.url: the postgres engine needs a server"),
        ({"service": {"max_body_bytes": 3}}, "segmenta.yaml: service.max_body_bytes: must be a whole number from 1,024 to "),
        ({"limits": {"max_depth": 0}}, "segmenta.yaml: limits.max_depth: must be a whole number from 1 to 64, not 0"),
        ({"limits": {"statement_timeout_s": -3}}, "segmenta.yaml: limits.statement_timeout_s: must be a number of seconds"),
        ({"segments": {"expiry_days": 0}}, "segmenta.yaml: segments.expiry_days: must be a whole number from 1 to 3,660"),
        ({"segments": {"worker": {"lease_seconds": 1}}}, "segmenta.yaml: segments.worker.lease_seconds: must be a whole"),
        ({"segments": {"limits": {"dynamic": -1}}}, "segmenta.yaml: segments.limits.dynamic: must be a whole number from 0"),
        ({"realtime": {"x": 1}}, "segmenta.yaml: realtime.x: unknown setting; realtime takes no settings yet"),
    ],
)
def test_a_bad_value_in_any_section_exits_2_naming_its_key(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    settings_file(tmp_path, data)
    r = cli("--workspace", str(tmp_path), "settings", env={"SEGMENTA_POSTGRES_URL": ""})
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith(message), r.stderr


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"enigne": "duckdb"}, "segmenta.yaml: enigne: unknown setting (did you mean 'engine'?); known: version, engine"),
        (
            {"duckdb": {"thread": 2}},
            "segmenta.yaml: duckdb.thread: unknown setting (did you mean 'threads'?); known: memory_limit, threads",
        ),
        ({"spark": {"mastr": "local"}}, "segmenta.yaml: spark.mastr: unknown setting (did you mean 'master'?)"),
        ({"service": {"max_body": 2048}}, "segmenta.yaml: service.max_body: unknown setting (did you mean 'max_body_bytes'?)"),
        (
            {"segments": {"refresh": {"unused_minute": 5}}},
            "segmenta.yaml: segments.refresh.unused_minute: unknown setting (did you mean 'unused_minutes'?)",
        ),
    ],
)
def test_unknown_keys_are_refused_with_a_hint(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    settings_file(tmp_path, data)
    r = cli("--workspace", str(tmp_path), "settings")
    assert r.exit_code == 2 and r.stderr.startswith(message), r.stderr


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    r = cli("--workspace", str(tmp_path), "settings", env={"SEGMENTA_LOCK_WAIT": "soon"})
    assert r.exit_code == 2 and r.stderr.startswith(
        '$SEGMENTA_LOCK_WAIT: must be a number of seconds from 0 to 86,400, not "soon"'
    )
    r = cli("--workspace", str(tmp_path), "settings", env={"SEGMENTA_PLUGINS": "no_such_plugin_module"})
    assert r.exit_code == 2 and r.stderr.startswith("$SEGMENTA_PLUGINS: cannot import plugin 'no_such_plugin_module'")


def test_flags_override_and_do_not_outlive_their_command(tmp_path: Path) -> None:
    settings_file(tmp_path, {"store": "postgresql://u:secret@127.0.0.1/file"})
    r = cli("--workspace", str(tmp_path), "--store", "sqlite:///flag.db", "settings", env={"SEGMENTA_STORE_URL": ""})
    assert r.exit_code == 0, r.output
    assert "store: sqlite:///flag.db" in r.stdout and "# store from --store" in r.stdout
    r = cli("--workspace", str(tmp_path), "settings", env={"SEGMENTA_STORE_URL": ""})
    assert "store: postgresql://u:***@127.0.0.1/file" in r.stdout and "secret" not in r.stdout
    assert flags().store is None  # the next library use in this process has no --store of an earlier command
    r = cli("--workspace", str(tmp_path), "--engine", "nope", "settings")
    assert r.exit_code == 2 and r.stderr.startswith("--engine: unknown engine 'nope'"), r.stderr


def test_a_bad_setting_stops_evaluate_too(tmp_path: Path, conformance_dir: Path) -> None:
    import segmenta

    segmenta.Workspace.init(tmp_path / "ws", model=conformance_dir / "model.yaml").close()
    config = yaml.safe_load((tmp_path / "ws" / "segmenta.yaml").read_text())
    settings_file(tmp_path / "ws", {**config, "duckdb": {"threads": 0}})
    segment = conformance_dir / "segments" / "never_ordered.json"
    r = cli("--workspace", str(tmp_path / "ws"), "segment", "evaluate", str(segment))
    assert r.exit_code == 2 and r.stderr.startswith("segmenta.yaml: duckdb.threads: must be a whole number"), r.stderr
    settings_file(tmp_path / "ws", {**config, "duckdb": {"threds": 2}})
    r = cli("--workspace", str(tmp_path / "ws"), "segment", "evaluate", str(segment))
    assert r.exit_code == 2 and "did you mean 'threads'" in r.stderr, r.stderr


def test_plugins_fill_the_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENTA_TEST_HANG_IN_REFRESH", str(tmp_path / "marker"))  # read by the test plugin itself
    s = load_settings(tmp_path, environ={"SEGMENTA_PLUGINS": "tests.killpoints"})
    assert s.plugins == ("tests.killpoints",) and callable(s.hooks.before_refresh_commit)
    monkeypatch.delenv("SEGMENTA_TEST_HANG_IN_REFRESH")
    settings_file(tmp_path, {"plugins": ["tests.killpoints"]})
    assert load_settings(tmp_path, environ={}).hooks.before_refresh_commit is None  # loaded, but no marker named


def test_section_keys_match_their_owners() -> None:
    """The keys refused as unknown here are exactly those each section's owner reads."""
    from segmenta.engines.postgres import _SETTINGS
    from segmenta.interfaces.api.app import SETTINGS
    from segmenta.model.validate import LIMIT_RANGES
    from segmenta.services.segment_config import BOUNDS

    assert set(SECTION_KEYS["service"]) == set(SETTINGS)
    assert set(SECTION_KEYS["postgres"]) == set(_SETTINGS)
    assert set(SECTION_KEYS["limits"]) == {*LIMIT_RANGES, "statement_timeout_s"}
    numeric = {*SECTION_KEYS["segments"], *SECTION_KEYS["segments.refresh"], *SECTION_KEYS["segments.worker"]}
    assert set(BOUNDS) - {"refresh_minutes"} <= numeric
