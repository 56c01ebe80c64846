"""The sample CRM (``segmenta init --sample``): deterministic, fits its model, plausible, and every example finds people."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import segmenta
from segmenta.services.loading import arrow_schema, read_table_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
NOW = "2026-10-27T12:00:00"
CONTACTS = 2_000
SEED = 42


def build(path: Path, seed: int = SEED) -> segmenta.Workspace:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGMENTA_NOW", NOW)
        return segmenta.Workspace.init(path, sample=True, contacts=CONTACTS, seed=seed)


def rows(ws: segmenta.Workspace, sql: str) -> list[tuple]:
    return ws.engine.con.execute(sql).fetchall()


def table(ws: segmenta.Workspace, name: str) -> pa.Table:
    return ws.engine.run(f'SELECT * FROM "{name}" ORDER BY 1')


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[segmenta.Workspace]:
    workspace = build(tmp_path_factory.mktemp("sample") / "ws")
    yield workspace
    workspace.close()


def test_same_seed_same_data_other_seed_other_data(ws: segmenta.Workspace, tmp_path: Path) -> None:
    again = build(tmp_path / "again")
    other = build(tmp_path / "other", seed=SEED + 1)
    try:
        for name in ws.model.tables:
            assert table(again, name).equals(table(ws, name)), name
        assert not table(other, "contact").equals(table(ws, "contact"))
        assert not table(other, "interaction").equals(table(ws, "interaction"))
    finally:
        again.close()
        other.close()


def test_sizes_follow_the_contact_count(ws: segmenta.Workspace) -> None:
    count = {name: rows(ws, f'SELECT count(*) FROM "{name}"')[0][0] for name in ws.model.tables}
    assert count["contact"] == CONTACTS
    assert count["account"] == CONTACTS // 10
    assert count["lead"] == CONTACTS // 5
    assert 2.5 * CONTACTS < count["order"] < 3.5 * CONTACTS
    assert 9 * CONTACTS < count["interaction"] < 11 * CONTACTS
    assert count["event"] >= 20 and count["registration"] > 0


def test_every_table_reloads_through_the_strict_loader(ws: segmenta.Workspace, tmp_path: Path) -> None:
    """Types match the model exactly; choices are among the model's; keys are present and unique."""
    for name, model_table in ws.model.tables.items():
        data = table(ws, name)
        want = arrow_schema(model_table)
        assert data.column_names == want.names
        for field, expected in zip(data.schema, want, strict=True):
            if pa.types.is_list(expected.type):
                assert pa.types.is_list(field.type) and field.type.value_type == expected.type.value_type, (name, field)
            else:
                assert field.type == expected.type, (name, field)
        file = tmp_path / f"{name}.parquet"
        pq.write_table(data, file)
        reloaded = read_table_file(file, name, model_table)
        assert reloaded.num_rows == data.num_rows


def test_foreign_keys_resolve(ws: segmenta.Workspace) -> None:
    for rel in ws.model.relationships:
        dangling = rows(
            ws,
            f'SELECT count(*) FROM "{rel.from_table}" f WHERE f."{rel.from_column}" IS NOT NULL '
            f'AND f."{rel.from_column}" NOT IN (SELECT "{rel.to_column}" FROM "{rel.to_table}")',
        )[0][0]
        assert dangling == 0, rel


def test_contacts_look_like_a_crm(ws: segmenta.Workspace) -> None:
    (inactive, no_email, dne, dne_null, no_interests, gold, silver, bronze, managers) = rows(
        ws,
        """SELECT count(*) FILTER (statecode <> 0), count(*) FILTER (email IS NULL), count(*) FILTER (donotemail),
                  count(*) FILTER (donotemail IS NULL), count(*) FILTER (len(interests) = 0),
                  count(*) FILTER (tier = 'Gold'), count(*) FILTER (tier = 'Silver'), count(*) FILTER (tier = 'Bronze'),
                  count(*) FILTER (jobtitle ILIKE '%manager%')
           FROM contact""",
    )[0]
    assert 0.02 * CONTACTS < inactive < 0.10 * CONTACTS
    assert 0 < no_email < 0.1 * CONTACTS
    assert 0.05 * CONTACTS < dne < 0.15 * CONTACTS and dne_null > 0
    assert no_interests > 0
    assert 0 < gold < silver < bronze
    assert managers > 0.1 * CONTACTS
    shared = rows(
        ws, "SELECT count(*) FROM (SELECT email FROM contact WHERE email IS NOT NULL GROUP BY email HAVING count(*) > 1)"
    )
    assert shared[0][0] > 0
    assert rows(ws, "SELECT count(*) FROM contact WHERE email NOT LIKE '%_@_%._%'")[0][0] == 0
    assert rows(ws, "SELECT count(DISTINCT country) FROM contact")[0][0] >= 10


def test_behaviour_is_skewed_and_recent(ws: segmenta.Workspace) -> None:
    now = dt.datetime.fromisoformat(NOW)
    per_type = dict(rows(ws, "SELECT type, count(*) FROM interaction GROUP BY type"))
    assert set(per_type) == {"email_sent", "email_open", "email_click", "web_visit", "form_submitted"}
    assert per_type["email_sent"] > per_type["email_open"] > per_type["email_click"]
    wrong_shape = rows(
        ws,
        """SELECT count(*) FROM interaction
           WHERE (type LIKE 'email%') <> (emailid IS NOT NULL) OR (type LIKE 'email%') = (page IS NOT NULL)""",
    )[0][0]
    assert wrong_shape == 0
    for name in ("order", "interaction"):
        newest, recent = rows(
            ws, f"SELECT max(ts), count(*) FILTER (ts >= TIMESTAMP '{now - dt.timedelta(days=90)}') FROM \"{name}\""
        )[0]
        assert newest <= now and recent > 0
        key = ws.model.table(name).key
        out_of_order = rows(
            ws, f'SELECT count(*) FROM (SELECT ts < lag(ts) OVER (ORDER BY {key}) AS back FROM "{name}") WHERE back'
        )
        assert out_of_order[0][0] == 0, f"{name}: keys should rise with time, as a CRM appends records"
    no_orders, heavy = rows(
        ws,
        """SELECT count(*) FILTER (n = 0), count(*) FILTER (n >= 10) FROM
           (SELECT c.contactid, count(o.orderid) AS n FROM contact c LEFT JOIN "order" o USING (contactid) GROUP BY 1)""",
    )[0]
    assert no_orders > 0.2 * CONTACTS and heavy > 0
    channels = {r[0] for r in rows(ws, 'SELECT DISTINCT channel FROM "order"')}
    assert channels == {"web", "store", "phone"}
    past, future = rows(
        ws,
        f"SELECT count(*) FILTER (startdate < DATE '{now.date()}'), count(*) FILTER (startdate > DATE '{now.date()}') FROM event",
    )[0]
    assert past > 0 and future > 0


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_finds_some_but_not_all(example: Path, ws: segmenta.Workspace) -> None:
    definition = ws.definition(example)
    assert definition.name
    members = ws.evaluate(definition, as_of=NOW).count
    total = rows(ws, f'SELECT count(*) FROM "{definition.audience}"')[0][0]
    assert 0 < members < total, (example.name, members, total)


def test_there_are_a_dozen_examples() -> None:
    assert len(EXAMPLES) >= 12
