"""The public conformance set, through the CLI exactly as the contract describes it, on every engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import segmenta
from tests.conftest import CONFORMANCE
from tests.engines.helpers import cli, drop, settings_for, workspace_on

#: The engine fixture (``engine_name``: duckdb, postgres, spark) and the PostgreSQL server fixture.
pytest_plugins = ["tests.engines.fixtures"]
#: On Spark every CLI command starts a JVM (the CLI workspace alone takes eight): the library runs every
#: case there; the CLI on Spark is tests/spark/test_spark_engine.py's.
SPARK_CASES = {
    "test_library_api_agrees_with_cli",
    "test_preview_counts_and_masks_the_same",
}


@pytest.fixture(scope="module")
def cli_ws(
    engine_name: str, conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Path]:
    """A workspace made and loaded through the CLI with ``--engine``; later commands read the engine from segmenta.yaml.

    The server's URL is written to segmenta.yaml before ``init``, as a user would.
    """
    ws = tmp_path_factory.mktemp(f"cli-{engine_name}") / "ws"
    ws.mkdir()
    if settings := settings_for(engine_name, request):
        (ws / "segmenta.yaml").write_text(yaml.safe_dump(settings))
    r = cli("--workspace", str(ws), "--engine", engine_name, "init", "--model", str(conformance_dir / "model.yaml"))
    assert r.returncode == 0, r.stderr
    try:
        for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
            r = cli("--workspace", str(ws), "load", csv_file.stem, str(csv_file))
            assert r.returncode == 0, r.stderr
        yield ws
    finally:
        drop(segmenta.Workspace.open(ws))


@pytest.fixture(scope="module")
def library_ws(
    engine_name: str, conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[segmenta.Workspace]:
    """The conformance model and data through the library (``Workspace.init`` / ``load``) on the engine under test."""
    ws = workspace_on(
        engine_name, request, tmp_path_factory.mktemp(f"lib-{engine_name}") / "ws", model=conformance_dir / "model.yaml"
    )
    try:
        for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
            ws.load(csv_file.stem, csv_file)
        yield ws
    finally:
        drop(ws)


CASES = sorted(p.stem for p in (CONFORMANCE / "segments").glob("*.json")) if CONFORMANCE.is_dir() else []


@pytest.mark.parametrize("name", CASES)
def test_cli_evaluates_conformance_case(name: str, cli_ws: Path, conformance_dir: Path, tmp_path: Path) -> None:
    expected = json.loads((conformance_dir / "expected.json").read_text())
    out = tmp_path / "members.csv"
    r = cli(
        "--workspace",
        str(cli_ws),
        "segment",
        "evaluate",
        str(conformance_dir / "segments" / f"{name}.json"),
        "--as-of",
        expected["as_of"],
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    want = expected["members"][name]
    assert r.stdout.strip().splitlines()[-1] == f"{len(want)} members"
    lines = out.read_text().splitlines()
    audience = json.loads((conformance_dir / "segments" / f"{name}.json").read_text())["audience"]
    key = {"contact": "contactid", "lead": "leadid", "event": "eventid"}[audience]
    assert lines[0] == key
    assert [int(x) for x in lines[1:]] == want


def test_every_expected_case_has_a_definition(conformance_dir: Path) -> None:
    expected = json.loads((conformance_dir / "expected.json").read_text())
    assert sorted(expected["members"]) == CASES


def test_library_api_agrees_with_cli(library_ws: segmenta.Workspace, conformance_expected, conformance_dir: Path) -> None:
    for name, want in conformance_expected["members"].items():
        result = library_ws.evaluate(conformance_dir / "segments" / f"{name}.json", as_of=conformance_expected["as_of"])
        assert result.keys == want, name


def test_preview_counts_and_masks_the_same(
    library_ws: segmenta.Workspace, conformance_dir: Path, conformance_expected: dict
) -> None:
    segment = conformance_dir / "segments" / "ne_skips_empty.json"
    preview = library_ws.preview(segment, columns=["email", "jobtitle"], limit=2, as_of=conformance_expected["as_of"])
    assert preview.count == len(conformance_expected["members"]["ne_skips_empty"])
    assert [r["contactid"] for r in preview.rows] == conformance_expected["members"]["ne_skips_empty"][:2]
    assert preview.masked == ["email"] and all(r["email"] in ("***", None) for r in preview.rows)
