"""Security headers on every answer: a CSP fit for the builder (no inline script), nosniff, no referrer, no framing."""

from __future__ import annotations

import pytest

from segmenta.interfaces.api.app import CSP
from tests.api.conftest import Api

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("GET", "/", None),
        ("GET", "/api/model", "viewer"),
        ("GET", "/api/model", None),  # 401
        ("GET", "/api/segments/nope", "viewer"),  # 404
        ("POST", "/api/segments", "viewer"),  # 403 / 422
        ("GET", "/openapi.json", None),
        ("GET", "/no-such-page", None),
    ],
)
def test_every_answer_carries_the_security_headers(shared_api: Api, method: str, path: str, who: str | None) -> None:
    response = shared_api.call(who, method, path)
    assert response.headers["content-security-policy"] == EXPECTED_CSP == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


def test_the_builder_has_no_inline_script_or_style(shared_api: Api) -> None:
    """The CSP forbids inline code, so the pages must not need it."""
    import re

    html = shared_api.client.get("/").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> blocks are refused by the CSP"
    assert "<style" not in html and not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html), "inline event handlers are refused by the CSP"
