"""The compiled-SQL cache of ``segment evaluate`` (services/compiled.py): same answers, no compiler on a repeat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import segmenta

AS_OF = "2026-10-27T12:00:00"
#: Run the CLI in a fresh process and report on stderr whether sqlglot or pydantic's model layer was imported.
PROBE = """
import sys
from segmenta.interfaces.cli import app
code = 0
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
roots = ("sqlglot", "segmenta.model", "segmenta.compiler")
compiled = [r for r in roots if any(m == r or m.startswith(r + ".") for m in sys.modules)]
print("IMPORTED", ",".join(compiled), file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path) -> Path:
    ws = segmenta.Workspace.init(tmp_path_factory.mktemp("compiled") / "ws", model=conformance_dir / "model.yaml")
    for f in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(f.stem, f)
    ws.close()
    return ws.path


@pytest.fixture()
def ws(built: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    shutil.copytree(built, path)
    return path


def evaluate(ws: Path, definition: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """(last stdout line, modules of the compiler imported) of one whole ``segment evaluate`` process."""
    full = {k: v for k, v in os.environ.items() if k != "SEGMENTA_NOW"} | (env or {})
    args = ["--workspace", str(ws), "segment", "evaluate", str(definition), *extra]
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full)
    assert r.returncode == 0, r.stderr
    imported = r.stderr.strip().splitlines()[-1].partition("IMPORTED")[2].strip()
    return r.stdout.strip().splitlines()[-1], imported


def entries(ws: Path) -> list[Path]:
    return sorted((ws / "cache" / "compiled").glob("*.json"))


def test_a_repeated_evaluation_replays_the_sql_without_the_compiler(
    ws: Path, conformance_dir: Path, conformance_expected: dict
) -> None:
    definition = conformance_dir / "segments" / "spend_last_year_over_1500.json"
    want = f"{len(conformance_expected['members']['spend_last_year_over_1500'])} members"
    first, imported = evaluate(ws, definition, "--as-of", conformance_expected["as_of"])
    assert (first, "sqlglot" in imported) == (want, True)
    assert len(entries(ws)) == 1
    again, imported = evaluate(ws, definition, "--as-of", conformance_expected["as_of"])
    assert (again, imported) == (want, "")  # neither sqlglot nor the model nor the compiler
    out = ws / "keys.csv"
    evaluate(ws, definition, "--as-of", conformance_expected["as_of"], "--out", str(out))
    assert out.read_text().split() == ["contactid", *map(str, conformance_expected["members"]["spend_last_year_over_1500"])]


def test_an_as_of_dependent_entry_serves_only_its_as_of_and_now_always_compiles(ws: Path, conformance_dir: Path) -> None:
    definition = conformance_dir / "segments" / "spend_last_year_over_1500.json"  # a relative window: reads the as-of
    evaluate(ws, definition, "--as-of", AS_OF)
    _, imported = evaluate(ws, definition, "--as-of", "2026-10-28T12:00:00")
    assert "sqlglot" in imported and len(entries(ws)) == 2
    _, imported = evaluate(ws, definition)  # "now": never a cache key
    assert "sqlglot" in imported and len(entries(ws)) == 2


def test_an_as_of_free_definition_serves_every_as_of(ws: Path, conformance_dir: Path, tmp_path: Path) -> None:
    definition = tmp_path / "gold.json"
    definition.write_text(
        json.dumps({"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]})
    )
    first, _ = evaluate(ws, definition, "--as-of", AS_OF)
    again, imported = evaluate(ws, definition)
    assert (again, imported) == (first, "") and len(entries(ws)) == 1


def test_any_changed_input_compiles_again_and_new_data_is_read(ws: Path, conformance_dir: Path, tmp_path: Path) -> None:
    gold = json.dumps({"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]})
    definition = tmp_path / "gold.json"
    definition.write_text(gold)
    before, _ = evaluate(ws, definition)
    assert before != "0 members"
    definition.write_text(gold.replace("Gold", "Bronze"))
    _, imported = evaluate(ws, definition)
    assert "sqlglot" in imported  # the definition changed
    definition.write_text(gold)
    config = ws / "segmenta.yaml"
    config.write_text(config.read_text() + "limits: {max_depth: 10}\n")
    _, imported = evaluate(ws, definition)
    assert "sqlglot" in imported  # the settings changed
    _, imported = evaluate(ws, definition, env={"SEGMENTA_LOCK_WAIT": "5"})
    assert "sqlglot" in imported  # the environment changed
    # The data is read live: after the Gold contacts are gone, the replayed SQL finds none.
    lines = (conformance_dir / "data" / "contact.csv").read_text().splitlines()
    (tmp_path / "contact.csv").write_text("\n".join(lines[:1] + [ln for ln in lines[1:] if ",Gold," not in ln]) + "\n")
    with segmenta.Workspace.open(ws) as opened:
        opened.load("contact", tmp_path / "contact.csv")
    assert evaluate(ws, definition) == ("0 members", "")


def test_in_segment_and_bad_input_always_take_the_checked_path(ws: Path, tmp_path: Path) -> None:
    definition = tmp_path / "in.json"
    definition.write_text(json.dumps({"audience": "contact", "groups": [{"where": {"in_segment": "Nope"}}]}))
    r = subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), "segment", "evaluate", str(definition)],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0 and "Nope" in r.stderr and entries(ws) == []
    r = subprocess.run(
        [sys.executable, "-m", "segmenta", "--workspace", str(ws), "segment", "evaluate", str(tmp_path / "missing.json")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "missing.json" in r.stderr
