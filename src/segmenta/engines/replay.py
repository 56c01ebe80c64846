"""Replay SQL that the DuckDB engine compiled before, with nothing but the duckdb driver.

A repeated ``segmenta segment evaluate`` runs from the compiled-SQL cache
(:mod:`segmenta.services.compiled`) and must not import sqlglot, pydantic or the model
to do it (CLI start-up, issue 10 item 8). The connection matches
:class:`~segmenta.engines.duckdb.DuckDBEngine`'s: the same memory limit and threads, UTC, and
a statement timeout that interrupts the query. Any failure returns None, and the caller then
takes the ordinary path, whose engine reports the error with its full wording.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any


def duckdb_keys(database: Path, sql: str, *, memory_bytes: int, threads: int, timeout_s: float | None) -> list[Any] | None:
    """The first column of ``sql``'s rows on the DuckDB file ``database``; None when anything goes wrong."""
    if not database.is_file():
        return None
    import duckdb

    try:
        con = duckdb.connect(str(database), config={"memory_limit": f"{memory_bytes // 2**20}MiB", "threads": threads})
    except duckdb.Error:  # busy (another process holds the file) or unreadable: the engine says which
        return None
    timer = threading.Timer(timeout_s, con.interrupt) if timeout_s else None
    try:
        con.execute("SET TimeZone = 'UTC'")
        if timer is not None:
            timer.start()
        return [row[0] for row in con.execute(sql).fetchall()]
    except duckdb.Error:  # interrupted at the time limit, a table gone, out of memory: the engine reports it
        return None
    finally:
        if timer is not None:
            timer.cancel()
        con.close()
