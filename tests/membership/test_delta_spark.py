"""The membership protocol on Spark (files behind one commit): the same scenario as on the SQL engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import segmenta
from tests.lifecycle.conftest import CONTACTS, MODEL, write_csv
from tests.membership.test_delta import scenario
from tests.spark.conftest import spark_session  # noqa: F401 - the run's one SparkSession (a fixture)

pytestmark = pytest.mark.spark


def test_every_write_returns_changes_and_delta_streams_its_keys_on_spark(
    spark_session: Any,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "model.json").write_text(json.dumps(MODEL))
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.json", engine="spark")
    try:
        ws.load("contact", write_csv(tmp_path / "c.csv", ["contactid", "email", "country", "statecode"], CONTACTS))
        scenario(ws, tmp_path, monkeypatch)
        commit = json.loads((tmp_path / "ws" / "spark-tables" / ".segments" / "1" / "COMMIT").read_text())
        assert [r["run"] for r in commit["runs"]] == [1, 2, 3]  # the runs the commit file recorded
    finally:
        ws.close()
