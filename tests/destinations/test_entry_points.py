"""A third party's kind is found through the segmenta.destinations entry points; the built-ins without them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from segmenta.destinations import BUILTIN, kind_class, kinds
from segmenta.destinations.dynamics import Dynamics365Marketing
from segmenta.errors import RejectedInput

PLUGIN = """
from pydantic import BaseModel, ConfigDict
from segmenta.destinations.base import Destination, SendResult


class EchoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = ">"


class Echo(Destination):
    kind = "echo"
    Settings = EchoSettings
    secret_names = ("token",)
    credential_kind = "bearer"

    def test_connection(self):
        return self.settings.prefix + " ok"

    def send(self, payload, checkpoint):
        rows = [r for batch in payload.rows() for r in batch]
        return SendResult(rows=len(rows), calls=1)
"""


@pytest.fixture()
def plugin(tmp_path: Path) -> Path:
    """An installed distribution (a .dist-info with entry_points.txt) on sys.path, as pip would leave it."""
    (tmp_path / "segmenta_echo.py").write_text(PLUGIN)
    info = tmp_path / "segmenta_echo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: segmenta-echo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[segmenta.destinations]\necho = segmenta_echo:Echo\n")
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("segmenta_echo", None)


def test_a_kind_from_an_entry_point(plugin: Path) -> None:
    assert kinds()["echo"] == "segmenta_echo:Echo"
    cls = kind_class("echo")
    assert cls.kind == "echo" and cls.secret_names == ("token",)


def test_builtins_are_found_without_entry_points() -> None:
    assert set(BUILTIN) <= set(kinds())
    assert kind_class("dynamics365-marketing") is Dynamics365Marketing
    with pytest.raises(RejectedInput, match="kinds: dynamics365-marketing"):
        kind_class("nope")


def test_a_plugin_kind_is_created_and_sent_through_the_service(plugin: Path, tmp_path: Path) -> None:
    import yaml

    import segmenta
    from segmenta.destinations.service import Destinations
    from segmenta.services.segments import Segments
    from tests.destinations.conftest import MODEL

    (tmp_path / "model.yaml").write_text(yaml.safe_dump(MODEL))
    ws = segmenta.Workspace.init(tmp_path / "ws", model=tmp_path / "model.yaml")
    (tmp_path / "c.csv").write_text("contactid,email,tier\n1,a@x,Gold\n2,b@x,Silver\n3,c@x,Gold\n")
    ws.load("contact", tmp_path / "c.csv")
    ws.close()
    gold = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}
    with Segments.open(tmp_path / "ws") as segs:
        segs.create(gold, name="Gold")
        segs.publish("Gold")
        d = Destinations(segs)
        with pytest.raises(RejectedInput, match="--secret token"):
            d.create("e", kind="echo", sets=[], secret_values={})
        d.create("e", kind="echo", sets=["prefix=#"], secret_values={"token": "t0k"})
        assert d.test("e") == "# ok"
        result, _ = d.send("e", "Gold")
        assert result.to_dict() == {"rows": 2, "calls": 1, "retries": 0, "rejected": 0}
