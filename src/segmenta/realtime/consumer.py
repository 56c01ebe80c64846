"""Record changes from a message broker: the :class:`ChangeSource` seam and the loop that applies it.

A broker is reached through three small protocols, so that NATS JetStream (:mod:`.nats`)
and, later, Kafka are interchangeable:

- :class:`ChangeSource` hands out :class:`Delivery` batches (``fetch``), and says whether
  nothing is left to deliver (``drained``, for ``--once``);
- a :class:`Delivery` decodes to one :class:`Change` (table, upsert|delete, rows, change id)
  or raises :class:`BadMessage`, and is then acked, retried or rejected (dead-lettered).

:func:`consume` applies the changes through :func:`segmenta.realtime.rows.apply_rows` (the
records service: all or nothing, change ids) and ACKS ONLY AFTER the change is committed,
so delivery is at least once; a message delivered again (the consumer was killed between the
commit and the ack) carries the same change ids and is skipped, so applying is idempotent.

Consecutive messages of the same table and operation are applied as ONE transaction (the
throughput of a batch, the ordering of the stream); when such a group is refused, each
message is applied alone so that only the bad one is rejected. A bad message (not JSON, an
unknown table or operation, a row that does not fit the model) is rejected whole, with the
reason logged and sent to the dead letter, and never blocks the messages after it. Anything
else (the engine or the store unavailable) is not the message's fault: it is retried later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from segmenta.errors import RejectedInput

if TYPE_CHECKING:
    from segmenta.services.records import RecordsResult
    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.realtime")

#: The column of a row that carries its change id (the records service's).
CHANGE_ID = "_change_id"
#: How long a message whose change failed for a reason not its own waits before it is delivered again.
RETRY_DELAY_S = 5.0


class BadMessage(Exception):
    """A message that can never be applied (its reason says why); it is rejected, not retried."""


@dataclass(frozen=True)
class Change:
    """One message's record change.

    ``change_id`` is the message's id (NATS: ``Nats-Msg-Id``, else the stream and sequence);
    row ``i`` without a ``_change_id`` of its own is applied under ``"{change_id}/{i}"``, so a
    message delivered twice changes nothing the second time.
    """

    table: str
    op: str  # "upsert" | "delete"
    rows: list[Any]
    change_id: str
    where: str  # how logs and problems name the message

    def rows_with_ids(self) -> list[Any]:
        out: list[Any] = []
        for i, row in enumerate(self.rows):
            if isinstance(row, dict) and row.get(CHANGE_ID) in (None, ""):
                row = {**row, CHANGE_ID: f"{self.change_id}/{i}"}
            out.append(row)
        return out


class Delivery(Protocol):
    """One delivered message, to be settled exactly once: ack, retry or reject."""

    @property
    def where(self) -> str: ...

    def change(self) -> Change:
        """The message's change; raises :class:`BadMessage` when it cannot be one."""
        ...

    async def ack(self) -> None:
        """The change is committed: never deliver it again."""
        ...

    async def retry(self, delay: float) -> None:
        """Not applied for a reason that is not the message's: deliver it again after ``delay`` seconds."""
        ...

    async def reject(self, reason: str) -> None:
        """Never applicable: record it (with ``reason``) in the dead letter and never deliver it again."""
        ...


class ChangeSource(Protocol):
    """A broker's messages of record changes."""

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` deliveries, waiting at most ``timeout`` seconds for the first; [] when none came."""
        ...

    async def settle(self) -> None:
        """Make sure the acks and rejections sent so far reached the broker."""
        ...

    async def drained(self) -> bool:
        """True when no message is left to deliver or waiting for an ack (``--once`` stops then)."""
        ...


@dataclass
class Totals:
    """What a :func:`consume` run did."""

    messages: int = 0
    applied: int = 0  # messages whose change was committed (or skipped as seen) and acked
    rejected: int = 0  # messages dead-lettered
    retried: int = 0  # messages handed back for a later delivery
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    unknown: int = 0
    refreshed: set[str] = field(default_factory=set)

    def add(self, result: RecordsResult) -> None:
        self.inserted += result.inserted
        self.updated += result.updated
        self.deleted += result.deleted
        self.skipped += result.skipped
        self.unknown += result.unknown
        self.refreshed.update(result.refreshed)

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["refreshed"] = sorted(self.refreshed)
        return out


#: What a run tells its caller: ("applied", RecordsResult, deliveries) or ("rejected"/"retried", reason, deliveries).
Report = Callable[[str, Any, list[str]], None]


def _logged(kind: str, what: Any, where: list[str]) -> None:
    if kind != "applied":
        log.warning("record change %s %s: %s", ", ".join(where), kind, what)


async def consume(
    source: ChangeSource,
    segs: Segments,
    *,
    batch: int = 500,
    once: bool = False,
    stop: Callable[[], bool] | None = None,
    wait_s: float = 1.0,
    report: Report | None = None,
) -> Totals:
    """Apply ``source``'s changes until ``stop()`` (or, with ``once``, until it is drained); acks after each commit.

    With ``once`` a change that failed for a reason not its own ends the run after the
    message is handed back (the caller exits non-zero); otherwise the loop goes on and the
    message comes again after :data:`RETRY_DELAY_S`. ``report`` is told of every applied,
    rejected or retried message; without it rejections and retries are logged as warnings.
    """
    report = report or _logged
    totals = Totals()
    while not (stop is not None and stop()):
        deliveries = await source.fetch(batch, wait_s)
        if not deliveries:
            if once and await source.drained():
                break
            continue
        totals.messages += len(deliveries)
        failed = await _handle(source, segs, deliveries, totals, report)
        await source.settle()
        if failed and once:
            break
    return totals


async def _handle(source: ChangeSource, segs: Segments, deliveries: list[Delivery], totals: Totals, report: Report) -> bool:
    """Settle every delivery of one fetch; True when some change failed for a reason not its own."""
    decoded: list[tuple[Delivery, Change]] = []
    for d in deliveries:
        try:
            decoded.append((d, d.change()))
        except BadMessage as exc:
            await _reject(d, str(exc), totals, report)
    groups: list[list[tuple[Delivery, Change]]] = []
    for item in decoded:
        if groups and (groups[-1][0][1].table, groups[-1][0][1].op) == (item[1].table, item[1].op):
            groups[-1].append(item)
        else:
            groups.append([item])
    failed = False
    for group in groups:
        failed = await _apply_group(segs, group, totals, report) or failed
    return failed


async def _apply_group(segs: Segments, group: list[tuple[Delivery, Change]], totals: Totals, report: Report) -> bool:
    first = group[0][1]
    rows = [r for _, c in group for r in c.rows_with_ids()]
    label = first.where if len(group) == 1 else f"{first.where} .. {group[-1][1].where}"
    try:
        result = _apply(segs, first.table, first.op, rows, label)
    except RejectedInput as exc:
        if len(group) > 1:  # all or nothing refused the group: find the bad message(s) one at a time
            failed = False
            for item in group:
                failed = await _apply_group(segs, [item], totals, report) or failed
            return failed
        await _reject(group[0][0], _reason(exc, label), totals, report)
        return False
    except Exception as exc:  # noqa: BLE001 - the engine or the store, not the message: deliver it again later
        why = (str(exc).splitlines() or [type(exc).__name__])[0] + f"; delivered again in {RETRY_DELAY_S:.0f} s"
        log.info("record change from %s not applied: %s", label, why)
        for d, _ in group:
            await d.retry(RETRY_DELAY_S)
        totals.retried += len(group)
        report("retried", why, [d.where for d, _ in group])
        return True
    hook = segs.ws.settings.hooks.before_ack  # plugins: the kill tests stop the process here
    if hook is not None:
        hook()
    for d, _ in group:
        await d.ack()
    totals.applied += len(group)
    totals.add(result)
    report("applied", result, [d.where for d, _ in group])
    return False


def _apply(segs: Segments, table: str, op: str, rows: list[Any], label: str) -> RecordsResult:
    from segmenta.realtime.rows import apply_rows

    return apply_rows(segs, table, op, rows, label=label)


def _reason(exc: RejectedInput, label: str) -> str:
    """The problems, each where without the message's own name (the dead letter says which message it is)."""
    problems = [str(p).removeprefix(f"{label}: ") for p in exc.problems] or [str(exc)]
    return "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")


async def _reject(d: Delivery, reason: str, totals: Totals, report: Report) -> None:
    log.info("record change %s rejected: %s", d.where, reason)
    await d.reject(reason)
    totals.rejected += 1
    report("rejected", reason, [d.where])
