"""Bounded work: a definition or a YAML file too big for any real segment is refused cheaply, naming the limit.

The limits are checked on the raw data before anything is built from it, so hostile input
(20,000 conditions, nesting 100,000 deep, a billion-laughs YAML file) costs milliseconds and
no memory, and the error names the limit and the setting that raises it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from segmenta import Workspace
from segmenta.errors import DefinitionError, ModelError, RejectedInput
from segmenta.model.schema import Model
from segmenta.model.validate import DefinitionLimits, load_definition_text, parse_definition, statement_timeout_from_config
from tests.spark.conftest import spark_session  # noqa: F401 - the one SparkSession fixture

COND = {"attribute": "firstname", "op": "eq", "value": "Ann"}
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)


@pytest.fixture(scope="module")
def model(conformance_dir: Path) -> Model:
    return Model.from_file(conformance_dir / "model.yaml")


def refused(raw: Any, model: Model, **kwargs: Any) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(raw, model, **kwargs)
    return [str(p) for p in info.value.problems]


def one(where: Any) -> dict[str, Any]:
    return {"audience": "contact", "groups": [{"where": where}]}


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = dict(COND)
    for _ in range(depth - 1):
        node = {"all": [node]}
    return node


def segmenta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


# -- definition limits -------------------------------------------------------------------


@pytest.mark.parametrize("tree", ["all", "any"])
def test_twenty_thousand_conditions_are_refused_naming_the_limit(model: Model, tree: str) -> None:
    assert refused(one({tree: [COND] * 20_000}), model) == [
        "/groups/0/where: 20,001 conditions exceed the limit of 500 (setting limits.max_conditions)"
    ]


def test_conditions_are_counted_over_the_whole_definition(model: Model) -> None:
    raw = {"audience": "contact", "groups": [{"where": {"all": [COND] * 300}}, {"link": "or", "where": {"any": [COND] * 300}}]}
    assert refused(raw, model) == ["/groups/1/where: 602 conditions exceed the limit of 500 (setting limits.max_conditions)"]


@pytest.mark.parametrize("depth", [33, 400, 100_000])
def test_deep_nesting_is_refused_without_recursion(model: Model, depth: int) -> None:
    # Built iteratively; the check must not recurse either (100,000 frames would blow the stack).
    problems = refused(one(nested(depth)), model)
    assert problems[0] == (
        f"/groups/0/where{'/all/0' * 32}: conditions nested {depth:,} deep exceed the limit of 32 (setting limits.max_depth)"
    )
    if depth > 500:  # so many levels are as many conditions
        assert problems[1:] == [f"/groups/0/where: {depth:,} conditions exceed the limit of 500 (setting limits.max_conditions)"]
    else:
        assert len(problems) == 1


def test_nesting_through_related_counts_as_depth(model: Model) -> None:
    inner: dict[str, Any] = {"attribute": "type", "op": "eq", "value": "x"}
    for _ in range(39):
        inner = {"all": [inner]}
    (problem,) = refused(one({"related": "interactions", "where": inner}), model)
    assert problem == (
        f"/groups/0/where/where{'/all/0' * 31}: conditions nested 41 deep exceed the limit of 32 (setting limits.max_depth)"
    )


def test_groups_list_values_and_text_length_are_bounded(model: Model) -> None:
    many_groups = {"audience": "contact", "groups": [{"where": COND}] + [{"link": "or", "where": COND}] * 100}
    assert refused(many_groups, model) == ["/groups: 101 groups exceed the limit of 100 (setting limits.max_groups)"]
    big_list = one({"attribute": "firstname", "op": "in", "value": [str(i) for i in range(10_001)]})
    assert refused(big_list, model) == [
        "/groups/0/where: a list of 10,001 values exceeds the limit of 10,000 (setting limits.max_list_values)"
    ]
    long_text = one({"all": [COND, {"attribute": "lastname", "op": "contains", "value": "x" * 10_001}]})
    assert refused(long_text, model) == [
        "/groups/0/where/all/1: a text value of 10,001 characters exceeds the limit of 10,000 (setting limits.max_text_length)"
    ]


def test_real_segments_fit_the_defaults(model: Model) -> None:
    # 20 groups of 20 conditions, 10 levels deep somewhere, a 5,000-value list: well inside the defaults.
    groups = [{"where": {"all": [COND] * 19 + [nested(10)]}}]
    groups += [{"link": "or", "where": {"any": [COND] * 20}} for _ in range(19)]
    groups.append({"link": "and_also", "where": {"attribute": "firstname", "op": "in", "value": [str(i) for i in range(5000)]}})
    definition = parse_definition({"audience": "contact", "groups": groups}, model)
    assert len(definition.groups) == 21


def test_limits_are_settings(model: Model) -> None:
    limits = DefinitionLimits.from_config({"max_conditions": 2000, "max_depth": 40, "statement_timeout_s": 5})
    assert (limits.max_conditions, limits.max_depth, limits.max_groups) == (2000, 40, 100)
    assert len(parse_definition(one({"all": [COND] * 1500}), model, limits=limits).groups) == 1
    assert refused(one(nested(41)), model, limits=limits)[0].endswith("the limit of 40 (setting limits.max_depth)")
    assert DefinitionLimits.from_config(None) == DefinitionLimits()
    assert statement_timeout_from_config({"statement_timeout_s": 2.5}) == 2.5
    assert statement_timeout_from_config(None) == 30.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"max_conditions": 0}, "segmenta.yaml: limits.max_conditions: must be a whole number from 1 to 100,000, not 0"),
        ({"max_depth": 1000}, "segmenta.yaml: limits.max_depth: must be a whole number from 1 to 64, not 1000"),
        ({"max_groups": "many"}, 'segmenta.yaml: limits.max_groups: must be a whole number from 1 to 10,000, not "many"'),
        ({"max_depht": 3}, "segmenta.yaml: limits.max_depht: unknown limit (did you mean 'max_depth'?); limits: "),
        (
            {"statement_timeout_s": -1},
            "segmenta.yaml: limits.statement_timeout_s: must be a number of seconds from 0.001 to 86,400",
        ),
        ([1, 2], "segmenta.yaml: limits: 'limits' is a mapping of limit: value, not a list"),
    ],
)
def test_bad_limit_settings_name_the_key_and_range(config: Any, message: str) -> None:
    with pytest.raises(RejectedInput) as info:
        DefinitionLimits.from_config(config)
    assert str(info.value).startswith(message)


# -- definition text ---------------------------------------------------------------------------


def test_definition_text_over_the_size_limit_is_refused_unparsed() -> None:
    text = json.dumps(one({"all": [COND] * 20_000}))
    assert len(text) > 1_048_576
    with pytest.raises(DefinitionError) as info:
        load_definition_text(text, source="big.json")
    assert str(info.value) == (
        f"big.json: the definition is {len(text):,} bytes, over the limit of 1,048,576 (setting limits.max_definition_bytes)"
    )


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_text_nested_100000_deep_is_refused_without_recursion_error(syntax: str) -> None:
    inner = "[" * 100_000 + "]" * 100_000
    text = f'{{"audience": "contact", "groups": {inner}}}' if syntax == "json" else f"audience: contact\ngroups: {inner}\n"
    with pytest.raises(DefinitionError) as info:
        load_definition_text(text, source="deep")
    assert str(info.value) == "deep: the definition is nested far deeper than the limit of 32 (setting limits.max_depth)"


def test_yaml_nested_blocks_too_deep_are_refused() -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(300)) + " " * 300 + "x: 1\n"
    with pytest.raises(DefinitionError) as info:
        load_definition_text(text, source="deep.yaml")
    assert "nested far deeper than the limit" in str(info.value)


# -- YAML bombs --------------------------------------------------------------------------------


def test_billion_laughs_definition_is_refused_at_the_first_anchor() -> None:
    assert len(BILLION_LAUGHS) < 600
    with pytest.raises(DefinitionError) as info:
        load_definition_text(BILLION_LAUGHS, source="bomb.yaml")
    assert str(info.value).startswith("bomb.yaml: line 1 column 4: YAML anchor &a is not allowed here")


def test_aliases_are_refused_even_without_anchors_expanding() -> None:
    text = "audience: contact\ngroups:\n- where: &w {attribute: firstname, op: eq, value: Ann}\n- link: or\n  where: *w\n"
    with pytest.raises(DefinitionError) as info:
        load_definition_text(text, source="seg.yaml")
    assert "YAML anchor &w is not allowed here" in str(info.value)
    with pytest.raises(DefinitionError) as info:
        load_definition_text("audience: contact\ngroups: *g\n", source="seg.yaml")
    assert str(info.value).startswith("seg.yaml: line 2 column 9: YAML alias *g is not allowed here")


def test_billion_laughs_model_is_refused() -> None:
    with pytest.raises(ModelError) as info:
        Model.from_yaml_text(BILLION_LAUGHS)
    assert "YAML anchor &a is not allowed here" in str(info.value)


def test_cli_refuses_a_yaml_bomb_definition_and_model(tmp_path: Path, conformance_dir: Path) -> None:
    ws = tmp_path / "ws"
    Workspace.init(ws, model=conformance_dir / "model.yaml").close()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS)
    r = segmenta("--workspace", str(ws), "segment", "evaluate", str(bomb))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith(f"{bomb}: line 1 column 4: YAML anchor &a is not allowed here")
    r = segmenta("--workspace", str(tmp_path / "other"), "init", "--model", str(bomb))
    assert r.returncode == 2, r.stderr
    assert "YAML anchor &a is not allowed here" in r.stderr
    assert not (tmp_path / "other").exists()


def test_cli_refuses_twenty_thousand_conditions_and_deep_text(tmp_path: Path, conformance_dir: Path) -> None:
    ws = tmp_path / "ws"
    Workspace.init(ws, model=conformance_dir / "model.yaml").close()
    wide = tmp_path / "wide.json"
    wide.write_text(json.dumps(one({"any": [{"attribute": "tier", "op": "eq", "value": "Gold"}] * 20_000})))
    r = segmenta("--workspace", str(ws), "segment", "evaluate", str(wide))
    assert (r.returncode, r.stderr) == (
        2,
        "/groups/0/where: 20,001 conditions exceed the limit of 500 (setting limits.max_conditions)\n",
    )
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(one(nested(200))))
    r = segmenta("--workspace", str(ws), "segment", "sql", str(deep))
    assert r.returncode == 2, r.stderr
    assert r.stderr.endswith("conditions nested 200 deep exceed the limit of 32 (setting limits.max_depth)\n")


# -- engine bounds: statement timeout, DuckDB memory and threads ---------------------------

LONG_QUERY = "SELECT count(*) FROM range(100000000) a, range(100000) b WHERE a.range + b.range = 7"


def test_a_query_over_the_statement_timeout_is_cancelled_and_the_engine_stays_usable(tmp_path: Path) -> None:
    import time

    from segmenta.engines.duckdb import DuckDBEngine
    from segmenta.errors import Timeout

    engine = DuckDBEngine(tmp_path / "data.duckdb")
    engine.statement_timeout_s = 0.5
    try:
        start = time.monotonic()
        with pytest.raises(Timeout) as info:
            engine.run(LONG_QUERY)  # would run for many minutes
        assert time.monotonic() - start < 20  # cancelled, not run to the end
        assert str(info.value).startswith(
            "the query ran longer than the limit of 0.5 s (setting limits.statement_timeout_s) and was cancelled"
        )
        assert info.value.sql == LONG_QUERY
        # The same connection answers the next query and still writes.
        assert engine.run("SELECT 42 AS x").to_pylist() == [{"x": 42}]
        engine.con.execute("CREATE TABLE t AS SELECT 1 AS a")
        assert engine.run("SELECT a FROM t").to_pylist() == [{"a": 1}]
        # A per-call limit wins over the engine's, and a late timer never hits the next query.
        assert engine.run("SELECT 1 AS y", timeout_s=0.05).to_pylist() == [{"y": 1}]
        time.sleep(0.1)
        assert engine.run("SELECT 2 AS y").to_pylist() == [{"y": 2}]
    finally:
        engine.close()


def test_a_timeout_that_lands_while_the_query_is_planned_still_cancels_it(tmp_path: Path) -> None:
    # DuckDB clears an interrupt that arrives before execution starts; planning 300 LIKEs takes a while.
    from segmenta.engines.duckdb import DuckDBEngine
    from segmenta.errors import Timeout

    engine = DuckDBEngine(tmp_path / "data.duckdb")
    engine.con.execute("CREATE TABLE person AS SELECT range AS id, 'note ' || range || ' of many' AS note FROM range(2000000)")
    where = " OR ".join(f"lower(note) LIKE '%{i} of m%'" for i in range(300))
    engine.statement_timeout_s = 0.05
    try:
        with pytest.raises(Timeout):
            engine.run(f"SELECT count(*) AS n FROM person WHERE {where}")
        assert engine.run("SELECT count(*) AS n FROM person").to_pylist() == [{"n": 2_000_000}]
    finally:
        engine.close()


def test_one_cursor_timing_out_leaves_the_other_cursors_running(tmp_path: Path) -> None:
    # The service gives each request a cursor of one connection; a timeout interrupts only its own.
    import threading

    from segmenta.engines.duckdb import DuckDBEngine
    from segmenta.errors import Timeout

    parent = DuckDBEngine(tmp_path / "data.duckdb")
    slow, steady = DuckDBEngine.__new__(DuckDBEngine), DuckDBEngine.__new__(DuckDBEngine)
    for e in (slow, steady):
        e.path, e.settings, e.con = parent.path, parent.settings, parent.con.cursor()
    slow.statement_timeout_s = 1.0
    errors: list[BaseException] = []

    def long() -> None:
        try:
            slow.run(LONG_QUERY)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=long)
    t.start()
    results = [steady.run(f"SELECT count(*) AS n FROM range({i * 1000})").column(0)[0].as_py() for i in range(1, 30)]
    t.join(30)
    assert results == [i * 1000 for i in range(1, 30)]
    assert len(errors) == 1 and isinstance(errors[0], Timeout)
    for e in (slow, steady, parent):
        e.close()


def test_statement_timeout_is_read_from_the_workspace_settings(tmp_path: Path, conformance_dir: Path) -> None:
    ws_path = tmp_path / "ws"
    Workspace.init(ws_path, model=conformance_dir / "model.yaml").close()
    config = ws_path / "segmenta.yaml"
    config.write_text(config.read_text() + "limits:\n  statement_timeout_s: 2.5\n")
    with Workspace.open(ws_path) as ws:
        assert ws.engine.statement_timeout_s == 2.5
    config.write_text(config.read_text().replace("2.5", "-3"))
    r = segmenta("--workspace", str(ws_path), "segment", "sql", str(conformance_dir / "segments" / "choices_empty_set.json"))
    assert r.returncode == 2
    assert r.stderr.startswith(
        "segmenta.yaml: limits.statement_timeout_s: must be a number of seconds from 0.001 to 86,400, not -3"
    )


def test_duckdb_memory_limit_and_threads_are_applied(tmp_path: Path) -> None:
    from segmenta.engines.duckdb import DuckDBEngine, DuckDBSettings, physical_memory, usable_cores

    default = DuckDBEngine(tmp_path / "a.duckdb")
    threads = default.run("SELECT current_setting('threads') AS t").column(0)[0].as_py()
    assert int(threads) == usable_cores()
    assert default.settings.memory_bytes == max(2**30, physical_memory() // 4)
    default.close()
    small = DuckDBEngine(tmp_path / "b.duckdb", settings=DuckDBSettings.from_config({"memory_limit": "100MiB", "threads": 1}))
    row = small.run("SELECT current_setting('memory_limit') AS m, current_setting('threads') AS t").to_pylist()[0]
    assert (row["m"], int(row["t"])) == ("100.0 MiB", 1)
    from segmenta.errors import EngineError

    # A query that needs more than the limit fails on its own, clearly, instead of taking the machine.
    with pytest.raises(EngineError) as info:
        small.run("SELECT length(string_agg(range::VARCHAR, ',')) FROM range(30000000)")
    assert "needs more memory than the limit of 0.10 GiB (setting duckdb.memory_limit)" in str(info.value)
    assert small.run("SELECT 1 AS one").to_pylist() == [{"one": 1}]
    small.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"memory_limit": "1KB"}, "segmenta.yaml: duckdb.memory_limit: must be a size from 64MiB to "),
        ({"memory_limit": "lots"}, "segmenta.yaml: duckdb.memory_limit: must be a size from 64MiB to "),
        ({"memory_limit": "250%"}, "segmenta.yaml: duckdb.memory_limit: must be a size from 64MiB to "),
        ({"threads": 0}, "segmenta.yaml: duckdb.threads: must be a whole number from 1 to "),
        ({"thread": 2}, "segmenta.yaml: duckdb.thread: unknown setting; the duckdb section takes memory_limit and threads"),
    ],
)
def test_bad_duckdb_settings_name_the_key_and_range(section: dict[str, Any], message: str) -> None:
    from segmenta.engines.duckdb import DuckDBSettings

    with pytest.raises(RejectedInput) as info:
        DuckDBSettings.from_config(section)
    assert str(info.value).startswith(message)


def test_memory_limit_as_a_share_of_the_machine() -> None:
    from segmenta.engines.duckdb import DuckDBSettings, physical_memory

    assert DuckDBSettings.from_config({"memory_limit": "50%"}).memory_bytes == physical_memory() // 2
    assert DuckDBSettings.from_config({"memory_limit": "2GB"}).memory_bytes == 2 * 10**9
    assert DuckDBSettings.from_config({"memory_limit": "512MiB"}).memory_bytes == 512 * 2**20


class SparkCancelHung(Exception):
    """The cancelled Spark query did not return (its result stream stayed open)."""


@pytest.mark.spark
def test_spark_query_over_the_timeout_is_cancelled_and_the_session_stays_usable(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    import threading

    from segmenta.engines.spark import SparkEngine, SparkSettings
    from segmenta.errors import Timeout

    spark = request.getfixturevalue("spark_session")
    engine = SparkEngine(tmp_path, SparkSettings(master=spark.sparkContext.master))
    engine.statement_timeout_s = 3.0
    outcome: list[BaseException | object] = []

    def long() -> None:
        try:
            outcome.append(
                engine.run("SELECT count(*) AS n FROM range(3000000) a CROSS JOIN range(3000000) b WHERE a.id + b.id = 7")
            )
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=long, daemon=True)
    worker.start()
    worker.join(180)
    if worker.is_alive():
        raise SparkCancelHung("the query was not back 180 s after its 3 s limit")
    (error,) = outcome
    assert isinstance(error, Timeout), error
    assert "limit of 3 s (setting limits.statement_timeout_s)" in str(error)
    # The session still answers (with room to do so on a loaded machine: Spark is slow to start a job).
    assert engine.run("SELECT 42 AS x", timeout_s=300).to_pylist() == [{"x": 42}]


def test_workspace_reads_definition_limits_from_its_settings(tmp_path: Path, conformance_dir: Path) -> None:
    ws_path = tmp_path / "ws"
    Workspace.init(ws_path, model=conformance_dir / "model.yaml").close()
    config = ws_path / "segmenta.yaml"
    original = config.read_text()
    config.write_text(original + "limits:\n  max_conditions: 5\n")
    seg = tmp_path / "six.json"
    seg.write_text(json.dumps(one({"all": [COND] * 5})))  # the all and its five items: six conditions
    r = segmenta("--workspace", str(ws_path), "segment", "evaluate", str(seg))
    assert (r.returncode, r.stderr) == (
        2,
        "/groups/0/where: 6 conditions exceed the limit of 5 (setting limits.max_conditions)\n",
    )
    r = segmenta("--workspace", str(ws_path), "segment", "create", str(seg))  # saving obeys the same settings
    assert r.returncode == 2 and "setting limits.max_conditions" in r.stderr, r.stderr
    assert json.loads(segmenta("--workspace", str(ws_path), "segment", "list", "--json").stdout) == []
    config.write_text(original + "limits:\n  max_depth: 0\n")
    r = segmenta("--workspace", str(ws_path), "segment", "evaluate", str(seg))
    assert (r.returncode, r.stderr) == (2, "segmenta.yaml: limits.max_depth: must be a whole number from 1 to 64, not 0\n")


def test_yaml_reads_the_same_with_or_without_star_and_ampersand_characters() -> None:
    # Plain text takes libyaml; text with '*' or '&' (possible aliases) takes the checked parser.
    plain = "audience: contact\ngroups:\n- where: {attribute: tier, op: eq, value: Yes}\n- link: or\n  where: {op: on}\n"
    starred = plain.replace("value: Yes", "value: 'Y*s & co'")
    expected = {
        "audience": "contact",
        "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Yes"}}, {"link": "or", "where": {"op": "on"}}],
    }
    assert load_definition_text(plain) == expected
    expected["groups"][0]["where"]["value"] = "Y*s & co"
    assert load_definition_text(starred) == expected
    deep_block = "".join(" " * i + f"k{i}:\n" for i in range(250)) + " " * 250 + "x: 1\n"
    with pytest.raises(DefinitionError):
        load_definition_text(deep_block)


def test_each_engine_keeps_its_own_default_timeout_unless_the_setting_is_given(tmp_path: Path) -> None:
    from segmenta.engines.base import configure_limits
    from segmenta.engines.duckdb import DuckDBEngine
    from segmenta.engines.spark import SparkEngine

    spark = SparkEngine(tmp_path)  # no session is started until a query runs
    duck = DuckDBEngine()
    assert configure_limits(spark, {}).statement_timeout_s == 900  # Spark runs big segments for minutes
    assert configure_limits(duck, {"limits": {"max_depth": 10}}).statement_timeout_s == 30
    assert configure_limits(spark, {"limits": {"statement_timeout_s": 5}}).statement_timeout_s == 5
    duck.close()
