"""The webhook channel (an extension of contract 7): one signed POST per record and step, to a real HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from segmenta.interfaces.cli import app
from tests.conftest import free_port
from tests.journeys.conftest import T0, JourneyWs


@pytest.fixture()
def hook() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    answers = iter([503])  # the first call fails for now: retried on the next pass

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = next(answers, 200)
            if code == 200:
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def test_signed_webhook_once_per_record(jws: JourneyWs, hook: tuple[str, list[tuple[dict[str, str], bytes]]]) -> None:
    url, received = hook
    jws.publish_segments("uk")
    data = {
        "name": "hooked",
        "audience": "contact",
        "entry": {"segments": ["uk"]},
        "steps": [{"id": "notify", "send": {"channel": "webhook", "url": url, "secret_env": "JOURNEY_HOOK_SECRET"}}],
    }
    jws.run("journey", "create", jws.file("hooked.json", data))
    jws.run("journey", "publish", "hooked")
    env_secret = "s3cret"
    base = ["--workspace", str(jws.ws)]
    env = {**jws.env(T0), "JOURNEY_HOOK_SECRET": env_secret}
    first = jws.runner.invoke(app, [*base, "worker", "--once"], env=env)
    assert first.exit_code == 1  # the 503: named, retried next pass
    again = jws.runner.invoke(app, [*base, "worker", "--once"], env=env)
    assert again.exit_code == 0, again.stderr
    keys = sorted(json.loads(body)["key"] for _, body in received)
    assert keys == ["1", "2", "3", "5"]
    for headers, body in received:
        want = "sha256=" + hmac.new(env_secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-segmenta-signature"] == want
        assert headers["idempotency-key"] == json.loads(body)["message_id"]
    r = jws.report("hooked")
    assert (r["sent"], r["finished"]) == (4, 4)
