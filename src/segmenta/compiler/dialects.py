"""What differs per engine when a compiled tree is rendered, as data.

The compiler emits portable sqlglot nodes; sqlglot's own dialect tables turn them into
each engine's SQL. The few places where sqlglot's default rendering would change the
contract's meaning are patched here as tree rewrites, one entry per dialect.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from segmenta.errors import RejectedInput

Rewrite = Callable[[exp.Expression], exp.Expression]


def _postgres_array_size(node: exp.Expression) -> exp.Expression:
    # ARRAY_LENGTH(x, 1) is NULL for an empty array in PostgreSQL; CARDINALITY is 0.
    if isinstance(node, exp.ArraySize):
        return exp.Anonymous(this="CARDINALITY", expressions=[node.this])
    return node


#: Per dialect, rewrites applied to the tree before rendering.
REWRITES: dict[str, tuple[Rewrite, ...]] = {
    "postgres": (_postgres_array_size,),
}


def known_dialects() -> list[str]:
    from sqlglot.dialects.dialect import Dialects

    return sorted(d.value for d in Dialects if d.value)


def render(query: exp.Expression, *, dialect: str, pretty: bool = True) -> str:
    """``query`` as SQL text for ``dialect``."""
    if dialect not in known_dialects():
        from segmenta.model.schema import hint

        raise RejectedInput(f"--dialect: unknown dialect {dialect!r}{hint(dialect, known_dialects())}; known: {', '.join(known_dialects())}")
    tree = query.copy()
    for rewrite in REWRITES.get(dialect, ()):
        tree = tree.transform(rewrite)
    return tree.sql(dialect=dialect, pretty=pretty)
