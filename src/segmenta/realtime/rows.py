"""Apply record changes given as rows (Python dicts) through :mod:`segmenta.services.records`.

The records service reads change *files* (its checks name a file's rows), so rows that arrive
as objects (a broker message, an HTTP body) are written to a private temporary NDJSON file
named after their origin and applied from there: the same checks, the same single
transaction, the same change ids as ``segmenta records upsert|delete``. Problems name the
origin (``label``), not the temporary path.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segmenta.errors import DataError, Problem, RejectedInput

if TYPE_CHECKING:
    from segmenta.services.records import RecordsResult
    from segmenta.services.segments import Segments

OPS = ("upsert", "delete")


def apply_rows(segs: Segments, table: str, op: str, rows: Sequence[Any], *, label: str = "rows") -> RecordsResult:
    """Upsert or delete ``rows`` of ``table`` in one transaction; raises :class:`DataError` naming ``label``'s row and column."""
    from segmenta.services import records

    if op not in OPS:
        raise RejectedInput([Problem(label, f"unknown operation {op!r}; use upsert or delete")])
    with tempfile.TemporaryDirectory(prefix="segmenta-rows-") as tmp:
        path = Path(tmp) / "rows.ndjson"
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
        try:
            return records.upsert(segs, table, path) if op == "upsert" else records.delete(segs, table, path)
        except DataError as exc:
            raise DataError([_named(p, label, str(path)) for p in exc.problems]) from None


def _named(problem: Problem, label: str, tmp: str) -> Problem:
    where = problem.where.replace(tmp, label).replace("rows.ndjson", label)
    return Problem(where, problem.message.replace(tmp, label))
