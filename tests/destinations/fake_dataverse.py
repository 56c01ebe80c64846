"""A fake Dataverse Web API and a fake Microsoft identity platform, served over real HTTP on loopback.

Both keep state in memory and check every request as the real services would refuse it:

- :class:`FakeAuthority`: ``GET /<tenant>/v2.0/.well-known/openid-configuration`` (what msal
  reads first) and ``POST /<tenant>/oauth2/v2.0/token`` (client credentials: grant type, client
  id and secret, scope ``<org>/.default``); it issues opaque bearer tokens.
- :class:`FakeDataverse`: ``/api/data/v9.2/`` with ``WhoAmI``, ``msdynmkt_segments``,
  ``msdynmkt_segmentdefinitions`` (groups in ``msdynmkt_staticlistmembers``), the actions
  ``msdynmkt_AddStaticMembers`` / ``RemoveStaticMembers`` / ``ListGroupMembers``, and classic
  ``lists`` / ``listmembers`` with ``AddListMembersList`` / ``RemoveMemberList``. Every request
  needs a token the authority issued for this org; member calls carry at most 1,000 ids, a group
  at most 200,000 members, a segment at most 10 groups; a breach is answered 400 and recorded in
  ``violations`` (tests assert there are none).

Faults are scheduled, not random: ``faults`` is a list of what the next member calls get
(``429`` with ``Retry-After``, ``500``, ``503``, ``"drop"``: the connection is closed without an
answer, ``"slow"``: the answer comes after the client's timeout). ``latency`` delays every call.
``reject`` is a set of ids the server refuses (a 400 naming them).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-call (the resume tests SIGKILL it) is expected: no traceback on stderr."""
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Base:
    def __init__(self) -> None:
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    scheme = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}"

    def use_tls(self, certfile: str, keyfile: str) -> None:
        """Serve https (before ``__enter__``), as the real authority does; msal refuses anything else."""
        import ssl

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("content-length") or 0)
                return self.rfile.read(n) if n else b""

            def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                owner.handle(self, "GET", b"")

            def do_POST(self) -> None:  # noqa: N802
                owner.handle(self, "POST", self._body())

            def do_PATCH(self) -> None:  # noqa: N802
                owner.handle(self, "PATCH", self._body())

            def do_DELETE(self) -> None:  # noqa: N802
                owner.handle(self, "DELETE", self._body())

        return Handler

    def handle(self, h: Any, method: str, body: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class FakeAuthority(_Base):
    """The token endpoint of a tenant; ``tokens`` maps issued tokens to their scope."""

    def __init__(self, *, tenant: str, client_id: str, client_secret: str, lifetime: int = 3600) -> None:
        super().__init__()
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.lifetime = lifetime
        self.tokens: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.discovery_gets = 0
        self.base_url: str | None = None  # what the openid configuration names (https when fronted by TLS)

    def handle(self, h: Any, method: str, body: bytes) -> None:
        path = urlsplit(h.path).path
        base = self.base_url or self.url
        if method == "GET" and path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            with self.lock:
                self.discovery_gets += 1
            h.reply(
                200,
                {
                    "issuer": f"{base}/{self.tenant}/v2.0",
                    "authorization_endpoint": f"{base}/{self.tenant}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/{self.tenant}/oauth2/v2.0/token",
                },
            )
            return
        if method != "POST" or path != f"/{self.tenant}/oauth2/v2.0/token":
            h.reply(404, {"error": "not_found", "error_description": f"no {method} {path} (tenant {self.tenant})"})
            return
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.lock:
            self.requests.append({k: ("***" if k == "client_secret" else v) for k, v in form.items()})
        if form.get("grant_type") != "client_credentials":
            h.reply(400, {"error": "unsupported_grant_type", "error_description": "client_credentials only"})
            return
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            h.reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
            return
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            h.reply(400, {"error": "invalid_scope", "error_description": f"scope {scope!r} is not <resource>/.default"})
            return
        token = f"tok-{uuid.uuid4().hex}"
        with self.lock:
            self.tokens[token] = scope.split()[0]
        h.reply(
            200, {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime, "access_token": token}
        )


class FakeDataverse(_Base):
    """The Dataverse Web API of one org, with the real-time marketing segments API and classic lists."""

    def __init__(self, authority: FakeAuthority, *, latency: float = 0.0, version: str = "v9.2") -> None:
        super().__init__()
        self.api = f"/api/data/{version}/"
        self.authority = authority
        self.latency = latency
        self.faults: list[Any] = []
        self.reject: set[str] = set()
        self.violations: list[str] = []
        self.segments: dict[str, dict[str, Any]] = {}
        self.definitions: dict[str, dict[str, Any]] = {}
        self.members: dict[tuple[str, str], set[str]] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.list_members: dict[str, set[str]] = {}
        self.calls: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.slow_seconds = 3.0
        self.on_call: Any = None

    # -- what tests read ----------------------------------------------------------------------

    def segment_named(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.segments.values() if s["msdynmkt_displayname"] == name), None)

    def members_of(self, name: str) -> set[str]:
        seg = self.segment_named(name)
        assert seg is not None, f"no segment {name!r} in the fake"
        out: set[str] = set()
        for (sid, _g), ids in self.members.items():
            if sid == seg["msdynmkt_segmentid"]:
                out |= ids
        return out

    def list_named(self, name: str) -> set[str]:
        lid = next(k for k, v in self.lists.items() if v["listname"] == name)
        return set(self.list_members.get(lid, set()))

    # -- serving ----------------------------------------------------------------------------------

    def _violation(self, h: Any, message: str) -> None:
        with self.lock:
            self.violations.append(message)
        h.reply(400, {"error": {"code": "0x80040203", "message": message}})

    def _groups(self, seg: dict[str, Any]) -> list[str]:
        definition = self.definitions.get(seg["definition"]) or {}
        raw = definition.get("msdynmkt_staticlistmembers") or "[]"
        return [g["groupId"] for g in json.loads(raw)]

    def handle(self, h: Any, method: str, body: bytes) -> None:
        split = urlsplit(h.path)
        path = unquote(split.path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        auth = h.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        with self.lock:
            scope = self.authority.tokens.get(token)
        if not auth.startswith("Bearer ") or scope != f"{self.url}/.default":
            h.reply(401, {"error": {"code": "0x80072560", "message": "The user is not authenticated"}})
            return
        if not path.startswith(self.api):
            h.reply(404, {"error": {"code": "0x80060888", "message": f"no resource {path}"}})
            return
        name = path[len(self.api) :]
        action = name.split("(")[0]
        with self.lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            fault = (
                self.faults.pop(0) if self.faults and action.startswith(("msdynmkt_Add", "msdynmkt_Remove", "AddList")) else None
            )
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.on_call is not None:
                self.on_call(action)
            if self.latency:
                time.sleep(self.latency)
            if fault == 429:
                h.reply(
                    429,
                    {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}},
                    {"Retry-After": "1"},
                )
                return
            if fault in (500, 502, 503, 504):
                h.reply(fault, {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}})
                return
            if fault == "drop":
                h.close_connection = True
                h.connection.shutdown(2)
                return
            if fault == "slow":
                time.sleep(self.slow_seconds)  # past the client's timeout; the work is not done
                h.close_connection = True
                return
            payload = json.loads(body) if body else {}
            self._route(h, method, name, action, query, payload)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _route(self, h: Any, method: str, name: str, action: str, query: dict[str, str], body: dict[str, Any]) -> None:
        if method == "GET" and name == "WhoAmI":
            h.reply(200, {"UserId": "00000000-0000-0000-0000-00000000c0de", "BusinessUnitId": "b", "OrganizationId": "o"})
            return
        if name == "msdynmkt_segments" and method == "GET":
            rows = list(self.segments.values())
            m = re.fullmatch(r"msdynmkt_displayname eq '((?:[^']|'')*)'", query.get("$filter", ""))
            if m:
                rows = [r for r in rows if r["msdynmkt_displayname"] == m.group(1).replace("''", "'")]
            h.reply(200, {"value": [dict(r, _msdynmkt_segmentdefinition_value=r["definition"]) for r in rows]})
            return
        if name == "msdynmkt_segmentdefinitions" and method == "POST":
            groups = json.loads(body.get("msdynmkt_staticlistmembers") or "[]")
            if len(groups) > 10:
                self._violation(h, f"a segment has at most 10 static member groups, not {len(groups)}")
                return
            did = str(uuid.uuid4())
            with self.lock:
                self.definitions[did] = dict(body, msdynmkt_segmentdefinitionid=did)
            h.reply(
                201,
                {"msdynmkt_segmentdefinitionid": did},
                {"OData-EntityId": f"{self.url}{self.api}msdynmkt_segmentdefinitions({did})"},
            )
            return
        m = re.fullmatch(r"msdynmkt_segmentdefinitions\(([^)]+)\)", name)
        if m:
            d = self.definitions.get(m.group(1))
            if d is None:
                h.reply(404, {"error": {"message": "no such segment definition"}})
            elif method == "GET":
                h.reply(200, d)
            elif method == "PATCH":
                if len(json.loads(body.get("msdynmkt_staticlistmembers") or "[]")) > 10:
                    self._violation(h, "a segment has at most 10 static member groups")
                    return
                with self.lock:
                    d.update(body)
                h.reply(204)
            return
        if name == "msdynmkt_segments" and method == "POST":
            bind = body.get("msdynmkt_segmentdefinition@odata.bind", "")
            dm = re.fullmatch(r"/?msdynmkt_segmentdefinitions\(([^)]+)\)", bind)
            if body.get("msdynmkt_type") != 10 or not dm or dm.group(1) not in self.definitions:
                self._violation(h, f"a static segment needs msdynmkt_type 10 and a bound definition, got {body}")
                return
            sid = str(uuid.uuid4())
            with self.lock:
                self.segments[sid] = {
                    "msdynmkt_segmentid": sid,
                    "msdynmkt_displayname": body.get("msdynmkt_displayname"),
                    "msdynmkt_type": 10,
                    "definition": dm.group(1),
                }
            h.reply(201, {"msdynmkt_segmentid": sid}, {"OData-EntityId": f"{self.url}{self.api}msdynmkt_segments({sid})"})
            return
        if action in ("msdynmkt_AddStaticMembers", "msdynmkt_RemoveStaticMembers", "msdynmkt_ListGroupMembers"):
            self._members(h, action, body)
            return
        if name == "lists" and method == "GET":
            rows = list(self.lists.values())
            m = re.fullmatch(r"listname eq '((?:[^']|'')*)'", query.get("$filter", ""))
            if m:
                rows = [r for r in rows if r["listname"] == m.group(1).replace("''", "'")]
            h.reply(200, {"value": rows})
            return
        if name == "lists" and method == "POST":
            lid = str(uuid.uuid4())
            with self.lock:
                self.lists[lid] = {"listid": lid, "listname": body["listname"], "type": body.get("type")}
                self.list_members[lid] = set()
            h.reply(201, {"listid": lid})
            return
        if name == "listmembers" and method == "GET":
            m = re.fullmatch(r"_listid_value eq (\S+)", query.get("$filter", ""))
            lid = m.group(1) if m else ""
            h.reply(200, {"value": [{"_entityid_value": e} for e in sorted(self.list_members.get(lid, set()))]})
            return
        if name == "AddListMembersList" and method == "POST":
            ids = [str(i) for i in body.get("MemberIds") or []]
            if len(ids) > 1000:
                self._violation(h, f"AddListMembersList takes at most 1,000 ids, got {len(ids)}")
                return
            with self.lock:
                self.list_members.setdefault(str(body.get("ListId")), set()).update(ids)
            h.reply(204)
            return
        if name == "RemoveMemberList" and method == "POST":
            with self.lock:
                self.list_members.get(str(body.get("ListId")), set()).discard(str(body.get("EntityId")))
            h.reply(204)
            return
        h.reply(404, {"error": {"code": "0x8006088a", "message": f"Resource not found for the segment '{name}'."}})

    def _members(self, h: Any, action: str, body: dict[str, Any]) -> None:
        seg = self.segments.get(str(body.get("SegmentId")))
        if seg is None:
            h.reply(404, {"error": {"message": f"no segment {body.get('SegmentId')}"}})
            return
        group = str(body.get("GroupId"))
        if group not in self._groups(seg):
            self._violation(h, f"group {group} is not a static member group of the segment")
            return
        key = (seg["msdynmkt_segmentid"], group)
        if action == "msdynmkt_ListGroupMembers":
            ids = sorted(self.members.get(key, set()))
            page = int(body.get("PagingCookie") or 0)
            chunk = ids[page * 5000 : (page + 1) * 5000]
            more = (page + 1) * 5000 < len(ids)
            h.reply(200, {"EntityIds": chunk, "MoreRecords": more, "PagingCookie": str(page + 1) if more else None})
            return
        ids = [str(i) for i in body.get("EntityIds") or []]
        if not ids or len(ids) > 1000:
            self._violation(h, f"{action} takes 1 to 1,000 EntityIds, got {len(ids)}")
            return
        bad = [i for i in ids if i in self.reject]
        if bad:
            h.reply(400, {"error": {"code": "0x80040217", "message": f"Entity ids not found: {', '.join(bad[:5])}"}})
            return
        with self.lock:
            current = self.members.setdefault(key, set())
            if action == "msdynmkt_AddStaticMembers":
                if len(current) + sum(1 for i in ids if i not in current) > 200_000:
                    self.violations.append("a static member group holds at most 200,000 members")
                    h.reply(400, {"error": {"message": "group full"}})
                    return
                current.update(ids)
            else:
                current.difference_update(ids)
        h.reply(204)
