"""Segments are addressed by id: every segment object carries it, and any name works, '/' and any script included."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import update

from segmenta.store.models import Segment
from tests.api.conftest import GOLD, UK, Api


def _rename_in_store(api: Api, old: str, new: str) -> None:
    with api.service.store.session() as s:
        s.execute(update(Segment).where(Segment.name == old).values(name=new))


def test_every_segment_object_carries_its_id(api: Api) -> None:
    listed = api.call("viewer", "GET", "/api/segments").json()
    assert all(isinstance(s["id"], int) for s in listed)
    assert len({s["id"] for s in listed}) == len(listed)
    gold = next(s for s in listed if s["name"] == "Gold")
    shown = api.call("viewer", "GET", f"/api/segments/{gold['id']}").json()
    assert shown["name"] == "Gold" and shown["id"] == gold["id"] and shown["definition"] == GOLD
    created = api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "New"})
    assert created.status_code == 201 and isinstance(created.json()["id"], int)
    deleted = api.call("admin", "GET", "/api/segments", params={"deleted": "true"}).json()
    assert all(isinstance(s["id"], int) for s in deleted)


def test_a_name_with_a_slash_lives_its_whole_life_by_id(api: Api) -> None:
    created = api.call("marketer", "POST", "/api/segments", json={"definition": GOLD, "name": "EU/Gold"})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    assert api.call("viewer", "GET", f"/api/segments/{sid}").json()["name"] == "EU/Gold"
    assert api.call("marketer", "PUT", f"/api/segments/{sid}", json={"definition": UK}).status_code == 200
    published = api.call("marketer", "POST", f"/api/segments/{sid}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "live" and published.json()["id"] == sid
    assert api.call("viewer", "GET", f"/api/segments/{sid}/versions/2").json()["definition"] == UK
    members = api.call("viewer", "GET", f"/api/segments/{sid}/members").json()
    assert members["total"] == published.json()["size"] > 0
    export = api.call("viewer", "GET", f"/api/segments/{sid}/members.csv")
    assert export.status_code == 200
    assert export.text.splitlines()[1:] == [str(k) for k in members["keys"]]
    assert f"filename*=UTF-8''{quote('EU/Gold.csv', safe='')}" in export.headers["content-disposition"]
    assert len(api.call("viewer", "GET", f"/api/segments/{sid}/history").json()) == 1
    assert api.call("operator", "POST", f"/api/segments/{sid}/stop").json()["status"] == "stopped"
    assert api.call("marketer", "DELETE", f"/api/segments/{sid}").json() == {"deleted": "EU/Gold", "id": sid}
    assert api.call("viewer", "GET", f"/api/segments/{sid}").status_code == 404
    assert api.call("marketer", "POST", f"/api/segments/{sid}/restore").json()["name"] == "EU/Gold"
    renamed = api.call("marketer", "POST", f"/api/segments/{sid}/rename", json={"new_name": "  EU/Gold 2  "})
    assert renamed.json()["name"] == "EU/Gold 2" and renamed.json()["id"] == sid


def test_old_name_urls_keep_working_and_an_id_wins_over_a_numeric_name(api: Api) -> None:
    assert api.call("viewer", "GET", "/api/segments/Gold").json()["name"] == "Gold"
    gold_id = api.call("viewer", "GET", "/api/segments/Gold").json()["id"]
    named = api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "soon digits"}).json()
    _rename_in_store(api, "soon digits", str(gold_id))  # an all-digit name, as a store made before they were refused has
    assert api.call("viewer", "GET", f"/api/segments/{gold_id}").json()["name"] == "Gold"  # the id
    assert api.call("viewer", "GET", f"/api/segments/{named['id']}").json()["name"] == str(gold_id)
    assert api.call("viewer", "GET", "/api/segments/999999").json()["error"]["type"] == "NotFound"  # no id, no name
    huge = api.call("viewer", "GET", f"/api/segments/{10**30}")
    assert huge.status_code == 404 and str(10**30) in huge.text


def test_a_list_with_a_slash_takes_keys_by_id(api: Api) -> None:
    made = api.call("marketer", "POST", "/api/segments", json={"list": True, "audience": "contact", "name": "a/b"}).json()
    added = api.call("marketer", "POST", f"/api/segments/{made['id']}/members/add", json={"keys": [1, 2]})
    assert added.status_code == 200 and added.json()["size"] == 2
    removed = api.call("marketer", "POST", f"/api/segments/{made['id']}/members/remove", json={"keys": [2]})
    assert removed.json()["size"] == 1


def test_names_over_200_characters_are_refused_naming_the_limit(api: Api) -> None:
    for body in (
        {"definition": UK, "name": "x" * 201},
        {"definition": {**UK, "name": "y" * 3000}},
        {"list": True, "audience": "contact", "name": "z" * 201},
    ):
        refused = api.call("marketer", "POST", "/api/segments", json=body)
        assert refused.status_code == 422, refused.text
        assert "at most 200 characters" in refused.json()["error"]["message"]
    rename = api.call("marketer", "POST", "/api/segments/Draft/rename", json={"new_name": "n" * 201})
    assert rename.status_code == 422 and "200 characters" in rename.text
    assert api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "x" * 200}).status_code == 201
    padded = api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "  " + "p" * 200 + "  "})
    assert padded.status_code == 201 and padded.json()["name"] == "p" * 200
    nul = api.call("marketer", "POST", "/api/segments", json={"definition": UK, "name": "a\x00b"})
    assert nul.status_code == 422 and "U+0000" in nul.text
    assert {s["name"] for s in api.call("viewer", "GET", "/api/segments").json()} == {
        "Gold",
        "Draft",
        "List",
        "x" * 200,
        "p" * 200,
    }


def test_a_cjk_name_downloads_with_its_name_encoded(api: Api) -> None:
    made = api.call("marketer", "POST", "/api/segments", json={"definition": GOLD, "name": "黄金顧客 (été)"}).json()
    api.call("marketer", "POST", f"/api/segments/{made['id']}/publish")
    export = api.call("viewer", "GET", f"/api/segments/{made['id']}/members.csv")
    assert export.status_code == 200, export.text
    disposition = export.headers["content-disposition"]
    assert disposition.isascii()
    assert f"filename*=UTF-8''{quote('黄金顧客 (été).csv', safe='')}" in disposition
    assert 'filename="' in disposition


def test_the_audit_names_a_segment_reached_by_id(api: Api) -> None:
    sid = api.call("viewer", "GET", "/api/segments/Draft").json()["id"]
    assert api.call("marketer", "POST", f"/api/segments/{sid}/publish").status_code == 200
    entries = api.call("admin", "GET", "/api/audit").json()
    assert [(e["action"], e["object"]) for e in entries if e["action"] == "segments.publish"] == [("segments.publish", "Draft")]


def test_a_deleted_segments_id_does_not_hide_a_live_segment_named_by_those_digits(api: Api) -> None:
    """Ids resolve as the lifecycle resolves them: a deleted segment's id is not an id (except to restore it)."""
    old = next(s for s in api.call("admin", "GET", "/api/segments", params={"deleted": "true"}).json() if s["name"] == "Old")
    _rename_in_store(api, "Draft", str(old["id"]))  # an all-digit name, as a store made before they were refused has
    shown = api.call("viewer", "GET", f"/api/segments/{old['id']}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["name"] == str(old["id"]) and shown.json()["id"] != old["id"]
    restored = api.call("admin", "POST", f"/api/segments/{old['id']}/restore")
    assert restored.status_code == 200 and restored.json()["name"] == "Old"  # restore reaches the deleted one by id
    assert api.call("viewer", "GET", f"/api/segments/{old['id']}").json()["name"] == "Old"  # a live id wins
