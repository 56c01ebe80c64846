"""Journeys (contract section 7): segments decide who enters, who is excluded, who exits, who waits.

- :mod:`.spec`: the journey file and its validation (pydantic, exit 2 naming the step and field);
- :mod:`.service`: create / publish / stop / report and the step engine a worker pass runs;
- :mod:`.outbox`: SMTP and webhook sends with the exactly-once ledger.
"""

from __future__ import annotations

from segmenta.services.journeys.service import AdvanceReport, Journeys
from segmenta.services.journeys.spec import JourneySpec, parse_journey

__all__ = ["AdvanceReport", "JourneySpec", "Journeys", "parse_journey"]
