"""Assignment rules (issue 12 item 3): route each record of a work-assignment segment to a seller.

A rule belongs to one work-assignment segment. Rules are evaluated top-down (``position``)
and the first that matches the record wins; at most 10 are active per segment (any number
may exist). A rule file::

    {"name": "UK by round robin",
     "where": {"attribute": "country", "op": "eq", "value": "UK"},     # optional, <= 10 conditions
     "created_within_hours": 24, "created_attribute": "createdon",      # optional: older is assigned, marked overdue
     "pool": {"table": "seller",                                        # the sellers' model table
              "where": {"attribute": "language", "op": "eq", "value": "en"},   # sellers by attributes, <= 5 conditions
              "match": [{"seller": "country", "record": "country"}]},          # dynamic: seller.country = record.country
     "distribution": "round_robin",                                     # or load_balancing
     "consider_availability": true}

The pool is one of: ``where`` and/or ``match`` (sellers by attributes), ``sellers`` (a list
of seller keys) or ``teams`` (values of the sellers' ``team`` column). Sellers are records of
a model table, loaded like any table; their columns are found by name (overridable in the
pool as ``"columns": {"capacity": "cap", ...}``): ``capacity`` (integer; 0 is skipped, null
is unlimited), ``team``, ``timezone`` (IANA, default UTC), ``hours`` (a weekly schedule
such as ``mon-fri 09:00-17:00; sat 10:00-12:00``; none: always), ``off_from`` /
``off_until`` (time off, naive UTC datetimes).

Distribution: round robin takes the seller who has waited longest since their last
assignment (never assigned first, then by key); load balancing takes the seller with the
most spare capacity (capacity minus current assignments, manual ones included), ties
broken by round robin. When nobody can take the record it goes to the unassigned queue
with the reason: ``no_rule``, ``pool_empty``, ``at_capacity`` or ``unavailable``; the
queue is retried by ``assignment queue retry``, and whenever the sellers' table changes
through ``segmenta records``.

Every decision is one row of ``assignment_decisions`` (the record's current one has
``current``), with the segment, the rule, the pool considered and why this seller.
Record and seller conditions are evaluated by the compiler, never by hand.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session
from sqlglot import exp

from segmenta import clock
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.model.schema import hint
from segmenta.model.validate import parse_definition
from segmenta.store.assignment_models import AssignmentDecision, AssignmentMember, AssignmentRule, AssignmentSegment

if TYPE_CHECKING:
    from segmenta.services.assignment import Assignments

MAX_ACTIVE_RULES = 10
MAX_RULE_CONDITIONS = 10
MAX_POOL_CONDITIONS = 5
DISTRIBUTIONS = ("round_robin", "load_balancing")
SELLER_COLUMNS = ("capacity", "team", "timezone", "hours", "off_from", "off_until")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> list[tuple[int, dt.time, dt.time]]:
    """``mon-fri 09:00-17:00; sat 10:00-12:00`` as (weekday, start, end) spans; RejectedInput naming the bad part."""
    spans: list[tuple[int, dt.time, dt.time]] = []
    for part in (p for p in text.split(";") if p.strip()):
        m = _SPAN.match(part.lower())
        if not m or m.group(1) not in _DAYS or (m.group(2) and m.group(2) not in _DAYS):
            raise RejectedInput([Problem("hours", f"{part.strip()!r}: write days and times as 'mon-fri 09:00-17:00'")])
        first, last = _DAYS.index(m.group(1)), _DAYS.index(m.group(2) or m.group(1))
        start, end = dt.time(int(m.group(3)), int(m.group(4))), dt.time(int(m.group(5)) % 24, int(m.group(6)))
        for day in range(first, last + 1):
            spans.append((day, start, end))
    return spans


def available(seller: dict[str, Any], now: dt.datetime) -> bool:
    """Whether ``seller`` works at ``now`` (naive UTC): inside a span of its weekly schedule, in its time zone, and not off."""
    off_from, off_until = seller.get("off_from"), seller.get("off_until")
    if off_from is not None and off_until is not None and off_from <= now <= off_until:
        return False
    hours = seller.get("hours")
    if not hours:
        return True
    try:
        tz = zoneinfo.ZoneInfo(seller.get("timezone") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    local = now.replace(tzinfo=dt.UTC).astimezone(tz)
    t = local.time().replace(tzinfo=None)
    return any(day == local.weekday() and start <= t < end for day, start, end in parse_hours(str(hours)))


@dataclass(frozen=True)
class Decision:
    seller: Any | None
    status: str  # assigned | queued
    reason: str
    rule_id: int | None
    overdue: bool
    detail: dict[str, Any]


class Rules:
    """Assignment rules and seller decisions over an :class:`Assignments`."""

    def __init__(self, wa: Assignments) -> None:
        self.wa = wa
        self.ws = wa.ws
        self.store = wa.store

    # -- rules ------------------------------------------------------------------------------

    def _segment(self, s: Session, name: str) -> AssignmentSegment:
        return self.wa._get(s, name)

    def check_spec(self, table: str, spec: Any) -> dict[str, Any]:
        """A rule file checked against the model; RejectedInput naming each problem."""
        from segmenta.services.assignment import definition_conditions

        if not isinstance(spec, dict):
            raise RejectedInput([Problem("", "a rule is a JSON object with name, pool and distribution")])
        known = {"name", "where", "created_within_hours", "created_attribute", "pool", "distribution", "consider_availability"}
        problems = [Problem(f"/{k}", f"unknown key; keys: {', '.join(sorted(known))}") for k in spec if k not in known]
        if not isinstance(spec.get("name"), str) or not spec["name"].strip():
            problems.append(Problem("/name", "a rule needs a name"))
        if spec.get("distribution", "round_robin") not in DISTRIBUTIONS:
            problems.append(Problem("/distribution", f"one of {', '.join(DISTRIBUTIONS)}"))
        hours = spec.get("created_within_hours")
        if hours is not None and (isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 100_000):
            problems.append(Problem("/created_within_hours", "a whole number of hours from 1"))
        if hours is not None:
            col = spec.get("created_attribute", "createdon")
            columns = self.ws.model.table(table).columns
            if col not in columns:
                problems.append(Problem("/created_attribute", f"table {table!r} has no attribute {col!r}{hint(col, columns)}"))
        if problems:
            raise RejectedInput(problems)
        if spec.get("where") is not None:
            defn = parse_definition({"audience": table, "groups": [{"where": spec["where"]}]}, self.ws.model)
            n = definition_conditions(defn)
            if n > MAX_RULE_CONDITIONS:
                raise RejectedInput([Problem("/where", f"a rule has at most {MAX_RULE_CONDITIONS} conditions; this one has {n}")])
        pool = spec.get("pool")
        if not isinstance(pool, dict) or not isinstance(pool.get("table"), str):
            raise RejectedInput([Problem("/pool", 'a pool names the sellers\' table: {"table": "seller", ...}')])
        if pool["table"] not in self.ws.model.tables:
            raise RejectedInput([Problem("/pool/table", f"unknown table{hint(pool['table'], self.ws.model.tables)}")])
        kinds = [k for k in ("sellers", "teams") if k in pool] + (["attributes"] if ("where" in pool or "match" in pool) else [])
        if len(kinds) != 1:
            raise RejectedInput([Problem("/pool", "give exactly one of: where/match (sellers by attributes), sellers, teams")])
        stable = self.ws.model.table(pool["table"])
        if pool.get("where") is not None:
            sdef = parse_definition({"audience": pool["table"], "groups": [{"where": pool["where"]}]}, self.ws.model)
            n = definition_conditions(sdef)
            if n + len(pool.get("match") or []) > MAX_POOL_CONDITIONS:
                raise RejectedInput(
                    [Problem("/pool", f"sellers by attributes take at most {MAX_POOL_CONDITIONS} conditions (matches included)")]
                )
        for i, m in enumerate(pool.get("match") or []):
            if not isinstance(m, dict) or m.get("seller") not in stable.columns:
                raise RejectedInput([Problem(f"/pool/match/{i}/seller", f"a column of {pool['table']!r}")])
            if m.get("record") not in self.ws.model.table(table).columns:
                raise RejectedInput([Problem(f"/pool/match/{i}/record", f"a column of {table!r}")])
        for k in ("sellers", "teams"):
            if k in pool and (
                not isinstance(pool[k], list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in pool[k])
            ):
                raise RejectedInput([Problem(f"/pool/{k}", "a list of keys (text or whole numbers)")])
        columns = pool.get("columns", {})
        if not isinstance(columns, dict) or any(
            k not in SELLER_COLUMNS or not isinstance(v, str) or v not in stable.columns for k, v in columns.items()
        ):
            raise RejectedInput([Problem("/pool/columns", f"maps {', '.join(SELLER_COLUMNS)} to columns of {pool['table']!r}")])
        unknown = [k for k in pool if k not in ("table", "where", "match", "sellers", "teams", "columns")]
        if unknown:
            raise RejectedInput(
                [Problem(f"/pool/{unknown[0]}", "unknown key; keys: table, where, match, sellers, teams, columns")]
            )
        return spec

    def add(self, segment: str, spec: Any, *, position: int | None = None) -> dict[str, Any]:
        """Add an inactive rule to a segment at ``position`` (default last)."""
        now = clock.now()
        with self.store.session() as s:
            seg = self._segment(s, segment)
            checked = self.check_spec(seg.table_name, spec)
            rules = self._rules(s, seg.id)
            if any(r.name == checked["name"].strip() for r in rules):
                raise Conflict([Problem(checked["name"], f"segment {segment!r} already has a rule with this name")])
            at = len(rules) + 1 if position is None else position
            if not 1 <= at <= len(rules) + 1:
                raise RejectedInput([Problem("--position", f"from 1 to {len(rules) + 1}")])
            for r in rules:
                if r.position >= at:
                    r.position += 1
            s.add(
                AssignmentRule(
                    segment_id=seg.id,
                    name=checked["name"].strip(),
                    position=at,
                    active=False,
                    spec=checked,
                    created_at=now,
                    updated_at=now,
                )
            )
        return {"segment": segment, "rules": self.list_rules(segment)}

    def _rules(self, s: Session, segment_id: int) -> list[AssignmentRule]:
        return list(
            s.scalars(select(AssignmentRule).where(AssignmentRule.segment_id == segment_id).order_by(AssignmentRule.position))
        )

    def set_active(self, segment: str, rule: str, active: bool) -> list[dict[str, Any]]:
        with self.store.session() as s:
            seg = self._segment(s, segment)
            rules = self._rules(s, seg.id)
            found = next((r for r in rules if r.name == rule), None)
            if found is None:
                raise NotFound([Problem(rule, f"segment {segment!r} has no such rule{hint(rule, [r.name for r in rules])}")])
            if active and not found.active and sum(r.active for r in rules) >= MAX_ACTIVE_RULES:
                raise RejectedInput([Problem(rule, f"at most {MAX_ACTIVE_RULES} rules of a segment are active at once")])
            found.active, found.updated_at = active, clock.now()
        return self.list_rules(segment)

    def list_rules(self, segment: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            seg = self._segment(s, segment)
            return [{"name": r.name, "position": r.position, "active": r.active, "spec": r.spec} for r in self._rules(s, seg.id)]

    # -- sellers ----------------------------------------------------------------------------

    def _sellers(self, pool: dict[str, Any], keys: list[Any] | None = None) -> list[dict[str, Any]]:
        """The pool's seller rows (key, the known columns, the matched columns), by the compiler for ``where``."""
        table = pool["table"]
        t = self.ws.model.table(table)
        names = {c: (pool.get("columns") or {}).get(c, c) for c in SELLER_COLUMNS}
        wanted = [t.key] + [names[c] for c in SELLER_COLUMNS if names[c] in t.columns]
        wanted += [m["seller"] for m in pool.get("match") or [] if m["seller"] not in wanted]
        q = exp.select(*[exp.column(c, quoted=True) for c in wanted]).from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
        if pool.get("where") is not None:
            from segmenta.compiler.compile import compile_definition

            defn = parse_definition({"audience": table, "groups": [{"where": pool["where"]}]}, self.ws.model)
            chosen = compile_definition(defn, self.ws.model, as_of=clock.now(), segments=self.ws.segment_source)
            q = q.where(exp.In(this=exp.column(t.key, quoted=True), query=chosen.subquery()))
        if "sellers" in pool:
            q = q.where(
                exp.In(this=exp.column(t.key, quoted=True), expressions=[exp.convert(v) for v in pool["sellers"]] or [exp.Null()])
            )
        if "teams" in pool and names["team"] in t.columns:
            q = q.where(
                exp.In(
                    this=exp.column(names["team"], quoted=True),
                    expressions=[exp.convert(v) for v in pool["teams"]] or [exp.Null()],
                )
            )
        elif "teams" in pool:
            return []
        rows = self.ws.engine.run(q.order_by(exp.column(t.key, quoted=True))).to_pylist()
        out = []
        for r in rows:
            out.append({"key": r[t.key], **{c: r.get(names[c]) for c in SELLER_COLUMNS}, "_row": r})
        return out

    def _load(self, s: Session, pool_table: str) -> tuple[dict[str, int], dict[str, int]]:
        """Current assignments per seller (manual ones included) and each seller's last assignment time."""
        load = dict(
            s.execute(
                select(AssignmentDecision.seller, func.count())
                .where(AssignmentDecision.current, AssignmentDecision.status == "assigned")
                .where(AssignmentDecision.seller.is_not(None))
                .group_by(AssignmentDecision.seller)
            ).all()
        )
        last = dict(
            s.execute(
                select(AssignmentDecision.seller, func.max(AssignmentDecision.id))
                .where(AssignmentDecision.status == "assigned", AssignmentDecision.seller.is_not(None))
                .group_by(AssignmentDecision.seller)
            ).all()
        )
        return {str(k): int(v) for k, v in load.items()}, {str(k): v for k, v in last.items()}

    def _choose(
        self,
        s: Session,
        table: str,
        key: Any,
        rules: list[AssignmentRule],
        record: dict[str, Any],
        matched: dict[int, set[Any]],
        load: dict[str, int],
        last: dict[str, int],
        pools: dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]],
    ) -> Decision:
        now = clock.now()
        active = [r for r in rules if r.active]
        rule = next((r for r in active if key in matched[r.id]), None)
        if rule is None:
            return Decision(None, "queued", "no_rule", None, False, {"rules": [r.name for r in active]})
        spec = rule.spec
        pool = spec["pool"]
        if rule.id not in pools:  # one query per rule and call, not per record; indexed by the matched values
            index: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for x in self._sellers(pool):
                index.setdefault(tuple(x["_row"].get(m["seller"]) for m in pool.get("match") or []), []).append(x)
            pools[rule.id] = index
        wanted = tuple(record.get(m["record"]) for m in pool.get("match") or [])
        sellers = [] if any(v is None for v in wanted) else pools[rule.id].get(wanted, [])
        detail: dict[str, Any] = {"rule": rule.name, "pool": [x["key"] for x in sellers]}
        overdue = False
        if spec.get("created_within_hours"):
            created = record.get(spec.get("created_attribute", "createdon"))
            if isinstance(created, dt.datetime) and created < now - dt.timedelta(hours=int(spec["created_within_hours"])):
                overdue = True
        if not sellers:
            return Decision(None, "queued", "pool_empty", rule.id, overdue, detail)
        free = [x for x in sellers if x["capacity"] is None or load.get(str(x["key"]), 0) < int(x["capacity"])]
        if not free:
            return Decision(None, "queued", "at_capacity", rule.id, overdue, detail)
        if spec.get("consider_availability"):
            free = [x for x in free if available(x, now)]
            if not free:
                return Decision(None, "queued", "unavailable", rule.id, overdue, detail)

        def waited(x: dict[str, Any]) -> tuple[Any, ...]:
            """Never assigned first, then the oldest last assignment (decision ids grow), then the key."""
            at = last.get(str(x["key"]))
            return (at is not None, at or 0, str(x["key"]))

        if spec.get("distribution", "round_robin") == "load_balancing":

            def spare(x: dict[str, Any]) -> float:
                return float("inf") if x["capacity"] is None else int(x["capacity"]) - load.get(str(x["key"]), 0)

            best = max(spare(x) for x in free)
            chosen = min((x for x in free if spare(x) == best), key=waited)
            why = f"most spare capacity ({best}), then longest wait"
        else:
            chosen = min(free, key=waited)
            why = "waited longest since their last assignment"
        detail["why"] = why
        return Decision(chosen["key"], "assigned", "rule", rule.id, overdue, detail)

    @contextmanager
    def _session(self, s: Session | None) -> Iterator[Session]:
        """``s`` when the caller has a transaction open (routing: the decision commits with the route), else a new one."""
        if s is not None:
            yield s
            return
        with self.store.session() as new:
            yield new

    def assign(self, table: str, keys: list[Any], *, session: Session | None = None) -> dict[str, int]:
        """Decide a seller (or the queue) for each of ``keys`` by its segment's rules; records in segments without rules get none."""
        if not keys:
            return {"assigned": 0, "queued": 0}
        now = clock.now()
        counts = {"assigned": 0, "queued": 0}
        with self._session(session) as s:
            self.wa._lock(s, "decisions")
            seg_of = self.wa._current(s, table, [str(k) for k in keys])
            by_segment: dict[int, list[Any]] = {}
            for k in keys:
                if str(k) in seg_of:
                    by_segment.setdefault(seg_of[str(k)], []).append(k)
            load, last = self._load(s, table)
            turn = int(s.scalar(select(func.max(AssignmentDecision.id))) or 0)  # decisions in the order they are made
            rows: list[dict[str, Any]] = []
            for seg_id, seg_keys in by_segment.items():
                rules = self._rules(s, seg_id)
                if not rules:
                    continue
                matched = {r.id: self._matching(table, r, seg_keys) for r in rules if r.active}
                records = self._records(table, seg_keys)
                pools: dict[int, dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
                for k in seg_keys:
                    decision = self._choose(s, table, k, rules, records.get(k, {}), matched, load, last, pools)
                    turn += 1
                    rows.append(self._row(table, k, seg_id, decision, now))
                    counts[decision.status] += 1
                    if decision.seller is not None:
                        load[str(decision.seller)] = load.get(str(decision.seller), 0) + 1
                        last[str(decision.seller)] = turn
            decided = [r["key"] for r in rows]
            for start in range(0, len(decided), 500):
                s.execute(
                    update(AssignmentDecision)
                    .where(
                        AssignmentDecision.table_name == table,
                        AssignmentDecision.key.in_(decided[start : start + 500]),
                        AssignmentDecision.current,
                    )
                    .values(current=False)
                )
            if rows:
                s.execute(insert(AssignmentDecision), rows)
        return counts

    def _row(self, table: str, key: Any, seg_id: int | None, decision: Decision, now: dt.datetime) -> dict[str, Any]:
        return {
            "at": now,
            "table_name": table,
            "key": str(key),
            "segment_id": seg_id,
            "rule_id": decision.rule_id,
            "seller": None if decision.seller is None else str(decision.seller),
            "status": decision.status,
            "manual": decision.reason == "manual",
            "overdue": decision.overdue,
            "current": True,
            "reason": decision.reason,
            "detail": decision.detail,
        }

    def _matching(self, table: str, rule: AssignmentRule, keys: list[Any]) -> set[Any]:
        where = rule.spec.get("where")
        if where is None:
            return set(keys)
        defn = parse_definition({"audience": table, "groups": [{"where": where}]}, self.ws.model)
        return self.wa._members(defn, keys, as_of=clock.now())

    def _records(self, table: str, keys: list[Any]) -> dict[Any, dict[str, Any]]:
        t = self.ws.model.table(table)
        q = (
            exp.select(*[exp.column(c, quoted=True) for c in t.columns])
            .from_(exp.Table(this=exp.to_identifier(table, quoted=True)))
            .where(exp.In(this=exp.column(t.key, quoted=True), expressions=[exp.convert(k) for k in keys]))
        )
        return {r[t.key]: r for r in self.ws.engine.run(q).to_pylist()}

    def _store(self, s: Session, table: str, key: Any, seg_id: int | None, decision: Decision, now: dt.datetime) -> int:
        """The record's new current decision (the previous one stays, not current); its id."""
        s.execute(
            update(AssignmentDecision)
            .where(AssignmentDecision.table_name == table, AssignmentDecision.key == str(key), AssignmentDecision.current)
            .values(current=False)
        )
        row = AssignmentDecision(
            at=now,
            table_name=table,
            key=str(key),
            segment_id=seg_id,
            rule_id=decision.rule_id,
            seller=None if decision.seller is None else str(decision.seller),
            status=decision.status,
            manual=decision.reason == "manual",
            overdue=decision.overdue,
            current=True,
            reason=decision.reason,
            detail=decision.detail,
        )
        s.add(row)
        s.flush()
        return row.id

    def release(self, table: str, keys: list[Any], *, session: Session | None = None) -> None:
        """Records that left their segment lose their seller (the decision stays in the history)."""
        if not keys:
            return
        with self._session(session) as s:
            for start in range(0, len(keys), 500):
                s.execute(
                    update(AssignmentDecision)
                    .where(
                        AssignmentDecision.table_name == table,
                        AssignmentDecision.key.in_([str(k) for k in keys[start : start + 500]]),
                        AssignmentDecision.current,
                    )
                    .values(current=False)
                )

    def manual(self, table: str, raw_key: Any, seller: Any) -> dict[str, Any]:
        """Assign a record to a seller by hand (counts toward the seller's capacity)."""
        key = self.wa.parse_key(table, raw_key)
        with self.store.session() as s:
            member = s.get(AssignmentMember, (table, str(key)))
            if member is None:
                raise RejectedInput([Problem(str(raw_key), "is in no work-assignment segment (inactive or absent)")])
            decision = Decision(seller, "assigned", "manual", None, False, {"why": "assigned by hand"})
            self._store(s, table, key, member.segment_id, decision, clock.now())
        return self.of_record(table, key)

    def of_record(self, table: str, key: Any) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.scalar(
                select(AssignmentDecision).where(
                    AssignmentDecision.table_name == table, AssignmentDecision.key == str(key), AssignmentDecision.current
                )
            )
            if row is None:
                return {"seller": None, "status": None}
            return {
                "seller": row.seller,
                "status": row.status,
                "reason": row.reason,
                "overdue": row.overdue,
                "at": row.at.isoformat(),
                "detail": row.detail,
            }

    def queue(self, table: str) -> list[dict[str, Any]]:
        """The unassigned queue: records with no seller, with why."""
        with self.store.session() as s:
            rows = s.scalars(
                select(AssignmentDecision)
                .where(AssignmentDecision.table_name == table, AssignmentDecision.current, AssignmentDecision.status == "queued")
                .order_by(AssignmentDecision.at, AssignmentDecision.id)
            ).all()
            return [{"key": r.key, "reason": r.reason, "since": r.at.isoformat(), "detail": r.detail} for r in rows]

    def retry(self, table: str) -> dict[str, int]:
        """Try the queue again (capacity or availability may have changed)."""
        typed = self.wa._typed_key(table)
        keys = [typed(q["key"]) for q in self.queue(table)]
        return self.assign(table, keys)

    def seller(self, pool_table: str, raw_key: Any) -> dict[str, Any]:
        """One seller: capacity, current load (manual included), available now, and the records assigned."""
        key = self.wa.parse_key(pool_table, raw_key)
        rows = self._sellers({"table": pool_table, "sellers": [key]})
        if not rows:
            raise NotFound([Problem(str(raw_key), f"no record of {pool_table!r} has this key")])
        x = rows[0]
        with self.store.session() as s:
            assigned = s.scalars(
                select(AssignmentDecision).where(
                    AssignmentDecision.current, AssignmentDecision.status == "assigned", AssignmentDecision.seller == str(key)
                )
            ).all()
            records = [{"table": a.table_name, "key": a.key, "manual": a.manual, "overdue": a.overdue} for a in assigned]
        return {
            "seller": key,
            "capacity": x["capacity"],
            "load": len(records),
            "available_now": available(x, clock.now()),
            "records": records,
        }

    def seller_tables(self) -> set[str]:
        with self.store.session() as s:
            specs = s.scalars(select(AssignmentRule.spec).where(AssignmentRule.active)).all()
        return {sp["pool"]["table"] for sp in specs if isinstance(sp, dict) and isinstance(sp.get("pool"), dict)}
