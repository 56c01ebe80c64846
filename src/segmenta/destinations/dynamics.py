"""Kind ``dynamics365-marketing``: a segment as a static segment of Dynamics 365 Customer Insights – Journeys.

Through the Dataverse Web API (``<org_url>/api/data/v9.2``), with an OAuth client-credentials
token for ``<org_url>/.default`` (:mod:`segmenta.destinations.tokens`). A full send:

1. finds the static segment named ``segment_name`` (``msdynmkt_segments`` by
   ``msdynmkt_displayname``); when there is none, creates its ``msdynmkt_segmentdefinitions``
   row (with the static member groups it needs) and the ``msdynmkt_segments`` row of the static
   type (10) bound to it;
2. otherwise removes its current members: each group's members (``msdynmkt_ListGroupMembers``)
   are removed with ``msdynmkt_RemoveStaticMembers``;
3. adds the members' ids with ``msdynmkt_AddStaticMembers``, in calls of at most 1,000 ids,
   200,000 per member group (group ``i`` gets calls ``200*i`` to ``200*i + 199``), at most 10
   groups: 2,000,000 members, more is refused before any call.

Progress is checkpointed in the store (segment, groups, whether the old members are gone, how
many leading calls are done): a send killed part way and run again for the same membership run
carries on from there (a re-added id is harmless), so it ends with exactly the segment's
members; for another run it starts over. A delta send (after a refresh) removes the exited ids
from every group and adds the entered ones to groups with room.

With ``target: list`` the members go to a classic (outbound) marketing list instead: ``lists``
by ``listname`` (created static when missing), its ``listmembers`` removed with
``RemoveMemberList``, the new ones added with ``AddListMembersList`` (1,000 per call).

Ids the server rejects (a 400 answer to a call, or ids it names as failed) are found by halving
the call, kept, and reported as ``rejected``.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from segmenta.destinations.base import DELTA, Checkpoint, Destination, DestinationError, NeedFullSend, Payload, SendResult
from segmenta.destinations.http import Client, Limits
from segmenta.destinations.tokens import Tokens
from segmenta.errors import Problem, RejectedInput

BATCH = 1_000
GROUP_SIZE = 200_000
MAX_GROUPS = 10
MAX_MEMBERS = GROUP_SIZE * MAX_GROUPS
STATIC_TYPE = 10
API = "api/data"
#: Web API versions tried in order when the org answers 404 for a whole version (v9.2 first, as current).
VERSIONS = ("v9.2", "v9.1", "v9.0")
#: Fields a segment's name may be read from.
NAME_FIELDS = ("msdynmkt_displayname", "msdynmkt_name", "msdynmkt_segmentname", "name")
_NAME = re.compile(r"^[A-Za-z0-9-]+$")


class DynamicsSettings(BaseModel):
    """``--set`` settings of ``dynamics365-marketing``."""

    model_config = ConfigDict(extra="forbid")

    region: str | None = Field(None, description="Power Apps environment region, e.g. crm, crm4")
    environment: str | None = Field(None, description="Power Apps environment name, e.g. socktown")
    segment_name: str = Field(..., min_length=1, max_length=200, description="The static segment (or list) to fill")
    org_url: str | None = Field(None, description="Overrides https://<environment>.<region>.dynamics.com (tests)")
    authority: str | None = Field(None, description="Overrides https://login.microsoftonline.com (tests)")
    target: Literal["segment", "list"] = Field("segment", description="segment: real-time journeys; list: marketing list")
    entity: Literal["contact", "lead"] | None = Field(None, description="Member type; default from the column sent")
    concurrency: int = Field(16, ge=1, le=52, description="Calls in flight (Dataverse allows 52)")
    max_requests: int = Field(5_400, ge=1, le=6_000, description="Requests per window (Dataverse allows 6,000 / 5 min)")
    window_seconds: float = Field(300.0, gt=0, le=3_600)
    max_attempts: int = Field(8, ge=1, le=30, description="Tries per call (429 and 5xx are retried)")
    backoff_seconds: float = Field(0.5, ge=0, le=60, description="First retry delay of a 5xx; doubles per retry")
    timeout_seconds: float = Field(60.0, gt=0, le=1_200)

    @model_validator(mode="after")
    def _where(self) -> DynamicsSettings:
        if self.org_url is None:
            if not (self.region and self.environment):
                raise ValueError("give region and environment (the org URL is https://<environment>.<region>.dynamics.com)")
            for name, value in (("region", self.region), ("environment", self.environment)):
                if not _NAME.match(value):
                    raise ValueError(f"{name} {value!r} may hold only letters, digits and '-'")
        elif not self.org_url.startswith(("https://", "http://")):
            raise ValueError(f"org_url {self.org_url!r} must start with https:// (http:// only for a local test server)")
        if self.authority is not None and not self.authority.startswith(("https://", "http://")):
            raise ValueError(f"authority {self.authority!r} must start with https://")
        return self

    @property
    def url(self) -> str:
        return (self.org_url or f"https://{self.environment}.{self.region}.dynamics.com").rstrip("/")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _id_of(response: httpx.Response, *fields: str) -> str:
    """The id of a created row: from the body (Prefer: return=representation) or the OData-EntityId header."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for f in (*fields, "id"):
            if body.get(f):
                return str(body[f])
    header = response.headers.get("odata-entityid") or response.headers.get("location") or ""
    match = re.search(r"\(([^()]+)\)\s*$", header)
    if match:
        return match.group(1).strip("'")
    raise DestinationError(f"the server created a row but named no id for it (fields {', '.join(fields)})")


def _ids_in(body: Any) -> list[str]:
    """Member ids in a list answer, whatever it is called: strings, or objects carrying an id."""
    if isinstance(body, dict):
        for k in ("EntityIds", "entityIds", "MemberIds", "Members", "members", "value", "Ids", "ids"):
            if isinstance(body.get(k), list):
                return _ids_in(body[k])
        return []
    out: list[str] = []
    if isinstance(body, list):
        for item in body:
            if isinstance(item, dict):
                for k in ("contactid", "leadid", "entityid", "EntityId", "_entityid_value", "id", "Id"):
                    if item.get(k) is not None:
                        out.append(str(item[k]))
                        break
            elif item is not None:
                out.append(str(item))
    return out


def _failed_in(body: Any) -> list[str]:
    """Ids an answer names as failed or rejected (several spellings accepted)."""
    if not isinstance(body, dict):
        return []
    for k, v in body.items():
        if isinstance(v, list) and any(w in k.lower() for w in ("fail", "reject", "invalid", "notfound", "not_found")):
            return _ids_in(v)
    return []


class Dynamics365Marketing(Destination):
    """Static segments (or marketing lists) of Dynamics 365 Customer Insights – Journeys."""

    kind = "dynamics365-marketing"
    Settings = DynamicsSettings
    secret_names = ("tenant_id", "client_id", "client_secret")
    credential_kind = "azure-client-secret"
    description = (
        "Dynamics 365 Customer Insights – Journeys: a static segment (or a marketing list) through the Dataverse Web API"
    )

    settings: DynamicsSettings
    _version: str | None = None

    # -- columns ------------------------------------------------------------------------

    def member_column(self, columns: list[str]) -> str | None:
        if self.settings.entity == "lead":
            return "leadid" if "leadid" in columns else None
        if self.settings.entity == "contact":
            return "contactid" if "contactid" in columns else None
        for c in ("contactid", "leadid"):
            if c in columns:
                return c
        return None

    def required_columns(self, audience_columns: list[str], key: str = "") -> list[str]:
        col = self.member_column(audience_columns)
        if col is None:
            want = {"lead": "a leadid column", "contact": "a contactid column"}.get(
                self.settings.entity or "", "a contactid column (or leadid for a lead audience)"
            )
            raise RejectedInput(
                [
                    Problem(
                        "segment",
                        f"Dynamics 365 Marketing members are contact or lead ids: the segment needs {want}; "
                        f"its audience has {', '.join(audience_columns)}",
                    )
                ]
            )
        return [col]

    def default_columns(self, audience_columns: list[str], key: str) -> list[str]:
        return self.required_columns(audience_columns)

    # -- plumbing ----------------------------------------------------------------------------

    def _tokens(self) -> Tokens:
        return Tokens(
            authority=self.settings.authority,
            tenant_id=self.secret("tenant_id"),
            client_id=self.secret("client_id"),
            client_secret=self.secret("client_secret"),
            scope=f"{self.settings.url}/.default",
            timeout=self.settings.timeout_seconds,
        )

    def _client(self) -> Client:
        s = self.settings
        limits = Limits(
            concurrency=s.concurrency,
            max_requests=s.max_requests,
            window_seconds=s.window_seconds,
            max_attempts=s.max_attempts,
            backoff_seconds=s.backoff_seconds,
            timeout_seconds=s.timeout_seconds,
        )
        tokens = self._tokens()
        return Client(
            f"{s.url}/{API}",  # + the version, chosen by _call on the first call
            limits,
            auth=tokens.headers,
            headers={"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"},
        )

    @staticmethod
    def _ok(response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code >= 400:
            detail = ""
            try:
                err = response.json().get("error") or {}
                detail = f": {str(err.get('message', ''))[:300]}" if isinstance(err, dict) else ""
            except (ValueError, AttributeError):
                pass
            raise DestinationError(f"{what} was refused (HTTP {response.status_code}){detail}")
        return response

    def _call(self, client: Client, method: str, name: str, **kwargs: Any) -> httpx.Response:
        """One Web API call of ``name`` under the org's API version, found on the first call (always a
        collection or WhoAmI, so a 404 there means the version is not served: the next of :data:`VERSIONS`)."""
        if self._version is None:
            for version in VERSIONS:
                r = client.request(method, f"{version}/{name}", **kwargs)
                if r.status_code != 404:
                    self._version = version
                    return r
            self._version = VERSIONS[0]
            return r
        return client.request(method, f"{self._version}/{name}", **kwargs)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return None

    # -- test ------------------------------------------------------------------------------------

    def test_connection(self) -> str:
        with self._client() as client:
            who = self._json(self._ok(self._call(client, "GET", "WhoAmI"), "WhoAmI"))
            user = (who or {}).get("UserId", "?") if isinstance(who, dict) else "?"
            if self.settings.target == "list":
                found = self._find_list(client)
                what = f"marketing list {self.settings.segment_name!r} " + ("exists" if found else "will be created")
            else:
                seg = self._find_segment(client)
                what = f"static segment {self.settings.segment_name!r} " + ("exists" if seg else "will be created")
        return f"connected to {self.settings.url} as user {user}; {what}"

    # -- real-time journeys segments -----------------------------------------------------------

    def _find_segment(self, client: Client) -> dict[str, Any] | None:
        name = self.settings.segment_name
        r = self._ok(
            self._call(
                client,
                "GET",
                "msdynmkt_segments",
                params={
                    "$select": "msdynmkt_segmentid,msdynmkt_displayname,_msdynmkt_segmentdefinition_value,msdynmkt_type",
                    "$filter": f"msdynmkt_displayname eq {_quote(name)}",
                },
            ),
            "looking up the segment",
        )
        rows = (self._json(r) or {}).get("value") or []
        for row in rows:
            names = [row.get(f) for f in NAME_FIELDS if isinstance(row, dict) and row.get(f) is not None]
            if isinstance(row, dict) and (not names or name in names):
                definition = row.get("_msdynmkt_segmentdefinition_value") or row.get("msdynmkt_segmentdefinitionid")
                if definition is None and isinstance(row.get("msdynmkt_segmentdefinition"), dict):
                    definition = row["msdynmkt_segmentdefinition"].get("msdynmkt_segmentdefinitionid")
                seg_id = row.get("msdynmkt_segmentid") or row.get("id")
                if seg_id is None:
                    continue
                return {"id": str(seg_id), "definition": str(definition) if definition else None}
        return None

    @staticmethod
    def _groups_json(groups: list[str]) -> str:
        return json.dumps(
            [
                {"groupId": g, "includeType": "Include", "name": f"segmenta {i + 1}", "inputType": "StaticList"}
                for i, g in enumerate(groups)
            ]
        )

    def _read_groups(self, client: Client, definition: str | None) -> list[str]:
        if not definition:
            return []
        r = self._call(
            client, "GET", f"msdynmkt_segmentdefinitions({definition})", params={"$select": "msdynmkt_staticlistmembers"}
        )
        if r.status_code == 404:
            return []
        raw = (self._json(self._ok(r, "reading the segment definition")) or {}).get("msdynmkt_staticlistmembers")
        try:
            parsed = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return []
        out = []
        for g in parsed or []:
            gid = (g.get("groupId") or g.get("GroupId")) if isinstance(g, dict) else None
            if gid and str(g.get("includeType", "Include")).lower() == "include":
                out.append(str(gid))
        return out

    def _create_segment(self, client: Client, groups: list[str], entity: str) -> dict[str, Any]:
        name = self.settings.segment_name
        body = {
            "msdynmkt_name": name,
            "msdynmkt_staticlistmembers": self._groups_json(groups),
            "msdynmkt_baseentitylogicalname": entity,
            "statecode": 0,
            "statuscode": 723270001,
        }
        r = self._ok(
            self._call(client, "POST", "msdynmkt_segmentdefinitions", json=body, headers={"Prefer": "return=representation"}),
            "creating the segment definition",
        )
        definition = _id_of(r, "msdynmkt_segmentdefinitionid")
        again = self._find_segment(client)  # a dropped answer to an earlier try may have created it
        if again is not None:
            return again
        seg = {
            "msdynmkt_displayname": name,
            "msdynmkt_type": STATIC_TYPE,
            "msdynmkt_baseentitylogicalname": entity,
            "msdynmkt_segmentdefinition@odata.bind": f"/msdynmkt_segmentdefinitions({definition})",
        }
        r = self._ok(
            self._call(client, "POST", "msdynmkt_segments", json=seg, headers={"Prefer": "return=representation"}),
            "creating the static segment",
        )
        return {"id": _id_of(r, "msdynmkt_segmentid"), "definition": definition}

    def _ensure_groups(self, client: Client, seg: dict[str, Any], groups: list[str], needed: int) -> list[str]:
        if len(groups) >= needed:
            return groups
        more = groups + [str(uuid.uuid4()) for _ in range(needed - len(groups))]
        if seg.get("definition"):
            self._ok(
                self._call(
                    client,
                    "PATCH",
                    f"msdynmkt_segmentdefinitions({seg['definition']})",
                    json={"msdynmkt_staticlistmembers": self._groups_json(more)},
                ),
                "adding member groups to the segment definition",
            )
        return more

    def _list_group(self, client: Client, seg_id: str, group: str) -> list[str]:
        ids: list[str] = []
        body: dict[str, Any] = {"SegmentId": seg_id, "GroupId": group}
        for _ in range(10_000):
            r = self._call(client, "POST", "msdynmkt_ListGroupMembers", json=body)
            if r.status_code == 404:
                return ids
            data = self._json(self._ok(r, "listing the segment's members"))
            page = _ids_in(data)
            ids.extend(page)
            if not isinstance(data, dict) or not page:
                break
            cookie = data.get("PagingCookie") or data.get("pagingCookie")
            more = data.get("MoreRecords", data.get("moreRecords"))
            next_link = data.get("@odata.nextLink")
            if next_link:
                r2 = data  # follow the link as given
                body = {**body, "PagingCookie": r2.get("@odata.nextLink")}
            elif cookie and more:
                body = {**body, "PagingCookie": cookie}
            else:
                break
        return ids

    def _member_call(self, client: Client, action: str, payload: dict[str, Any], ids: list[str], result: SendResult) -> int:
        """One add/remove call of ``ids``; a 400 is halved down to the ids it is about. Returns calls made."""
        r = self._call(client, "POST", action, json={**payload, "EntityIds": ids})
        if r.status_code < 400:
            failed = _failed_in(self._json(r))
            if failed:
                result.rejected.extend(failed)
            return 1
        if r.status_code in (400, 404, 422) and len(ids) > 1:
            half = len(ids) // 2
            return (
                1
                + self._member_call(client, action, payload, ids[:half], result)
                + self._member_call(client, action, payload, ids[half:], result)
            )
        if r.status_code in (400, 404, 422):
            result.rejected.extend(ids)
            return 1
        self._ok(r, action)
        return 1

    def _parallel(self, client: Client, jobs: Iterator[tuple[int, Callable[[], int]]], on_done: Callable[[int], None]) -> None:
        """Run jobs (index, fn) with ``concurrency`` in flight; ``on_done(index)`` as each finishes."""
        with ThreadPoolExecutor(max_workers=self.settings.concurrency) as pool:
            pending: dict[Future[int], int] = {}
            for index, fn in jobs:
                pending[pool.submit(fn)] = index
                while len(pending) >= self.settings.concurrency * 2:
                    self._drain(pending, on_done, first=True)
            while pending:
                self._drain(pending, on_done, first=True)

    @staticmethod
    def _drain(pending: dict[Future[int], int], on_done: Callable[[int], None], *, first: bool) -> None:
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
        for f in done:
            index = pending.pop(f)
            f.result()  # a call that kept failing ends the send (its checkpoint stays)
            on_done(index)

    # -- sending -------------------------------------------------------------------------------------

    def send(self, payload: Payload, checkpoint: Checkpoint) -> SendResult:
        column = self.required_columns(payload.columns)[0]
        entity = "lead" if column == "leadid" else "contact"
        if payload.count > MAX_MEMBERS:
            raise RejectedInput(
                [
                    Problem(
                        "segment",
                        f"{payload.count:,} members: a static segment holds at most {MAX_MEMBERS:,} "
                        f"({MAX_GROUPS} groups of {GROUP_SIZE:,})",
                    )
                ]
            )
        ids = self._ids(payload, column)
        result = SendResult(rows=len(ids))
        with self._client() as client:
            try:
                if self.settings.target == "list":
                    self._send_list(client, payload, ids, entity, checkpoint, result)
                elif payload.mode == DELTA and checkpoint.resumed is None:
                    try:
                        self._send_delta(client, payload, ids, entity, checkpoint, result)
                    except _NeedFull:
                        raise NeedFullSend from None
                else:
                    self._send_full(client, payload, ids, entity, checkpoint, result)
            finally:
                result.retries = client.stats.retries
                result.detail.update(
                    requests=client.stats.calls, throttled=client.stats.throttled, max_in_flight=client.stats.max_in_flight
                )
        return result

    @staticmethod
    def _ids(payload: Payload, column: str) -> list[str]:
        seen: set[str] = set()
        out: list[str] = []
        for batch in payload.rows():
            for row in batch:
                v = row.get(column)
                if v is None:
                    continue
                s = str(v)
                if s not in seen:
                    seen.add(s)
                    out.append(s)
        return out

    def _send_full(
        self, client: Client, payload: Payload, ids: list[str], entity: str, checkpoint: Checkpoint, result: SendResult
    ) -> None:
        needed = max(1, -(-len(ids) // GROUP_SIZE))
        seg = self._find_segment(client)
        state = checkpoint.resumed
        if not (state and seg and state.get("segment_id") == seg["id"] and state.get("count") == len(ids)):
            state = None
        if state is None:
            if seg is None:
                groups = [str(uuid.uuid4()) for _ in range(needed)]
                seg = self._create_segment(client, groups, entity)
                groups = self._read_groups(client, seg.get("definition")) or groups
                state = {
                    "segment_id": seg["id"],
                    "definition": seg.get("definition"),
                    "groups": groups,
                    "reset": True,
                    "done": 0,
                    "count": len(ids),
                    "created": True,
                }
            else:
                groups = self._read_groups(client, seg.get("definition"))
                state = {
                    "segment_id": seg["id"],
                    "definition": seg.get("definition"),
                    "groups": groups,
                    "reset": False,
                    "done": 0,
                    "count": len(ids),
                }
            checkpoint.save(state)
        assert seg is not None
        groups = self._ensure_groups(client, seg, list(state["groups"]), needed)
        if groups != state["groups"]:
            state["groups"] = groups
            checkpoint.save(state)
        if not state["reset"]:
            self._empty(client, seg["id"], groups, result)
            state["reset"] = True
            checkpoint.save(state)
        self._add_all(client, seg["id"], groups, ids, state, checkpoint, result)
        state["group_counts"] = [min(GROUP_SIZE, max(0, len(ids) - i * GROUP_SIZE)) for i in range(len(groups))]
        checkpoint.save(state)
        result.detail["segment_id"] = seg["id"]

    def _empty(self, client: Client, seg_id: str, groups: list[str], result: SendResult) -> None:
        for group in groups:
            current = self._list_group(client, seg_id, group)
            payload = {"SegmentId": seg_id, "GroupId": group}
            batches = [current[i : i + BATCH] for i in range(0, len(current), BATCH)]
            scratch = SendResult()
            remove = functools.partial(self._member_call, client, "msdynmkt_RemoveStaticMembers", payload)
            self._parallel(client, ((i, functools.partial(remove, b, scratch)) for i, b in enumerate(batches)), lambda _i: None)
            result.detail["removed"] = result.detail.get("removed", 0) + len(current)

    def _add_all(
        self,
        client: Client,
        seg_id: str,
        groups: list[str],
        ids: list[str],
        state: dict[str, Any],
        checkpoint: Checkpoint,
        result: SendResult,
    ) -> None:
        batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        per_group = GROUP_SIZE // BATCH
        start = int(state.get("done", 0))
        finished: set[int] = set()
        contiguous = start
        rejected_before = list(state.get("rejected") or [])
        result.rejected.extend(rejected_before)

        def job(i: int) -> Callable[[], int]:
            payload = {"SegmentId": seg_id, "GroupId": groups[i // per_group]}
            return lambda: self._member_call(client, "msdynmkt_AddStaticMembers", payload, batches[i], result)

        def done(i: int) -> None:
            nonlocal contiguous
            finished.add(i)
            result.calls += 1
            moved = False
            while contiguous in finished:
                finished.discard(contiguous)
                contiguous += 1
                moved = True
            if moved and (contiguous - state["done"] >= 10 or contiguous == len(batches)):
                state["done"] = contiguous
                state["rejected"] = result.rejected[:100_000]
                checkpoint.save(state)

        self._parallel(client, ((i, job(i)) for i in range(start, len(batches))), done)
        state["done"] = len(batches)

    def _send_delta(
        self, client: Client, payload: Payload, ids: list[str], entity: str, checkpoint: Checkpoint, result: SendResult
    ) -> None:
        last = checkpoint.previous
        seg = self._find_segment(client)
        if seg is None or not last or last.get("segment_id") != seg["id"] or not last.get("group_counts"):
            raise _NeedFull
        groups: list[str] = list(last["groups"])
        counts: list[int] = list(last["group_counts"])
        exited = [str(k) for k in payload.exited]
        for group in groups:
            body = {"SegmentId": seg["id"], "GroupId": group}
            for i in range(0, len(exited), BATCH):
                self._member_call(client, "msdynmkt_RemoveStaticMembers", body, exited[i : i + BATCH], SendResult())
        # exited ids left some group: its count is unknown, so room is counted as if none left
        total = sum(counts) + len(ids)
        if total > MAX_MEMBERS:
            raise _NeedFull
        position = 0
        while position < len(ids):
            room = [i for i, c in enumerate(counts) if c < GROUP_SIZE]
            if not room:
                groups = self._ensure_groups(client, seg, groups, len(groups) + 1)
                counts.append(0)
                continue
            g = room[0]
            take = min(BATCH, GROUP_SIZE - counts[g], len(ids) - position)
            body = {"SegmentId": seg["id"], "GroupId": groups[g]}
            self._member_call(client, "msdynmkt_AddStaticMembers", body, ids[position : position + take], result)
            result.calls += 1
            counts[g] += take
            position += take
        checkpoint.save(
            {
                "segment_id": seg["id"],
                "definition": seg.get("definition"),
                "groups": groups,
                "reset": True,
                "done": 0,
                "count": None,
                "group_counts": counts,
            }
        )

    # -- classic marketing lists ---------------------------------------------------------------------

    def _find_list(self, client: Client) -> str | None:
        name = self.settings.segment_name
        r = self._ok(
            self._call(client, "GET", "lists", params={"$select": "listid,listname", "$filter": f"listname eq {_quote(name)}"}),
            "looking up the marketing list",
        )
        for row in (self._json(r) or {}).get("value") or []:
            if isinstance(row, dict) and row.get("listname", name) == name and row.get("listid"):
                return str(row["listid"])
        return None

    def _send_list(
        self, client: Client, payload: Payload, ids: list[str], entity: str, checkpoint: Checkpoint, result: SendResult
    ) -> None:
        list_id = self._find_list(client)
        state = checkpoint.resumed if checkpoint.resumed and checkpoint.resumed.get("list_id") == list_id else None
        if state is None:
            if list_id is None:
                body = {"listname": self.settings.segment_name, "type": False, "createdfromcode": 4 if entity == "lead" else 2}
                r = self._ok(
                    self._call(client, "POST", "lists", json=body, headers={"Prefer": "return=representation"}),
                    "creating the marketing list",
                )
                list_id = _id_of(r, "listid")
                state = {"list_id": list_id, "reset": True, "done": 0}
            else:
                state = {"list_id": list_id, "reset": False, "done": 0}
            checkpoint.save(state)
        assert list_id is not None
        if not state["reset"]:
            members: list[str] = []
            url: str | None = "listmembers"
            params: dict[str, str] | None = {"$select": "_entityid_value", "$filter": f"_listid_value eq {list_id}"}
            while url:
                data = self._json(self._ok(self._call(client, "GET", url, params=params), "listing the list's members")) or {}
                members.extend(_ids_in(data.get("value") or []))
                url, params = data.get("@odata.nextLink"), None

            def remove(member: str) -> int:
                self._ok(
                    self._call(client, "POST", "RemoveMemberList", json={"ListId": list_id, "EntityId": member}),
                    "removing a list member",
                )
                return 1

            self._parallel(client, ((i, functools.partial(remove, m)) for i, m in enumerate(members)), lambda _i: None)
            state["reset"] = True
            checkpoint.save(state)
        batches = [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]
        start = int(state.get("done", 0))

        def add(b: list[str]) -> int:
            r = self._call(client, "POST", "AddListMembersList", json={"ListId": list_id, "MemberIds": b})
            if r.status_code in (400, 404, 422):
                if len(b) == 1:
                    result.rejected.extend(b)
                    return 1
                return add(b[: len(b) // 2]) + add(b[len(b) // 2 :])
            self._ok(r, "AddListMembersList")
            result.rejected.extend(_failed_in(self._json(r)))
            return 1

        def done(i: int) -> None:
            result.calls += 1

        self._parallel(client, ((i, functools.partial(add, batches[i])) for i in range(start, len(batches))), done)
        state["done"] = len(batches)
        checkpoint.save(state)
        result.detail["list_id"] = list_id


class _NeedFull(Exception):
    """A delta cannot be applied (no earlier send to build on): the service sends in full instead."""
