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
