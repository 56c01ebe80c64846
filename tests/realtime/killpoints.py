"""A test-only segmenta plugin: hang ``records consume`` between a commit and its ack, where the kill test stops it.

Load it with ``SEGMENTA_PLUGINS=tests.realtime.killpoints`` (from the repository root) and name a
marker file in ``SEGMENTA_TEST_HANG_BEFORE_ACK``: the consumer then commits a change, creates the
marker (holding its pid) before it acks the messages, and sleeps until the test kills it.
Production code only calls :attr:`segmenta.settings.Hooks.before_ack`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from segmenta.settings import Hooks

HANG_ENV = "SEGMENTA_TEST_HANG_BEFORE_ACK"
PLUGIN = "tests.realtime.killpoints"


def hang_env(marker: Path | str) -> dict[str, str]:
    """Environment entries that make a ``segmenta records consume`` subprocess hang before its first ack."""
    return {"SEGMENTA_PLUGINS": PLUGIN, HANG_ENV: str(marker)}


def register(hooks: Hooks) -> None:
    marker = os.environ.get(HANG_ENV)
    if not marker:
        return

    def hang() -> None:
        Path(marker).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(600)

    hooks.before_ack = hang
