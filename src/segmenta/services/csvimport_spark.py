"""``segment import-csv`` on Spark: the file's addresses matched against the audience table there.

:mod:`segmenta.services.csvimport` parses, checks and counts the uploaded file with a local
in-memory DuckDB (the file is local to the user). This module ships the file's distinct,
normalised addresses to Spark as one Parquet file under the tables path (visible to every
executor), matches them against the active audience records in Spark SQL (the same
compiled query as on DuckDB, so the same trimming, case folding and active rule), and
writes the matches as Parquet. The matched keys stay in Spark (the list's membership store
reads them from there); only the matched addresses with their record counts, at most the
file's distinct addresses, come back to the local DuckDB for the counts and the not-found file.
"""

from __future__ import annotations

import shutil
import uuid
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from segmenta.services.csvimport import IMPORT, keep_matches
from segmenta.services.membership_spark import SEGMENTS_DIR

if TYPE_CHECKING:
    from segmenta.engines.duckdb import DuckDBEngine
    from segmenta.engines.spark import SparkEngine
    from segmenta.services.segments import Segments

ADDRESSES_VIEW = "__segmenta_import_addresses"
MATCHES_VIEW = "__segmenta_import_matches"


def _table(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True))


class SparkMatches:
    """One import's matching on Spark; :meth:`close` removes its files and views."""

    def __init__(self, segs: Segments, local: Any) -> None:
        self.engine: SparkEngine = segs.ws.engine  # type: ignore[assignment]
        self.local: DuckDBEngine = local
        self.key = ""
        self.dir = self.engine.root / SEGMENTS_DIR / ".imports" / uuid.uuid4().hex
        self.dir.mkdir(parents=True)

    def wanted(self) -> exp.Select:
        """The file's distinct non-empty addresses, written as Parquet by DuckDB, as a Spark view."""
        path = self.dir / "addresses.parquet"
        addresses = (
            exp.select(exp.column("__addr")).distinct().from_(_table(IMPORT)).where(exp.column("__addr").is_(exp.null()).not_())
        )
        copy = exp.Copy(
            this=addresses.subquery(),
            kind=False,
            files=[exp.Literal.string(str(path))],
            params=[exp.CopyParameter(this=exp.Var(this="FORMAT"), expression=exp.Var(this="parquet"))],
        )
        self.local.execute([copy])
        self.engine.register_parquet_view(ADDRESSES_VIEW, lambda: str(path), "`__addr` STRING")
        return exp.select(exp.column("__addr")).from_(_table(ADDRESSES_VIEW))

    def match(self, query: exp.Select) -> exp.Select:
        """Run ``query`` (key, addr of the matching records) on Spark once, into Parquet; the query of the matched keys.

        The matched addresses, each with how many records it matched, are copied into the local
        DuckDB as table ``__segmenta_matches(addr, n)`` (the counts and the multi-match warning read it).
        """
        self.key = query.selects[0].alias_or_name
        matches = self.dir / "matches"
        self.engine.frame(self.engine.sql(query)).write.parquet(str(matches))
        self.engine.register_parquet_view(MATCHES_VIEW, lambda: str(matches))
        keep_matches(self.engine, self.local, _table(MATCHES_VIEW))
        return exp.select(exp.column(self.key, quoted=True)).distinct().from_(_table(MATCHES_VIEW))

    def close(self) -> None:
        self.engine.forget_view(ADDRESSES_VIEW)
        self.engine.forget_view(MATCHES_VIEW)
        shutil.rmtree(self.dir, ignore_errors=True)
