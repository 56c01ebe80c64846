"""CSV imports over HTTP as users' files really are: delimiters, headers, a chosen column, errors naming the upload."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from fastapi import HTTPException, UploadFile

from segmenta.interfaces.api.routers.members import _save_upload
from segmenta.services.csvimport import import_csv
from tests.api.conftest import Api
from tests.engines.helpers import drop, workspace_on

pytest_plugins = ["tests.engines.fixtures"]


def _upload(api: Api, who: str, body: bytes, filename: str = "list.csv", **data: str) -> object:
    return api.call(
        who, "POST", "/api/segments/List/import-csv", files={"file": (filename, io.BytesIO(body), "text/csv")}, data=data
    )


def test_a_semicolon_file_with_an_outlook_header_is_matched(api: Api) -> None:
    body = b"Name;E-mail Address;City\nAnn;ANN@northwind.example;Leeds\nZed;zed@nowhere.example;Oslo\n"
    got = _upload(api, "marketer", body).json()
    assert {k: got[k] for k in ("read", "found", "not_found", "duplicates", "members")} == {
        "read": 2,
        "found": 1,
        "not_found": 1,
        "duplicates": 0,
        "members": 1,
    }
    assert got["multi_matched"] == 0 and got["warnings"] == []
    not_found = api.call("marketer", "GET", got["not_found_url"]).text.splitlines()
    assert not_found == ["Name;E-mail Address;City", "Zed;zed@nowhere.example;Oslo"]  # in the file's own delimiter


def test_the_column_form_field_picks_the_email_column(api: Api) -> None:
    body = b"who\tcontact point\nAnn\tann@northwind.example\n"
    refused = _upload(api, "marketer", body, filename="Export 2026.tsv")
    assert refused.status_code == 422
    message = refused.json()["error"]["message"]
    assert "'who', 'contact point'" in message and "column" in message
    assert message.startswith("Export 2026.tsv:")
    got = _upload(api, "marketer", body, filename="Export 2026.tsv", column="contact point")
    assert got.status_code == 200, got.text
    assert got.json()["found"] == 1 and got.json()["members"] == 1


def test_errors_name_the_uploaded_file_not_a_server_path(api: Api) -> None:
    ragged = _upload(api, "marketer", b"email,name\nann@northwind.example,A\nb@x.example,B,extra\n", filename="mine.csv")
    assert ragged.status_code == 422
    text = ragged.json()["error"]["message"]
    assert text.startswith("mine.csv:") and "upload.csv" not in text and "/tmp" not in text and "segmenta-import" not in text
    latin = _upload(api, "marketer", "email\nr\xe9my@x.example\n".encode("latin-1"), filename="../../etc/latin.csv")
    assert latin.status_code == 422 and latin.json()["error"]["message"].startswith("latin.csv:")
    late = _upload(api, "marketer", b"email\n" + b"a@x.example\n" * 8000 + "r\xe9my@x.example\n".encode("latin-1"), "big.csv")
    assert late.status_code == 422, late.text  # found by the engine, past what the header read decodes
    text = late.json()["error"]["message"]
    assert text.startswith("big.csv:") and "/tmp" not in text and "upload.csv" not in text
    assert api.call("viewer", "GET", "/api/segments/List").json()["size"] == 0


def test_one_address_on_several_records_is_a_warning_with_the_count(api: Api) -> None:
    # two more active contacts with Ann's address (6 shares it too, but is inactive)
    api.service.ws.engine.con.execute("UPDATE contact SET email = 'ANN@northwind.example' WHERE contactid IN (4, 5, 6)")
    got = _upload(api, "marketer", b"email\nAnn@Northwind.example\nann@northwind.example\n").json()
    assert got["found"] == 2 and got["multi_matched"] == 2 and got["max_matches"] == 3
    assert got["members"] == 3
    assert len(got["warnings"]) == 1 and "up to 3 records" in got["warnings"][0]


def test_a_restricted_user_cannot_match_on_a_pii_email(api: Api) -> None:
    refused = _upload(api, "restricted", b"email\nann@northwind.example\n")
    assert refused.status_code == 403
    assert "PII" in refused.json()["error"]["message"] and "contact.email" in refused.json()["error"]["message"]
    assert "ann@northwind.example" not in refused.text
    assert api.call("viewer", "GET", "/api/segments/List").json()["size"] == 0


def test_the_route_stops_copying_an_upload_past_the_cap(tmp_path: Path) -> None:
    target = tmp_path / "upload.csv"
    with pytest.raises(HTTPException) as refused:
        _save_upload(UploadFile(io.BytesIO(b"x" * 5000)), target, 4096)
    assert refused.value.status_code == 413 and "service.max_upload_bytes" in str(refused.value.detail)
    assert target.stat().st_size <= 4096
    _save_upload(UploadFile(io.BytesIO(b"email\n" * 100)), target, 4096)
    assert target.read_bytes() == b"email\n" * 100


PG_MODEL = {
    "tables": {
        "contact": {
            "key": "contactid",
            "columns": {"contactid": {"type": "integer"}, "email": {"type": "text"}},
        }
    }
}


def test_two_imports_at_once_on_postgresql_each_get_their_own_files_members(
    pg_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The service runs PostgreSQL requests side by side: two imports must not share where they stage addresses."""
    import yaml

    import segmenta
    from segmenta.interfaces.api.runtime import Service

    path = tmp_path / "ws"
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(PG_MODEL))
    ws = workspace_on("postgres", request, path, model=tmp_path / "model.yaml")
    try:
        (tmp_path / "contact.csv").write_text("contactid,email\n" + "".join(f"{i},c{i}@example.com\n" for i in range(1, 9)))
        ws.load("contact", tmp_path / "contact.csv")
    finally:
        ws.close()
    files = {"A": [1, 2, 3], "B": [6, 7]}
    for name, keys in files.items():
        (tmp_path / f"{name}.csv").write_text("email\n" + "".join(f"c{k}@example.com\n" for k in keys))
    service = Service(path)
    try:
        with service.segments() as segs:
            for name in files:
                segs.create_list(audience="contact", name=name)
        both_matched = threading.Barrier(2, timeout=30)  # each has staged its addresses before either stores
        failures: list[BaseException] = []
        counts: dict[str, int] = {}

        def run(name: str) -> None:
            def step(s: str) -> None:
                if s == "storing":
                    both_matched.wait()

            try:
                with service.segments() as segs:
                    counts[name] = import_csv(segs, name, tmp_path / f"{name}.csv", progress=step).found
            except BaseException as exc:
                failures.append(exc)
                both_matched.abort()

        threads = [threading.Thread(target=run, args=(n,)) for n in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
        assert counts == {"A": 3, "B": 2}
        with service.segments() as segs:
            assert {name: segs.members(name)[1] for name in files} == files
            left = segs.ws.engine.run(
                "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'segmenta_import_addresses%'"
            )
            assert left.num_rows == 0  # each import dropped what it staged
    finally:
        service.close()
        drop(segmenta.Workspace.open(path))
