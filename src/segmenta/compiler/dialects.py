"""What differs per engine when a compiled tree is rendered, as data.

The compiler emits portable sqlglot nodes; sqlglot's own dialect tables turn them into
each engine's SQL. The few places where sqlglot's default rendering would change the
contract's meaning are patched here as tree rewrites, one entry per dialect.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from segmenta.compiler.compile import _LIKE_ESCAPE
from segmenta.errors import RejectedInput

Rewrite = Callable[[exp.Expr], exp.Expr]


def _postgres_array_size(node: exp.Expr) -> exp.Expr:
    # ARRAY_LENGTH(x, 1) is NULL for an empty array in PostgreSQL; CARDINALITY is 0.
    if isinstance(node, exp.ArraySize):
        return exp.Anonymous(this="CARDINALITY", expressions=[node.this])
    return node


def _spark_array_size(node: exp.Expr) -> exp.Expr:
    # SIZE(NULL) is -1 in Spark when spark.sql.legacy.sizeOfNull is on (it is whenever ANSI
    # mode is off), so COALESCE(SIZE(x), 0) = 0 would miss null sets. ARRAY_SIZE is NULL.
    if isinstance(node, exp.ArraySize):
        return exp.Anonymous(this="ARRAY_SIZE", expressions=[node.this])
    return node


def _like_escape(node: exp.Expr) -> exp.Expr:
    # Spark's and PostgreSQL's LIKE treat a backslash as the escape character unless ESCAPE names another,
    # so a value holding a backslash would mean something else (or fail). The compiler only
    # writes ESCAPE when the pattern needs it, and then with the same character: a pattern
    # without ESCAPE holds no '!', so naming it is always safe.
    if isinstance(node, exp.Like) and not isinstance(node.parent, exp.Escape):
        return exp.Escape(this=node.copy(), expression=exp.Literal.string(_LIKE_ESCAPE))
    return node


def _spark_lower_per_code_point(node: exp.Expr) -> exp.Expr:
    # Ignoring case must fold one code point at a time, as DuckDB's LOWER does. Spark's
    # LOWER applies Unicode's special casing: a capital sigma at a word's end becomes final
    # sigma (so 'ΟΔΟΣ ΚΑΙ' would not contain 'ΔΟΣ'), and dotted capital I becomes two code
    # points. Those are the only two such lowercase rules for the root locale; mapping the
    # two characters first leaves LOWER nothing context-sensitive to do.
    if isinstance(node, exp.Lower):
        return exp.Lower(
            this=exp.func("TRANSLATE", node.this.copy(), exp.Literal.string("\u03a3\u0130"), exp.Literal.string("\u03c3i"))
        )
    return node


#: Per dialect, rewrites applied to the tree before rendering.
REWRITES: dict[str, tuple[Rewrite, ...]] = {
    "postgres": (_postgres_array_size, _like_escape),
    "spark": (_spark_array_size, _spark_lower_per_code_point, _like_escape),
    "databricks": (_spark_array_size, _spark_lower_per_code_point, _like_escape),
}


def known_dialects() -> list[str]:
    from sqlglot.dialects.dialect import Dialects

    return sorted(d.value for d in Dialects if d.value)


def render(query: exp.Expr, *, dialect: str, pretty: bool = True) -> str:
    """``query`` as SQL text for ``dialect``."""
    if dialect not in known_dialects():
        from segmenta.model.schema import hint

        raise RejectedInput(
            f"--dialect: unknown dialect {dialect!r}{hint(dialect, known_dialects())}; known: {', '.join(known_dialects())}"
        )
    tree = query.copy()
    for rewrite in REWRITES.get(dialect, ()):
        tree = tree.transform(rewrite)
    return tree.sql(dialect=dialect, pretty=pretty)
