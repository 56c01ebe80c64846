"""The command line as a user drives it: exit statuses, output shapes, workspace resolution."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

AS_OF = "2026-10-27T12:00:00"


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True, env=full_env, cwd=cwd)


@pytest.fixture(scope="module")
def built_ws(tmp_path_factory: pytest.TempPathFactory, conformance_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("cli") / "ws"
    assert run("--workspace", str(path), "init", "--model", str(conformance_dir / "model.yaml")).returncode == 0
    for f in sorted((conformance_dir / "data").glob("*.csv")):
        assert run("--workspace", str(path), "load", f.stem, str(f)).returncode == 0
    return path


@pytest.fixture()
def ws(built_ws: Path, tmp_path: Path) -> Path:
    """A private copy of the conformance workspace, built once through the CLI."""
    path = tmp_path / "ws"
    shutil.copytree(built_ws, path)
    return path


def write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


def test_workspace_from_environment_then_default(tmp_path: Path, conformance_dir: Path) -> None:
    env_ws = tmp_path / "from-env"
    r = run("init", "--model", str(conformance_dir / "model.yaml"), env={"SEGMENTA_WORKSPACE": str(env_ws)})
    assert r.returncode == 0, r.stderr
    assert (env_ws / "model.yaml").is_file()
    env = {k: v for k, v in os.environ.items() if k != "SEGMENTA_WORKSPACE"}
    r = subprocess.run(
        [sys.executable, "-m", "segmenta", "init", "--model", str(conformance_dir / "model.yaml")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "segmenta-workspace" / "model.yaml").is_file()


def test_evaluate_prints_count_last_and_writes_sorted_keys(ws: Path, tmp_path: Path) -> None:
    seg = write(tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"all": []}}]})
    out = tmp_path / "m.csv"
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), "--as-of", AS_OF, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "7 members"  # 8 contacts, one inactive
    assert out.read_text().splitlines() == ["contactid", "1", "2", "3", "4", "5", "7", "8"]


def test_empty_any_has_no_members_and_writes_header_only(ws: Path, tmp_path: Path) -> None:
    seg = write(tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"any": []}}]})
    out = tmp_path / "m.csv"
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 members"
    assert out.read_text().splitlines() == ["contactid"]


def test_as_of_defaults_to_segmenta_now(ws: Path, tmp_path: Path) -> None:
    seg = write(
        tmp_path,
        "s.json",
        {"audience": "contact", "groups": [{"where": {"attribute": "createdon", "op": "in_last", "value": {"days": 30}}}]},
    )
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), env={"SEGMENTA_NOW": AS_OF})
    assert r.stdout.strip().splitlines()[-1] == "2 members"
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), env={"SEGMENTA_NOW": "2026-10-21T00:00:00Z"})
    assert r.stdout.strip().splitlines()[-1] == "3 members"  # contacts 1, 2, 3 (3 is 11:59:59 on 27 Sep)


def test_as_of_with_offset_is_converted_to_utc(ws: Path, tmp_path: Path) -> None:
    seg = write(
        tmp_path,
        "s.json",
        {"audience": "contact", "groups": [{"where": {"attribute": "createdon", "op": "in_last", "value": {"days": 30}}}]},
    )
    # 14:00 at +02:00 is 12:00 UTC: contact 2 (12:00:00) in, contact 3 (11:59:59) out.
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), "--as-of", "2026-10-27T14:00:00+02:00")
    assert r.stdout.strip().splitlines()[-1] == "2 members"


def test_rejected_definition_exits_2_with_pointer_lines(ws: Path, tmp_path: Path) -> None:
    seg = write(
        tmp_path,
        "bad.json",
        {
            "audience": "contact",
            "groups": [
                {
                    "where": {
                        "all": [
                            {"attribute": "jobtitel", "op": "contains", "value": "x"},
                            {"attribute": "tier", "op": "gt", "value": "Gold"},
                        ]
                    }
                },
                {"where": {"attribute": "country", "op": "eq", "value": "FR"}},
            ],
        },
    )
    out = tmp_path / "never.csv"
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), "--out", str(out))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "/groups/0/where/all/0: table 'contact' has no attribute 'jobtitel' (did you mean 'jobtitle'?)",
        "/groups/0/where/all/1: operator 'gt' does not fit choice attribute 'tier'; use one of: eq, ne, in, not_in, is_empty, is_not_empty",
        "/groups/1: missing 'link' after the first group: one of and_also, or, but_not",
    ]
    assert r.stdout == ""
    assert not out.exists()


def test_unparseable_definition_exits_2(ws: Path, tmp_path: Path) -> None:
    p = tmp_path / "broken.json"
    p.write_text('{"audience": "contact", "groups": [')
    r = run("--workspace", str(ws), "segment", "evaluate", str(p))
    assert r.returncode == 2
    assert "broken.json" in r.stderr and "not valid JSON or YAML" in r.stderr


def test_yaml_definition_is_accepted(ws: Path, tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("audience: contact\ngroups:\n  - where: {attribute: tier, op: eq, value: Gold}\n")
    r = run("--workspace", str(ws), "segment", "evaluate", str(p))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "2 members"


def test_missing_workspace_is_an_error_naming_it(tmp_path: Path) -> None:
    seg = write(tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"all": []}}]})
    r = run("--workspace", str(tmp_path / "nowhere"), "segment", "evaluate", str(seg))
    assert r.returncode == 2
    assert "nowhere" in r.stderr and "segmenta init" in r.stderr


def test_init_refuses_an_existing_workspace_and_keeps_it(ws: Path, conformance_dir: Path) -> None:
    before = (ws / "model.yaml").read_text()
    r = run("--workspace", str(ws), "init", "--model", str(conformance_dir / "model.yaml"))
    assert r.returncode == 2
    assert "already" in r.stderr
    assert (ws / "model.yaml").read_text() == before


def test_init_with_bad_model_exits_2_and_leaves_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        "tables:\n  contact:\n    key: id\n    columns:\n      contactid: {type: integer}\n      tier: {type: choice}\n"
    )
    r = run("--workspace", str(tmp_path / "ws"), "init", "--model", str(model))
    assert r.returncode == 2
    assert "/tables/contact/key: key 'id' is not a column of 'contact'" in r.stderr
    assert "/tables/contact/columns/tier: a choice column needs a non-empty 'choices' list" in r.stderr
    assert not (tmp_path / "ws").exists()


def test_sql_in_each_dialect(ws: Path, tmp_path: Path) -> None:
    seg = write(
        tmp_path,
        "s.json",
        {"audience": "contact", "groups": [{"where": {"related": "orders", "count": {"op": "gte", "value": 2}}}]},
    )
    for dialect, quote in (("duckdb", '"'), ("spark", "`"), ("postgres", '"'), ("snowflake", '"'), ("bigquery", "`")):
        r = run("--workspace", str(ws), "segment", "sql", str(seg), "--dialect", dialect)
        assert r.returncode == 0, r.stderr
        assert f"{quote}order{quote}" in r.stdout
        assert "HAVING" in r.stdout
    r = run("--workspace", str(ws), "segment", "sql", str(seg), "--dialect", "nosuch")
    assert r.returncode == 2 and "unknown dialect" in r.stderr


def test_preview_masks_pii_unless_asked(ws: Path, tmp_path: Path) -> None:
    seg = write(
        tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}
    )
    r = run("--workspace", str(ws), "segment", "preview", str(seg), "--columns", "email,jobtitle", "--limit", "5")
    assert r.returncode == 0, r.stderr
    assert "ann@northwind.example" not in r.stdout and "***" in r.stdout
    assert "Marketing Manager" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "2 members"
    r = run("--workspace", str(ws), "segment", "preview", str(seg), "--columns", "email", "--show-pii")
    assert "ann@northwind.example" in r.stdout


def test_load_rejects_bad_file_whole_and_keeps_rows(ws: Path, tmp_path: Path) -> None:
    bad = tmp_path / "contact.csv"
    bad.write_text("contactid,tier,statecode\n1,Gold,0\n2,Platinum,0\n3,Gold,zero\n")
    r = run("--workspace", str(ws), "load", "contact", str(bad))
    assert r.returncode == 2
    assert "data row 2 (line 3)" in r.stderr and "'tier'" in r.stderr and "'Platinum'" in r.stderr
    assert "data row 3 (line 4)" in r.stderr and "'statecode'" in r.stderr
    seg = write(tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"all": []}}]})
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg))
    assert r.stdout.strip().splitlines()[-1] == "7 members"


def test_load_unknown_table_exits_2(ws: Path, tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("a\n1\n")
    r = run("--workspace", str(ws), "load", "contacts", str(f))
    assert r.returncode == 2 and "did you mean 'contact'" in r.stderr


def test_a_workspace_held_by_another_process_is_one_clear_line(ws: Path, tmp_path: Path) -> None:
    # DuckDB lets one process open the data at a time (`segmenta serve` holds it while it runs).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, segmenta; ws = segmenta.Workspace.open(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(ws),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        seg = write(tmp_path, "s.json", {"audience": "contact", "groups": [{"where": {"all": []}}]})
        line = (
            f"error: the workspace {ws} is in use by another process (pid {holder.pid}, e.g. `segmenta serve`), "
            "which holds the lock on its data; stop it or use its REST API\n"
        )
        for command in (["evaluate", str(seg)], ["sql", str(seg)], ["preview", str(seg)]):
            r = run("--workspace", str(ws), "segment", *command, "--as-of", AS_OF)
            assert (r.returncode, r.stdout, r.stderr) == (1, "", line), command
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(30)
        holder.stdout.close()
    r = run("--workspace", str(ws), "segment", "evaluate", str(seg), "--as-of", AS_OF)
    assert r.returncode == 0 and r.stdout.strip().endswith("7 members"), r.stderr
