"""A bad journey file is refused whole (exit 2), naming the step and field; publish refuses segments not live."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from segmenta.errors import RejectedInput
from segmenta.services.journeys.spec import parse_journey
from tests.journeys.conftest import WELCOME, JourneyWs

COLUMNS = {"contact": {"contactid", "firstname", "email", "country", "tier"}}


def _bad(change: Any) -> str:
    raw = copy.deepcopy(WELCOME)
    change(raw)
    with pytest.raises(RejectedInput) as info:
        parse_journey(raw, columns=COLUMNS)
    return str(info.value)


def test_the_contract_example_is_valid() -> None:
    spec = parse_journey(WELCOME, columns=COLUMNS)
    assert spec.order()[0] == "hello"
    assert spec.next_of(spec.step("hello")) == "pause"
    assert spec.next_of(spec.step("nudge")) == "end"
    assert spec.next_of(spec.step("thanks")) == "end"


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (lambda r: r["steps"][1].update(id="hello"), "/steps/1/id", "unique"),
        (lambda r: r["steps"][3].update(next="nowhere"), "/steps/3/next", "not a step id"),
        (lambda r: r["steps"][2].update(yes="nope"), "/steps/2/yes", "not a step id"),
        (lambda r: r["steps"][2].pop("no"), "/steps/2", '"yes" and "no"'),
        (lambda r: r["steps"][1].update(wait={"days": 91}), "/steps/1/wait", "at most 90 days"),
        (lambda r: r["steps"][1].update(wait={"hours": 90 * 24 + 1}), "/steps/1/wait", "at most 90 days"),
        (lambda r: r["steps"][1].update(wait={"weeks": 1}), "/steps/1/wait/weeks", "unknown key"),
        (lambda r: r["steps"][1].update(wait={"days": "3"}), "/steps/1/wait/days", "integer"),
        (
            lambda r: r["steps"][2]["wait_until_member"].update(timeout={"days": 100}),
            "/steps/2/wait_until_member/timeout",
            "at most 90 days",
        ),
        (lambda r: r["entry"].update(frequency="twice"), "/entry/frequency", "once"),
        (lambda r: r["entry"].update(segments=[]), "/entry/segments", "at least 1"),
        (lambda r: r["entry"].update(segments=[f"s{i}" for i in range(16)]), "/entry/segments", "at most 15"),
        (lambda r: r["steps"][0]["send"].update(subject="Hi {frstname}"), "/steps/0/send/subject", "{frstname}"),
        (lambda r: r["steps"][0]["send"].update(channel="sms"), "/steps/0/send/channel", "email"),
        (lambda r: r["steps"][0].update(colour="red"), "/steps/0/colour", "unknown key"),
        (lambda r: r["steps"][0].update(wait={"days": 1}), "/steps/0", "exactly one of"),
        (lambda r: r["steps"][4].update(next="hello"), "/steps/0", "cycle"),
        (lambda r: r.update(steps=[]), "/steps", "at least 1"),
        (lambda r: r.update(audience="lead"), "/audience", "not a table"),
        (lambda r: r["entry"].update(exclude=["uk"]), "/entry/exclude", "also an entry segment"),
    ],
)
def test_bad_files_name_the_step_and_field(change: Any, where: str, what: str) -> None:
    message = _bad(change)
    assert where in message and what in message, message


def test_every_problem_is_reported_at_once() -> None:
    def two(r: dict[str, Any]) -> None:
        r["steps"][1]["wait"] = {"days": 91}
        r["entry"]["frequency"] = "always"

    message = _bad(two)
    assert "/steps/1/wait" in message and "/entry/frequency" in message


def test_cli_create_exit_2_and_nothing_saved(jws: JourneyWs) -> None:
    jws.publish_segments("uk", "do-not-email", "purchased", "clickers")
    bad = copy.deepcopy(WELCOME)
    bad["steps"][1]["wait"] = {"days": 120}
    result = jws.run("journey", "create", jws.file("bad.json", bad), code=2)
    assert "/steps/1/wait" in result.stderr and "90 days" in result.stderr
    assert jws.run("journey", "list", "--json").stdout.strip() == "[]"  # nothing saved
    missing = copy.deepcopy(WELCOME)
    missing["name"] = "early"
    missing["exit"] = {"segments": ["no-such-segment"]}
    jws.run("journey", "create", jws.file("missing.json", missing))  # a draft may name a segment not made yet
    result = jws.run("journey", "publish", "early", code=2)  # publishing may not
    assert "/exit/segments/0" in result.stderr and "no-such-segment" in result.stderr
    other = copy.deepcopy(WELCOME)
    other["audience"] = "account"
    result = jws.run("journey", "create", jws.file("other.json", other), code=2)
    assert "/audience" in result.stderr
    yaml_file = jws.tmp / "welcome.yaml"
    import yaml

    yaml_file.write_text(yaml.safe_dump(WELCOME), encoding="utf-8")
    jws.run("journey", "create", str(yaml_file))  # YAML works too
    assert jws.run("journey", "report", "nope", "--json", code=2)


def test_publish_refuses_segments_not_live_and_marks_them_used(jws: JourneyWs) -> None:
    jws.publish_segments("uk", "do-not-email", "purchased")
    jws.run("segment", "create", jws.file("clickers.json", {**WELCOME_SEG}))  # a draft
    jws.run("journey", "create", jws.file("welcome.json", WELCOME))
    result = jws.run("journey", "publish", "welcome", code=2)
    assert "clickers" in result.stderr and "draft" in result.stderr
    show = jws.run("segment", "show", "uk", "--json").stdout
    assert '"journey"' not in show  # nothing was marked: refused whole
    jws.run("segment", "publish", "clickers")
    jws.run("journey", "publish", "welcome")
    import json

    def used(name: str) -> set[tuple[str, str, str]]:
        info = json.loads(jws.run("segment", "show", name, "--json").stdout)
        return {(u["kind"], u["name"], u["role"]) for u in info["used_by"]}

    assert used("uk") == {("journey", "welcome", "entry")}
    assert used("do-not-email") == {("journey", "welcome", "exclude")}
    assert used("purchased") == {("journey", "welcome", "exit")}
    assert used("clickers") == {("journey", "welcome", "wait")}
    jws.run("segment", "stop", "purchased", code=2)  # in use by a live journey
    jws.run("journey", "stop", "welcome")
    assert used("purchased") == set()
    jws.run("segment", "stop", "purchased")  # released
    jws.run("journey", "publish", "welcome", code=2)  # a stopped journey stays stopped


WELCOME_SEG = {"name": "clickers", "audience": "contact", "groups": [{"where": {"attribute": "clicked", "op": "is_true"}}]}
