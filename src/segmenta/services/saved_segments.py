"""``in_segment`` for a plain workspace: the CLI's composition root wires its saved segments in.

Apart from :mod:`segmenta.services.stores` so that wiring costs no import: SQLAlchemy and the
store's models are imported only when a definition actually reads ``in_segment`` (a plain
``segment evaluate`` of any other definition must not pay for them: CLI start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

    from segmenta.workspace import Workspace


def with_saved_segments(ws: Workspace) -> Workspace:
    """``ws`` resolving ``in_segment`` from its saved segments (their store opened for each lookup).

    The workspace facade imports no service (``.importlinter``), so a composition root that
    opens a plain workspace (the CLI) wires this in; :class:`~segmenta.services.segments.Segments`
    wires its own store.
    """

    def source(name: str, table: str) -> exp.Query:
        from segmenta.services.segments import stored_segment_source

        return stored_segment_source(ws, name, table)

    ws.segment_source = source
    return ws
