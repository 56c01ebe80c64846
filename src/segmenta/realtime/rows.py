"""Apply record changes given as rows (Python objects) or as a body's text through :mod:`segmenta.services.records`.

The records service reads change *files* (its checks name a file's rows), so rows that arrive
another way (a broker message, an HTTP body) are written to a private temporary file named
after their origin and applied from there: the same checks, the same single transaction, the
same change ids as ``segmenta records upsert|delete``. Problems name the origin (``label``),
never the temporary path.
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
#: The file types the records service reads, by the name a body's kind has here.
KINDS = {"json": ".json", "ndjson": ".ndjson", "csv": ".csv"}


def apply_rows(segs: Segments, table: str, op: str, rows: Sequence[Any], *, label: str = "rows") -> RecordsResult:
    """Upsert or delete ``rows`` of ``table`` in one transaction; problems name ``label``'s "row N" and column."""
    return apply_text(segs, table, op, json.dumps(list(rows), default=str, ensure_ascii=False), "json", label=label)


def apply_text(segs: Segments, table: str, op: str, text: str, kind: str, *, label: str) -> RecordsResult:
    """Upsert or delete the rows of ``text`` (a JSON array, NDJSON or CSV: ``kind``), as the CLI applies that file."""
    from segmenta.services import records

    if op not in OPS:
        raise RejectedInput([Problem(label, f"unknown operation {op!r}; use upsert or delete")])
    with tempfile.TemporaryDirectory(prefix="segmenta-rows-") as tmp:
        name = f"rows{KINDS[kind]}"
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8")
        try:
            return records.upsert(segs, table, path) if op == "upsert" else records.delete(segs, table, path)
        except DataError as exc:
            raise DataError([_named(p, label, str(path), name) for p in exc.problems]) from None


def _named(problem: Problem, label: str, tmp: str, name: str) -> Problem:
    where = problem.where.replace(tmp, label).replace(name, label)
    return Problem(where, problem.message.replace(tmp, label))
