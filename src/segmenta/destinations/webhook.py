"""Kind ``webhook``: JSON batches POSTed to a URL, each signed with HMAC-SHA256, retried on 429 and 5xx.

Each request's body is one JSON object::

    {"destination": NAME, "segment": NAME, "mode": "full"|"delta", "send_id": N,
     "batch": i, "batches": n, "rows": [{column: value, ...}, ...], "exited": [key, ...]}

with headers ``X-Segmenta-Timestamp`` (Unix seconds), ``X-Segmenta-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" with the secret signing_secret>`` and
``Idempotency-Key: <send_id>-<batch>`` (a receiver drops a batch it has seen: a resumed send
re-posts at most the batches after its last checkpoint). A full send's first batch carries
``"reset": true``: the receiver replaces what it held for the segment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segmenta.destinations.base import DELTA, Checkpoint, Destination, DestinationError, Payload, SendResult
from segmenta.destinations.http import Client, Limits


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(..., pattern=r"^https?://", description="The receiver's URL")
    batch_size: int = Field(500, ge=1, le=10_000)
    concurrency: int = Field(1, ge=1, le=16, description="Batches in flight (1 keeps them in order)")
    max_attempts: int = Field(6, ge=1, le=30)
    backoff_seconds: float = Field(0.5, ge=0, le=60)
    timeout_seconds: float = Field(30.0, gt=0, le=600)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookDestination(Destination):
    kind = "webhook"
    Settings = WebhookSettings
    secret_names = ("signing_secret",)
    credential_kind = "hmac-sha256"
    description = "Signed JSON batches POSTed to a URL"
    settings: WebhookSettings

    def _client(self) -> Client:
        s = self.settings
        limits = Limits(
            concurrency=s.concurrency,
            max_attempts=s.max_attempts,
            backoff_seconds=s.backoff_seconds,
            timeout_seconds=s.timeout_seconds,
        )
        return Client(s.url, limits, headers={"Content-Type": "application/json", "User-Agent": "segmenta"})

    def _post(self, client: Client, body: dict[str, Any], key: str) -> None:
        raw = json.dumps(body, default=str, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        headers = {
            "X-Segmenta-Timestamp": ts,
            "X-Segmenta-Signature": sign(self.secret("signing_secret"), ts, raw),
            "Idempotency-Key": key,
        }
        r = client.request("POST", self.settings.url, content=raw, headers=headers)
        if r.status_code >= 300:
            raise DestinationError(f"the webhook refused batch {body.get('batch')} (HTTP {r.status_code})")

    def test_connection(self) -> str:
        with self._client() as client:
            self._post(client, {"destination": self.name, "test": True, "rows": []}, f"test-{int(time.time())}")
        return f"{self.settings.url} accepted a signed test request"

    def send(self, payload: Payload, checkpoint: Checkpoint) -> SendResult:
        size = self.settings.batch_size
        rows = [r for batch in payload.rows() for r in batch]
        chunks = [rows[i : i + size] for i in range(0, len(rows), size)] or [[]]
        exited = list(payload.exited) if payload.mode == DELTA else []
        state = dict(checkpoint.resumed or {"done": 0})
        send_id = state.setdefault("send_id", int(time.time() * 1000))
        result = SendResult(rows=len(rows))
        with self._client() as client:
            try:
                for i in range(int(state["done"]), len(chunks)):
                    body = {
                        "destination": self.name,
                        "segment": payload.segment,
                        "mode": payload.mode,
                        "send_id": send_id,
                        "batch": i,
                        "batches": len(chunks),
                        "rows": chunks[i],
                        "exited": exited if i == 0 else [],
                        "reset": payload.mode != DELTA and i == 0,
                    }
                    self._post(client, body, f"{send_id}-{i}")
                    result.calls += 1
                    state["done"] = i + 1
                    checkpoint.save(state)
            finally:
                result.retries = client.stats.retries
        return result
