"""Kind ``file``: a segment's members with their columns as a CSV or Parquet file in a directory.

Settings: ``path`` (a directory; created if missing), ``format`` (``csv`` or ``parquet``) and
``file_name`` (default ``<segment>.<format>``; ``{segment}`` and ``{run}`` are replaced). A full
send replaces the file atomically (written beside it, then renamed), so a reader never sees
half a file and a killed send leaves the previous one. A delta send writes
``<name>.delta-<run>.<format>`` with a ``change`` column (``entered`` rows, then ``exited`` keys).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from segmenta.destinations.base import DELTA, Checkpoint, Destination, DestinationError, Payload, SendResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class FileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, description="Directory the file is written to")
    format: Literal["csv", "parquet"] = "csv"
    file_name: str | None = Field(None, description="File name; {segment} and {run} are replaced")


class FileDestination(Destination):
    """Files in a local directory."""

    kind = "file"
    Settings = FileSettings
    description = "A CSV or Parquet file of the members and their columns, in a directory"
    settings: FileSettings

    def default_columns(self, audience_columns: list[str], key: str) -> list[str]:
        return [key]

    def _dir(self) -> Path:
        return Path(os.path.expanduser(self.settings.path))

    def test_connection(self) -> str:
        d = self._dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=d, prefix=".segmenta-test-"):
                pass
        except OSError as exc:
            raise DestinationError(f"cannot write to {d}: {exc.strerror or exc}") from None
        return f"{d} is writable"

    def _name(self, payload: Payload) -> str:
        segment = _UNSAFE.sub("_", payload.segment).strip("._") or "segment"
        pattern = self.settings.file_name or "{segment}.{format}"
        name = (
            pattern.replace("{segment}", segment).replace("{run}", str(payload.run_id)).replace("{format}", self.settings.format)
        )
        if "/" in name or name in ("", ".", ".."):
            raise DestinationError(f"file_name {pattern!r} must name a file in {self._dir()}, not a path")
        return name

    def send(self, payload: Payload, checkpoint: Checkpoint) -> SendResult:
        import pyarrow as pa

        d = self._dir()
        d.mkdir(parents=True, exist_ok=True)
        name = self._name(payload)
        columns = list(payload.columns)
        rows: list[dict[str, Any]] = [r for batch in payload.rows() for r in batch]
        if payload.mode == DELTA:
            stem, _, ext = name.rpartition(".")
            name = f"{stem}.delta-{payload.run_id}.{ext}"
            data = [{**r, "change": "entered"} for r in rows] + [
                {**{c: None for c in columns}, payload.key: k, "change": "exited"} for k in payload.exited
            ]
            columns = [*columns, "change"]
        else:
            data = rows
        table = pa.Table.from_pylist(data, schema=None) if data else pa.table({c: pa.array([], pa.string()) for c in columns})
        table = table.select(columns)
        target = d / name
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".partial")
        os.close(fd)
        try:
            if self.settings.format == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, tmp)
            else:
                import pyarrow.csv as pacsv

                pacsv.write_csv(table, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return SendResult(rows=len(rows), calls=1, detail={"file": str(target)})
