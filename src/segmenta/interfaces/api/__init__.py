"""The REST service (FastAPI): ``create_app(workspace)``; run it with ``segmenta serve``."""

from __future__ import annotations

from segmenta.interfaces.api.app import create_app

__all__ = ["create_app"]
