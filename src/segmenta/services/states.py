"""The saved-segment lifecycle as one state machine: statuses, kinds and the allowed transitions.

Statuses and kinds are :class:`~enum.StrEnum` members, so the values stored in the metadata
store and printed in JSON stay the plain strings of the contract (``"live"``, ``"dynamic"``).
Every status change goes through :func:`transition`, which reads the one table
:data:`TRANSITIONS`; a change the current status does not allow raises
:class:`~segmenta.errors.Conflict` (API 409, CLI exit 2) naming the current status and the
actions that would be allowed.

Example::

    seg.status = transition(seg.name, seg.status, Action.STOP)   # live -> stopped, or Conflict
"""

from __future__ import annotations

from enum import StrEnum

from segmenta.errors import Conflict, Problem


class Status(StrEnum):
    """Where a saved segment is in its lifecycle (contract 5.1)."""

    DRAFT = "draft"
    GOING_LIVE = "going_live"
    LIVE = "live"
    STOPPED = "stopped"
    EXPIRED = "expired"
    ERROR = "error"


class Kind(StrEnum):
    """Dynamic segments are re-evaluated; static ones (snapshots, lists) are not."""

    DYNAMIC = "dynamic"
    STATIC = "static"


class StaticType(StrEnum):
    """What a static segment is: a snapshot of a definition, or a list of keys."""

    SNAPSHOT = "snapshot"
    LIST = "list"


class Action(StrEnum):
    """Something that changes a segment's status."""

    PUBLISH = "publish"  # evaluate the current (or pending draft) version and go live
    EVALUATED = "evaluated"  # an evaluation finished: the segment is live
    FAIL = "fail"  # an evaluation failed
    REFRESH = "refresh"  # re-evaluate a live dynamic segment (status unchanged)
    EDIT = "edit"  # save a new version (status unchanged)
    STOP = "stop"
    DRAFT = "draft"  # activate --status-reason draft
    READY = "ready"  # activate --status-reason ready
    EXPIRE = "expire"  # the worker: unused for its expiry period
    DELETE = "delete"  # soft delete: a live segment stops


S = Status
_ALL = tuple(Status)

#: action -> {status it is allowed from: status it leads to}. One table for every rule.
TRANSITIONS: dict[Action, dict[Status, Status]] = {
    Action.PUBLISH: {s: S.GOING_LIVE for s in (S.DRAFT, S.GOING_LIVE, S.LIVE, S.STOPPED, S.ERROR)},
    Action.EVALUATED: {S.GOING_LIVE: S.LIVE, S.LIVE: S.LIVE},
    Action.FAIL: {S.GOING_LIVE: S.ERROR, S.LIVE: S.ERROR},
    Action.REFRESH: {S.LIVE: S.LIVE},
    Action.EDIT: {s: s for s in _ALL if s is not S.EXPIRED},
    Action.STOP: {S.LIVE: S.STOPPED, S.GOING_LIVE: S.STOPPED, S.ERROR: S.STOPPED},
    Action.DRAFT: {s: S.DRAFT for s in _ALL},
    Action.READY: {s: S.GOING_LIVE for s in (S.DRAFT, S.STOPPED, S.ERROR, S.GOING_LIVE)} | {S.LIVE: S.LIVE},
    Action.EXPIRE: {S.LIVE: S.EXPIRED},
    Action.DELETE: {S.LIVE: S.STOPPED, S.GOING_LIVE: S.STOPPED} | {s: s for s in (S.DRAFT, S.STOPPED, S.EXPIRED, S.ERROR)},
}

#: Why a status refuses an action, when there is more to say than "not allowed".
_HINTS: dict[tuple[Status, Action], str] = {
    (S.EXPIRED, Action.READY): "an expired segment cannot go straight to ready; set it to draft first: "
    "segment activate NAME --status-reason draft, then --status-reason ready",
    (S.EXPIRED, Action.PUBLISH): "it is expired; set it to draft first (segment activate NAME --status-reason draft), then ready",
    (S.EXPIRED, Action.EDIT): "it is expired and read-only; set it to draft first (segment activate NAME --status-reason draft)",
    (S.EXPIRED, Action.REFRESH): "it is expired and not evaluated; set it to draft, then ready, to bring it back",
}


def allowed(status: Status | str) -> list[Action]:
    """The actions a segment in ``status`` allows (in table order)."""
    current = Status(status)
    return [a for a, table in TRANSITIONS.items() if current in table and a not in (Action.EVALUATED, Action.FAIL)]


def can(status: Status | str, action: Action) -> bool:
    return Status(status) in TRANSITIONS[action]


def transition(name: str, status: Status | str, action: Action) -> Status:
    """The status ``action`` leads to from ``status``; :class:`Conflict` if the table does not allow it."""
    current = Status(status)
    target = TRANSITIONS[action].get(current)
    if target is None:
        raise Conflict([Problem(name, refusal(current, action))])
    return target


def refusal(status: Status | str, action: Action) -> str:
    """The message of a refused transition: the current status, why, and what is allowed."""
    current = Status(status)
    hint = _HINTS.get((current, action))
    if hint is None and action is Action.REFRESH:
        hint = "only live segments are refreshed (publish it first)"
    if hint is None and action is Action.STOP:
        hint = "only a live segment can be stopped"
    from_ = ", ".join(sorted(s.value for s in TRANSITIONS[action]))
    now = ", ".join(a.value for a in allowed(current))
    return f"is {current.value}; cannot {action.value} it ({hint or f'{action.value} needs status {from_}'}); allowed now: {now}"
