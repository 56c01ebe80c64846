"""The data model: tables, typed columns, relationships and measures (``model.yaml``).

Example::

    model = Model.from_yaml_text(Path("model.yaml").read_text())
    model.table("contact").column("tier").choices  # ("Gold", "Silver", "Bronze")
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmenta.errors import ModelError, Problem


class ColumnType(StrEnum):
    """The column types of the contract (section 1)."""

    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    CHOICE = "choice"
    CHOICES = "choices"

    @property
    def is_numeric(self) -> bool:
        return self in (ColumnType.INTEGER, ColumnType.DECIMAL)

    @property
    def is_temporal(self) -> bool:
        return self in (ColumnType.DATE, ColumnType.DATETIME)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Column(_Frozen):
    """One typed column of a table."""

    type: ColumnType
    choices: tuple[str, ...] | None = None
    pii: bool = False
    calculated: bool = False
    description: str | None = None
    label: str | None = None


class ActiveRule(_Frozen):
    """Which records of a table are active; inactive ones are never segment members."""

    attribute: str
    equals: Any


class Table(_Frozen):
    """A table: its key column and its typed columns."""

    key: str
    columns: dict[str, Column]
    active: ActiveRule | None = None
    label: str | None = None

    def column(self, name: str) -> Column:
        return self.columns[name]


class Relationship(_Frozen):
    """A many-to-one link from ``from`` (a foreign key) to ``to`` (a key)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str
    from_: str = Field(alias="from")
    to: str
    reverse: str

    @field_validator("from_", "to")
    @classmethod
    def _table_dot_column(cls, v: str) -> str:
        if v.count(".") != 1 or not all(v.split(".")):
            raise ValueError(f"expected 'table.column', got {v!r}")
        return v

    @property
    def from_table(self) -> str:
        return self.from_.split(".")[0]

    @property
    def from_column(self) -> str:
        return self.from_.split(".")[1]

    @property
    def to_table(self) -> str:
        return self.to.split(".")[0]

    @property
    def to_column(self) -> str:
        return self.to.split(".")[1]


AggregateFn = Literal["sum", "avg", "min", "max", "count_distinct"]


class Aggregate(_Frozen):
    """An aggregate function over one attribute of related records."""

    fn: AggregateFn
    attribute: str


class Measure(_Frozen):
    """A named aggregate over a table's related records, optionally filtered by ``where``."""

    table: str
    related: str
    aggregate: Aggregate
    where: dict[str, Any] | None = None
    description: str | None = None
    label: str | None = None


class Model(_Frozen):
    """A whole data model. Build it with :meth:`from_yaml_text` or :meth:`from_data`."""

    tables: dict[str, Table]
    relationships: tuple[Relationship, ...] = ()
    measures: dict[str, Measure] = Field(default_factory=dict)

    # -- loading -------------------------------------------------------------

    @classmethod
    def from_data(cls, data: Any) -> Model:
        """Parse and check a model given as plain data; raises :class:`ModelError`."""
        if not isinstance(data, Mapping):
            raise ModelError([Problem("", "a model is a mapping with 'tables', 'relationships' and 'measures'")])
        try:
            model = cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ModelError(_pydantic_problems(exc)) from None
        problems = list(model._consistency_problems())
        if problems:
            raise ModelError(problems)
        # Measure filters are conditions on the related table; check them with the
        # definition validator (imported here: it depends on this module).
        from segmenta.model.validate import check_measure_filters

        problems = check_measure_filters(model)
        if problems:
            raise ModelError(problems)
        return model

    @classmethod
    def from_yaml_text(cls, text: str) -> Model:
        try:
            from segmenta.model.validate import json_like_yaml_loader  # validate imports this module

            data = yaml.load(text, Loader=json_like_yaml_loader())  # a SafeLoader: Yes/No/on stay strings
        except yaml.YAMLError as exc:
            raise ModelError([Problem("", f"model.yaml is not valid YAML: {exc}")]) from None
        return cls.from_data(data)

    @classmethod
    def from_file(cls, path: str | Path) -> Model:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelError([Problem(str(path), f"cannot read the model: {exc.strerror}")]) from None
        return cls.from_yaml_text(text)

    def to_data(self) -> dict[str, Any]:
        """Plain data that :meth:`from_data` reads back to an equal model."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)

    # -- lookups -------------------------------------------------------------

    def table(self, name: str) -> Table:
        return self.tables[name]

    def many_to_one(self, table: str, name: str) -> Relationship | None:
        """The relationship that ``table`` walks by ``name`` to one related record."""
        for rel in self.relationships:
            if rel.from_table == table and rel.name == name:
                return rel
        return None

    def one_to_many(self, table: str, reverse: str) -> Relationship | None:
        """The relationship that ``table`` walks by ``reverse`` to its many related records."""
        for rel in self.relationships:
            if rel.to_table == table and rel.reverse == reverse:
                return rel
        return None

    def link_names(self, table: str) -> tuple[list[str], list[str]]:
        """(many-to-one names, one-to-many names) reachable from ``table``."""
        m2o = [r.name for r in self.relationships if r.from_table == table]
        o2m = [r.reverse for r in self.relationships if r.to_table == table]
        return m2o, o2m

    def measures_of(self, table: str) -> dict[str, Measure]:
        return {n: m for n, m in self.measures.items() if m.table == table}

    # -- checks --------------------------------------------------------------

    def _consistency_problems(self) -> Iterable[Problem]:
        for tname, table in self.tables.items():
            at = f"/tables/{tname}"
            if table.key not in table.columns:
                yield Problem(f"{at}/key", f"key {table.key!r} is not a column of {tname!r}{hint(table.key, table.columns)}")
            for cname, col in table.columns.items():
                cat = f"{at}/columns/{cname}"
                needs = col.type in (ColumnType.CHOICE, ColumnType.CHOICES)
                if needs and not col.choices:
                    yield Problem(cat, f"a {col.type.value} column needs a non-empty 'choices' list")
                if not needs and col.choices is not None:
                    yield Problem(f"{cat}/choices", f"only choice and choices columns take 'choices', not {col.type.value}")
                if col.choices and len(set(col.choices)) != len(col.choices):
                    yield Problem(f"{cat}/choices", "choices must be unique")
            if table.active is not None and table.active.attribute not in table.columns:
                yield Problem(
                    f"{at}/active/attribute",
                    f"table {tname!r} has no attribute {table.active.attribute!r}{hint(table.active.attribute, table.columns)}",
                )
            elif table.active is not None and (
                problem := active_value_problem(table.columns[table.active.attribute], table.active.equals)
            ):
                yield Problem(f"{at}/active/equals", problem)
        seen: dict[tuple[str, str], str] = {}
        for i, rel in enumerate(self.relationships):
            at = f"/relationships/{i}"
            ok = True
            for end, ref in (("from", rel.from_), ("to", rel.to)):
                t, c = ref.split(".")
                if t not in self.tables:
                    yield Problem(f"{at}/{end}", f"unknown table {t!r}{hint(t, self.tables)}")
                    ok = False
                elif c not in self.tables[t].columns:
                    yield Problem(f"{at}/{end}", f"table {t!r} has no column {c!r}{hint(c, self.tables[t].columns)}")
                    ok = False
            if not ok:
                continue
            if (link_problem := self._link_problem(rel)) is not None:
                yield Problem(f"{at}/{link_problem[0]}", link_problem[1])
            for table_name, link in ((rel.from_table, rel.name), (rel.to_table, rel.reverse)):
                key = (table_name, link)
                if key in seen:
                    yield Problem(at, f"table {table_name!r} already has a relationship named {link!r} ({seen[key]})")
                seen[key] = at
        for mname, m in self.measures.items():
            at = f"/measures/{mname}"
            if m.table not in self.tables:
                yield Problem(f"{at}/table", f"unknown table {m.table!r}{hint(m.table, self.tables)}")
                continue
            reverse = self.one_to_many(m.table, m.related)
            if reverse is None:
                _, o2m = self.link_names(m.table)
                yield Problem(f"{at}/related", f"{m.table!r} has no one-to-many relationship {m.related!r}{hint(m.related, o2m)}")
                continue
            target = self.tables[reverse.from_table]
            measured = target.columns.get(m.aggregate.attribute)
            if measured is None:
                yield Problem(
                    f"{at}/aggregate/attribute",
                    f"table {reverse.from_table!r} has no attribute {m.aggregate.attribute!r}{hint(m.aggregate.attribute, target.columns)}",
                )
            elif (problem := aggregate_type_problem(m.aggregate.fn, measured.type)) is not None:
                yield Problem(f"{at}/aggregate/fn", problem)

    def _link_problem(self, rel: Relationship) -> tuple[str, str] | None:
        """('to' or 'from', why) when a relationship does not link a foreign key to a key of the same type."""
        target = self.tables[rel.to_table]
        if target.key not in target.columns:  # reported with the table
            return None
        if rel.to_column != target.key:
            return (
                "to",
                f"{rel.to!r} is not the key of {rel.to_table!r}; a relationship leads to a key: '{rel.to_table}.{target.key}'",
            )
        fk_type = self.tables[rel.from_table].columns[rel.from_column].type
        key_type = target.columns[rel.to_column].type
        if fk_type is not key_type:
            return (
                "from",
                f"foreign key {rel.from_!r} is {fk_type.value} but the key {rel.to!r} is {key_type.value}; give them one type",
            )
        return None


def active_value_problem(col: Column, value: Any) -> str | None:
    """Why ``value`` cannot be what an active rule's attribute ``equals``, or None when it can."""
    expected = {
        ColumnType.BOOLEAN: ("true or false", isinstance(value, bool)),
        ColumnType.INTEGER: ("a whole number", isinstance(value, int) and not isinstance(value, bool)),
        ColumnType.DECIMAL: ("a number", isinstance(value, (int, float)) and not isinstance(value, bool)),
        ColumnType.TEXT: ("a string", isinstance(value, str)),
        ColumnType.CHOICE: ("one of " + ", ".join(col.choices or ()), isinstance(value, str) and value in (col.choices or ())),
    }.get(col.type)
    if expected is None:
        return f"an active rule compares a boolean, integer, decimal, text or choice attribute, not {col.type.value}"
    if not expected[1]:
        return f"'equals' must be {expected[0]} (the attribute is {col.type.value}), not {value!r}"
    return None


def aggregate_type_problem(fn: str, ctype: ColumnType) -> str | None:
    """Why ``fn`` cannot aggregate a column of ``ctype``, or None when it can."""
    if fn in ("sum", "avg") and not ctype.is_numeric:
        return f"{fn} needs an integer or decimal attribute, not {ctype.value}"
    if fn in ("min", "max") and not (ctype.is_numeric or ctype.is_temporal):
        return f"{fn} needs a numeric, date or datetime attribute, not {ctype.value}"
    if fn == "count_distinct" and ctype is ColumnType.CHOICES:
        return "count_distinct cannot count a multi-select (choices) attribute"
    return None


def hint(name: object, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or ``''``."""
    if not isinstance(name, str):
        return ""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered and lowered[name.lower()] != name:
        return f" (did you mean {lowered[name.lower()]!r}?)"
    close = difflib.get_close_matches(name, list(lowered.values()), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _pydantic_problems(exc: ValidationError) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-")]
        # pydantic reports the alias 'from' as 'from'; enum/literal member names are noise.
        loc = [p for p in loc if p not in ("tagged-union",)]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif err["type"] == "missing":
            msg = f"missing required key {loc[-1]!r}"
        problems.append(Problem("/" + "/".join(loc), msg))
    return problems
