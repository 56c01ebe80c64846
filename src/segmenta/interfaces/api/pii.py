"""What a PII-restricted user may see: the model without PII columns, redacted definitions.

A restricted user is served a *visible model* from which every column flagged ``pii`` is
gone (with the relationships and measures that would reach one). Their definitions are
validated against it, so a condition on a PII column is rejected exactly as one on a
column that does not exist ("has no attribute", with its JSON pointer), and no hint ever
names a PII column. Rows shown to them never carry a PII column; definitions saved by
others are shown with the values of PII conditions replaced by ``***``.

A PII key column is gone from the visible model like any other (no condition on it), and
wherever a key would be shown to a restricted user (evaluate, members, members.csv,
preview) it is shown as ``***``; calls that take keys from them (add, remove, a record's
history) are refused.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from segmenta.model.schema import Model, Table
from segmenta.workspace import PII_MASK


def pii_columns(model: Model) -> set[tuple[str, str]]:
    """(table, column) of every PII column."""
    return {(t, c) for t, table in model.tables.items() for c, col in table.columns.items() if col.pii}


def visible_model(model: Model) -> Model:
    """``model`` without PII columns, and without relationships and measures that touch one."""
    pii = pii_columns(model)
    if not pii:
        return model
    names = {c for _, c in pii}
    tables = {name: _strip(name, table, pii) for name, table in model.tables.items()}
    rels = tuple(
        r for r in model.relationships if (r.from_table, r.from_column) not in pii and (r.to_table, r.to_column) not in pii
    )
    measures = {}
    for name, m in model.measures.items():
        rel = model.one_to_many(m.table, m.related)
        if rel is None or (rel.from_table, m.aggregate.attribute) in pii or (m.where and _mentions(m.where, names)):
            continue
        measures[name] = m
    return model.model_copy(update={"tables": tables, "relationships": rels, "measures": measures})


def _strip(name: str, table: Table, pii: set[tuple[str, str]]) -> Table:
    cols = {c: col for c, col in table.columns.items() if (name, c) not in pii}
    return table.model_copy(update={"columns": cols})


def _mentions(node: Any, names: set[str]) -> bool:
    """True when any ``attribute`` in a condition tree is one of ``names``."""
    if isinstance(node, Mapping):
        if node.get("attribute") in names:
            return True
        return any(_mentions(v, names) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, names) for v in node)
    return False


def redact_definition(raw: Any, model: Model) -> Any:
    """A copy of a saved definition whose conditions on PII columns show ``***`` as their value.

    Old versions were written against older models: a value is redacted when its attribute is
    PII in ``model`` (the model in force now) OR is not in it at all (a column since removed may
    have been PII), so no version shows what a restricted user may not see.
    """
    if not isinstance(raw, Mapping):
        return raw
    out = copy.deepcopy(dict(raw))
    audience = raw.get("audience")
    for group in out.get("groups") or []:
        if isinstance(group, dict):
            if audience in model.tables:
                _redact(group.get("where"), str(audience), model)
            else:
                _redact_all(group.get("where"))
    return out


def _redact_all(node: Any) -> None:
    """Every value under ``node``: its scope is not in the model, so nothing below can be checked."""
    if isinstance(node, dict):
        if "value" in node:
            node["value"] = PII_MASK
        for key, child in node.items():
            if key != "value":
                _redact_all(child)
    elif isinstance(node, list):
        for child in node:
            _redact_all(child)


def _redact(node: Any, table: str, model: Model) -> None:
    if not isinstance(node, dict):
        return
    for kind in ("all", "any"):
        if isinstance(node.get(kind), list):
            for child in node[kind]:
                _redact(child, table, model)
    scope = _walk(node.get("path") or [], table, model)
    if scope is None:
        _redact_all(node)
        return
    if "related" in node:
        rel = model.one_to_many(scope, str(node["related"]))
        if rel is None:
            _redact_all(node)
            return
        _redact(node.get("where"), rel.from_table, model)
        attr = (node.get("aggregate") or {}).get("attribute") if isinstance(node.get("aggregate"), dict) else None
        if attr is not None and _is_pii(model, rel.from_table, attr) and "value" in node:
            node["value"] = PII_MASK
    elif "attribute" in node and _is_pii(model, scope, node["attribute"]) and "value" in node:
        node["value"] = PII_MASK
    elif "measure" in node and "value" in node:
        measure = model.measures_of(scope).get(str(node["measure"])) if scope in model.tables else None
        rel = model.one_to_many(scope, measure.related) if measure is not None else None
        attr = measure.aggregate.attribute if measure is not None else None
        if rel is None or measure is None or (attr is not None and _is_pii(model, rel.from_table, attr)):
            node["value"] = PII_MASK


def _walk(path: Iterable[Any], table: str, model: Model) -> str | None:
    current = table
    for step in path:
        rel = model.many_to_one(current, str(step))
        if rel is None:
            return None
        current = rel.to_table
    return current


def _is_pii(model: Model, table: str, column: Any) -> bool:
    """PII in ``model``, or unknown to it (possibly a PII column since removed)."""
    col = model.tables[table].columns.get(str(column)) if table in model.tables else None
    return col is None or col.pii


def key_is_pii(model: Model, table: str) -> bool:
    """True when ``table``'s key column is PII in the full ``model`` (restricted users then never see keys)."""
    t = model.tables.get(table)
    return bool(t is not None and t.key in t.columns and t.columns[t.key].pii)


def mask_keys(keys: list[Any]) -> list[Any]:
    return [None if k is None else PII_MASK for k in keys]


def visible_columns(model: Model, table: str, *, restricted: bool) -> list[str]:
    """The columns of ``table`` the user may see, in model order."""
    cols = model.table(table).columns
    return [c for c, col in cols.items() if not (restricted and col.pii)]
