"""The compiled-SQL cache: a repeated ``segment evaluate`` runs its SQL without compiling it again.

An evaluation's cost from the command line is mostly imports: sqlglot (to build and render
the SQL), pydantic and the model (to validate the definition). When the same definition text
is evaluated again on the same model, settings and segmenta version, the SQL is the same, so
``W/cache/compiled/<key>.json`` keeps it, and :func:`replay` runs it with the duckdb driver
alone (:mod:`segmenta.engines.replay`). Importing this module costs only hashlib and json.

The key hashes every input the SQL depends on: the definition's bytes, ``model.yaml``,
``segmenta.yaml``, every ``SEGMENTA_*`` environment variable except the clock, the
``--engine`` / ``--store`` flags and segmenta's version. The as-of instant is in the key only
when it matters. :func:`remember` compiles the definition at a second instant, one day and one
second later. If the SQL is the same, it does not depend on the as-of, and the entry serves any
as-of. Otherwise the entry serves only the same as-of text (``--as-of`` or ``$SEGMENTA_NOW``),
so that an evaluation "now" always compiles. The data is read live, so loading new rows needs no
invalidation.

Only the DuckDB engine's evaluations are kept, and none that reads ``in_segment``: it reads
other segments' stored state, which changes without any of the inputs above changing. The
cache is best effort. An entry that fails to replay (busy file, time limit, a table gone) falls
back to the ordinary path, whose engine reports the error with its full wording, and a cache that
cannot be written is skipped. At most :data:`MAX_ENTRIES` entries are kept; the oldest go first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segmenta.workspace import Evaluation, Workspace

CACHE_DIR = Path("cache") / "compiled"
MAX_ENTRIES = 256
#: The instant :func:`remember` compares against: a day and a second later.
_SHIFT = dt.timedelta(days=1, seconds=1)
_ANY_AS_OF = "*"


def _as_of_text(as_of: str | None) -> str | None:
    """The as-of as given (``--as-of``, else ``$SEGMENTA_NOW``); None: "now", never a cache key."""
    return as_of or os.environ.get("SEGMENTA_NOW") or None


def cache_key(workspace: Path, definition: bytes, *, as_of: str, engine: str | None, store: str | None) -> str | None:
    """The hash of everything the compiled SQL depends on; None when the workspace has no model."""
    from segmenta import __version__

    try:
        model = (workspace / "model.yaml").read_bytes()
    except OSError:
        return None
    try:
        config = (workspace / "segmenta.yaml").read_bytes()
    except OSError:
        config = b""
    env = sorted((k, v) for k, v in os.environ.items() if k.startswith("SEGMENTA_") and k != "SEGMENTA_NOW")
    digest = hashlib.sha256()
    parts = [b"segmenta compiled 1", __version__.encode(), definition, model, config]
    parts += [json.dumps([env, engine, store, as_of]).encode()]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def replay(
    workspace: Path, definition: Path, *, as_of: str | None, engine: str | None, store: str | None
) -> tuple[str, list[Any]] | None:
    """(key column, member keys) from a cached compilation of ``definition``; None: compile it."""
    try:
        text = definition.read_bytes()
    except OSError:
        return None  # the ordinary path names the file and the reason
    moment = _as_of_text(as_of)
    for when in (_ANY_AS_OF, moment):
        if when is None:
            continue
        key = cache_key(workspace, text, as_of=when, engine=engine, store=store)
        if key is None:
            return None
        entry = _read(workspace / CACHE_DIR / f"{key}.json")
        if entry is None:
            continue
        from segmenta.engines.replay import duckdb_keys

        keys = duckdb_keys(
            workspace / "data.duckdb",
            entry["sql"],
            memory_bytes=entry["memory_bytes"],
            threads=entry["threads"],
            timeout_s=entry["timeout_s"],
        )
        if keys is not None:
            return entry["key"], keys
        return None
    return None


def remember(
    ws: Workspace,
    definition: Path,
    text: bytes,
    result: Evaluation,
    *,
    as_of: str | None,
    engine: str | None,
    store: str | None,
) -> None:
    """Keep ``result``'s SQL for the next evaluation of the same ``text`` (best effort; see the module)."""
    with contextlib.suppress(Exception):  # a cache that cannot be written only costs the next compile
        if ws.settings.engine != "duckdb" or b"in_segment" in text or definition.read_bytes() != text:
            return
        shifted = ws.engine.sql(ws.compile(definition, as_of=result.as_of + _SHIFT))
        when = _ANY_AS_OF if shifted == result.sql else _as_of_text(as_of)
        if when is None:
            return
        key = cache_key(ws.path, text, as_of=when, engine=engine, store=store)
        if key is None:
            return
        duck = ws.settings.duckdb
        entry = {
            "sql": result.sql,
            "key": result.key,
            "memory_bytes": duck.memory_bytes,
            "threads": duck.threads,
            "timeout_s": ws.engine.statement_timeout_s,
        }
        _write(ws.path / CACHE_DIR, f"{key}.json", entry)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = {"sql": str, "key": str, "memory_bytes": int, "threads": int}
    if not isinstance(entry, dict) or not all(isinstance(entry.get(k), t) for k, t in fields.items()):
        return None
    if entry.get("timeout_s") is not None and not isinstance(entry["timeout_s"], (int, float)):
        return None
    return entry


def _write(directory: Path, name: str, entry: dict[str, Any]) -> None:
    from segmenta.fileio import atomic_output, private_dir

    private_dir(directory.parent)
    private_dir(directory)
    with atomic_output(directory / name) as fh:
        json.dump(entry, fh)
    entries = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
    for old in entries[:-MAX_ENTRIES]:
        old.unlink(missing_ok=True)
