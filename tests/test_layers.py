"""The layer contract (``.importlinter``, issue 10 item 7) holds, with nothing ignored.

Runs import-linter as ``make check`` does and fails with its report, so a layer violation
(an edge importing the store, a service importing a concrete engine, an engine importing
another, ...) fails the suite, in CI too, with the import chain that broke it.
"""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / ".importlinter"


def test_the_layer_contract_is_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), str(CONTRACT), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"lint-imports found layer violations:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout, done.stdout


def test_no_import_is_ignored_and_every_layer_has_its_contract() -> None:
    parser = configparser.ConfigParser()
    parser.read(CONTRACT, encoding="utf-8")
    contracts = {name: dict(parser[name]) for name in parser.sections() if name.startswith("importlinter:contract:")}
    assert not [n for n, c in contracts.items() if "ignore_imports" in c], "a contract ignores imports"
    sources = {c.get("source_modules", c.get("modules", "")).split()[0] for c in contracts.values()}
    assert {
        "segmenta.model",
        "segmenta.compiler",
        "segmenta.engines.duckdb",
        "segmenta.services",
        "segmenta.membership",
        "segmenta.interfaces",
        "segmenta.workspace",
    } <= sources
