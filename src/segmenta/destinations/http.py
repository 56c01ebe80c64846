"""HTTP for destinations: a shared client that stays under a service's limits and retries what is worth retrying.

Dataverse's service protection limits (per user, per 5-minute sliding window: 6,000 requests,
20 minutes of execution time, 52 concurrent requests) are met by :class:`Throttle`: a semaphore
holds the calls in flight to ``concurrency`` (at most 52), a sliding window of start times holds
the starts to ``max_requests`` per ``window_seconds``, and a 429 with ``Retry-After`` pauses every
caller until that time (the limit is the user's, not the one call's). 5xx answers, timeouts and
dropped connections are retried with exponential backoff (bounded by ``max_attempts``); other 4xx
answers are returned to the caller, who knows what they mean.

Everything is synchronous and thread-safe (httpx.Client is), so a send runs its calls on a
thread pool of ``concurrency`` workers.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from segmenta.destinations.base import DestinationError

log = logging.getLogger("segmenta.destinations")

#: Retried: throttled, and the server errors a gateway or an overloaded service gives.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass
class Limits:
    """How hard a destination may push (defaults: Dataverse's service protection limits, with a margin)."""

    concurrency: int = 16
    max_requests: int = 5_400  # under 6,000 per 5 minutes
    window_seconds: float = 300.0
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 300.0
    timeout_seconds: float = 60.0


@dataclass
class Stats:
    calls: int = 0
    retries: int = 0
    throttled: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def retry_after(value: str | None, default: float) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``default`` if absent or bad."""
    if not value:
        return default
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


class Throttle:
    """Concurrency, a sliding request window and a shared pause after a 429."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._slots = threading.BoundedSemaphore(max(1, limits.concurrency))
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def _wait_turn(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                wait = self._paused_until - now
                window = self.limits.window_seconds
                while self._starts and now - self._starts[0] >= window:
                    self._starts.popleft()
                if wait <= 0 and len(self._starts) < self.limits.max_requests:
                    self._starts.append(now)
                    return
                if wait <= 0:
                    wait = window - (now - self._starts[0])
            time.sleep(min(max(wait, 0.001), 1.0))

    def __enter__(self) -> Throttle:
        self._slots.acquire()
        try:
            self._wait_turn()
        except BaseException:
            self._slots.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


class Client:
    """A throttled, retrying JSON client for one receiver; ``auth`` gives the headers of each call."""

    def __init__(
        self,
        base_url: str,
        limits: Limits,
        *,
        auth: Callable[[bool], dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limits = limits
        self.throttle = Throttle(limits)
        self.stats = Stats()
        self._auth = auth
        self._http = httpx.Client(
            timeout=limits.timeout_seconds,
            headers=headers or {},
            limits=httpx.Limits(max_connections=limits.concurrency + 2, max_keepalive_connections=limits.concurrency + 2),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _backoff(self, attempt: int) -> float:
        base = self.limits.backoff_seconds * (2 ** (attempt - 1))
        return min(self.limits.max_backoff_seconds, base) * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not crypto

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to one call, after the retries; raises DestinationError when it kept failing."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}/{path.lstrip('/')}"
        fresh_token = False
        last = ""
        for attempt in range(1, self.limits.max_attempts + 1):
            call_headers = dict(headers or {})
            if self._auth is not None:
                call_headers.update(self._auth(fresh_token))
            with self.throttle:
                with self.stats.lock:
                    self.stats.in_flight += 1
                    self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
                try:
                    response = self._http.request(method, url, json=json, params=params, content=content, headers=call_headers)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    response = None
                    last = f"{type(exc).__name__}"
                finally:
                    with self.stats.lock:
                        self.stats.in_flight -= 1
                        self.stats.calls += 1
            if response is not None and response.status_code == 401 and self._auth is not None and not fresh_token:
                fresh_token = True  # an expired or revoked token: one more try with a new one
                with self.stats.lock:
                    self.stats.retries += 1
                continue
            if response is not None and response.status_code not in RETRY_STATUS:
                return response
            if response is not None:
                last = f"HTTP {response.status_code}"
            if attempt == self.limits.max_attempts:
                break
            with self.stats.lock:
                self.stats.retries += 1
            if response is not None and response.status_code == 429:
                wait = min(
                    retry_after(response.headers.get("retry-after"), self._backoff(attempt)),
                    self.limits.max_retry_after_seconds,
                )
                with self.stats.lock:
                    self.stats.throttled += 1
                self.throttle.pause(wait)
                log.info("%s %s throttled (429); retrying after %.2f s", method, path.split("?")[0], wait)
                continue
            wait = self._backoff(attempt)
            log.info("%s %s failed (%s); retry %d in %.2f s", method, path.split("?")[0], last, attempt, wait)
            time.sleep(wait)
        raise DestinationError(
            f"{method} {url.split('?')[0]} kept failing after {self.limits.max_attempts} attempts (last: {last})"
        )
