"""``load``: CSV and Parquet files checked row by row against the model, all or nothing (contract section 5)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmenta import Workspace
from segmenta.errors import DataError, NotFound
from segmenta.model.schema import Model

MODEL = Model.from_data(
    {
        "tables": {
            "thing": {
                "key": "id",
                "columns": {
                    "id": {"type": "integer"},
                    "name": {"type": "text"},
                    "n": {"type": "integer"},
                    "amount": {"type": "decimal"},
                    "flag": {"type": "boolean"},
                    "day": {"type": "date"},
                    "ts": {"type": "datetime"},
                    "tier": {"type": "choice", "choices": ["Gold", "Silver"]},
                    "tags": {"type": "choices", "choices": ["golf", "wine", "travel"]},
                },
            }
        }
    }
)
NULLS = {"name": None, "n": None, "amount": None, "flag": None, "day": None, "ts": None, "tier": None, "tags": None}
UTC = dt.UTC


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.init(tmp_path / "ws", model=MODEL)
    yield workspace
    workspace.close()


def rows(ws: Workspace) -> list[dict[str, Any]]:
    return ws.engine.run('SELECT * FROM "thing" ORDER BY "id"').to_pylist()


def csv_file(tmp_path: Path, text: str, name: str = "thing.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def rejected(ws: Workspace, path: Path) -> list[str]:
    with pytest.raises(DataError) as info:
        ws.load("thing", path)
    return [str(p) for p in info.value.problems]


# -- CSV -------------------------------------------------------------------------------------------


def test_csv_converts_every_type(ws: Workspace, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        (
            "id,name,n,amount,flag,day,ts,tier,tags\n"
            "1, Ann ,+5,12.50,true,2024-02-29,2024-03-01T10:00:00+02:00,Gold,golf; wine\n"
            "2,,,,,,,,\n"
            '3,"a, ""b""",-0,1e3,FALSE,2024-03-01,2024-03-01 10:00,Silver,;\n'
            "4,%_!,7,.5,false,2024-03-01,2024-03-01,Silver,wine\n"
        ),
    )
    assert ws.load("thing", path) == 4
    assert rows(ws) == [
        {
            "id": 1,
            "name": " Ann ",
            "n": 5,
            "amount": Decimal("12.5"),
            "flag": True,
            "day": dt.date(2024, 2, 29),
            "ts": dt.datetime(2024, 3, 1, 8, 0),
            "tier": "Gold",
            "tags": ["golf", "wine"],
        },
        {"id": 2, **NULLS},  # an empty cell is null
        {
            "id": 3,
            "name": 'a, "b"',
            "n": 0,
            "amount": Decimal("1000"),
            "flag": False,
            "day": dt.date(2024, 3, 1),
            "ts": dt.datetime(2024, 3, 1, 10, 0),
            "tier": "Silver",
            "tags": [],
        },  # ";" lists no values: the empty set
        {
            "id": 4,
            "name": "%_!",
            "n": 7,
            "amount": Decimal("0.5"),
            "flag": False,
            "day": dt.date(2024, 3, 1),
            "ts": dt.datetime(2024, 3, 1, 0, 0),
            "tier": "Silver",
            "tags": ["wine"],
        },
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-03-01T10:00:00", dt.datetime(2024, 3, 1, 10, 0)),  # no offset: UTC
        ("2024-03-01T10:00:00Z", dt.datetime(2024, 3, 1, 10, 0)),
        ("2024-03-01T10:00:00+02:00", dt.datetime(2024, 3, 1, 8, 0)),
        ("2024-03-01T23:30:00-05:00", dt.datetime(2024, 3, 2, 4, 30)),  # the next day in UTC
        ("2024-03-01T10:00:00+0530", dt.datetime(2024, 3, 1, 4, 30)),
        ("2024-03-01 10:00", dt.datetime(2024, 3, 1, 10, 0)),
        ("2024-03-01T10:00:00.123456", dt.datetime(2024, 3, 1, 10, 0, 0, 123456)),
        ("2024-03-01", dt.datetime(2024, 3, 1)),  # a date is its midnight
    ],
)
def test_csv_datetimes_are_utc(ws: Workspace, tmp_path: Path, cell: str, expected: dt.datetime) -> None:
    ws.load("thing", csv_file(tmp_path, f"id,ts\n1,{cell}\n"))
    assert rows(ws)[0]["ts"] == expected


def test_csv_line_endings_quotes_and_bom(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "thing.csv"
    path.write_bytes('\ufeffid,name\r\n1,caf\u00e9\r\n2,"two\nlines"\r\n'.encode())
    ws.load("thing", path)
    assert [(r["id"], r["name"]) for r in rows(ws)] == [(1, "caf\u00e9"), (2, "two\nlines")]


def test_header_only_file_empties_the_table(ws: Workspace, tmp_path: Path) -> None:
    ws.load("thing", csv_file(tmp_path, "id,name\n1,a\n", "one.csv"))
    assert ws.load("thing", csv_file(tmp_path, "id,name\n", "none.csv")) == 0
    assert rows(ws) == []


def test_a_load_replaces_every_row(ws: Workspace, tmp_path: Path) -> None:
    ws.load("thing", csv_file(tmp_path, "id,name\n1,a\n2,b\n", "first.csv"))
    ws.load("thing", csv_file(tmp_path, "id,n\n3,7\n", "second.csv"))
    assert rows(ws) == [{"id": 3, **NULLS, "n": 7}]


def test_header_is_required(ws: Workspace, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "")
    assert rejected(ws, path) == [f"{path}: the file has no header row; the first row must name the columns"]
    path = csv_file(tmp_path, ",\n1,2\n", "blank.csv")
    assert rejected(ws, path) == [f"{path}: the file has no header row; the first row must name the columns"]


def test_unknown_missing_and_repeated_columns(ws: Workspace, tmp_path: Path) -> None:
    columns = "id, name, n, amount, flag, day, ts, tier, tags"
    path = csv_file(tmp_path, "id,nmae\n1,x\n")
    assert rejected(ws, path) == [
        f"{path}: column 'nmae' is not an attribute of 'thing' (did you mean 'name'?); columns: {columns}"
    ]
    path = csv_file(tmp_path, "name\nx\n", "nokey.csv")
    assert rejected(ws, path) == [f"{path}: the key column 'id' of 'thing' is missing"]
    path = csv_file(tmp_path, "id,name,name\n1,a,b\n", "twice.csv")
    assert rejected(ws, path) == [f"{path}: column 'name' appears twice in the header"]


def test_bad_values_name_their_row_and_column(ws: Workspace, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        (
            "id,n,amount,flag,day,ts,tier,tags\n"
            "1,1.5,abc,yes,2024-02-30,2024-13-01T00:00:00,gold,golf;chess\n"
            "2,3,4,true,2024-01-01,2024-01-01,Gold,golf\n"
            "3,99999999999999999999,1,2,3,4,5,6\n"
        ),
    )
    assert rejected(ws, path) == [
        "thing.csv: data row 1 (line 2): column 'n': '1.5' is not a whole number",
        "thing.csv: data row 3 (line 4): column 'n': '99999999999999999999' is not a whole number",
        "thing.csv: data row 1 (line 2): column 'amount': 'abc' is not a number such as 12.50",
        "thing.csv: data row 1 (line 2): column 'flag': 'yes' is not true or false",
        "thing.csv: data row 3 (line 4): column 'flag': '2' is not true or false",
        "thing.csv: data row 1 (line 2): column 'day': '2024-02-30' is not an ISO 8601 date such as 2026-10-27",
        "thing.csv: data row 3 (line 4): column 'day': '3' is not an ISO 8601 date such as 2026-10-27",
        "thing.csv: data row 1 (line 2): column 'ts': '2024-13-01T00:00:00' is not an ISO 8601 date-time such as "
        "2026-10-27T12:00:00 (UTC unless it has an offset)",
        "thing.csv: data row 3 (line 4): column 'ts': '4' is not an ISO 8601 date-time such as 2026-10-27T12:00:00 (UTC unless it has an offset)",
        "thing.csv: data row 1 (line 2): column 'tier': 'gold' is not one of the choices: Gold, Silver",
        "thing.csv: data row 3 (line 4): column 'tier': '5' is not one of the choices: Gold, Silver",
        "thing.csv: data row 1 (line 2): column 'tags': 'golf;chess' is not a ';'-separated list of the choices: golf, wine, travel",
        "thing.csv: data row 3 (line 4): column 'tags': '6' is not a ';'-separated list of the choices: golf, wine, travel",
    ]


def test_duplicate_and_empty_keys(ws: Workspace, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "id,name\n1,a\n1,b\n,c\n2,d\n")
    assert rejected(ws, path) == [
        "thing.csv: data row 3 (line 4): column 'id': the key is empty; every record needs a key",
        "thing.csv: data row 2 (line 3): column 'id': key 1 repeats data row 1 (line 2); keys must be unique",
    ]


def test_malformed_csv(ws: Workspace, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "id,name\n1,a,b\n")
    assert rejected(ws, path) == [f"{path}: malformed CSV: CSV parse error: Expected 2 columns, got 3: 1,a,b"]


def test_non_utf8_files_are_rejected(ws: Workspace, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,name\n1,caf\u00e9\n".encode("latin-1"))
    assert rejected(ws, latin) == [f"{latin}: not UTF-8 text (invalid continuation byte at byte 13); save the file as UTF-8"]
    # The bad byte far past the header (beyond what the header check reads) is caught too.
    big = tmp_path / "big.csv"
    big.write_bytes(
        b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i) for i in range(1, 20001)) + "20001,caf\u00e9\n".encode("latin-1")
    )
    (problem,) = rejected(ws, big)
    assert problem.startswith(f"{big}: not UTF-8 text (") and problem.endswith("); save the file as UTF-8")


def test_unknown_file_type_missing_file_and_unknown_table(ws: Workspace, tmp_path: Path) -> None:
    txt = tmp_path / "thing.txt"
    txt.write_text("id\n1\n")
    assert rejected(ws, txt) == [f"{txt}: unknown file type '.txt'; load takes .csv or .parquet"]
    assert rejected(ws, tmp_path / "nope.csv") == [f"{tmp_path / 'nope.csv'}: no such file"]
    with pytest.raises(NotFound) as info:
        ws.load("thnig", csv_file(tmp_path, "id\n1\n"))
    assert str(info.value) == "thnig: unknown table (did you mean 'thing'?); tables: thing"


# -- Parquet -----------------------------------------------------------------------------------------


def parquet_file(tmp_path: Path, table: pa.Table, name: str = "thing.parquet") -> Path:
    path = tmp_path / name
    pq.write_table(table, path)
    return path


def test_parquet_converts_every_type(ws: Workspace, tmp_path: Path) -> None:
    new_york = ZoneInfo("America/New_York")
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int32()),
            "name": pa.array(["a", "", None], pa.large_string()),  # "" stays "" (it is empty either way)
            "n": pa.array([1, None, -7], pa.int16()),
            "amount": pa.array([Decimal("1.25"), None, Decimal("-0.5")], pa.decimal128(5, 2)),
            "flag": [True, None, False],
            "day": pa.array([dt.date(2024, 1, 1), None, dt.date(2024, 2, 29)], pa.date32()),
            "ts": pa.array(
                [dt.datetime(2024, 3, 1, 10, tzinfo=new_york), None, dt.datetime(2024, 7, 1, 10, tzinfo=new_york)],
                pa.timestamp("ms", tz="America/New_York"),
            ),
            "tier": ["Gold", "", None],  # "" is no choice: null
            "tags": pa.array([["golf"], [], None], pa.list_(pa.string())),
        }
    )
    ws.load("thing", parquet_file(tmp_path, table))
    assert rows(ws) == [
        {
            "id": 1,
            "name": "a",
            "n": 1,
            "amount": Decimal("1.25"),
            "flag": True,
            "day": dt.date(2024, 1, 1),
            "ts": dt.datetime(2024, 3, 1, 15, 0),
            "tier": "Gold",
            "tags": ["golf"],
        },  # EST: UTC-5
        {"id": 2, **NULLS, "name": "", "tags": []},
        {
            "id": 3,
            **NULLS,
            "n": -7,
            "amount": Decimal("-0.5"),
            "flag": False,
            "day": dt.date(2024, 2, 29),
            "ts": dt.datetime(2024, 7, 1, 14, 0),
        },  # EDT: UTC-4
    ]


def test_parquet_timestamps_dates_and_floats(ws: Workspace, tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": [1, 2],
            "ts": pa.array(
                [dt.datetime(2024, 3, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))), dt.datetime(2024, 3, 1, 23, tzinfo=UTC)],
                pa.timestamp("us", tz="+02:00"),
            ),
            "amount": pa.array([0.1, 2.5], pa.float64()),
        }
    )
    ws.load("thing", parquet_file(tmp_path, table))
    assert [(r["ts"], r["amount"]) for r in rows(ws)] == [
        (dt.datetime(2024, 3, 1, 8), Decimal("0.1")),
        (dt.datetime(2024, 3, 1, 23), Decimal("2.5")),
    ]
    naive = pa.table({"id": [1], "ts": pa.array([dt.datetime(2024, 3, 1, 10)], pa.timestamp("ns"))})  # no zone: UTC
    ws.load("thing", parquet_file(tmp_path, naive, "naive.parquet"))
    assert rows(ws)[0]["ts"] == dt.datetime(2024, 3, 1, 10)
    dated = pa.table({"id": [1], "ts": pa.array([dt.date(2024, 3, 1)], pa.date32())})
    ws.load("thing", parquet_file(tmp_path, dated, "dated.parquet"))
    assert rows(ws)[0]["ts"] == dt.datetime(2024, 3, 1)


@pytest.mark.parametrize(
    ("column", "array", "stored", "expected"),
    [
        ("n", pa.array(["5"]), "string", "integer"),
        ("id", pa.array([1.0]), "double", "integer"),
        ("flag", pa.array([1], pa.int8()), "int8", "boolean"),
        ("day", pa.array([dt.datetime(2024, 1, 1)], pa.timestamp("us")), "timestamp[us]", "date"),
        ("tags", pa.array(["golf"]), "string", "a list of strings"),
        ("tier", pa.array([1]), "int64", "string"),
    ],
)
def test_parquet_column_of_the_wrong_type(
    ws: Workspace, tmp_path: Path, column: str, array: pa.Array, stored: str, expected: str
) -> None:
    data = {"id": pa.array([1]), column: array}
    path = parquet_file(tmp_path, pa.table(data))
    wanted = MODEL.table("thing").column(column).type.value
    assert rejected(ws, path) == [
        f"{path}: column {column!r} is stored as {stored} but the model says {wanted}; expected {expected}"
    ]


def test_parquet_bad_values_and_keys(ws: Workspace, tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": [1, 1, None],
            "tier": ["Platinum", "Gold", None],
            "tags": pa.array([["golf", "chess"], None, []], pa.list_(pa.string())),
        }
    )
    path = parquet_file(tmp_path, table)
    assert rejected(ws, path) == [
        "thing.parquet: data row 1: column 'tier': 'Platinum' is not one of the choices: Gold, Silver",
        "thing.parquet: data row 1: column 'tags': \"['golf', 'chess']\" is not a list of the choices: golf, wine, travel",
        "thing.parquet: data row 3: column 'id': the key is empty; every record needs a key",
        "thing.parquet: data row 2: column 'id': key 1 repeats data row 1; keys must be unique",
    ]


def test_parquet_unknown_column_and_unreadable_file(ws: Workspace, tmp_path: Path) -> None:
    path = parquet_file(tmp_path, pa.table({"id": [1], "naem": ["x"]}))
    assert rejected(ws, path) == [
        f"{path}: column 'naem' is not an attribute of 'thing' (did you mean 'name'?); "
        "columns: id, name, n, amount, flag, day, ts, tier, tags"
    ]
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    (problem,) = rejected(ws, junk)
    assert problem.startswith(f"{junk}: not a readable Parquet file: ")


# -- all or nothing, through the CLI -------------------------------------------------------------------------


def segmenta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


def test_cli_rejected_load_changes_nothing(tmp_path: Path) -> None:
    ws_path = tmp_path / "ws"
    Workspace.init(ws_path, model=MODEL).close()
    good = csv_file(tmp_path, "id,name,n\n1,a,10\n2,b,20\n", "good.csv")
    r = segmenta("--workspace", str(ws_path), "load", "thing", str(good))
    assert (r.returncode, r.stdout.strip()) == (0, "loaded 2 rows into thing"), r.stderr
    # The first rows are fine; one bad cell anywhere rejects the whole file.
    bad = csv_file(tmp_path, "id,name,n\n1,x,1\n2,y,2\n3,z,three\n", "bad.csv")
    r = segmenta("--workspace", str(ws_path), "load", "thing", str(bad))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == ["bad.csv: data row 3 (line 4): column 'n': 'three' is not a whole number"]
    for text, name in [("id,nmae\n1,x\n", "header.csv"), ("id,name\n1,a\n1,b\n", "dupes.csv")]:
        r = segmenta("--workspace", str(ws_path), "load", "thing", str(csv_file(tmp_path, text, name)))
        assert (r.returncode, r.stdout) == (2, ""), r.stderr
        assert len(r.stderr.splitlines()) == 1
    r = segmenta("--workspace", str(ws_path), "load", "thing", str(tmp_path / "missing.csv"))
    assert (r.returncode, r.stdout, r.stderr.strip()) == (2, "", f"{tmp_path / 'missing.csv'}: no such file")
    with Workspace.open(ws_path) as ws:
        assert [(row["id"], row["name"], row["n"]) for row in rows(ws)] == [(1, "a", 10), (2, "b", 20)]
