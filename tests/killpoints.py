"""A test-only segmenta plugin: hang a refresh where the kill tests stop the process.

Load it with ``SEGMENTA_PLUGINS=tests.killpoints`` (run from the repository root, so that
``tests`` is importable) and name a marker file in ``SEGMENTA_TEST_HANG_IN_REFRESH``: a refresh
then writes its membership, creates the marker (holding its pid) before it commits anything,
and sleeps until the test kills it. Production code knows nothing of this variable; it only
calls :attr:`segmenta.settings.Hooks.before_refresh_commit`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from segmenta.settings import Hooks

#: The variable naming the marker file (read here, by the test plugin, not by segmenta).
HANG_ENV = "SEGMENTA_TEST_HANG_IN_REFRESH"
#: The environment a subprocess needs for the plugin to hang at ``marker``.
PLUGIN = "tests.killpoints"


def hang_env(marker: Path | str) -> dict[str, str]:
    """Environment entries that make a ``segmenta`` subprocess hang inside its refresh."""
    return {"SEGMENTA_PLUGINS": PLUGIN, HANG_ENV: str(marker)}


def register(hooks: Hooks) -> None:
    marker = os.environ.get(HANG_ENV)
    if not marker:
        return

    def hang() -> None:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)

    hooks.before_refresh_commit = hang
