"""Contract 6's limits: at most 10 conditions per definition (counted wherever nested) and 250 active
segments, both refused with exit 2 and nothing changed, both configurable (segments.limits)."""

from __future__ import annotations

from typing import Any

import yaml

from segmenta.model.schema import Model
from segmenta.model.validate import parse_definition
from segmenta.services.assignment import definition_conditions
from tests.assignment.conftest import CLICKERS, MODEL, UK, Crm


def conditions(n_flat: int, n_related: int) -> dict[str, Any]:
    """``n_flat`` attribute conditions, then one related condition holding ``n_related`` conditions (if any)."""
    flat: list[dict[str, Any]] = [{"attribute": "score", "op": "gte", "value": i} for i in range(n_flat)]
    if n_related:
        inner = [{"attribute": "type", "op": "ne", "value": f"t{i}"} for i in range(n_related)]
        flat.append({"related": "interactions", "where": {"any": [{"all": inner}]}})
    return {"audience": "contact", "groups": [{"where": {"all": flat}}]}


def settings(crm: Crm, limits: dict[str, Any]) -> None:
    path = crm.ws / "segmenta.yaml"
    config = yaml.safe_load(path.read_text()) or {}
    config.setdefault("segments", {})["limits"] = limits
    path.write_text(yaml.safe_dump(config))


def test_conditions_are_counted_wherever_nested_but_trees_do_not_count() -> None:
    model = Model.from_data(MODEL)
    assert definition_conditions(parse_definition(conditions(6, 4), model)) == 11  # 6 + the related one + its 4
    assert definition_conditions(parse_definition(conditions(9, 0), model)) == 9
    two_groups = {**UK, "groups": [*UK["groups"], {"link": "or", "where": {"in_segment": "x"}}]}
    assert definition_conditions(parse_definition(two_groups, model)) == 2


def test_ten_conditions_are_accepted_and_eleven_refused_with_exit_2(crm_sqlite: Crm) -> None:
    crm = crm_sqlite
    crm.create("ten", conditions(5, 4))  # 5 + 1 + 4
    r = crm.create("eleven", conditions(6, 4), code=2)
    assert r.stderr.startswith("/groups: ") and "at most 10 conditions" in r.stderr and "11" in r.stderr
    assert [row["name"] for row in crm.listing()] == ["ten", "default"]


def test_the_condition_cap_is_a_setting(crm_sqlite: Crm) -> None:
    crm = crm_sqlite
    settings(crm, {"work_assignment_conditions": 12})
    crm.create("eleven", conditions(6, 4))
    settings(crm, {"preset": "none"})
    crm.create("many", conditions(40, 0))


def test_active_segments_are_capped_and_the_refused_one_stays_a_draft(crm_sqlite: Crm) -> None:
    crm = crm_sqlite
    settings(crm, {"work_assignment": 1})
    crm.create("uk", UK)
    crm.create("clickers", CLICKERS, "--priority", "1")
    crm.run("assignment", "activate", "uk")
    before = crm.segments()
    r = crm.run("assignment", "activate", "clickers", code=2)
    assert "at most 1 active work-assignment segments" in r.stderr
    assert [row["status"] for row in crm.listing()] == ["draft", "active", "active"]
    assert crm.segments() == before
    crm.run("assignment", "deactivate", "uk")
    crm.run("assignment", "activate", "clickers")  # an inactive one no longer counts


def test_the_default_active_cap_is_250() -> None:
    from segmenta.services.limits import limits_from_config

    caps = limits_from_config(None)
    assert caps["work_assignment"] == 250 and caps["work_assignment_conditions"] == 10
