"""Exports are safe to open in a spreadsheet, and big ones are streamed in bounded memory."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import segmenta
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import Api

EVIL = {
    "firstname": '=HYPERLINK("http://evil.example","x")',
    "lastname": "+1+cmd|' /C calc'!A0",
    "jobtitle": "@SUM(1+1)*cmd|' /C calc'!A0",
    "fullname": "-2+3",
}


def test_members_csv_neutralises_formulas_in_text_cells_only(api: Api) -> None:
    con = api.service.ws.engine.con
    con.execute(
        "UPDATE contact SET firstname = ?, lastname = ?, jobtitle = ?, fullname = ?, contactid = -7 WHERE contactid = 3",
        list(EVIL.values()),
    )
    con.execute("UPDATE contact SET firstname = chr(9) || 'tab', lastname = chr(13) || 'cr' WHERE contactid = 1")
    assert api.call("operator", "POST", "/api/segments/Gold/refresh").status_code == 200
    export = api.call(
        "viewer", "GET", "/api/segments/Gold/members.csv", params={"columns": "firstname,lastname,jobtitle,fullname,score"}
    )
    assert export.status_code == 200
    lines = export.text.split("\n")
    assert lines[0] == "contactid,firstname,lastname,jobtitle,fullname,score"
    evil = next(line for line in lines if line.startswith("-7,"))  # a negative integer key stays a number
    assert "'=HYPERLINK" in evil and "'+1+cmd" in evil and "'@SUM" in evil and "'-2+3" in evil
    assert evil.rsplit(",", 1)[1].startswith("50.0")
    tabbed = next(line for line in lines if line.startswith("1,"))
    assert tabbed.startswith("1,'\ttab,'\rcr,")
    keys_only = api.call("viewer", "GET", "/api/segments/Gold/members.csv").text.splitlines()
    assert keys_only == ["contactid", "-7", "1"]


def test_the_not_found_csv_neutralises_formulas(api: Api) -> None:
    body = b"email,name\n=1+1@evil.example,=cmd|' /C calc'!A0\n@x,ok\nann@northwind.example,Ann\n"
    api.call("marketer", "POST", "/api/segments", json={"list": True, "audience": "contact", "name": "L2"})
    got = api.call(
        "marketer", "POST", "/api/segments/L2/import-csv", files={"file": ("in.csv", io.BytesIO(body), "text/csv")}
    ).json()
    assert got["not_found"] == 2
    rows = api.call("marketer", "GET", got["not_found_url"]).text.splitlines()
    assert rows == ["email,name", "'=1+1@evil.example,'=cmd|' /C calc'!A0", "'@x,ok"]


def test_a_bulk_add_of_100000_keys_is_one_change_in_batches(api: Api) -> None:
    keys = list(range(1, 100_001))
    tracemalloc.start()
    try:
        added = api.call("marketer", "POST", "/api/segments/List/members/add", json={"keys": keys})
        peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert added.status_code == 200, added.text
    assert peak_mib < 100, f"adding 100,000 keys took {peak_mib:.0f} MiB of Python memory at its peak"
    assert added.json()["size"] == 100_000 and added.json()["entered"] == 100_000
    history = api.call("viewer", "GET", "/api/segments/List/history").json()
    assert [(r["trigger"], r["entered"]) for r in history] == [("add", 100_000)]
    removed = api.call("marketer", "POST", "/api/segments/List/members/remove", json={"keys": keys[:50_000]})
    assert removed.json()["size"] == 50_000
    page = api.call("viewer", "GET", "/api/segments/List/members", params={"limit": 2}).json()
    assert page["keys"] == [50_001, 50_002]
    bad = api.call("marketer", "POST", "/api/segments/List/members/add", json={"keys": [*keys[:5000], "x9"]})
    assert bad.status_code == 422 and "x9" in bad.text
    assert api.call("viewer", "GET", "/api/segments/List").json()["size"] == 50_000  # nothing changed


# -- a 1M-member export on a real server, its peak memory read from /proc ---------------------

ROWS = 1_000_000
MODEL = {"tables": {"person": {"key": "personid", "columns": {"personid": {"type": "integer"}, "city": {"type": "text"}}}}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc")


@contextmanager
def _serve(workspace: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    cmd = [sys.executable, "-m", "segmenta", "--workspace", str(workspace), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the service stopped"
            try:
                if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)
        yield base, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("million")
    (root / "model.yaml").write_text(yaml.safe_dump(MODEL))
    ids = pa.array(range(ROWS), pa.int64())
    pq.write_table(
        pa.table({"personid": ids, "city": pa.array([f"city {i % 977}" for i in range(ROWS)])}), root / "person.parquet"
    )
    ws = segmenta.Workspace.init(root / "ws", model=root / "model.yaml")
    ws.load("person", root / "person.parquet")
    ws.close()
    service = Service(root / "ws")
    try:
        first = service.users.ensure_admin()
        assert first is not None
        with service.segments() as segs:
            segs.create({"audience": "person", "groups": [{"where": {"all": []}}]}, name="Everyone")
            segs.publish("Everyone")
    finally:
        service.close()
    return root / "ws", first.token


def test_a_million_member_export_streams_in_bounded_memory(million: tuple[Path, str]) -> None:
    workspace, token = million
    with _serve(workspace) as (base, proc), httpx.Client(base_url=base, timeout=300) as client:
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/segments/Everyone", headers=bearer).json()["size"] == ROWS
        everyone = {"audience": "person", "groups": [{"where": {"all": []}}]}
        first = client.post("/api/definitions/evaluate", json={"definition": everyone, "limit": 3}, headers=bearer).json()
        assert (first["count"], first["keys"]) == (ROWS, [0, 1, 2])  # counted, not listed
        before = _peak_rss_kib(proc.pid)
        lines = 0
        last = b""
        with client.stream("GET", "/api/segments/Everyone/members.csv", params={"columns": "city"}, headers=bearer) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                lines += chunk.count(b"\n")
                last = (last + chunk)[-64:]
        grown_mib = (_peak_rss_kib(proc.pid) - before) / 1024
    assert lines == ROWS + 1
    assert last.endswith(f"{ROWS - 1},city {(ROWS - 1) % 977}\n".encode())
    # the whole export as Python rows would take several hundred MiB; a batch at a time, a few dozen at most
    assert grown_mib < 150, f"the export grew the server's peak memory by {grown_mib:.0f} MiB"


def test_a_list_whose_records_were_deleted_exports_and_pages_every_member(api: Api, conformance_dir: Path) -> None:
    """A static list keeps keys whose records have gone: those rows have empty cells, and no batch ends the export."""
    missing = list(range(100, 12_100))  # more than one export batch of members without any record
    keys = [*range(1, 9), *missing, 20_000]
    added = api.call("marketer", "POST", "/api/segments/List/members/add", json={"keys": keys})
    assert added.status_code == 200 and added.json()["size"] == len(keys), added.text
    lines = (conformance_dir / "data" / "contact.csv").read_text().splitlines()
    kept = [line for line in lines[1:] if line.split(",")[0] not in ("2", "3")]
    late = "20000,Zoe,Late,zoe@late.example,,Gold,UK,1980-01-01,2026-10-01T00:00:00,false,,1.0,1,0,Zoe Late"
    reload = api.service.ws.path / "contact-again.csv"
    reload.write_text("\n".join([lines[0], *kept, late]) + "\n")
    api.service.ws.load("contact", reload)  # records 2 and 3 deleted; the list still has them

    export = api.call("viewer", "GET", "/api/segments/List/members.csv", params={"columns": "firstname,tier"})
    assert export.status_code == 200
    rows = export.text.splitlines()
    assert rows[0] == "contactid,firstname,tier"
    assert [int(r.split(",")[0]) for r in rows[1:]] == keys  # every member, in key order
    assert rows[1:5] == ["1,Ann,Gold", "2,,", "3,,", rows[4]] and rows[4].startswith("4,")
    assert rows[9] == "100,," and rows[-1] == "20000,Zoe,Gold"

    page = api.call("viewer", "GET", "/api/segments/List/members", params={"limit": 3, "offset": 1, "columns": "firstname"})
    got = page.json()
    assert got["keys"] == [2, 3, 4] and got["total"] == len(keys)
    assert [r["contactid"] for r in got["rows"]] == [2, 3, 4] and got["rows"][0]["firstname"] is None
