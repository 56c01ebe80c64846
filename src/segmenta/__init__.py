"""segmenta: customer segmentation and audience activation.

The library API (the CLI and the service are thin layers over it)::

    import segmenta
    ws = segmenta.Workspace.open("crm")
    ws.evaluate("gold.json", as_of="2026-10-27").keys
"""

from __future__ import annotations

from segmenta.errors import DefinitionError, RejectedInput, SegmentaError
from segmenta.model.schema import Model
from segmenta.workspace import Evaluation, Preview, Workspace

__all__ = ["DefinitionError", "Evaluation", "Model", "Preview", "RejectedInput", "SegmentaError", "Workspace"]
__version__ = "0.1.0"
