"""Reading a table's file for ``load`` and record changes: moved to :mod:`segmenta.engines.ingest`
(file -> Arrow is the engines' layer); these names stay for the modules that import them here."""

from __future__ import annotations

from segmenta.engines.ingest import MAX_PROBLEMS, _convert, _read_csv_text, arrow_schema, read_table_file

__all__ = ["MAX_PROBLEMS", "_convert", "_read_csv_text", "arrow_schema", "read_table_file"]
