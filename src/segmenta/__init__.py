"""segmenta: customer segmentation and audience activation.

The library API (the CLI and the service are thin layers over it)::

    import segmenta
    ws = segmenta.Workspace.open("crm")
    ws.evaluate("gold.json", as_of="2026-10-27").keys
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segmenta.errors import DefinitionError, RejectedInput, SegmentaError

if TYPE_CHECKING:
    from segmenta.model.schema import Model
    from segmenta.workspace import Evaluation, Preview, Workspace

__all__ = ["DefinitionError", "Evaluation", "Model", "Preview", "RejectedInput", "SegmentaError", "Workspace"]
__version__ = "0.1.0"

#: Imported on first use, so that ``import segmenta.<module>`` (the CLI's start-up) stays cheap.
_LAZY = {"Model": "segmenta.model.schema", "Evaluation": "segmenta.workspace", "Preview": "segmenta.workspace"}
_LAZY["Workspace"] = "segmenta.workspace"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'segmenta' has no attribute {name!r}")
