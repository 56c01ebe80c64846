"""Fixtures of the real-time tests: the lifecycle tests' small workspace (SQLite store), driven through the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.lifecycle.conftest import Lifecycle, template_ws  # noqa: F401 - template_ws is a fixture used below


@pytest.fixture()
def life(template_ws: Path, tmp_path: Path) -> Lifecycle:  # noqa: F811
    ws = tmp_path / "ws"
    shutil.copytree(template_ws, ws)
    return Lifecycle(ws=ws, store=None, tmp=tmp_path, runner=CliRunner())
