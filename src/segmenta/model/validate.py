"""Check raw segment definitions against a model (contract section 4).

:func:`parse_definition` walks the raw JSON/YAML data once, collects *every* problem
with its JSON pointer (and a did-you-mean where a name is close), and only when
there are none builds the typed :class:`~segmenta.model.definition.Definition`.

Example::

    >>> parse_definition({"audience": "contact", "groups": [...]}, model)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from segmenta.errors import DefinitionError, Problem, RejectedInput
from segmenta.model import definition as d
from segmenta.model.operators import (
    COUNT_OPERATORS,
    LIST_VALUE,
    NO_VALUE,
    OPERATORS,
    RANGE_VALUE,
    WINDOW_UNITS,
    WINDOW_VALUE,
)
from segmenta.model.schema import Column, ColumnType, Model, aggregate_type_problem, hint

_CONDITION_KEYS = ("all", "any", "attribute", "related", "measure", "in_segment")
_LINKS = ("and_also", "or", "but_not")
_NUMERIC_OPS = OPERATORS[ColumnType.DECIMAL]


class _Invalid(Exception):
    """Internal: this node had problems (already recorded); stop building it."""


@dataclass(frozen=True)
class DefinitionLimits:
    """How big a definition may be; each field is the setting ``limits.<field>`` in ``segmenta.yaml``.

    The defaults are far beyond real segments (Dynamics 365 guidance is about ten conditions
    per group) and small enough that one request cannot exhaust the machine: the checks run
    on the raw data, before anything is built from it, in time linear in its size.
    """

    #: Condition objects in the whole definition (attribute, related, measure, in_segment, all/any).
    max_conditions: int = 500
    #: Conditions nested in conditions (``all``/``any`` items, a ``related`` block's ``where``).
    max_depth: int = 32
    #: Groups in the definition.
    max_groups: int = 100
    #: Values in one list value (``in``, ``not_in``, ``contains_any``, ...).
    max_list_values: int = 10_000
    #: Characters in one text value.
    max_text_length: int = 10_000
    #: Size of a definition given as JSON/YAML text, in bytes (UTF-8).
    max_definition_bytes: int = 1_048_576

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None) -> DefinitionLimits:
        """The limits from the ``limits:`` mapping of ``segmenta.yaml`` (missing keys keep their defaults).

        A bad value is :class:`RejectedInput` naming ``limits.<key>`` and the allowed range;
        ``statement_timeout_s`` belongs to the engines (:func:`statement_timeout_from_config`).
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise RejectedInput([Problem("segmenta.yaml: limits", f"'limits' is a mapping of limit: value, not {_kind(raw)}")])
        values: dict[str, int] = {}
        known = (*LIMIT_RANGES, "statement_timeout_s")
        for key, value in raw.items():
            if key == "statement_timeout_s":
                statement_timeout_from_config(raw)
                continue
            if key not in LIMIT_RANGES:
                raise RejectedInput(
                    [Problem(f"segmenta.yaml: limits.{key}", f"unknown limit{hint(str(key), known)}; limits: {', '.join(known)}")]
                )
            low, high = LIMIT_RANGES[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise RejectedInput(
                    [
                        Problem(
                            f"segmenta.yaml: limits.{key}",
                            f"must be a whole number from {low:,} to {high:,}, not {json.dumps(value, default=str)}",
                        )
                    ]
                )
            values[key] = value
        return dataclasses.replace(cls(), **values)


#: Allowed range of each definition limit. ``max_depth`` stays far below Python's recursion
#: limit, which the validator and compiler (recursive over at most that depth) rely on.
LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "max_conditions": (1, 100_000),
    "max_depth": (1, 64),
    "max_groups": (1, 10_000),
    "max_list_values": (1, 1_000_000),
    "max_text_length": (1, 10_000_000),
    "max_definition_bytes": (1_024, 64 * 1_048_576),
}
DEFAULT_LIMITS = DefinitionLimits()
#: Default and allowed range (seconds) of ``limits.statement_timeout_s``: how long one query may run.
STATEMENT_TIMEOUT_S = 30.0
STATEMENT_TIMEOUT_RANGE = (0.001, 86_400.0)


def statement_timeout_from_config(limits: Mapping[str, Any] | None) -> float:
    """``limits.statement_timeout_s`` from ``segmenta.yaml`` (seconds, default 30); bad values are rejected."""
    if not isinstance(limits, Mapping) or limits.get("statement_timeout_s") is None:
        return STATEMENT_TIMEOUT_S
    value = limits["statement_timeout_s"]
    low, high = STATEMENT_TIMEOUT_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise RejectedInput(
            [
                Problem(
                    "segmenta.yaml: limits.statement_timeout_s",
                    f"must be a number of seconds from {low:g} to {high:,.0f}, not {json.dumps(value, default=str)}",
                )
            ]
        )
    return float(value)


def check_limits(raw: Any, limits: DefinitionLimits = DEFAULT_LIMITS) -> list[Problem]:
    """Problems where raw definition data exceeds ``limits``; empty when it fits.

    One iterative pass over the raw data (no recursion, whatever the nesting), so it is
    safe and cheap on hostile input and runs before anything is built from it.
    """
    if not isinstance(raw, Mapping):
        return []
    groups = raw.get("groups")
    if not isinstance(groups, list):
        return []
    problems: list[Problem] = []
    if len(groups) > limits.max_groups:
        problems.append(
            Problem("/groups", f"{len(groups):,} groups exceed the limit of {limits.max_groups:,} (setting limits.max_groups)")
        )
        return problems
    conditions = 0
    over_at: str | None = None  # the group's pointer where the count first went over
    deepest = 0
    deep_at: str | None = None
    for i, group in enumerate(groups):
        if not isinstance(group, Mapping) or "where" not in group:
            continue
        stack: list[tuple[Any, str, int]] = [(group["where"], f"/groups/{i}/where", 1)]
        while stack:
            node, at, depth = stack.pop()
            if not isinstance(node, Mapping):
                continue
            conditions += 1
            if over_at is None and conditions > limits.max_conditions:
                over_at = f"/groups/{i}/where"
            if depth > deepest:
                deepest = depth
                if deep_at is None and depth > limits.max_depth:
                    deep_at = at
            for kind in ("all", "any"):
                items = node.get(kind)
                if isinstance(items, list):
                    stack.extend((item, f"{at}/{kind}/{j}", depth + 1) for j, item in reversed(list(enumerate(items))))
            if "related" in node and isinstance(node.get("where"), Mapping):
                stack.append((node["where"], f"{at}/where", depth + 1))
            value = node.get("value")
            problem = _value_limit_problem(value, limits)
            if problem:
                problems.append(Problem(at, problem))
    if over_at is not None:
        problems.insert(
            0,
            Problem(
                over_at,
                f"{conditions:,} conditions exceed the limit of {limits.max_conditions:,} (setting limits.max_conditions)",
            ),
        )
    if deep_at is not None:
        problems.insert(
            0,
            Problem(
                deep_at,
                f"conditions nested {deepest:,} deep exceed the limit of {limits.max_depth:,} (setting limits.max_depth)",
            ),
        )
    return problems[:20]


def _value_limit_problem(value: Any, limits: DefinitionLimits) -> str | None:
    if isinstance(value, list):
        if len(value) > limits.max_list_values:
            return f"a list of {len(value):,} values exceeds the limit of {limits.max_list_values:,} (setting limits.max_list_values)"
        longest = max((len(v) for v in value if isinstance(v, str)), default=0)
    else:
        longest = len(value) if isinstance(value, str) else 0
    if longest > limits.max_text_length:
        return (
            f"a text value of {longest:,} characters exceeds the limit of {limits.max_text_length:,} "
            "(setting limits.max_text_length)"
        )
    return None


def parse_definition(raw: Any, model: Model, *, limits: DefinitionLimits = DEFAULT_LIMITS) -> d.Definition:
    """Validate ``raw`` (parsed JSON/YAML) against ``model``; raise :class:`DefinitionError` listing every problem.

    ``limits`` are checked first, on the raw data; a definition over one is refused whole.
    """
    over = check_limits(raw, limits)
    if over:
        raise DefinitionError(over)
    checker = _Checker(model)
    result = checker.definition(raw)
    if checker.problems or result is None:
        raise DefinitionError(checker.problems)
    return result


def parse_condition(
    raw: Any, model: Model, *, table: str, pointer: str = "", limits: DefinitionLimits = DEFAULT_LIMITS
) -> d.Condition:
    """Validate one condition tree evaluated on ``table``."""
    over = check_limits({"groups": [{"where": raw}]}, limits)
    if over:
        raise DefinitionError([Problem(pointer + p.where.removeprefix("/groups/0/where"), p.message) for p in over])
    checker = _Checker(model)
    try:
        node = checker.condition(raw, table, pointer)
    except _Invalid:
        node = None
    if checker.problems or node is None:
        raise DefinitionError(checker.problems)
    return node


def load_definition_text(text: str, *, source: str = "definition", limits: DefinitionLimits = DEFAULT_LIMITS) -> Any:
    """Parse JSON or YAML text into raw data; a syntax error is a :class:`DefinitionError`.

    Text over ``limits.max_definition_bytes`` is refused unread; YAML aliases are refused
    (no billion laughs), and nesting too deep to be a definition is refused without recursing.
    """
    import yaml

    size = len(text) if len(text) * 4 <= limits.max_definition_bytes else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_definition_bytes:
        raise DefinitionError(
            [
                Problem(
                    source,
                    f"the definition is {size:,} bytes, over the limit of {limits.max_definition_bytes:,} "
                    "(setting limits.max_definition_bytes)",
                )
            ]
        )
    too_deep = Problem(
        source, f"the definition is nested far deeper than the limit of {limits.max_depth} (setting limits.max_depth)"
    )
    try:
        return json.loads(text)
    except RecursionError:
        raise DefinitionError([too_deep]) from None
    except json.JSONDecodeError as json_exc:
        try:
            return yaml.load(text, Loader=json_like_yaml_loader())  # a SafeLoader subclass
        except (RecursionError, YAMLTooDeep):
            raise DefinitionError([too_deep]) from None
        except YAMLAliasRefused as exc:
            raise DefinitionError([Problem(source, str(exc))]) from None
        except yaml.YAMLError:
            raise DefinitionError(
                [
                    Problem(
                        source, f"not valid JSON or YAML (JSON: {json_exc.msg} at line {json_exc.lineno} column {json_exc.colno})"
                    )
                ]
            ) from None


#: Nesting of YAML collections beyond which a document cannot be a definition or a model.
YAML_MAX_NESTING = 200


_BRACKETS = re.compile(r"[\[\]{}]")


def flow_nesting(text: str) -> int:
    """How deep ``[``/``{`` brackets nest in ``text`` (an upper bound of YAML flow nesting), in one linear pass."""
    if text.count("[") + text.count("{") <= YAML_MAX_NESTING:
        return 0  # cannot nest deeper than there are brackets
    depth = deepest = 0
    for m in _BRACKETS.finditer(text):
        if m.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif depth:
            depth -= 1
    return deepest


class YAMLAliasRefused(Exception):
    """A YAML document used an anchor or alias; definitions and models do not take them."""


class YAMLTooDeep(Exception):
    """A YAML document nests collections deeper than :data:`YAML_MAX_NESTING`."""


@functools.cache
def json_like_yaml_loader() -> type:
    """A YAML SafeLoader that reads scalars as JSON would (definitions and model.yaml).

    Plain YAML 1.1 turns ``op: on`` (an operator) and ``choices: [Yes, No]`` into
    booleans and ``value: 2026-10-27`` into a date object; here only true/false are
    booleans and dates stay ISO strings, which the validator parses like any other.

    Anchors and aliases are refused as soon as the parser meets one, so a "billion
    laughs" document costs nothing: JSON has no aliases, and neither do definitions or
    models. Both errors derive from ``yaml.YAMLError`` too, so any YAML caller reports them.
    """
    import yaml
    from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent

    class AliasRefused(YAMLAliasRefused, yaml.YAMLError):
        pass

    class TooDeep(YAMLTooDeep, yaml.YAMLError):
        pass

    class Loader(yaml.SafeLoader):
        _depth = 0

        def __new__(cls, stream: Any) -> Any:
            # PyYAML's scanner is quadratic in flow nesting ("[[[[..."): refuse it before scanning.
            if isinstance(stream, str) and flow_nesting(stream) > YAML_MAX_NESTING:
                raise TooDeep(f"YAML nested more than {YAML_MAX_NESTING} levels deep")
            if fast is not None and cls is Loader and isinstance(stream, str) and _plain_enough(stream):
                return fast(stream)  # libyaml: the same result, some 40 times sooner (CLI start-up reads model.yaml)
            return super().__new__(cls)

        def compose_node(self, parent: Any, index: Any) -> Any:
            event: Any = self.peek_event()  # type: ignore[no-untyped-call]
            anchor = getattr(event, "anchor", None)
            if isinstance(event, AliasEvent) or (anchor is not None and isinstance(event, (ScalarEvent, CollectionStartEvent))):
                where = _at(event.start_mark)
                what = f"alias *{event.anchor}" if isinstance(event, AliasEvent) else f"anchor &{anchor}"
                raise AliasRefused(
                    f"{where}YAML {what} is not allowed here; "
                    "write the values out (anchors and aliases are refused, so a small file cannot expand into a huge one)"
                )
            self._depth += 1
            try:
                if self._depth > YAML_MAX_NESTING:
                    raise TooDeep(f"{_at(event.start_mark)}YAML nested more than {YAML_MAX_NESTING} levels deep")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    dropped = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in dropped]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    fast: type | None = None
    if getattr(yaml, "__with_libyaml__", False):
        # The C parser composes documents itself, so it could not refuse aliases or deep nesting:
        # it reads only text that holds neither an anchor/alias character nor deep indentation;
        # anything else takes the checked path above (which also gives the precise message).
        class CLoader(yaml.CSafeLoader):  # type: ignore[name-defined,misc]
            pass

        CLoader.yaml_implicit_resolvers = Loader.yaml_implicit_resolvers
        fast = CLoader
    return Loader


def _at(mark: Any) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""


_DEEP_BLOCK = re.compile(rf"^[ \t?:-]{{{YAML_MAX_NESTING},}}", re.MULTILINE)


def _plain_enough(text: str) -> bool:
    """True when ``text`` cannot hold a YAML anchor, alias or block nesting deeper than :data:`YAML_MAX_NESTING`."""
    return "&" not in text and "*" not in text and _DEEP_BLOCK.search(text) is None


def check_measure_filters(model: Model) -> list[Problem]:
    """Problems in the ``where`` filters of the model's measures."""
    checker = _Checker(model)
    for name, m in model.measures.items():
        if m.where is None:
            continue
        rel = model.one_to_many(m.table, m.related)
        if rel is None:
            continue
        with contextlib.suppress(_Invalid):
            checker.condition(m.where, rel.from_table, f"/measures/{name}/where")
    return checker.problems


def measure_filter(model: Model, name: str) -> d.Condition | None:
    """The typed ``where`` of measure ``name`` (already checked when the model loaded)."""
    m = model.measures[name]
    if m.where is None:
        return None
    rel = model.one_to_many(m.table, m.related)
    assert rel is not None
    return parse_condition(m.where, model, table=rel.from_table, pointer=f"/measures/{name}/where")


class _Checker:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.problems: list[Problem] = []

    def fail(self, where: str, message: str) -> _Invalid:
        self.problems.append(Problem(where, message))
        return _Invalid()

    # -- definition and groups ----------------------------------------------

    def definition(self, raw: Any) -> d.Definition | None:
        if not isinstance(raw, Mapping):
            self.fail("", f"a segment definition is an object with 'audience' and 'groups', not {_kind(raw)}")
            return None
        for key in raw:
            if key not in ("name", "description", "audience", "groups"):
                self.fail(
                    f"/{_esc(key)}",
                    f"unknown key {key!r}{hint(key, ('name', 'description', 'audience', 'groups'))}; "
                    "a definition has name, description, audience and groups",
                )
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            self.fail("/name", f"name must be a string, not {_kind(name)}")
        description = raw.get("description")
        if description is not None and not isinstance(description, str):
            self.fail("/description", f"description must be a string, not {_kind(description)}")
        audience = raw.get("audience")
        if audience is None:
            self.fail("/audience", f"missing 'audience': the table whose records are members, one of {_names(self.model.tables)}")
            return None
        if not isinstance(audience, str) or audience not in self.model.tables:
            self.fail(
                "/audience",
                f"unknown table {audience!r}{hint(audience, self.model.tables)}; tables are {_names(self.model.tables)}",
            )
            return None
        groups_raw = raw.get("groups")
        if not isinstance(groups_raw, list) or not groups_raw:
            self.fail("/groups", "'groups' must be a non-empty list of groups, each {\"where\": condition}")
            return None
        groups: list[d.Group] = []
        for i, g in enumerate(groups_raw):
            with contextlib.suppress(_Invalid):
                groups.append(self.group(g, i, audience))
        if self.problems:
            return None
        self._check_self_reference(name, groups)
        if self.problems:
            return None
        return d.Definition(
            name=name if isinstance(name, str) else None,
            description=description if isinstance(description, str) else None,
            audience=audience,
            groups=tuple(groups),
        )

    def _check_self_reference(self, name: Any, groups: list[d.Group]) -> None:
        if not isinstance(name, str):
            return
        defn_refs: set[str] = set()
        for g in groups:
            d._collect_segments(g.where, defn_refs)
        if name in defn_refs:
            self.fail("/groups", f"segment {name!r} refers to itself through in_segment; a segment cannot contain itself")

    def group(self, raw: Any, i: int, audience: str) -> d.Group:
        at = f"/groups/{i}"
        if not isinstance(raw, Mapping):
            raise self.fail(at, f'a group is an object {{"link": ..., "where": condition}}, not {_kind(raw)}')
        bad = False
        for key in raw:
            if key not in ("link", "where"):
                self.fail(at, f"unknown key {key!r} in a group{hint(key, ('link', 'where'))}; a group has 'link' and 'where'")
                bad = True
        link = raw.get("link")
        if i == 0 and "link" in raw:
            self.fail(at, f"the first group takes no 'link' (found {link!r}); links join a group to the groups before it")
            bad = True
            link = None
        elif i > 0 and link is None:
            self.fail(at, f"missing 'link' after the first group: one of {', '.join(_LINKS)}")
            bad = True
        elif i > 0 and link not in _LINKS:
            self.fail(at, f"unknown link {link!r}{hint(link, _LINKS)}; use one of {', '.join(_LINKS)}")
            bad = True
        if "where" not in raw:
            raise self.fail(at, "missing 'where': the group's condition")
        where = self.condition(raw["where"], audience, f"{at}/where")
        if bad:
            raise _Invalid()
        return d.Group(link=link, where=where)

    # -- conditions -----------------------------------------------------------

    def condition(self, raw: Any, table: str, at: str) -> d.Condition:
        if not isinstance(raw, Mapping):
            raise self.fail(at, f"a condition is an object, not {_kind(raw)}")
        kinds = [k for k in _CONDITION_KEYS if k in raw]
        if not kinds:
            keys = ", ".join(repr(k) for k in raw) or "none"
            raise self.fail(at, f"not a condition (keys: {keys}); a condition has one of: {', '.join(_CONDITION_KEYS)}")
        if len(kinds) > 1:
            raise self.fail(at, f"a condition has exactly one of {', '.join(_CONDITION_KEYS)}; found {', '.join(kinds)}")
        kind = kinds[0]
        if kind in ("all", "any"):
            return self.tree(raw, kind, table, at)
        if kind == "attribute":
            return self.attribute(raw, table, at)
        if kind == "related":
            if "aggregate" in raw:
                return self.aggregate(raw, table, at)
            return self.related(raw, table, at)
        if kind == "measure":
            return self.measure(raw, table, at)
        return self.in_segment(raw, table, at)

    def tree(self, raw: Mapping[str, Any], kind: str, table: str, at: str) -> d.Condition:
        self.unknown_keys(raw, (kind,), at)
        items_raw = raw[kind]
        if not isinstance(items_raw, list):
            raise self.fail(at, f"'{kind}' takes a list of conditions, not {_kind(items_raw)}")
        items: list[d.Condition] = []
        bad = False
        for i, item in enumerate(items_raw):
            try:
                items.append(self.condition(item, table, f"{at}/{kind}/{i}"))
            except _Invalid:
                bad = True
        if bad:
            raise _Invalid()
        return d.All(items=tuple(items)) if kind == "all" else d.AnyOf(items=tuple(items))

    def unknown_keys(self, raw: Mapping[str, Any], allowed: tuple[str, ...], at: str) -> None:
        bad = [k for k in raw if k not in allowed]
        for key in bad:
            self.fail(at, f"unknown key {key!r}{hint(key, allowed)}; this condition takes {', '.join(allowed)}")
        if bad:
            raise _Invalid()

    def walk_path(self, raw: Mapping[str, Any], table: str, at: str) -> tuple[tuple[str, ...], str]:
        """Follow ``path`` (many-to-one steps) from ``table``; return (steps, table at the end)."""
        path = raw.get("path", [])
        if not isinstance(path, list) or not all(isinstance(p, str) for p in path):
            raise self.fail(at, f"'path' is a list of relationship names, not {_kind(path)}")
        current = table
        for step in path:
            rel = self.model.many_to_one(current, step)
            if rel is None:
                m2o, o2m = self.model.link_names(current)
                if step in o2m:
                    raise self.fail(
                        at,
                        f"path step {step!r} is one-to-many from {current!r}; a path walks only many-to-one "
                        f'relationships ({_names(m2o) or "none"}); use {{"related": {json.dumps(step)}}} to reach many records',
                    )
                raise self.fail(
                    at,
                    f"table {current!r} has no many-to-one relationship {step!r}{hint(step, m2o)}; "
                    f"path steps from {current!r}: {_names(m2o) or 'none'}",
                )
            current = rel.to_table
        return tuple(path), current

    def attribute(self, raw: Mapping[str, Any], table: str, at: str) -> d.AttributeCondition:
        self.unknown_keys(raw, ("path", "attribute", "op", "value", "case_sensitive"), at)
        path, target = self.walk_path(raw, table, at)
        col, name = self.column(raw.get("attribute"), target, at)
        if col.calculated:
            raise self.fail(at, f"attribute {name!r} of {target!r} is calculated: it may be shown but not used in a condition")
        case_sensitive = raw.get("case_sensitive", False)
        if not isinstance(case_sensitive, bool):
            raise self.fail(at, f"case_sensitive must be true or false, not {_kind(case_sensitive)}")
        if "case_sensitive" in raw and col.type is not ColumnType.TEXT:
            raise self.fail(at, f"case_sensitive applies to text attributes only; {name!r} is {col.type.value}")
        op = self.operator(raw, OPERATORS[col.type], f"{col.type.value} attribute {name!r}", at)
        value = self.value(raw, op, col, f"attribute {name!r}", at)
        return d.AttributeCondition(path=path, attribute=name, op=op, value=value, case_sensitive=case_sensitive)

    def column(self, name: Any, table: str, at: str) -> tuple[Column, str]:
        columns = self.model.table(table).columns
        if not isinstance(name, str) or name not in columns:
            raise self.fail(at, f"table {table!r} has no attribute {name!r}{hint(name, columns)}")
        return columns[name], name

    def operator(self, raw: Mapping[str, Any], allowed: tuple[str, ...], what: str, at: str) -> str:
        op = raw.get("op")
        if op is None:
            raise self.fail(at, f"missing 'op' for {what}; use one of: {', '.join(allowed)}")
        if op not in allowed:
            raise self.fail(at, f"operator {op!r} does not fit {what}{hint(op, allowed)}; use one of: {', '.join(allowed)}")
        return str(op)

    def value(self, raw: Mapping[str, Any], op: str, col: Column, what: str, at: str) -> Any:
        """Check and convert ``value`` for ``op`` on a column of ``col.type``."""
        has_value = "value" in raw and raw["value"] is not None
        v = raw.get("value")
        if op in NO_VALUE:
            if has_value:
                raise self.fail(at, f"{op} takes no value (found {json.dumps(v, default=str)}); remove 'value'")
            return None
        if not has_value:
            raise self.fail(at, f"{op} on {what} needs a 'value' ({_expected(op, col)})")
        if op in WINDOW_VALUE:
            return self.window(v, op, at)
        if op in RANGE_VALUE:
            if not isinstance(v, list) or len(v) != 2:
                raise self.fail(at, f"{op} takes [low, high] ({_expected(op, col)}), not {json.dumps(v, default=str)}")
            low, high = (self.scalar(x, col, op, what, at) for x in v)
            if low > high:
                raise self.fail(
                    at,
                    f"{op} range is backwards: low {_show(low)} is above high {_show(high)}; write [{_show(high)}, {_show(low)}]",
                )
            return (low, high)
        if op in LIST_VALUE:
            if not isinstance(v, list) or not v:
                raise self.fail(at, f"{op} takes a non-empty list ({_expected(op, col)}), not {json.dumps(v, default=str)}")
            return tuple(self.scalar(x, col, op, what, at) for x in v)
        if isinstance(v, (list, Mapping)):
            several = '; use "in" to match any of several values' if isinstance(v, list) and "in" in OPERATORS[col.type] else ""
            raise self.fail(at, f"{op} on {what} takes one value ({_expected(op, col)}), not {_kind(v)}{several}")
        return self.scalar(v, col, op, what, at)

    def scalar(self, v: Any, col: Column, op: str, what: str, at: str) -> Any:
        t = col.type
        if t in (ColumnType.TEXT,):
            if not isinstance(v, str):
                raise self.fail(at, f"{op} on {what} compares text: write the value as a string, e.g. {json.dumps(str(v))}")
            return v
        if t in (ColumnType.CHOICE, ColumnType.CHOICES):
            choices = col.choices or ()
            if not isinstance(v, str) or v not in choices:
                raise self.fail(
                    at, f"{json.dumps(v, default=str)} is not a choice of {what}{hint(v, choices)}; choices: {', '.join(choices)}"
                )
            return v
        if t is ColumnType.INTEGER:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
                raise self.fail(at, f"{op} on {what} needs a whole number, not {json.dumps(v, default=str)}")
            return int(v)
        if t is ColumnType.DECIMAL:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
                raise self.fail(at, f"{op} on {what} needs a number, not {json.dumps(v, default=str)}")
            try:
                return Decimal(str(v))
            except InvalidOperation:  # pragma: no cover - finite floats always convert
                raise self.fail(at, f"{op} on {what} needs a number, not {v!r}") from None
        if t.is_temporal:
            parsed = parse_iso(v)
            if parsed is None:
                raise self.fail(
                    at, f'{op} on {what} needs an ISO 8601 date such as "2026-10-27", not {json.dumps(v, default=str)}'
                )
            return parsed.date() if isinstance(parsed, dt.datetime) else parsed
        raise self.fail(at, f"{what} of type {t.value} takes no value")  # pragma: no cover

    def window(self, v: Any, op: str, at: str) -> d.Window:
        example = '{"days": 90}'
        if not isinstance(v, Mapping) or len(v) != 1:
            raise self.fail(at, f"{op} takes one unit and a count, e.g. {example}; units: {', '.join(WINDOW_UNITS)}")
        ((unit, n),) = v.items()
        if unit not in WINDOW_UNITS:
            raise self.fail(at, f"unknown unit {unit!r} for {op}{hint(unit, WINDOW_UNITS)}; units: {', '.join(WINDOW_UNITS)}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise self.fail(
                at, f'{op} needs a whole number of {unit} >= 0, e.g. {{"{unit}": 90}}, not {json.dumps(n, default=str)}'
            )
        return d.Window(unit=unit, n=n)

    def related_target(self, raw: Mapping[str, Any], table: str, at: str) -> tuple[tuple[str, ...], str, str]:
        path, scope = self.walk_path(raw, table, at)
        related = raw.get("related")
        rel = self.model.one_to_many(scope, related) if isinstance(related, str) else None
        if rel is None:
            m2o, o2m = self.model.link_names(scope)
            if related in m2o:
                raise self.fail(
                    at,
                    f"{related!r} is many-to-one from {scope!r} (one record); 'related' takes a one-to-many "
                    f'relationship ({_names(o2m) or "none"}); reach {related!r} with "path": [{json.dumps(related)}]',
                )
            raise self.fail(
                at,
                f"table {scope!r} has no one-to-many relationship {related!r}{hint(related, o2m)}; "
                f"from {scope!r}: {_names(o2m) or 'none'}",
            )
        return path, str(related), rel.from_table

    def related(self, raw: Mapping[str, Any], table: str, at: str) -> d.RelatedCondition:
        self.unknown_keys(raw, ("path", "related", "where", "count"), at)
        path, related, target = self.related_target(raw, table, at)
        where = self.condition(raw["where"], target, f"{at}/where") if raw.get("where") is not None else None
        count = d.CountSpec()
        if "count" in raw:
            c = raw["count"]
            if not isinstance(c, Mapping) or set(c) - {"op", "value"}:
                extra = sorted(map(str, set(c) - {"op", "value"})) if isinstance(c, Mapping) else []
                unknown = f"unknown key {extra[0]!r} in 'count'{hint(extra[0], ('op', 'value'))}; " if extra else ""
                raise self.fail(at, unknown + '\'count\' is {"op": OP, "value": N}, e.g. {"op": "gte", "value": 1}')
            op = c.get("op", "gte")
            if op not in COUNT_OPERATORS:
                raise self.fail(
                    at, f"count operator {op!r}{hint(op, COUNT_OPERATORS)} is not one of: {', '.join(COUNT_OPERATORS)}"
                )
            cv = c.get("value")
            if op == "between":
                if not (isinstance(cv, list) and len(cv) == 2 and all(_is_count(x) for x in cv)) or cv[0] > cv[1]:
                    raise self.fail(
                        at, f"count between takes [low, high], whole numbers >= 0 with low <= high, not {json.dumps(cv)}"
                    )
                count = d.CountSpec(op=op, value=(cv[0], cv[1]))
            else:
                if not isinstance(cv, int) or not _is_count(cv):
                    raise self.fail(at, f"count value must be a whole number >= 0, not {json.dumps(cv, default=str)}")
                count = d.CountSpec(op=op, value=cv)
        return d.RelatedCondition(path=path, related=related, where=where, count=count)

    def aggregate(self, raw: Mapping[str, Any], table: str, at: str) -> d.AggregateCondition:
        self.unknown_keys(raw, ("path", "related", "where", "aggregate", "op", "value"), at)
        path, related, target = self.related_target(raw, table, at)
        where = self.condition(raw["where"], target, f"{at}/where") if raw.get("where") is not None else None
        agg = raw["aggregate"]
        fns = ("sum", "avg", "min", "max", "count_distinct")
        if not isinstance(agg, Mapping) or set(agg) - {"fn", "attribute"} or "fn" not in agg or "attribute" not in agg:
            extra = sorted(map(str, set(agg) - {"fn", "attribute"})) if isinstance(agg, Mapping) else []
            unknown = f"unknown key {extra[0]!r} in 'aggregate'{hint(extra[0], ('fn', 'attribute'))}; " if extra else ""
            raise self.fail(at, unknown + '\'aggregate\' is {"fn": F, "attribute": A} with F one of ' + ", ".join(fns))
        fn = agg["fn"]
        if fn not in fns:
            raise self.fail(at, f"unknown aggregate function {fn!r}{hint(fn, fns)}; use one of {', '.join(fns)}")
        col, name = self.column(agg["attribute"], target, at)
        if col.calculated:
            raise self.fail(at, f"attribute {name!r} of {target!r} is calculated: it may be shown but not used in a condition")
        problem = aggregate_type_problem(fn, col.type)
        if problem:
            raise self.fail(at, problem)
        result = aggregate_result_column(fn, col)
        op = self.operator(raw, OPERATORS[result.type], f"{fn} of {name!r} ({result.type.value})", at)
        value = self.value(raw, op, result, f"{fn} of {name!r}", at)
        return d.AggregateCondition(path=path, related=related, where=where, fn=fn, attribute=name, op=op, value=value)

    def measure(self, raw: Mapping[str, Any], table: str, at: str) -> d.MeasureCondition:
        self.unknown_keys(raw, ("path", "measure", "op", "value"), at)
        path, scope = self.walk_path(raw, table, at)
        name = raw.get("measure")
        available = self.model.measures_of(scope)
        if not isinstance(name, str) or name not in available:
            elsewhere = (
                f" (it is a measure of {self.model.measures[name].table!r})"
                if isinstance(name, str) and name in self.model.measures
                else ""
            )
            raise self.fail(
                at,
                f"table {scope!r} has no measure {name!r}{elsewhere}{hint(name, available)}; "
                f"measures of {scope!r}: {_names(available) or 'none'}",
            )
        m = available[name]
        rel = self.model.one_to_many(scope, m.related)
        assert rel is not None
        col = self.model.table(rel.from_table).columns[m.aggregate.attribute]
        result = aggregate_result_column(m.aggregate.fn, col)
        op = self.operator(raw, OPERATORS[result.type], f"measure {name!r} ({result.type.value})", at)
        value = self.value(raw, op, result, f"measure {name!r}", at)
        return d.MeasureCondition(path=path, measure=name, op=op, value=value)

    def in_segment(self, raw: Mapping[str, Any], table: str, at: str) -> d.InSegment:
        self.unknown_keys(raw, ("path", "in_segment"), at)
        path, _ = self.walk_path(raw, table, at)
        name = raw["in_segment"]
        if not isinstance(name, str) or not name:
            raise self.fail(at, f"in_segment takes a segment name, not {_kind(name)}")
        return d.InSegment(path=path, segment=name)


def aggregate_result_column(fn: str, col: Column) -> Column:
    """The column type an aggregate produces, used to check its operator and value."""
    if fn == "count_distinct":
        return Column(type=ColumnType.INTEGER)
    if fn == "avg":
        return Column(type=ColumnType.DECIMAL)
    if fn == "sum":
        return Column(type=col.type)
    return Column(type=col.type)  # min / max keep the attribute's type


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def parse_iso(v: Any) -> dt.date | dt.datetime | None:
    """An ISO 8601 date, or a datetime converted to naive UTC; None when ``v`` is not one."""
    if not isinstance(v, str):
        return None
    s = v.strip()
    try:
        if _ISO_DATE.match(s):
            return dt.date.fromisoformat(s)
        if _ISO_DATETIME.match(s):
            parsed = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
            return parsed
    except (ValueError, OverflowError):  # e.g. 0001-01-01T00:00+14:00 is before year 1 in UTC
        return None
    return None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _expected(op: str, col: Column) -> str:
    t = col.type
    one = {
        ColumnType.TEXT: '"text"',
        ColumnType.INTEGER: "a whole number",
        ColumnType.DECIMAL: "a number",
        ColumnType.DATE: '"2026-10-27"',
        ColumnType.DATETIME: '"2026-10-27"',
        ColumnType.CHOICE: "one of " + ", ".join(col.choices or ()),
        ColumnType.CHOICES: "values from " + ", ".join(col.choices or ()),
        ColumnType.BOOLEAN: "no value",
    }[t]
    if op in WINDOW_VALUE:
        return 'e.g. {"days": 90}'
    if op in RANGE_VALUE:
        return f"[low, high], each {one}"
    if op in LIST_VALUE:
        return f"a list, each {one}"
    return one


def _show(v: Any) -> str:
    return json.dumps(v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v) if isinstance(v, Decimal) else v)


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(v), type(v).__name__
    ) + (f" {json.dumps(v)}" if isinstance(v, (str, int, float, bool)) else "")


def _names(names: Any) -> str:
    return ", ".join(repr(n) for n in names)


def _esc(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")
