"""The web segment builder: static files served by the API process at ``/``."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
