"""What a segment reads (compiler/reads.py): the columns and stored segments its members depend on."""

from __future__ import annotations

from typing import Any

import pytest

from segmenta import Workspace
from segmenta.compiler.reads import segment_reads
from segmenta.model.schema import Model
from segmenta.model.validate import parse_definition


@pytest.fixture(scope="module")
def model(conformance_ws: Workspace) -> Model:
    return conformance_ws.model


def reads_of(model: Model, where: dict[str, Any], audience: str = "contact") -> Any:
    return segment_reads(parse_definition({"audience": audience, "groups": [{"where": where}]}, model), model)


def test_an_attribute_reads_its_column_the_key_and_the_active_rule(model: Model) -> None:
    reads = reads_of(model, {"attribute": "tier", "op": "eq", "value": "Gold"})
    assert reads.columns == {("contact", "contactid"), ("contact", "statecode"), ("contact", "tier")}
    assert reads.segments == frozenset()
    assert reads.touches("contact", {"tier"})
    assert not reads.touches("contact", {"country"})
    assert not reads.touches("order", {"amount", "contactid"})


def test_a_path_reads_the_foreign_keys_it_walks(model: Model) -> None:
    reads = reads_of(model, {"path": ["contact", "account"], "attribute": "industry", "op": "eq", "value": "Tech"}, "lead")
    assert reads.columns == {
        ("lead", "leadid"),
        ("lead", "parentcontactid"),
        ("contact", "contactid"),
        ("contact", "parentaccountid"),
        ("account", "accountid"),
        ("account", "industry"),
    }
    assert reads.touches("contact", {"parentaccountid"})  # moving the contact to another account moves the lead
    assert not reads.touches("contact", {"tier"})
    assert not reads.touches("lead", {"parentaccountid"})  # the lead's own account link is not walked


def test_a_related_block_reads_the_foreign_key_and_its_where(model: Model) -> None:
    reads = reads_of(
        model,
        {
            "related": "interactions",
            "where": {
                "all": [
                    {"attribute": "type", "op": "eq", "value": "email_click"},
                    {"attribute": "emailid", "op": "eq", "value": 7},
                ]
            },
            "count": {"op": "gte", "value": 2},
        },
    )
    assert {(t, c) for t, c in reads.columns if t == "interaction"} == {
        ("interaction", "contactid"),
        ("interaction", "type"),
        ("interaction", "emailid"),
    }
    assert not reads.touches("interaction", {"ts"})
    assert not reads.touches("order", {"amount"})


def test_aggregates_and_measures_read_their_attribute_and_filter(model: Model) -> None:
    agg = reads_of(
        model,
        {
            "related": "orders",
            "where": {"attribute": "ts", "op": "in_last", "value": {"days": 365}},
            "aggregate": {"fn": "sum", "attribute": "amount"},
            "op": "gt",
            "value": 1500,
        },
    )
    assert {c for t, c in agg.columns if t == "order"} == {"contactid", "ts", "amount"}
    measure = reads_of(model, {"measure": "channels_used", "op": "gte", "value": 2})
    assert {c for t, c in measure.columns if t == "order"} == {"contactid", "channel"}
    assert not measure.touches("order", {"amount"})


def test_in_segment_names_come_back_separately_with_the_scope_they_are_read_on(model: Model) -> None:
    reads = reads_of(
        model,
        {"any": [{"in_segment": "gold"}, {"path": ["contact"], "in_segment": "vip-contacts"}]},
        "lead",
    )
    assert reads.segments == {"gold", "vip-contacts"}
    by_table = {s.table: s.segments for s in reads.scopes if s.segments}
    assert by_table == {"lead": {"gold"}, "contact": {"vip-contacts"}}
    assert ("lead", "parentcontactid") in reads.columns


def test_nested_related_under_a_path_reads_every_hop(model: Model) -> None:
    reads = reads_of(
        model,
        {"path": ["account"], "related": "contacts", "where": {"attribute": "tier", "op": "eq", "value": "Gold"}},
    )
    scopes = {(len(s.route), s.table): s.columns for s in reads.scopes}
    assert scopes[(0, "contact")] >= {"contactid", "parentaccountid", "statecode"}
    assert scopes[(1, "account")] == {"accountid"}
    assert scopes[(2, "contact")] == {"parentaccountid", "tier"}
    assert reads.touches("contact", {"tier"})  # a colleague's tier at the same account
