"""Every rejection of contract section 4: the JSON pointer and the message of each problem.

Definitions are checked against the contract's own example model
(``spec/examples/model.yaml``), through :func:`parse_definition` and, for a few, through
the CLI (exit status 2, one line per problem on stderr, nothing on stdout, nothing changed).
Bad ``model.yaml`` files are rejected with :class:`ModelError` the same way.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from segmenta import Workspace
from segmenta.errors import DefinitionError, ModelError
from segmenta.model.schema import Model
from segmenta.model.validate import load_definition_text, parse_definition
from tests.conftest import SPEC_EXAMPLES

EXAMPLE_MODEL = SPEC_EXAMPLES / "model.yaml"
TEXT_OPS = (
    "eq, ne, contains, not_contains, starts_with, not_starts_with, ends_with, not_ends_with, in, not_in, is_empty, is_not_empty"
)
NUMBER_OPS = "eq, ne, gt, gte, lt, lte, between, not_between, in, not_in, is_empty, is_not_empty"
UNITS = "hours, days, weeks, months, years"


@pytest.fixture(scope="module")
def model() -> Model:
    assert EXAMPLE_MODEL.is_file(), f"the contract's example model belongs at {EXAMPLE_MODEL}"
    return Model.from_file(EXAMPLE_MODEL)


def problems(raw: Any, model: Model) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as info:
        parse_definition(raw, model)
    return [(p.where, p.message) for p in info.value.problems]


def one(where: dict[str, Any]) -> dict[str, Any]:
    """A definition of contacts with one group."""
    return {"audience": "contact", "groups": [{"where": where}]}


W = "/groups/0/where"

# (id, where, pointer, message): one condition, one problem.
CONDITIONS = [
    # unknown names
    (
        "unknown attribute",
        {"attribute": "jobtitel", "op": "eq", "value": "x"},
        W,
        "table 'contact' has no attribute 'jobtitel' (did you mean 'jobtitle'?)",
    ),
    (
        "unknown attribute, no close name",
        {"attribute": "zzz", "op": "eq", "value": "x"},
        W,
        "table 'contact' has no attribute 'zzz'",
    ),
    (
        "unknown attribute at the end of a path",
        {"path": ["account"], "attribute": "industri", "op": "eq", "value": "Tech"},
        W,
        "table 'account' has no attribute 'industri' (did you mean 'industry'?)",
    ),
    (
        "unknown relationship in a path",
        {"path": ["acount"], "attribute": "industry", "op": "eq", "value": "Tech"},
        W,
        "table 'contact' has no many-to-one relationship 'acount' (did you mean 'account'?); path steps from 'contact': 'account'",
    ),
    (
        "unknown relationship in related",
        {"related": "order"},
        W,
        "table 'contact' has no one-to-many relationship 'order' (did you mean 'orders'?); from 'contact': 'orders', 'interactions'",
    ),
    (
        "unknown measure",
        {"measure": "total_spent", "op": "gt", "value": 1},
        W,
        "table 'contact' has no measure 'total_spent' (did you mean 'total_spend'?); measures of 'contact': 'total_spend'",
    ),
    (
        "measure of another table",
        {"measure": "total_spend", "op": "gt", "value": 1, "path": ["account"]},
        W,
        "table 'account' has no measure 'total_spend' (it is a measure of 'contact'); measures of 'account': none",
    ),
    # paths and related in the wrong direction
    (
        "path step that is one-to-many",
        {"path": ["orders"], "attribute": "amount", "op": "gt", "value": 1},
        W,
        "path step 'orders' is one-to-many from 'contact'; a path walks only many-to-one relationships ('account'); "
        'use {"related": "orders"} to reach many records',
    ),
    (
        "related that is many-to-one",
        {"related": "account"},
        W,
        "'account' is many-to-one from 'contact' (one record); 'related' takes a one-to-many relationship "
        "('orders', 'interactions'); reach 'account' with \"path\": [\"account\"]",
    ),
    (
        "path that is not a list",
        {"path": "account", "attribute": "industry", "op": "eq", "value": "Tech"},
        W,
        "'path' is a list of relationship names, not a string \"account\"",
    ),
    # operators that do not fit the type
    (
        "contains on a choice",
        {"attribute": "tier", "op": "contains", "value": "Gold"},
        W,
        "operator 'contains' does not fit choice attribute 'tier'; use one of: eq, ne, in, not_in, is_empty, is_not_empty",
    ),
    (
        "gt on text",
        {"attribute": "jobtitle", "op": "gt", "value": "x"},
        W,
        f"operator 'gt' does not fit text attribute 'jobtitle'; use one of: {TEXT_OPS}",
    ),
    (
        "eq on a date",
        {"attribute": "birthdate", "op": "eq", "value": "2000-01-01"},
        W,
        "operator 'eq' does not fit date attribute 'birthdate'; use one of: on, not_on, before, after, on_or_before, on_or_after, "
        "between, in_last, not_in_last, in_next, is_empty, is_not_empty",
    ),
    (
        "eq on a boolean",
        {"attribute": "donotemail", "op": "eq", "value": True},
        W,
        "operator 'eq' does not fit boolean attribute 'donotemail'; use one of: is_true, is_false, is_empty, is_not_empty",
    ),
    (
        "eq on choices",
        {"attribute": "interests", "op": "eq", "value": "golf"},
        W,
        "operator 'eq' does not fit choices attribute 'interests'; use one of: contains_any, contains_all, not_contains_any, is_empty, is_not_empty",
    ),
    (
        "misspelt operator",
        {"attribute": "jobtitle", "op": "startswith", "value": "x"},
        W,
        f"operator 'startswith' does not fit text attribute 'jobtitle' (did you mean 'starts_with'?); use one of: {TEXT_OPS}",
    ),
    (
        "missing op",
        {"attribute": "jobtitle", "value": "x"},
        W,
        f"missing 'op' for text attribute 'jobtitle'; use one of: {TEXT_OPS}",
    ),
    (
        "text operator on a measure",
        {"measure": "total_spend", "op": "contains", "value": 1},
        W,
        f"operator 'contains' does not fit measure 'total_spend' (decimal); use one of: {NUMBER_OPS}",
    ),
    # values of the wrong type or shape
    (
        "number for text",
        {"attribute": "jobtitle", "op": "eq", "value": 3},
        W,
        "eq on attribute 'jobtitle' compares text: write the value as a string, e.g. \"3\"",
    ),
    (
        "string for a number",
        {"attribute": "parentaccountid", "op": "eq", "value": "3"},
        W,
        "eq on attribute 'parentaccountid' needs a whole number, not \"3\"",
    ),
    (
        "fraction for an integer",
        {"attribute": "parentaccountid", "op": "gt", "value": 1.5},
        W,
        "gt on attribute 'parentaccountid' needs a whole number, not 1.5",
    ),
    (
        "boolean for an integer",
        {"attribute": "parentaccountid", "op": "eq", "value": True},
        W,
        "eq on attribute 'parentaccountid' needs a whole number, not true",
    ),
    (
        "string for a decimal",
        {
            "path": ["account"],
            "related": "contacts",
            "aggregate": {"fn": "avg", "attribute": "parentaccountid"},
            "op": "gt",
            "value": "x",
        },
        W,
        "gt on avg of 'parentaccountid' needs a number, not \"x\"",
    ),
    (
        "list for eq",
        {"attribute": "jobtitle", "op": "eq", "value": ["a", "b"]},
        W,
        'eq on attribute \'jobtitle\' takes one value ("text"), not a list; use "in" to match any of several values',
    ),
    (
        "object for eq",
        {"attribute": "parentaccountid", "op": "eq", "value": {"n": 1}},
        W,
        "eq on attribute 'parentaccountid' takes one value (a whole number), not an object",
    ),
    (
        "scalar for in",
        {"attribute": "jobtitle", "op": "in", "value": "a"},
        W,
        'in takes a non-empty list (a list, each "text"), not "a"',
    ),
    (
        "empty list for in",
        {"attribute": "parentaccountid", "op": "not_in", "value": []},
        W,
        "not_in takes a non-empty list (a list, each a whole number), not []",
    ),
    ("missing value", {"attribute": "jobtitle", "op": "eq"}, W, "eq on attribute 'jobtitle' needs a 'value' (\"text\")"),
    (
        "null value",
        {"attribute": "jobtitle", "op": "contains", "value": None},
        W,
        "contains on attribute 'jobtitle' needs a 'value' (\"text\")",
    ),
    (
        "value for is_true",
        {"attribute": "donotemail", "op": "is_true", "value": True},
        W,
        "is_true takes no value (found true); remove 'value'",
    ),
    (
        "value for is_empty",
        {"attribute": "jobtitle", "op": "is_empty", "value": ""},
        W,
        "is_empty takes no value (found \"\"); remove 'value'",
    ),
    (
        "non-ISO date",
        {"attribute": "createdon", "op": "on", "value": "27/10/2026"},
        W,
        'on on attribute \'createdon\' needs an ISO 8601 date such as "2026-10-27", not "27/10/2026"',
    ),
    (
        "impossible date",
        {"attribute": "birthdate", "op": "before", "value": "2026-02-30"},
        W,
        'before on attribute \'birthdate\' needs an ISO 8601 date such as "2026-10-27", not "2026-02-30"',
    ),
    (
        "number for a date",
        {"attribute": "birthdate", "op": "after", "value": 20261027},
        W,
        "after on attribute 'birthdate' needs an ISO 8601 date such as \"2026-10-27\", not 20261027",
    ),
    (
        "unknown window unit",
        {"attribute": "createdon", "op": "in_last", "value": {"fortnights": 2}},
        W,
        f"unknown unit 'fortnights' for in_last; units: {UNITS}",
    ),
    (
        "misspelt window unit",
        {"attribute": "createdon", "op": "in_next", "value": {"day": 2}},
        W,
        f"unknown unit 'day' for in_next (did you mean 'days'?); units: {UNITS}",
    ),
    (
        "window as a number",
        {"attribute": "createdon", "op": "in_last", "value": 90},
        W,
        f'in_last takes one unit and a count, e.g. {{"days": 90}}; units: {UNITS}',
    ),
    (
        "window with two units",
        {"attribute": "createdon", "op": "not_in_last", "value": {"days": 1, "hours": 2}},
        W,
        f'not_in_last takes one unit and a count, e.g. {{"days": 90}}; units: {UNITS}',
    ),
    (
        "negative window",
        {"attribute": "createdon", "op": "in_last", "value": {"days": -1}},
        W,
        'in_last needs a whole number of days >= 0, e.g. {"days": 90}, not -1',
    ),
    (
        "fractional window",
        {"attribute": "birthdate", "op": "in_last", "value": {"months": 1.5}},
        W,
        'in_last needs a whole number of months >= 0, e.g. {"months": 90}, not 1.5',
    ),
    (
        "between with one item",
        {"attribute": "createdon", "op": "between", "value": ["2026-01-01"]},
        W,
        'between takes [low, high] ([low, high], each "2026-10-27"), not ["2026-01-01"]',
    ),
    (
        "between with three items",
        {"attribute": "parentaccountid", "op": "not_between", "value": [1, 2, 3]},
        W,
        "not_between takes [low, high] ([low, high], each a whole number), not [1, 2, 3]",
    ),
    (
        "between backwards",
        {"attribute": "parentaccountid", "op": "between", "value": [5, 1]},
        W,
        "between range is backwards: low 5 is above high 1; write [1, 5]",
    ),
    (
        "case_sensitive not a boolean",
        {"attribute": "jobtitle", "op": "eq", "value": "x", "case_sensitive": "yes"},
        W,
        'case_sensitive must be true or false, not a string "yes"',
    ),
    (
        "case_sensitive on a choice",
        {"attribute": "tier", "op": "eq", "value": "Gold", "case_sensitive": True},
        W,
        "case_sensitive applies to text attributes only; 'tier' is choice",
    ),
    # choices
    (
        "choice not among the choices",
        {"attribute": "tier", "op": "eq", "value": "Platinum"},
        W,
        "\"Platinum\" is not a choice of attribute 'tier'; choices: Gold, Silver, Bronze",
    ),
    (
        "choice in the wrong case",
        {"attribute": "tier", "op": "in", "value": ["Gold", "silver"]},
        W,
        "\"silver\" is not a choice of attribute 'tier' (did you mean 'Silver'?); choices: Gold, Silver, Bronze",
    ),
    (
        "choices value not among the choices",
        {"attribute": "interests", "op": "contains_any", "value": ["golf", "chess"]},
        W,
        "\"chess\" is not a choice of attribute 'interests'; choices: golf, travel, wine",
    ),
    (
        "choice through a path",
        {"path": ["account"], "attribute": "industry", "op": "ne", "value": "tech"},
        W,
        "\"tech\" is not a choice of attribute 'industry' (did you mean 'Tech'?); choices: Retail, Tech, Finance, Health",
    ),
    # calculated attributes
    (
        "calculated attribute",
        {"attribute": "fullname", "op": "eq", "value": "x"},
        W,
        "attribute 'fullname' of 'contact' is calculated: it may be shown but not used in a condition",
    ),
    (
        "calculated attribute in is_empty",
        {"attribute": "fullname", "op": "is_empty"},
        W,
        "attribute 'fullname' of 'contact' is calculated: it may be shown but not used in a condition",
    ),
    # counts and aggregates
    (
        "count operator",
        {"related": "orders", "count": {"op": "approx", "value": 1}},
        W,
        "count operator 'approx' is not one of: eq, ne, gt, gte, lt, lte, between",
    ),
    (
        "negative count",
        {"related": "orders", "count": {"op": "gte", "value": -1}},
        W,
        "count value must be a whole number >= 0, not -1",
    ),
    (
        "count between one item",
        {"related": "orders", "count": {"op": "between", "value": [1]}},
        W,
        "count between takes [low, high], whole numbers >= 0 with low <= high, not [1]",
    ),
    (
        "count not an object",
        {"related": "orders", "count": 2},
        W,
        '\'count\' is {"op": OP, "value": N}, e.g. {"op": "gte", "value": 1}',
    ),
    (
        "unknown aggregate function",
        {"related": "orders", "aggregate": {"fn": "median", "attribute": "amount"}, "op": "gt", "value": 1},
        W,
        "unknown aggregate function 'median' (did you mean 'min'?); use one of sum, avg, min, max, count_distinct",
    ),
    (
        "sum of a datetime",
        {"related": "orders", "aggregate": {"fn": "sum", "attribute": "ts"}, "op": "gt", "value": 1},
        W,
        "sum needs an integer or decimal attribute, not datetime",
    ),
    (
        "aggregate of an unknown attribute",
        {"related": "orders", "aggregate": {"fn": "max", "attribute": "amout"}, "op": "gt", "value": 1},
        W,
        "table 'order' has no attribute 'amout' (did you mean 'amount'?)",
    ),
    (
        "aggregate missing attribute",
        {"related": "orders", "aggregate": {"fn": "max"}, "op": "gt", "value": 1},
        W,
        '\'aggregate\' is {"fn": F, "attribute": A} with F one of sum, avg, min, max, count_distinct',
    ),
    (
        "where of related on the related table",
        {"related": "orders", "where": {"attribute": "jobtitle", "op": "eq", "value": "x"}},
        f"{W}/where",
        "table 'order' has no attribute 'jobtitle'",
    ),
    # trees and shapes
    (
        "all and any together",
        {"all": [], "any": []},
        W,
        "a condition has exactly one of all, any, attribute, related, measure, in_segment; found all, any",
    ),
    (
        "all not a list",
        {"all": {"attribute": "jobtitle", "op": "is_empty"}},
        W,
        "'all' takes a list of conditions, not an object",
    ),
    (
        "not a condition",
        {"field": "jobtitle"},
        W,
        "not a condition (keys: 'field'); a condition has one of: all, any, attribute, related, measure, in_segment",
    ),
    ("condition not an object", ["jobtitle"], W, "a condition is an object, not a list"),
    ("in_segment not a name", {"in_segment": 3}, W, "in_segment takes a segment name, not a number 3"),
    # unknown keys in conditions
    (
        "unknown key in an attribute condition",
        {"attribute": "tier", "op": "eq", "value": "Gold", "negate": True},
        W,
        "unknown key 'negate'; this condition takes path, attribute, op, value, case_sensitive",
    ),
    (
        "misspelt key in an attribute condition",
        {"attribute": "tier", "op": "eq", "valeu": "Gold"},
        W,
        "unknown key 'valeu' (did you mean 'value'?); this condition takes path, attribute, op, value, case_sensitive",
    ),
    (
        "unknown key in a related condition",
        {"related": "orders", "count": {"op": "gte", "value": 1}, "extra": 2},
        W,
        "unknown key 'extra'; this condition takes path, related, where, count",
    ),
    (
        "unknown key in an aggregate condition",
        {"related": "orders", "aggregate": {"fn": "sum", "attribute": "amount"}, "op": "gt", "value": 1, "having": 1},
        W,
        "unknown key 'having'; this condition takes path, related, where, aggregate, op, value",
    ),
    (
        "unknown key in a measure condition",
        {"measure": "total_spend", "op": "gt", "value": 1, "where": {}},
        W,
        "unknown key 'where'; this condition takes path, measure, op, value",
    ),
    ("unknown key in a tree", {"all": [], "extra": 1}, W, "unknown key 'extra'; this condition takes all"),
    (
        "unknown key in count",
        {"related": "orders", "count": {"op": "gte", "value": 1, "distinct": True}},
        W,
        'unknown key \'distinct\' in \'count\'; \'count\' is {"op": OP, "value": N}, e.g. {"op": "gte", "value": 1}',
    ),
    (
        "unknown key in aggregate",
        {"related": "orders", "aggregate": {"fn": "sum", "attribute": "amount", "over": 1}, "op": "gt", "value": 1},
        W,
        "unknown key 'over' in 'aggregate'; 'aggregate' is {\"fn\": F, \"attribute\": A} with F one of sum, avg, min, max, count_distinct",
    ),
]


@pytest.mark.parametrize(("where", "pointer", "message"), [c[1:] for c in CONDITIONS], ids=[c[0] for c in CONDITIONS])
def test_condition_is_rejected(model: Model, where: dict[str, Any], pointer: str, message: str) -> None:
    assert problems(one(where), model) == [(pointer, message)]


def test_the_contracts_own_example(model: Model) -> None:
    raw = one(
        {
            "all": [
                {"attribute": "jobtitle", "op": "contains", "value": "manager"},
                {"attribute": "tier", "op": "eq", "value": "Gold"},
                {"attribute": "jobtitel", "op": "eq", "value": "x"},
            ]
        }
    )
    with pytest.raises(DefinitionError) as info:
        parse_definition(raw, model)
    assert str(info.value) == "/groups/0/where/all/2: table 'contact' has no attribute 'jobtitel' (did you mean 'jobtitle'?)"


def test_nested_pointers(model: Model) -> None:
    raw = {
        "audience": "contact",
        "groups": [
            {"where": {"all": []}},
            {
                "link": "or",
                "where": {
                    "any": [
                        {"attribute": "tier", "op": "eq", "value": "Gold"},
                        {
                            "related": "interactions",
                            "where": {
                                "all": [
                                    {"attribute": "type", "op": "eq", "value": "click"},
                                    {"attribute": "tss", "op": "in_last", "value": {"days": 1}},
                                ]
                            },
                        },
                    ]
                },
            },
        ],
    }
    assert problems(raw, model) == [
        ("/groups/1/where/any/1/where/all/1", "table 'interaction' has no attribute 'tss' (did you mean 'ts'?)"),
    ]


DEFINITIONS = [
    (
        "unknown audience",
        {"audience": "contacts", "groups": [{"where": {"all": []}}]},
        [
            (
                "/audience",
                "unknown table 'contacts' (did you mean 'contact'?); tables are 'account', 'contact', 'order', 'interaction'",
            )
        ],
    ),
    (
        "missing audience",
        {"groups": [{"where": {"all": []}}]},
        [
            (
                "/audience",
                "missing 'audience': the table whose records are members, one of 'account', 'contact', 'order', 'interaction'",
            )
        ],
    ),
    (
        "no groups",
        {"audience": "contact", "groups": []},
        [("/groups", "'groups' must be a non-empty list of groups, each {\"where\": condition}")],
    ),
    (
        "missing groups",
        {"audience": "contact"},
        [("/groups", "'groups' must be a non-empty list of groups, each {\"where\": condition}")],
    ),
    ("not an object", ["contact"], [("", "a segment definition is an object with 'audience' and 'groups', not a list")]),
    (
        "missing link after the first group",
        {"audience": "contact", "groups": [{"where": {"all": []}}, {"where": {"all": []}}]},
        [("/groups/1", "missing 'link' after the first group: one of and_also, or, but_not")],
    ),
    (
        "link on the first group",
        {"audience": "contact", "groups": [{"link": "or", "where": {"all": []}}]},
        [("/groups/0", "the first group takes no 'link' (found 'or'); links join a group to the groups before it")],
    ),
    (
        "unknown link",
        {"audience": "contact", "groups": [{"where": {"all": []}}, {"link": "and", "where": {"all": []}}]},
        [("/groups/1", "unknown link 'and'; use one of and_also, or, but_not")],
    ),
    (
        "misspelt link",
        {"audience": "contact", "groups": [{"where": {"all": []}}, {"link": "butnot", "where": {"all": []}}]},
        [("/groups/1", "unknown link 'butnot' (did you mean 'but_not'?); use one of and_also, or, but_not")],
    ),
    (
        "group without where",
        {"audience": "contact", "groups": [{"link": None}]},
        [
            ("/groups/0", "the first group takes no 'link' (found None); links join a group to the groups before it"),
            ("/groups/0", "missing 'where': the group's condition"),
        ],
    ),
    (
        "group not an object",
        {"audience": "contact", "groups": ["all"]},
        [("/groups/0", 'a group is an object {"link": ..., "where": condition}, not a string "all"')],
    ),
    (
        "unknown key in the definition",
        {"audience": "contact", "groups": [{"where": {"all": []}}], "filter": 1},
        [("/filter", "unknown key 'filter'; a definition has name, description, audience and groups")],
    ),
    (
        "misspelt key in the definition",
        {"audience": "contact", "group": [{"where": {"all": []}}]},
        [
            ("/group", "unknown key 'group' (did you mean 'groups'?); a definition has name, description, audience and groups"),
            ("/groups", "'groups' must be a non-empty list of groups, each {\"where\": condition}"),
        ],
    ),
    (
        "unknown key in a group",
        {"audience": "contact", "groups": [{"where": {"all": []}, "limit": 3}]},
        [("/groups/0", "unknown key 'limit' in a group; a group has 'link' and 'where'")],
    ),
    (
        "name not a string",
        {"name": 3, "audience": "contact", "groups": [{"where": {"all": []}}]},
        [("/name", "name must be a string, not a number 3")],
    ),
    (
        "refers to itself",
        {"name": "vips", "audience": "contact", "groups": [{"where": {"in_segment": "vips"}}]},
        [("/groups", "segment 'vips' refers to itself through in_segment; a segment cannot contain itself")],
    ),
]


@pytest.mark.parametrize(("raw", "expected"), [c[1:] for c in DEFINITIONS], ids=[c[0] for c in DEFINITIONS])
def test_definition_is_rejected(model: Model, raw: Any, expected: list[tuple[str, str]]) -> None:
    assert problems(raw, model) == expected


SEVERAL = {
    "audience": "contact",
    "extra": True,
    "groups": [
        {"where": {"attribute": "jobtitel", "op": "eq", "value": "x"}},
        {"where": {"attribute": "tier", "op": "eq", "value": "Platinum"}},
        {
            "link": "or",
            "where": {
                "any": [
                    {"related": "order"},
                    {"measure": "nope", "op": "gt", "value": 1},
                    {"attribute": "jobtitle", "op": "eq", "value": "fine"},
                    {"path": ["orders"], "attribute": "amount", "op": "gt", "value": 1},
                ]
            },
        },
        {"link": "but_not", "where": {"attribute": "fullname", "op": "is_empty"}, "note": "x"},
    ],
}

SEVERAL_PROBLEMS = [
    ("/extra", "unknown key 'extra'; a definition has name, description, audience and groups"),
    ("/groups/0/where", "table 'contact' has no attribute 'jobtitel' (did you mean 'jobtitle'?)"),
    ("/groups/1", "missing 'link' after the first group: one of and_also, or, but_not"),
    ("/groups/1/where", "\"Platinum\" is not a choice of attribute 'tier'; choices: Gold, Silver, Bronze"),
    (
        "/groups/2/where/any/0",
        "table 'contact' has no one-to-many relationship 'order' (did you mean 'orders'?); from 'contact': 'orders', 'interactions'",
    ),
    ("/groups/2/where/any/1", "table 'contact' has no measure 'nope'; measures of 'contact': 'total_spend'"),
    (
        "/groups/2/where/any/3",
        "path step 'orders' is one-to-many from 'contact'; a path walks only many-to-one relationships ('account'); "
        'use {"related": "orders"} to reach many records',
    ),
    ("/groups/3", "unknown key 'note' in a group; a group has 'link' and 'where'"),
    ("/groups/3/where", "attribute 'fullname' of 'contact' is calculated: it may be shown but not used in a condition"),
]


def test_several_problems_are_all_reported(model: Model) -> None:
    assert problems(SEVERAL, model) == SEVERAL_PROBLEMS


# -- YAML definitions read like JSON -------------------------------------------------------------


def test_yaml_reads_operators_and_dates_as_json_would(model: Model) -> None:
    text = """
audience: contact
groups:
  - where: {attribute: createdon, op: on, value: 2026-10-27}
  - link: and_also
    where: {attribute: birthdate, op: between, value: [1990-01-01, 2000-12-31]}
  - link: or
    where: {attribute: jobtitle, op: in, value: [yes, no, off, 2026-10-27]}
"""
    definition = parse_definition(load_definition_text(text), model)
    first, second, third = (g.where for g in definition.groups)
    assert (first.op, first.value) == ("on", __import__("datetime").date(2026, 10, 27))
    assert second.value == (__import__("datetime").date(1990, 1, 1), __import__("datetime").date(2000, 12, 31))
    assert third.value == ("yes", "no", "off", "2026-10-27")


def test_bad_json_or_yaml_text() -> None:
    with pytest.raises(DefinitionError) as info:
        load_definition_text('{"audience": "contact", "groups": [', source="seg.json")
    (problem,) = info.value.problems
    assert problem.where == "seg.json"
    assert problem.message.startswith("not valid JSON or YAML (JSON: Expecting value at line 1 column 36)")


# -- through the CLI -----------------------------------------------------------------------------------


def segmenta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmenta", *args], capture_output=True, text=True)


def _digest(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_ws(model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("validation") / "ws"
    Workspace.init(path, model=EXAMPLE_MODEL).close()
    return path


@pytest.mark.parametrize("command", [["segment", "evaluate"], ["segment", "sql"], ["segment", "preview"]])
def test_cli_rejects_every_problem_with_status_2(cli_ws: Path, tmp_path: Path, command: list[str]) -> None:
    seg = tmp_path / "several.json"
    seg.write_text(json.dumps(SEVERAL))
    before = _digest(cli_ws)
    r = segmenta("--workspace", str(cli_ws), *command, str(seg))
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines() == [f"{where}: {message}" for where, message in SEVERAL_PROBLEMS]
    assert _digest(cli_ws) == before


def test_cli_rejects_the_contracts_example_and_a_yaml_definition(cli_ws: Path, tmp_path: Path) -> None:
    seg = tmp_path / "bad.yaml"
    seg.write_text(
        "audience: contact\ngroups:\n  - where: {all: [{attribute: jobtitle, op: contains, value: manager},\n"
        "      {attribute: tier, op: eq, value: Gold}, {attribute: jobtitel, op: eq, value: x}]}\n"
    )
    r = segmenta("--workspace", str(cli_ws), "segment", "evaluate", str(seg))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "/groups/0/where/all/2: table 'contact' has no attribute 'jobtitel' (did you mean 'jobtitle'?)"
    ]
    good = tmp_path / "good.yaml"
    good.write_text("audience: contact\ngroups:\n  - where: {attribute: createdon, op: on, value: 2026-10-27}\n")
    r = segmenta("--workspace", str(cli_ws), "segment", "evaluate", str(good))
    assert (r.returncode, r.stdout.splitlines()[-1]) == (0, "0 members"), r.stderr


def test_cli_saves_no_segment_from_a_rejected_definition(cli_ws: Path, tmp_path: Path) -> None:
    seg = tmp_path / "bad.json"
    seg.write_text(json.dumps(one({"attribute": "tier", "op": "eq", "value": "Platinum"})))
    r = segmenta("--workspace", str(cli_ws), "segment", "create", str(seg), "--name", "platinum")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "/groups/0/where: \"Platinum\" is not a choice of attribute 'tier'; choices: Gold, Silver, Bronze"
    ]
    listed = segmenta("--workspace", str(cli_ws), "segment", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "platinum" not in listed.stdout


# -- model.yaml -------------------------------------------------------------------------------------


def _bad_model(change: Any) -> list[tuple[str, str]]:
    data = copy.deepcopy(yaml.safe_load(EXAMPLE_MODEL.read_text()))
    change(data)
    with pytest.raises(ModelError) as info:
        Model.from_data(data)
    return [(p.where, p.message) for p in info.value.problems]


MODELS = [
    (
        "key not a column",
        lambda d: d["tables"]["contact"].__setitem__("key", "contact_id"),
        [("/tables/contact/key", "key 'contact_id' is not a column of 'contact' (did you mean 'contactid'?)")],
    ),
    (
        "choice without choices",
        lambda d: d["tables"]["contact"]["columns"]["tier"].pop("choices"),
        [("/tables/contact/columns/tier", "a choice column needs a non-empty 'choices' list")],
    ),
    (
        "choices on text",
        lambda d: d["tables"]["contact"]["columns"]["jobtitle"].__setitem__("choices", ["a"]),
        [("/tables/contact/columns/jobtitle/choices", "only choice and choices columns take 'choices', not text")],
    ),
    (
        "repeated choices",
        lambda d: d["tables"]["contact"]["columns"]["tier"].__setitem__("choices", ["Gold", "Gold"]),
        [("/tables/contact/columns/tier/choices", "choices must be unique")],
    ),
    (
        "unknown type",
        lambda d: d["tables"]["contact"]["columns"]["jobtitle"].__setitem__("type", "string"),
        [
            (
                "/tables/contact/columns/jobtitle/type",
                "Input should be 'text', 'integer', 'decimal', 'boolean', 'date', 'datetime', 'choice' or 'choices'",
            )
        ],
    ),
    (
        "unknown key in a column",
        lambda d: d["tables"]["contact"]["columns"]["jobtitle"].__setitem__("secret", True),
        [("/tables/contact/columns/jobtitle/secret", "unknown key 'secret'")],
    ),
    ("unknown top-level key", lambda d: d.__setitem__("views", {}), [("/views", "unknown key 'views'")]),
    (
        "active rule on an unknown attribute",
        lambda d: d["tables"]["contact"].__setitem__("active", {"attribute": "state", "equals": 0}),
        [("/tables/contact/active/attribute", "table 'contact' has no attribute 'state' (did you mean 'statecode'?)")],
    ),
    (
        "active value of the wrong type",
        lambda d: d["tables"]["contact"].__setitem__("active", {"attribute": "statecode", "equals": "zero"}),
        [("/tables/contact/active/equals", "'equals' must be a whole number (the attribute is integer), not 'zero'")],
    ),
    (
        "active value not a choice",
        lambda d: d["tables"]["contact"].__setitem__("active", {"attribute": "tier", "equals": "gold"}),
        [("/tables/contact/active/equals", "'equals' must be one of Gold, Silver, Bronze (the attribute is choice), not 'gold'")],
    ),
    (
        "relationship name used twice",
        lambda d: d["relationships"].append(
            {"name": "account", "from": "contact.parentaccountid", "to": "account.accountid", "reverse": "c2"}
        ),
        [("/relationships/3", "table 'contact' already has a relationship named 'account' (/relationships/0)")],
    ),
    (
        "relationship to unknown names",
        lambda d: d["relationships"].append(
            {"name": "boss", "from": "contact.bossid", "to": "contacts.contactid", "reverse": "reports"}
        ),
        [
            ("/relationships/3/from", "table 'contact' has no column 'bossid'"),
            ("/relationships/3/to", "unknown table 'contacts' (did you mean 'contact'?)"),
        ],
    ),
    (
        "relationship end not table.column",
        lambda d: d["relationships"].append({"name": "boss", "from": "contact", "to": "contact.contactid", "reverse": "reports"}),
        [("/relationships/3/from", "Value error, expected 'table.column', got 'contact'")],
    ),
    (
        "relationship to a column that is not the key",
        lambda d: d["relationships"].append(
            {"name": "acct", "from": "contact.parentaccountid", "to": "account.name", "reverse": "c3"}
        ),
        [
            (
                "/relationships/3/to",
                "'account.name' is not the key of 'account'; a relationship leads to a key: 'account.accountid'",
            )
        ],
    ),
    (
        "foreign key of another type",
        lambda d: d["relationships"].append(
            {"name": "acct", "from": "contact.jobtitle", "to": "account.accountid", "reverse": "c3"}
        ),
        [
            (
                "/relationships/3/from",
                "foreign key 'contact.jobtitle' is text but the key 'account.accountid' is integer; give them one type",
            )
        ],
    ),
    (
        "measure over an unknown relationship",
        lambda d: d["measures"].__setitem__(
            "x", {"table": "contact", "related": "order", "aggregate": {"fn": "sum", "attribute": "amount"}}
        ),
        [("/measures/x/related", "'contact' has no one-to-many relationship 'order' (did you mean 'orders'?)")],
    ),
    (
        "measure sum of a datetime",
        lambda d: d["measures"].__setitem__(
            "x", {"table": "contact", "related": "orders", "aggregate": {"fn": "sum", "attribute": "ts"}}
        ),
        [("/measures/x/aggregate/fn", "sum needs an integer or decimal attribute, not datetime")],
    ),
    (
        "measure filter with an unknown attribute",
        lambda d: d["measures"].__setitem__(
            "x",
            {
                "table": "contact",
                "related": "orders",
                "aggregate": {"fn": "sum", "attribute": "amount"},
                "where": {"attribute": "amout", "op": "gt", "value": 1},
            },
        ),
        [("/measures/x/where", "table 'order' has no attribute 'amout' (did you mean 'amount'?)")],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in MODELS], ids=[c[0] for c in MODELS])
def test_model_is_rejected(change: Any, expected: list[tuple[str, str]]) -> None:
    assert EXAMPLE_MODEL.is_file(), f"the contract's example model belongs at {EXAMPLE_MODEL}"
    assert _bad_model(change) == expected


def test_cli_init_rejects_a_bad_model(tmp_path: Path) -> None:
    assert EXAMPLE_MODEL.is_file(), f"the contract's example model belongs at {EXAMPLE_MODEL}"
    data = yaml.safe_load(EXAMPLE_MODEL.read_text())
    data["tables"]["contact"]["key"] = "contact_id"
    data["relationships"][0]["to"] = "account.name"
    bad = tmp_path / "model.yaml"
    bad.write_text(yaml.safe_dump(data))
    r = segmenta("--workspace", str(tmp_path / "ws"), "init", "--model", str(bad))
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "/tables/contact/key: key 'contact_id' is not a column of 'contact' (did you mean 'contactid'?)",
        "/relationships/0/to: 'account.name' is not the key of 'account'; a relationship leads to a key: 'account.accountid'",
    ]
    assert not (tmp_path / "ws").exists()


def test_model_yaml_reads_yes_no_on_as_strings(tmp_path: Path) -> None:
    text = """
tables:
  contact:
    key: id
    active: {attribute: consent, equals: Yes}
    columns:
      id: {type: integer}
      consent: {type: choice, choices: [Yes, No, Unknown]}
      on: {type: boolean}
      since: {type: date}
"""
    model = Model.from_yaml_text(text)
    table = model.table("contact")
    assert table.column("consent").choices == ("Yes", "No", "Unknown")
    assert list(table.columns) == ["id", "consent", "on", "since"]
    assert table.active is not None and table.active.equals == "Yes"
    # and it survives a workspace's round trip through its own model.yaml
    Workspace.init(tmp_path / "ws", model=model).close()
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.model == model
