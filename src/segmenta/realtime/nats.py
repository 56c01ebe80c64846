"""NATS JetStream as a :class:`~segmenta.realtime.consumer.ChangeSource`: a durable pull consumer.

Messages (what a producer publishes)::

    subject  <prefix>.<table>.<op>        e.g. segmenta.records.contact.upsert (op: upsert | delete)
    body     a JSON array of rows, one JSON object (one row), or NDJSON (one row per line)
    header   Nats-Msg-Id (optional): the change id; JetStream also drops a re-publish within its
             duplicate window. Without it the id is the stream's name, its creation and the sequence.

The table and operation are in the subject (not in the body), so a stream can be filtered,
limited or mirrored per table without reading a body, and a producer's rows are exactly the
rows of ``segmenta records upsert|delete``. A row may carry its own ``_change_id``; the others
get ``<message id>/<row number>``.

The stream (default ``SEGMENTA_RECORDS``, subjects ``<prefix>.>``) is created when it does not
exist. The durable pull consumer (default ``segmenta-records``, explicit acks) keeps its place
across restarts; a message not acked within ``ack_wait`` seconds (the consumer was killed) is
delivered again. A rejected message is published to the dead-letter subject (default
``segmenta.deadletter.<stream>``; a stream ``<stream>_DEADLETTER`` holds it unless another
stream already does) with headers ``Segmenta-Reason``, ``Segmenta-Subject``,
``Segmenta-Stream`` and ``Segmenta-Sequence``, and is then terminated (never delivered again).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segmenta.realtime.consumer import BadMessage, Change, Delivery
from segmenta.realtime.rows import OPS

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

log = logging.getLogger("segmenta.realtime")

DEFAULT_STREAM = "SEGMENTA_RECORDS"
DEFAULT_DURABLE = "segmenta-records"
DEFAULT_PREFIX = "segmenta.records"
#: How long the first connection may take before the consumer gives up (exit 1).
CONNECT_TIMEOUT_S = 10.0
#: Most bytes of a reason kept in the dead letter's header (headers are one line each).
REASON_BYTES = 2000


@dataclass(frozen=True)
class NatsOptions:
    """Where the changes come from (``segmenta records consume``'s options)."""

    url: str = "nats://127.0.0.1:4222"
    stream: str = DEFAULT_STREAM
    durable: str = DEFAULT_DURABLE
    prefix: str = DEFAULT_PREFIX
    dead_letter: str | None = None  # None: segmenta.deadletter.<stream>
    ack_wait_s: float = 60.0

    @property
    def dead_letter_subject(self) -> str:
        return self.dead_letter or f"segmenta.deadletter.{self.stream}"


def decode(subject: str, data: bytes, prefix: str) -> tuple[str, str, list[Any]]:
    """(table, op, rows) of a message; raises :class:`BadMessage` naming what is wrong."""
    if not subject.startswith(prefix + "."):
        raise BadMessage(f"subject {subject!r} is not {prefix}.<table>.<upsert|delete>")
    parts = subject[len(prefix) + 1 :].split(".")
    if len(parts) != 2 or not all(parts):
        raise BadMessage(f"subject {subject!r} is not {prefix}.<table>.<upsert|delete>")
    table, op = parts
    if op not in OPS:
        raise BadMessage(f"subject {subject!r}: unknown operation {op!r}; use upsert or delete")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadMessage(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise BadMessage("the body is empty; send a JSON array of rows, one JSON object or NDJSON")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as whole:
        rows: list[Any] = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                if lineno == 1:
                    raise BadMessage(f"the body is not JSON or NDJSON: {whole.msg} (line {whole.lineno})") from None
                raise BadMessage(f"the body is not NDJSON: line {lineno}: {exc.msg}") from None
        return table, op, rows
    if isinstance(value, dict):
        return table, op, [value]
    if isinstance(value, list):
        return table, op, value
    raise BadMessage(f"the body is a JSON {type(value).__name__}; send an array of rows, one object or NDJSON")


async def _connection_error(exc: Exception) -> None:
    """The client's connection errors (it retries by itself): logged, not printed as tracebacks."""
    log.info("NATS connection: %s", exc)


class NatsDelivery:
    """One JetStream message."""

    def __init__(self, source: NatsSource, msg: Msg) -> None:
        self.source = source
        self.msg = msg
        meta = msg.metadata
        self.seq = meta.sequence.stream
        self._where = f"{meta.stream}#{self.seq} ({msg.subject})"

    @property
    def where(self) -> str:
        return self._where

    def change(self) -> Change:
        table, op, rows = decode(self.msg.subject, self.msg.data, self.source.options.prefix)
        header = (self.msg.headers or {}).get("Nats-Msg-Id")
        change_id = f"nats-msg:{header}" if header else f"nats:{self.source.stream_id}:{self.seq}"
        return Change(table=table, op=op, rows=rows, change_id=change_id, where=self._where)

    async def ack(self) -> None:
        await self.msg.ack()

    async def retry(self, delay: float) -> None:
        await self.msg.nak(delay=delay)

    async def reject(self, reason: str) -> None:
        o = self.source.options
        headers = {
            "Segmenta-Reason": " ".join(reason.split())[:REASON_BYTES],
            "Segmenta-Subject": self.msg.subject,
            "Segmenta-Stream": o.stream,
            "Segmenta-Sequence": str(self.seq),
            # the same message rejected twice (killed between the two steps) is one dead letter
            "Nats-Msg-Id": f"deadletter:{self.source.stream_id}:{self.seq}",
        }
        assert self.source.js is not None
        await self.source.js.publish(o.dead_letter_subject, self.msg.data, headers=headers)
        await self.msg.term()


class NatsSource:
    """A durable JetStream pull consumer on ``<prefix>.>``; open with ``async with NatsSource(options) as source``."""

    def __init__(self, options: NatsOptions) -> None:
        self.options = options
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.sub: JetStreamContext.PullSubscription | None = None
        #: The stream's name and creation time: ids of streams deleted and made again never meet.
        self.stream_id = options.stream

    async def __aenter__(self) -> NatsSource:
        import asyncio

        import nats
        from nats.js import api
        from nats.js.errors import NotFoundError

        o = self.options
        # Reconnects forever once connected (a NATS restart is waited out); the first connection is bounded.
        try:
            self.nc = await asyncio.wait_for(
                nats.connect(
                    o.url, connect_timeout=5, max_reconnect_attempts=-1, allow_reconnect=True, error_cb=_connection_error
                ),
                CONNECT_TIMEOUT_S,
            )
        except TimeoutError:
            raise ConnectionError(f"no answer within {CONNECT_TIMEOUT_S:.0f} s") from None
        try:
            self.js = self.nc.jetstream()
            try:
                info = await self.js.stream_info(o.stream)
            except NotFoundError:
                info = await self.js.add_stream(api.StreamConfig(name=o.stream, subjects=[f"{o.prefix}.>"]))
            created = str(getattr(info, "created", "") or "")
            self.stream_id = f"{o.stream}@{hashlib.sha256(created.encode()).hexdigest()[:12]}"
            await self._dead_letter_stream()
            config = api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                deliver_policy=api.DeliverPolicy.ALL,
                ack_wait=o.ack_wait_s,
                max_deliver=-1,
            )
            self.sub = await self.js.pull_subscribe(f"{o.prefix}.>", durable=o.durable, stream=o.stream, config=config)
        except BaseException:
            await self.nc.close()
            raise
        return self

    async def _dead_letter_stream(self) -> None:
        from nats.js import api
        from nats.js.errors import NotFoundError

        assert self.js is not None
        subject = self.options.dead_letter_subject
        try:
            await self.js.find_stream_name_by_subject(subject)
        except NotFoundError:
            await self.js.add_stream(api.StreamConfig(name=f"{self.options.stream}_DEADLETTER", subjects=[subject]))

    async def __aexit__(self, *_exc: object) -> None:
        if self.nc is not None:
            try:
                await self.nc.flush(timeout=5)
            finally:
                await self.nc.close()

    async def fetch(self, batch: int, timeout: float) -> list[Delivery]:
        assert self.sub is not None
        try:
            msgs = await self.sub.fetch(batch, timeout=timeout)
        except TimeoutError:  # nats.errors.TimeoutError or asyncio's, depending on where the wait ended: none came
            return []
        return [NatsDelivery(self, m) for m in msgs]

    async def settle(self) -> None:
        assert self.nc is not None
        await self.nc.flush(timeout=10)

    async def drained(self) -> bool:
        assert self.sub is not None
        info = await self.sub.consumer_info()
        return bool(info.num_pending == 0 and info.num_ack_pending == 0)
