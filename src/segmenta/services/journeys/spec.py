"""The journey file (contract section 7): pydantic models, then the checks pydantic cannot make.

A bad file is rejected whole (:class:`RejectedInput`, exit 2) with one problem per mistake,
each at a JSON pointer such as ``/steps/2/wait/days``, so the author sees which step and
field is wrong and what would be right. Checked here, without the store: the shape, unique
step ids, ``next``/``yes``/``no`` naming a step or ``end``, no cycle (a message is sent once
per record and step, so a step cannot be reached twice), 1 to 15 entry segments, waits and
timeouts of at most 90 days, ``frequency`` once or reenter, ``{attribute}`` in templates
naming a column of the audience. Checked against the store by the service: the segments
exist and are segments of the journey's audience; at publish, that they are live.

Extensions (contract 7 says "extend without changing"): ``send.channel: webhook`` (a
signed POST), ``branch`` steps (up to 25 attribute conditions in priority order), and
``entry.rate_limit`` (at most N entries per hour or per day).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, model_validator

from segmenta.errors import Problem, RejectedInput

#: The longest wait and wait_until_member timeout (contract 7).
MAX_WAIT = dt.timedelta(days=90)
#: Entry segments per journey (contract 7; Customer Insights - Journeys' limit).
MAX_ENTRY = 15
#: Branches of one attribute-branch step (issue 13).
MAX_BRANCHES = 25
END = "end"
FREQUENCIES = ("once", "reenter")
#: ``{attribute}`` in a subject or body.
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

NonNeg = Annotated[StrictInt, Field(ge=0)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
StepId = Annotated[StrictStr, Field(min_length=1, max_length=100)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """``{"days": N}`` or ``{"hours": N}`` (both may be given: they add up)."""

    days: NonNeg | None = None
    hours: NonNeg | None = None

    @model_validator(mode="after")
    def _one(self) -> Duration:
        if self.days is None and self.hours is None:
            raise ValueError('give "days" or "hours", e.g. {"days": 3}')
        if self.delta > MAX_WAIT:
            raise ValueError(f"at most 90 days; this is {self.delta.total_seconds() / 86400:g} days")
        return self

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(days=self.days or 0, hours=self.hours or 0)

    @property
    def seconds(self) -> int:
        return int(self.delta.total_seconds())


class Send(_Strict):
    """One message per record: ``email`` through SMTP, or (extension) a signed ``webhook`` POST."""

    channel: Literal["email", "webhook"]
    subject: StrictStr | None = None
    body: StrictStr | None = None
    #: webhook only: where to POST, and the environment variable holding the HMAC secret.
    url: StrictStr | None = None
    secret_env: StrictStr | None = None

    @model_validator(mode="after")
    def _fields(self) -> Send:
        if self.channel == "email":
            if self.subject is None or self.body is None:
                raise ValueError('an email needs "subject" and "body"')
            if self.url is not None or self.secret_env is not None:
                raise ValueError('"url" and "secret_env" belong to channel webhook')
        else:
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError('a webhook needs "url": an http:// or https:// address')
        return self


class WaitUntil(_Strict):
    segment: Name
    timeout: Duration


class Condition(_Strict):
    """An attribute test of a branch, in the operators of segment conditions (contract 3.1).

    ``{"attribute": A, "op": OP, "value": V}``; text compares ignoring case, and every operator
    but ``is_empty`` is false on an empty attribute (null or ``""``), as in a segment.
    """

    attribute: Name
    op: Literal[
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "is_empty",
        "is_not_empty",
        "is_true",
        "is_false",
    ]
    value: Any = None


class Branch(_Strict):
    when: Condition
    next: StepId


class BranchStep(_Strict):
    """Up to 25 branches, tried in order on arrival; the first that holds is taken, else ``otherwise``."""

    branches: Annotated[list[Branch], Field(min_length=1, max_length=MAX_BRANCHES)]
    otherwise: StepId


class Step(_Strict):
    id: StepId
    send: Send | None = None
    wait: Duration | None = None
    wait_until_member: WaitUntil | None = None
    branch: BranchStep | None = None
    next: StepId | None = None
    yes: StepId | None = None
    no: StepId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        kinds = [k for k in ("send", "wait", "wait_until_member", "branch") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                'a step is exactly one of "send", "wait", "wait_until_member" or "branch"'
                + (f"; this one has {', '.join(kinds)}" if kinds else "")
            )
        if self.wait_until_member is not None:
            if self.yes is None or self.no is None:
                raise ValueError('wait_until_member needs "yes" and "no" (a step id or "end")')
            if self.next is not None:
                raise ValueError('wait_until_member goes on by "yes" and "no", not "next"')
        elif self.yes is not None or self.no is not None:
            raise ValueError('"yes" and "no" belong to wait_until_member steps; use "next"')
        if self.branch is not None and self.next is not None:
            raise ValueError('a branch step goes on by its branches and "otherwise", not "next"')
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("send", "wait", "wait_until_member", "branch") if getattr(self, k) is not None)


class RateLimit(_Strict):
    """At most ``max`` records enter per hour or per day (the rest wait for the next window)."""

    max: Annotated[StrictInt, Field(ge=1, le=10_000_000)]
    per: Literal["hour", "day"]

    @property
    def window_s(self) -> int:
        return 3600 if self.per == "hour" else 86400


class Entry(_Strict):
    segments: Annotated[list[Name], Field(min_length=1, max_length=MAX_ENTRY)]
    exclude: list[Name] = []
    frequency: Literal["once", "reenter"] = "once"
    rate_limit: RateLimit | None = None


class Exit(_Strict):
    segments: list[Name] = []


class JourneySpec(_Strict):
    name: Name
    audience: Name
    entry: Entry
    exit: Exit = Exit()
    steps: Annotated[list[Step], Field(min_length=1, max_length=500)]
    description: StrictStr | None = None

    def step(self, step_id: str) -> Step:
        return self.by_id[step_id]

    @property
    def by_id(self) -> dict[str, Step]:
        return {s.id: s for s in self.steps}

    def following(self, step: Step) -> list[str]:
        """The steps (or ``end``) a record can go to from ``step``."""
        if step.kind == "wait_until_member":
            return [step.yes or END, step.no or END]
        if step.branch is not None:
            return [b.next for b in step.branch.branches] + [step.branch.otherwise]
        return [self.next_of(step)]

    def next_of(self, step: Step) -> str:
        """``next``, else the following step in file order, else ``end``."""
        if step.next is not None:
            return step.next
        i = self.steps.index(step)
        return self.steps[i + 1].id if i + 1 < len(self.steps) else END

    def segments(self) -> dict[str, list[str]]:
        """Segment names by role (entry, exclude, exit, wait), each once per role."""
        wait = [s.wait_until_member.segment for s in self.steps if s.wait_until_member is not None]
        return {
            "entry": list(dict.fromkeys(self.entry.segments)),
            "exclude": list(dict.fromkeys(self.entry.exclude)),
            "exit": list(dict.fromkeys(self.exit.segments)),
            "wait": list(dict.fromkeys(wait)),
        }

    def order(self) -> list[str]:
        """Step ids in an order where every step comes before the steps it leads to (the graph has no cycle)."""
        seen: set[str] = set()
        out: list[str] = []

        def visit(sid: str) -> None:
            if sid == END or sid in seen:
                return
            seen.add(sid)
            for nxt in self.following(self.by_id[sid]):
                visit(nxt)
            out.append(sid)

        for s in self.steps:
            visit(s.id)
        return list(reversed(out))


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return "/" + "/".join(parts)


def parse_journey(raw: Any, *, columns: dict[str, set[str]] | None = None) -> JourneySpec:
    """Validate raw file data; ``columns`` (table -> column names) also checks audience and templates."""
    if not isinstance(raw, dict):
        raise RejectedInput([Problem("/", f"a journey is a JSON/YAML object, not {type(raw).__name__}")])
    try:
        spec = JourneySpec.model_validate(raw)
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
        problems += _against_model(spec, columns)
    if problems:
        raise RejectedInput(problems)
    return spec


def _structure(spec: JourneySpec) -> list[Problem]:
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    for i, step in enumerate(spec.steps):
        if step.id == END:
            problems.append(Problem(f"/steps/{i}/id", '"end" is reserved: it means the journey is over'))
        elif step.id in ids:
            problems.append(Problem(f"/steps/{i}/id", f"{step.id!r} is already the id of step {ids[step.id]}; ids are unique"))
        else:
            ids[step.id] = i
    for i, step in enumerate(spec.steps):
        refs: list[tuple[str, str | None]] = [("next", step.next), ("yes", step.yes), ("no", step.no)]
        if step.branch is not None:
            refs += [(f"branch/branches/{j}/next", b.next) for j, b in enumerate(step.branch.branches)]
            refs.append(("branch/otherwise", step.branch.otherwise))
        for field, target in refs:
            if target is not None and target != END and target not in ids:
                problems.append(
                    Problem(f"/steps/{i}/{field}", f'{target!r} is not a step id; use one of {", ".join(ids)} or "end"')
                )
    if problems:
        return problems
    cycle = _cycle(spec)
    if cycle:
        i = ids[cycle[0]]
        problems.append(
            Problem(
                f"/steps/{i}",
                f"the steps make a cycle {' -> '.join(cycle)}; a record may pass a step only once (one message per record and step)",
            )
        )
    for role, where in (("exclude", "/entry/exclude"), ("exit", "/exit/segments")):
        clash = set(spec.segments()[role]) & set(spec.entry.segments)
        if clash and role == "exclude":
            problems.append(Problem(where, f"{', '.join(sorted(clash))} is also an entry segment: nobody could enter"))
    return problems


def _cycle(spec: JourneySpec) -> list[str]:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(sid: str) -> list[str]:
        if sid == END:
            return []
        if state.get(sid) == 1:
            return [*path[path.index(sid) :], sid]
        if state.get(sid) == 2:
            return []
        state[sid] = 1
        path.append(sid)
        for nxt in spec.following(spec.by_id[sid]):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        state[sid] = 2
        return []

    for s in spec.steps:
        found = visit(s.id)
        if found:
            return found
    return []


EMAIL_COLUMNS = ("email", "emailaddress1")


def _against_model(spec: JourneySpec, columns: dict[str, set[str]]) -> list[Problem]:
    if spec.audience not in columns:
        return [Problem("/audience", f"{spec.audience!r} is not a table of the model; tables: {', '.join(sorted(columns))}")]
    cols = columns[spec.audience]
    problems: list[Problem] = []
    for i, step in enumerate(spec.steps):
        if step.send is not None:
            if step.send.channel == "email" and not any(c in cols for c in EMAIL_COLUMNS):
                problems.append(
                    Problem(f"/steps/{i}/send", f"{spec.audience} has no email or emailaddress1 column to send an email to")
                )
            for field in ("subject", "body"):
                text = getattr(step.send, field) or ""
                for name in PLACEHOLDER.findall(text):
                    if name not in cols:
                        problems.append(
                            Problem(
                                f"/steps/{i}/send/{field}",
                                f"{{{name}}} is not an attribute of {spec.audience}; attributes: {', '.join(sorted(cols))}",
                            )
                        )
        if step.branch is not None:
            for j, b in enumerate(step.branch.branches):
                if b.when.attribute not in cols:
                    problems.append(
                        Problem(
                            f"/steps/{i}/branch/branches/{j}/when/attribute",
                            f"{b.when.attribute!r} is not an attribute of {spec.audience}",
                        )
                    )
    return problems


def render(template: str, record: dict[str, Any]) -> str:
    """``{attribute}`` replaced by the record's value (null: empty)."""

    def one(m: re.Match[str]) -> str:
        value = record.get(m.group(1))
        return "" if value is None else str(value)

    return PLACEHOLDER.sub(one, template)


def branch_holds(cond: Condition, record: dict[str, Any]) -> bool:
    """Whether one branch condition holds for a record (contract 3.1's meaning of the operators)."""
    v = record.get(cond.attribute)
    op, want = cond.op, cond.value
    empty = v is None or v == ""
    if op == "is_empty":
        return empty
    if op == "is_not_empty":
        return not empty
    if empty:
        return False
    if op == "is_true":
        return v is True
    if op == "is_false":
        return v is False

    def fold(x: Any) -> Any:
        return x.casefold() if isinstance(x, str) else x

    v, want = fold(v), ([fold(w) for w in want] if isinstance(want, list) else fold(want))
    try:
        if op == "eq":
            return bool(v == want)
        if op == "ne":
            return bool(v != want)
        if op == "in":
            return v in (want if isinstance(want, list) else [want])
        if op == "not_in":
            return v not in (want if isinstance(want, list) else [want])
        if op in ("contains", "not_contains", "starts_with", "ends_with"):
            text, part = str(v), str(want)
            found = {
                "contains": part in text,
                "not_contains": part not in text,
                "starts_with": text.startswith(part),
                "ends_with": text.endswith(part),
            }
            return found[op]
        if op == "gt":
            return bool(v > want)
        if op == "gte":
            return bool(v >= want)
        if op == "lt":
            return bool(v < want)
        if op == "lte":
            return bool(v <= want)
    except TypeError:
        return False
    return False
