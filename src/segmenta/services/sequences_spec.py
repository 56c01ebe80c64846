"""The sales-sequence file (issue 13 item 2): pydantic models, then the rules pydantic cannot check.

A bad file is rejected whole (:class:`RejectedInput`, exit 2, nothing saved), one problem per
mistake at its JSON pointer (``/steps/3/wait: at most 30 days; this is 40 days``). The rules,
from Dynamics 365 Sales sequences:

- a step is exactly one of ``email``, ``automated_email``, ``phone_call``, ``task`` (the
  seller's activities, or an email sent through the journeys' SMTP outbox), ``wait``,
  ``condition``, ``update_field`` or ``advance``;
- ``wait`` is at most 30 days and never the last step;
- ``advance`` (to another sequence) is never the first step and always the last;
- ``condition`` (email ``opened``, ``replied`` or ``clicked``) names an earlier email or
  automated email step (``on``), has a time limit (``within``, at most 30 days) and both
  ``yes`` and ``no``; a skipped email step takes ``no``;
- step ids are unique (``end`` is reserved), ``next``/``yes``/``no`` name a later step or
  ``end`` (so no cycle: an activity is created once per record and step);
- with the table's columns: ``update_field.attribute`` and every ``{attribute}`` of a template
  are columns of the sequence's table.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, model_validator

from segmenta.errors import Problem, RejectedInput
from segmenta.services.journeys.spec import END, PLACEHOLDER

#: The longest wait or condition time limit (Dynamics 365 Sales: 30 days).
MAX_WAIT = dt.timedelta(days=30)
ACTIVITY_KINDS = ("email", "automated_email", "phone_call", "task")
KINDS = (*ACTIVITY_KINDS, "wait", "condition", "update_field", "advance")

NonNeg = Annotated[StrictInt, Field(ge=0)]
StepId = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """``{"days": N}`` and/or ``{"hours": N}``, at most 30 days."""

    days: NonNeg | None = None
    hours: NonNeg | None = None

    @model_validator(mode="after")
    def _one(self) -> Duration:
        if self.days is None and self.hours is None:
            raise ValueError('give "days" or "hours", e.g. {"days": 2}')
        if self.delta > MAX_WAIT:
            raise ValueError(f"at most 30 days; this is {self.delta.total_seconds() / 86400:g} days")
        return self

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(days=self.days or 0, hours=self.hours or 0)

    @property
    def seconds(self) -> int:
        return int(self.delta.total_seconds())


class Activity(_Strict):
    """A seller's email, phone call or task (``subject`` names it in the seller's list), or an automated email."""

    subject: StrictStr = Field(min_length=1)
    body: StrictStr | None = None
    #: A seller's activity is due this long after the record reaches the step (default: at once).
    due: Duration | None = None


class Condition(_Strict):
    on: StepId
    event: Literal["opened", "replied", "clicked"]
    within: Duration


class UpdateField(_Strict):
    attribute: StrictStr = Field(min_length=1)
    value: StrictStr | StrictInt | StrictFloat | StrictBool | None


class Advance(_Strict):
    sequence: StrictStr = Field(min_length=1, max_length=200)


class Step(_Strict):
    id: StepId
    email: Activity | None = None
    automated_email: Activity | None = None
    phone_call: Activity | None = None
    task: Activity | None = None
    wait: Duration | None = None
    condition: Condition | None = None
    update_field: UpdateField | None = None
    advance: Advance | None = None
    next: StepId | None = None
    yes: StepId | None = None
    no: StepId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of {', '.join(KINDS)}; this one has {', '.join(given) or 'none'}")
        if self.condition is not None:
            if self.yes is None or self.no is None or self.next is not None:
                raise ValueError('a condition step has both "yes" and "no" (and no "next")')
        elif self.yes is not None or self.no is not None:
            raise ValueError('only a condition step has "yes" and "no"; use "next"')
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def activity(self) -> Activity | None:
        return self.email or self.automated_email or self.phone_call or self.task


class SequenceSpec(_Strict):
    name: StrictStr = Field(min_length=1, max_length=200)
    table: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = ""
    steps: list[Step] = Field(min_length=1, max_length=100)

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def index(self, step_id: str) -> int:
        return next(i for i, s in enumerate(self.steps) if s.id == step_id)

    def next_of(self, step: Step) -> str:
        """Where a record goes after ``step`` (not a condition): its ``next``, else the following step, else end."""
        if step.next is not None:
            return step.next
        i = self.index(step.id)
        return self.steps[i + 1].id if i + 1 < len(self.steps) else END


def _pointer(loc: tuple[Any, ...]) -> str:
    return "/" + "/".join(str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-")))


def parse_sequence(raw: Any, *, columns: set[str] | None = None) -> SequenceSpec:
    """Validate raw file data; ``columns`` (of the sequence's table) also checks fields and templates."""
    if not isinstance(raw, dict):
        raise RejectedInput([Problem("/", f"a sequence is a JSON/YAML object, not {type(raw).__name__}")])
    try:
        spec = SequenceSpec.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            msg = str(e["msg"]).removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown key"
            elif e["type"] == "literal_error":
                msg = f"{msg} (got {e.get('input')!r})"
            problems.append(Problem(_pointer(tuple(e["loc"])), msg))
        raise RejectedInput(problems) from None
    problems = _structure(spec)
    if columns is not None:
        problems += _against(spec, columns)
    if problems:
        raise RejectedInput(problems)
    return spec


def _structure(spec: SequenceSpec) -> list[Problem]:
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    last = len(spec.steps) - 1
    for i, step in enumerate(spec.steps):
        if step.id == END:
            problems.append(Problem(f"/steps/{i}/id", '"end" is reserved: it means the sequence is over'))
        elif step.id in ids:
            problems.append(Problem(f"/steps/{i}/id", f"{step.id!r} is already the id of step {ids[step.id]}; ids are unique"))
        else:
            ids[step.id] = i
    for i, step in enumerate(spec.steps):
        if step.wait is not None and i == last and step.next is None:
            problems.append(Problem(f"/steps/{i}/wait", "a wait is never the last step; add the step it waits for"))
        if step.wait is not None and step.next == END:
            problems.append(Problem(f"/steps/{i}/next", "a wait cannot lead to the end; add the step it waits for"))
        if step.advance is not None:
            if i == 0:
                problems.append(Problem(f"/steps/{i}/advance", "advance to another sequence is never the first step"))
            if i != last:
                problems.append(Problem(f"/steps/{i}/advance", "advance to another sequence is always the last step"))
            if step.next is not None:
                problems.append(Problem(f"/steps/{i}/next", "advance ends this sequence; it has no next"))
            if step.advance.sequence == spec.name:
                problems.append(Problem(f"/steps/{i}/advance/sequence", "a sequence cannot advance to itself"))
        for field, target in (("next", step.next), ("yes", step.yes), ("no", step.no)):
            if target is None or target == END:
                continue
            if target not in ids:
                problems.append(
                    Problem(f"/steps/{i}/{field}", f'{target!r} is not a step id; use one of {", ".join(ids)} or "end"')
                )
            elif ids[target] <= i:
                problems.append(Problem(f"/steps/{i}/{field}", f"{target!r} comes before this step; a step leads only forward"))
        if step.condition is not None:
            on = step.condition.on
            if on not in ids or ids[on] >= i:
                problems.append(Problem(f"/steps/{i}/condition/on", f"{on!r} is not an earlier step"))
            elif spec.steps[ids[on]].kind not in ("email", "automated_email"):
                problems.append(
                    Problem(
                        f"/steps/{i}/condition/on",
                        f"{on!r} is a {spec.steps[ids[on]].kind} step; a condition reads an email step",
                    )
                )
    return problems


def _against(spec: SequenceSpec, columns: set[str]) -> list[Problem]:
    problems: list[Problem] = []
    for i, step in enumerate(spec.steps):
        if step.update_field is not None and step.update_field.attribute not in columns:
            problems.append(
                Problem(
                    f"/steps/{i}/update_field/attribute", f"{step.update_field.attribute!r} is not a column of {spec.table!r}"
                )
            )
        act = step.activity
        if act is not None:
            for field, text in (("subject", act.subject), ("body", act.body or "")):
                for m in PLACEHOLDER.finditer(text):
                    if m.group(1) not in columns:
                        problems.append(
                            Problem(f"/steps/{i}/{step.kind}/{field}", f"{{{m.group(1)}}} is not a column of {spec.table!r}")
                        )
    return problems


__all__ = ["ACTIVITY_KINDS", "END", "SequenceSpec", "Step", "parse_sequence"]
