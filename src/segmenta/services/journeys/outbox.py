"""Sending through the outbox: SMTP (and signed webhooks) with exactly-once bookkeeping.

Each message of a record, entry and step has one ``journey_outbox`` row, and its
``Message-ID`` is derived from (journey, record, entry, step), so every copy of one message
carries the same id. The phases, each committed to the store before the next begins:

1. ``sending``: committed before the SMTP connection is used for this message.
2. ``delivering``: committed after the message's data went to the server and *before* the
   final ``.`` that makes the server accept it. Until that dot, a server discards the
   message when the connection drops (RFC 5321 section 4.1.1.4).
3. ``sent`` (or ``skipped``: no address; ``failed``: the server refused it for good); then
   the record moves to the next step (a crash between the two finds the row done and only
   moves the record).

After a crash the next worker finds the row and knows where the process died:

- ``sending``: nothing was accepted: sent again (still exactly once at the server).
- ``delivering``: the one ambiguous window, between the final dot and the commit of
  ``sent`` (a few milliseconds: one SMTP reply and one store commit). The engine chooses
  AT-LEAST-ONCE there: it sends again with the SAME ``Message-ID`` and a header
  ``X-Segmenta-Resend: 1``, so nothing is ever lost, and a receiving system (or a person)
  that drops repeated Message-IDs, as mail stores and most ESPs do, sees one message. The
  alternative, at-most-once (mark it sent unconfirmed), would lose the message whenever the
  crash came before the dot. SMTP has no idempotency key of its own; no design closes
  this window without the receiver's help.

A webhook POST carries the same id as ``Idempotency-Key`` and an HMAC-SHA256 signature of
the body (``X-Segmenta-Signature: sha256=<hex>``) with the secret from an environment
variable; 2xx is sent, other 4xx failed, 5xx and connection errors are retried next pass.

Test hook: ``SEGMENTA_TEST_JOURNEY_HANG=<point>:<path>[:N]`` creates ``path`` the Nth time
the process reaches ``point`` (``before_smtp``, ``before_dot``, ``after_dot``) and then hangs,
for a test to SIGKILL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import smtplib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from segmenta.errors import Problem, RejectedInput

SMTP_ENV = "SEGMENTA_SMTP_URL"
FROM_ENV = "SEGMENTA_SMTP_FROM"
HANG_ENV = "SEGMENTA_TEST_JOURNEY_HANG"
DEFAULT_FROM = "segmenta@localhost"


def message_id(journey_id: int, key: str, run: int, step: str) -> str:
    """The Message-ID of one record's message at one step of one entry (stable across retries and crashes)."""
    digest = hashlib.sha256(f"{journey_id}\x1f{key}\x1f{run}\x1f{step}".encode()).hexdigest()[:32]
    return f"<j{journey_id}.{digest}@segmenta>"


_reached: dict[str, int] = {}


def hang_point(point: str) -> None:
    """The test hook: the Nth time (``<point>:<path>[:N]``, default 1) ``point`` is reached, create the marker and hang."""
    spec = os.environ.get(HANG_ENV)
    if not spec:
        return
    wanted, _, rest = spec.partition(":")
    path, _, nth = rest.partition(":")
    if wanted != point or not path:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] != int(nth or 1):
        return
    Path(path).write_text(str(os.getpid()), encoding="utf-8")
    while True:  # pragma: no cover - the test kills the process here
        time.sleep(60)


class Refused(Exception):
    """The server refused this message for good (5xx): counted failed, not retried."""


class Transient(Exception):
    """The server or network failed for now (4xx, connection): retried on the next pass."""


def smtp_address() -> tuple[str, int]:
    url = os.environ.get(SMTP_ENV, "")
    if not url:
        raise RejectedInput([Problem(SMTP_ENV, "is not set; give the SMTP server as smtp://host:port to send journey emails")])
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise RejectedInput([Problem(SMTP_ENV, f"{url!r} is not smtp://host:port")])
    return parts.hostname, parts.port or 25


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str
    message_id: str
    resend: bool = False


class Mailer:
    """One SMTP connection for a pass's messages; :meth:`send` calls ``before_dot`` just before the final dot."""

    def __init__(self) -> None:
        self._smtp: smtplib.SMTP | None = None
        self.sender = os.environ.get(FROM_ENV, DEFAULT_FROM)

    def __enter__(self) -> Mailer:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            host, port = smtp_address()
            try:
                self._smtp = smtplib.SMTP(host, port, timeout=30)
                # the data and its final dot go out as two writes: without NODELAY, Nagle's algorithm
                # holds the dot until the server's delayed ACK (tens of ms per message)
                if self._smtp.sock is not None:
                    self._smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._smtp.ehlo_or_helo_if_needed()
            except (OSError, smtplib.SMTPException) as exc:
                self._smtp = None
                raise Transient(f"cannot reach the SMTP server {host}:{port}: {exc}") from exc
        return self._smtp

    def send(self, mail: Email, before_dot: Callable[[], None]) -> None:
        msg = EmailMessage(policy=SMTP_POLICY)
        msg["From"] = self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = mail.message_id
        if mail.resend:
            msg["X-Segmenta-Resend"] = "1"
        msg.set_content(mail.body)
        data = msg.as_bytes()
        smtp = self._connection()
        try:
            self._transaction(smtp, mail.to, data, before_dot)
        except (Refused, Transient):
            self._reset(smtp)
            raise
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise Transient(f"SMTP failed: {exc}") from exc

    def _transaction(self, smtp: smtplib.SMTP, to: str, data: bytes, before_dot: Callable[[], None]) -> None:
        code, resp = smtp.mail(self.sender)
        _check(code, resp, "MAIL FROM")
        code, resp = smtp.rcpt(to)
        _check(code, resp, f"RCPT TO {to}")
        code, resp = smtp.docmd("DATA")
        if code != 354:
            _check(code, resp, "DATA")
            raise Transient(f"DATA answered {code} {resp!r}")
        body = re.sub(rb"(?m)^\.", b"..", data)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        smtp.send(body)
        before_dot()
        smtp.send(b".\r\n")
        code, resp = smtp.getreply()
        _check(code, resp, "end of data")

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


def _check(code: int, resp: bytes, what: str) -> None:
    if 200 <= code < 300:
        return
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    if 500 <= code < 600:
        raise Refused(f"{what}: {code} {text}")
    raise Transient(f"{what}: {code} {text}")


def post_webhook(url: str, secret_env: str | None, payload: dict[str, Any], idempotency_key: str) -> None:
    """One signed POST; Refused on 4xx, Transient on 5xx or a network error."""
    import httpx

    body = json.dumps(payload, sort_keys=True, default=str).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            raise Transient(f"the webhook secret variable {secret_env} is not set")
        headers["X-Segmenta-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    try:
        r = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise Transient(f"POST {url}: {exc}") from exc
    if 200 <= r.status_code < 300:
        return
    if 400 <= r.status_code < 500 and r.status_code not in (408, 429):
        raise Refused(f"POST {url}: {r.status_code}")
    raise Transient(f"POST {url}: {r.status_code}")
