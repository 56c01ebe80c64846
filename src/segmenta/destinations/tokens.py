"""OAuth 2 client-credentials tokens from the Microsoft identity platform (or a stand-in for tests).

The token is for ``<org_url>/.default`` from ``<authority>/<tenant_id>``. With an ``https``
authority the token comes through msal's ``ConfidentialClientApplication``: msal first GETs
``<authority>/<tenant_id>/v2.0/.well-known/openid-configuration`` (tenant discovery; instance
discovery against login.microsoftonline.com is turned off for an overridden authority) and then
POSTs the client credentials to the ``token_endpoint`` it names. msal accepts only ``https``
authorities, so an ``http://`` authority (a fake authority on loopback in tests) and an ``https``
authority that serves no OpenID configuration are asked directly with the same standard request
msal would end with: ``POST <authority>/<tenant_id>/oauth2/v2.0/token`` with
``grant_type=client_credentials``, ``client_id``, ``client_secret`` and ``scope``. Answers are read
liberally (JSON or form-encoded; ``expires_in`` as a number or a string).

Secrets never reach a log line or an error message: errors carry the authority's ``error`` and
``error_description`` only.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import httpx

from segmenta.destinations.base import DestinationError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


def _read(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
        if isinstance(data, dict):
            return data
    except ValueError:
        pass
    return dict(parse_qsl(response.text))


def _explain(data: dict[str, Any], status: int | None = None) -> str:
    parts = [str(data.get("error") or (f"HTTP {status}" if status else "no access_token in the answer"))]
    if data.get("error_description"):
        parts.append(str(data["error_description"]).splitlines()[0][:300])
    return ": ".join(parts)


class Tokens:
    """One client's tokens for one scope, cached until a minute before they expire."""

    def __init__(
        self, *, authority: str | None, tenant_id: str, client_id: str, client_secret: str, scope: str, timeout: float = 30.0
    ) -> None:
        self.authority = (authority or DEFAULT_AUTHORITY).rstrip("/")
        self.overridden = authority is not None
        self.tenant_id = tenant_id
        self._client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.via = ""

    def __repr__(self) -> str:
        return f"<Tokens {self.authority}/{self.tenant_id} scope={self.scope}>"

    def headers(self, fresh: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.get(fresh=fresh)}"}

    def get(self, *, fresh: bool = False) -> str:
        with self._lock:
            if fresh or self._token is None or time.monotonic() > self._expires - 60:
                token, lifetime = self._acquire()
                self._token, self._expires = token, time.monotonic() + lifetime
            return self._token

    def _acquire(self) -> tuple[str, float]:
        if self.authority.startswith("https://"):
            try:
                return self._msal()
            except _NoDiscovery:
                if not self.overridden:
                    raise DestinationError(f"the authority {self.authority} gave no OpenID configuration") from None
        return self._direct()

    def _msal(self) -> tuple[str, float]:
        import msal

        try:
            app = msal.ConfidentialClientApplication(
                self._client_id,
                client_credential=self._client_secret,
                authority=f"{self.authority}/{self.tenant_id}",
                instance_discovery=False if self.overridden else None,
                timeout=self.timeout,
                token_cache=msal.TokenCache(),
            )
        except ValueError as exc:  # tenant discovery found no OpenID configuration
            if "OIDC" in str(exc) or "authority" in str(exc).lower():
                raise _NoDiscovery from None
            raise DestinationError(f"the authority {self.authority}/{self.tenant_id} was refused by msal") from None
        except Exception as exc:  # noqa: BLE001 - requests' connection errors and the like
            raise DestinationError(f"cannot reach the authority {self.authority}: {type(exc).__name__}") from None
        self.via = "msal"
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except Exception as exc:  # noqa: BLE001
            raise DestinationError(f"cannot reach the token endpoint of {self.authority}: {type(exc).__name__}") from None
        if not isinstance(result, dict) or "access_token" not in result:
            raise DestinationError(f"no token from {self.authority}/{self.tenant_id}: {_explain(result or {})}")
        return str(result["access_token"]), float(result.get("expires_in") or 3600)

    def _direct(self) -> tuple[str, float]:
        url = f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "scope": self.scope,
        }
        self.via = "oauth2"
        last = ""
        for attempt in range(4):
            try:
                response = httpx.post(url, data=form, headers={"Accept": "application/json"}, timeout=self.timeout)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                data = _read(response)
                if response.status_code == 200 and data.get("access_token"):
                    try:
                        lifetime = float(data.get("expires_in") or 3600)
                    except (TypeError, ValueError):
                        lifetime = 3600.0
                    return str(data["access_token"]), lifetime
                if response.status_code < 500 and response.status_code != 429:
                    raise DestinationError(f"no token from {url}: {_explain(data, response.status_code)}")
                last = f"HTTP {response.status_code}"
            time.sleep(0.2 * 2**attempt)
        raise DestinationError(f"no token from {url}: {last}")


class _NoDiscovery(Exception):
    """msal found no OpenID configuration at the authority."""
