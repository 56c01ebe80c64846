"""Unsaved definitions: validate, estimate (a count, on every edit in the builder), preview, SQL, evaluate.

Each definition is first checked against the model the user may see: for a PII-restricted
user PII columns do not exist, so a condition on one is rejected (422) with its JSON pointer.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from segmenta import clock
from segmenta.errors import DefinitionError, Problem, RejectedInput
from segmenta.interfaces.api.auth import Ctx, Read
from segmenta.interfaces.api.errors import RESPONSES
from segmenta.interfaces.api.pii import key_is_pii, mask_keys
from segmenta.interfaces.api.views import choose_columns
from segmenta.model.definition import Definition
from segmenta.model.validate import parse_definition

router = APIRouter(prefix="/api/definitions", tags=["definitions"], responses=RESPONSES)


class DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: A segment definition (contract section 4): an object with ``audience`` and ``groups``.
    definition: dict[str, Any] = Field(description="a segment definition: an object with 'audience' and 'groups'")
    as_of: str | None = Field(None, description="ISO 8601 instant the relative windows are measured from (default: now)")


class PreviewBody(DefinitionBody):
    limit: int = Field(10, ge=0, le=1000)
    columns: list[str] | None = None
    show_pii: bool = False


class SqlBody(DefinitionBody):
    dialect: str = "duckdb"


#: Keys an evaluate lists when it names no ``limit`` (never more than ``service.max_evaluate_keys``).
EVALUATE_DEFAULT_KEYS = 10_000
#: ``service.max_evaluate_keys``'s default, for an app that does not say.
MAX_EVALUATE_KEYS = 100_000


class EvaluateBody(DefinitionBody):
    limit: int | None = Field(
        None,
        ge=0,
        le=2**62,
        description=f"at most this many keys (default {EVALUATE_DEFAULT_KEYS:,}, at most service.max_evaluate_keys, "
        f"{MAX_EVALUATE_KEYS:,} unless set); the count is always complete",
    )


def checked(ctx: Ctx, raw: Any) -> Definition:
    """The definition (a JSON object, never a file name) validated against the model the user may see.

    The visible model is a subset of the full one, so the typed definition compiles against the full model.
    """
    return parse_definition(raw, ctx.model, limits=ctx.service.limits)


def count_query(ctx: Ctx, defn: Definition, as_of: str | dt.datetime | None) -> exp.Select:
    """``SELECT count(*)`` over the member query (no ordering, no keys fetched)."""
    query = ctx.ws.compile(defn, as_of=as_of)
    query.set("order", None)
    return exp.select(exp.Count(this=exp.Star())).from_(query.subquery("m"))


@router.post("/validate")
def validate(ctx: Read, body: DefinitionBody) -> dict[str, Any]:
    """Every problem with its JSON pointer; 200 either way (``ok`` says which)."""
    try:
        defn = checked(ctx, body.definition)
        ctx.ws.compile(defn, as_of=body.as_of)  # in_segment references resolve at compile time
    except DefinitionError as exc:
        return {"ok": False, "problems": [{"where": p.where, "message": p.message} for p in exc.problems]}
    return {"ok": True, "problems": []}


@router.post("/estimate")
def estimate(ctx: Read, body: DefinitionBody) -> dict[str, Any]:
    """The member count now (or at ``as_of``), and how long it took."""
    start = time.perf_counter()
    defn = checked(ctx, body.definition)
    count = ctx.ws.engine.run(count_query(ctx, defn, body.as_of)).column(0)[0].as_py()
    return {"count": int(count), "elapsed_ms": round((time.perf_counter() - start) * 1000, 2)}


@router.post("/preview")
def preview(ctx: Read, body: PreviewBody) -> dict[str, Any]:
    """The count and the first members with chosen columns; PII masked unless ``show_pii`` (never for restricted users)."""
    defn = checked(ctx, body.definition)
    columns = choose_columns(ctx.model, defn.audience, body.columns) if body.columns else None
    result = ctx.ws.preview(
        defn, limit=body.limit, columns=columns, show_pii=body.show_pii and not ctx.restricted, as_of=body.as_of
    )
    return {"count": result.count, "columns": result.columns, "rows": result.rows, "masked": result.masked}


@router.post("/sql")
def sql(ctx: Read, body: SqlBody) -> dict[str, Any]:
    """The member query in any sqlglot dialect."""
    defn = checked(ctx, body.definition)
    return {"sql": ctx.ws.sql(defn, dialect=body.dialect, as_of=body.as_of), "dialect": body.dialect}


@router.post("/evaluate")
def evaluate(ctx: Read, request: Request, body: EvaluateBody) -> dict[str, Any]:
    """The count and the first member keys ascending (``segment evaluate``); ``limit`` caps the keys listed, not the count.

    The keys listed are bounded (``limit``, default 10,000, at most ``service.max_evaluate_keys``):
    ``truncated`` says when there are more members than keys listed. Every key of a segment is in
    its ``members.csv`` (save and publish it), streamed in batches.
    """
    most = int(getattr(getattr(request.app.state, "http_settings", None), "max_evaluate_keys", MAX_EVALUATE_KEYS))
    if body.limit is not None and body.limit > most:
        raise RejectedInput(
            [
                Problem(
                    "/limit",
                    f"at most {most:,} keys per evaluate (setting service.max_evaluate_keys), not {body.limit:,}; "
                    "the count is always exact, and every key of a saved segment is in /api/segments/{id}/members.csv",
                )
            ]
        )
    limit = min(EVALUATE_DEFAULT_KEYS, most) if body.limit is None else body.limit
    defn = checked(ctx, body.definition)
    hidden = ctx.restricted and key_is_pii(ctx.service.model, defn.audience)
    key = ctx.service.model.table(defn.audience).key
    # only the first ``limit`` keys are fetched: the count is counted, not listed
    moment = clock.parse_instant(body.as_of, what="--as-of") if body.as_of else clock.now()
    count = int(ctx.ws.engine.run(count_query(ctx, defn, moment)).column(0)[0].as_py())
    keys = ctx.ws.engine.run(ctx.ws.compile(defn, as_of=moment).limit(limit)).column(0).to_pylist()
    answer: dict[str, Any] = {
        "count": count,
        "key": key,
        "keys": mask_keys(keys) if hidden else keys,
        "as_of": moment.isoformat(),
        "masked": [key] if hidden else [],
        "limit": limit,
        "truncated": count > len(keys),
        "warnings": [],
    }
    if answer["truncated"]:
        answer["warnings"] = [
            f"keys lists the first {len(keys):,} of {count:,} members (limit {limit:,}); "
            "for every key, save and publish the segment and download /api/segments/{id}/members.csv"
        ]
    return answer
