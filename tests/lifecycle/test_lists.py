"""Static lists: add/remove by key and import-csv (contract 5.1), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from tests.lifecycle.conftest import Lifecycle, write_csv

#: Spark (a Spark job per query) runs the cases named here; the others run on DuckDB and PostgreSQL.
SPARK_CASES = (
    "test_import_csv_counts_and_not_found_file",
    "test_one_address_matching_several_records_is_counted",
)
#: ... and of those, these also with the store on PostgreSQL.
SPARK_ON_PG_STORE = ("test_import_csv_counts_and_not_found_file",)


def _list(life: Lifecycle, name: str = "L") -> None:
    life.run("segment", "create", "--list", "--audience", "contact", "--name", name)


def test_an_empty_list_is_live_and_publish_is_harmless(life: Lifecycle) -> None:
    _list(life)
    info = life.json("segment", "show", "L")
    assert {k: info[k] for k in ("status", "kind", "size")} == {"status": "live", "kind": "static", "size": 0}
    life.run("segment", "publish", "L")
    assert life.run("segment", "members", "L").stdout.strip().splitlines()[-1] == "0 members"


def test_add_and_remove_by_key_with_history(life: Lifecycle) -> None:
    _list(life)
    life.run("segment", "add", "L", "3", "1", "2")
    life.run("segment", "remove", "L", "2", "99", now="2026-10-02T00:00:00")
    assert life.members("L") == [1, 3]
    runs = life.json("segment", "history", "L")
    assert [(r["trigger"], r["entered"], r["exited"], r["size"]) for r in runs] == [("add", 3, 0, 3), ("remove", 0, 1, 2)]
    r = life.run("segment", "add", "L", "x1", code=2)
    assert "x1" in r.stderr
    assert life.members("L") == [1, 3]


def test_import_csv_counts_and_not_found_file(life: Lifecycle) -> None:
    _list(life)
    life.run("segment", "add", "L", "3")
    f = write_csv(
        life.tmp / "in.csv",
        ["Name", "EMAIL"],
        [
            ("Ann", " ANN@example.com "),  # found (trim, case)
            ("Bob", "bob@EXAMPLE.com"),  # found
            ("Nobody", "nobody@example.com"),  # not found
            ("Empty", ""),  # not found (empty)
            ("Ann again", "ann@example.com"),  # found, duplicate
            ("Dara", "dara@example.com"),  # inactive contact: not found
            ("Shared", "shared@example.com"),  # two contacts share it: both join
            ("Nobody2", "NOBODY@example.com"),  # not found, duplicate
        ],
    )
    nf = life.tmp / "nf.csv"
    got = life.json("segment", "import-csv", "L", str(f), "--not-found", str(nf))
    assert got == {"read": 8, "found": 4, "not_found": 4, "duplicates": 2, "members": 5, "multi_matched": 1, "max_matches": 2}
    assert life.members("L") == [1, 2, 3, 5, 6]
    lines = nf.read_text().splitlines()
    assert lines == ["Name,EMAIL", "Nobody,nobody@example.com", "Empty,", "Dara,dara@example.com", "Nobody2,NOBODY@example.com"]


def test_importing_adds_to_the_list(life: Lifecycle) -> None:
    _list(life)
    life.json("segment", "import-csv", "L", str(write_csv(life.tmp / "a.csv", ["email"], [("ann@example.com",)])))
    got = life.json("segment", "import-csv", "L", str(write_csv(life.tmp / "b.csv", ["emailaddress1"], [("cleo@example.com",)])))
    assert got["members"] == 2
    assert life.members("L") == [1, 3]


def _rejected(life: Lifecycle, path: Path, *words: str) -> None:
    r = life.run("segment", "import-csv", "L", str(path), code=2)
    for w in words:
        assert w.lower() in r.stderr.lower(), r.stderr
    assert life.members("L") == [1]


def test_bad_files_are_rejected_whole_and_the_list_is_unchanged(life: Lifecycle) -> None:
    _list(life)
    life.run("segment", "add", "L", "1")
    _rejected(life, write_csv(life.tmp / "noemail.csv", ["name", "mail"], [("a", "ann@example.com")]), "email")
    bad = life.tmp / "latin1.csv"
    bad.write_bytes("email\ncleo@example.com\nr\xe9my@example.com\n".encode("latin-1"))
    _rejected(life, bad, "utf-8")
    late = life.tmp / "late.csv"  # the bad byte beyond what the header read decodes: found by the engine
    late.write_bytes(b"email\n" + b"cleo@example.com\n" * 5000 + "r\xe9my@example.com\n".encode("latin-1"))
    _rejected(life, late, "utf-8")
    ragged = life.tmp / "ragged.csv"
    ragged.write_text("email,name\ncleo@example.com,C\nbob@example.com,B,extra\n")
    _rejected(life, ragged, "Line: 3")
    unterminated = life.tmp / "quote.csv"
    unterminated.write_text('email,name\ncleo@example.com,"C\n')
    _rejected(life, unterminated, "quote")
    empty = life.tmp / "empty.csv"
    empty.write_text("")
    _rejected(life, empty, "empty")
    _rejected(life, life.tmp / "missing.csv", "no such file")


def test_row_limit_is_configurable(life: Lifecycle) -> None:
    cfg = life.ws / "segmenta.yaml"
    cfg.write_text(cfg.read_text() + "segments:\n  import_max_rows: 2\n")
    _list(life)
    life.run("segment", "add", "L", "1")
    _rejected(
        life, write_csv(life.tmp / "big.csv", ["email"], [("cleo@example.com",), ("bob@example.com",), ("x@y.z",)]), "at most 2"
    )


def test_import_csv_and_add_on_a_dynamic_segment_are_refused(life: Lifecycle) -> None:
    life.run(
        "segment", "create", life.definition("all", {"audience": "contact", "groups": [{"where": {"all": []}}]}), "--name", "All"
    )
    f = write_csv(life.tmp / "a.csv", ["email"], [("ann@example.com",)])
    r = life.run("segment", "import-csv", "All", str(f), code=2)
    assert "dynamic" in r.stderr
    life.run("segment", "add", "All", "1", code=2)


def _import(life: Lifecycle, path: Path, *extra: str) -> dict:
    return life.json("segment", "import-csv", "L", str(path), *extra)


def test_semicolon_and_tab_files_with_usual_email_headers_are_read(life: Lifecycle) -> None:
    _list(life)
    semi = life.tmp / "semi.csv"
    semi.write_text('Name;E-mail Address;Note\nAnn;ANN@example.com ;"a, b"\nNobody;nobody@example.com;x\n', encoding="utf-8")
    got = _import(life, semi)
    assert {k: got[k] for k in ("read", "found", "not_found")} == {"read": 2, "found": 1, "not_found": 1}
    tab = life.tmp / "tab.tsv"
    tab.write_text("Full name\tEmail Address\nBob\tbob@example.com\n", encoding="utf-8")
    assert _import(life, tab)["found"] == 1
    outlook = life.tmp / "crm.csv"
    outlook.write_text("fullname,EMAILADDRESS1\nCleo,cleo@example.com\n", encoding="utf-8")
    assert _import(life, outlook)["found"] == 1
    spaced = life.tmp / "spaced.csv"
    spaced.write_text("name, e_mail \nx,ann@example.com\n", encoding="utf-8")
    assert _import(life, spaced)["found"] == 1
    assert life.members("L") == [1, 2, 3]


def test_another_email_header_needs_column_and_the_refusal_lists_the_headers(life: Lifecycle) -> None:
    _list(life)
    f = write_csv(life.tmp / "contacts.csv", ["Name", "Work address"], [("Ann", "ann@example.com")])
    r = life.run("segment", "import-csv", "L", str(f), code=2)
    assert "'Name', 'Work address'" in r.stderr and "--column" in r.stderr
    assert life.members("L") == []
    assert _import(life, f, "--column", "Work address")["found"] == 1
    r = life.run("segment", "import-csv", "L", str(f), "--column", "Mail", code=2)
    assert "'Mail'" in r.stderr and "'Name', 'Work address'" in r.stderr
    two = write_csv(life.tmp / "two.csv", ["email", "E-mail"], [("ann@example.com", "bob@example.com")])
    r = life.run("segment", "import-csv", "L", str(two), code=2)
    assert "--column" in r.stderr
    assert _import(life, two, "--column", "E-mail")["found"] == 1
    assert life.members("L") == [1, 2]


def test_one_address_matching_several_records_is_counted(life: Lifecycle) -> None:
    _list(life)
    f = write_csv(life.tmp / "m.csv", ["email"], [("shared@example.com",), ("SHARED@example.com",), ("ann@example.com",)])
    got = _import(life, f)
    assert (got["found"], got["multi_matched"], got["max_matches"], got["members"]) == (3, 2, 2, 3)
    single = _import(life, write_csv(life.tmp / "s.csv", ["email"], [("cleo@example.com",)]))
    assert (single["multi_matched"], single["max_matches"]) == (0, 1)


def test_the_plain_import_output_warns_when_one_address_matched_several_records(life: Lifecycle) -> None:
    _list(life)
    f = write_csv(life.tmp / "m.csv", ["email"], [("shared@example.com",), ("ann@example.com",)])
    r = life.run("segment", "import-csv", "L", str(f))
    assert "warning: row's address matched more than one record (up to 2 records for one address)" in r.stderr
    assert r.stdout.strip().splitlines()[-1] == "3 members"
    quiet = life.run("segment", "import-csv", "L", str(write_csv(life.tmp / "one.csv", ["email"], [("cleo@example.com",)])))
    assert "warning" not in quiet.stderr
