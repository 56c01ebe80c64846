"""Destination use cases over a workspace's segments and store: create, show, test, send, history, auto-send.

Every send is a ``destination_sends`` row: ``running`` while it goes (its ``state`` is the
destination's checkpoint), then ``done`` or ``error``. A send that finds a ``running`` row of the
same destination, segment, mode and membership run resumes from its state (the process that
wrote it was killed); a send of another run abandons it and starts over.

Access: destinations are managed and sent by admins (the CLI acts as the workspace's owner, an
admin). A destination refuses columns marked ``pii: true`` in the model unless its ``pii``
setting allows them, and a PII-restricted user can never send one. Secrets go in encrypted
(:mod:`segmenta.destinations.secrets`) and never come out: no answer, log line or error carries them.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlglot import exp

from segmenta import clock
from segmenta.destinations import kind_class, kinds, secrets
from segmenta.destinations.base import DELTA, FULL, Checkpoint, Destination, NeedFullSend, Payload, SendResult
from segmenta.errors import Conflict, NotFound, Problem, RejectedInput
from segmenta.membership.base import values_query
from segmenta.store.destination_models import Destination as DestinationRow
from segmenta.store.destination_models import DestinationAttachment, DestinationSend
from segmenta.store.models import RefreshRun, Segment
from segmenta.types import ENTERED, EXITED

if TYPE_CHECKING:
    from segmenta.services.segments import Segments

log = logging.getLogger("segmenta.destinations")

#: Settings every destination has, whatever its kind.
COMMON = {"pii": False, "admin_only": True}
_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}
DIR = "destinations"


def clean_name(name: Any, where: str = "NAME") -> str:
    if not isinstance(name, str) or not name.strip():
        raise RejectedInput([Problem(where, "a destination needs a name of 1 to 200 characters")])
    chosen = name.strip()
    if len(chosen) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in chosen):
        raise RejectedInput([Problem(where, "a destination name is 1 to 200 characters without control characters")])
    if chosen.isdigit():
        raise RejectedInput([Problem(where, f"{chosen!r}: a destination name needs a character that is not a digit")])
    return chosen


def parse_sets(pairs: list[str] | dict[str, Any]) -> dict[str, Any]:
    """``KEY=VALUE`` strings (or a mapping, from the API) as a dict; exit 2 naming a malformed one."""
    if isinstance(pairs, dict):
        return {str(k): v for k, v in pairs.items()}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RejectedInput([Problem(f"--set {pair}", "must be KEY=VALUE")])
        out[key.strip()] = value
    return out


def _flag(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise RejectedInput([Problem(where, f"must be true or false, not {value!r}")])


def _problems(exc: ValidationError, prefix: str) -> list[Problem]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "settings"
        msg = str(e["msg"]).removeprefix("Value error, ")
        out.append(Problem(f"{prefix} {loc}", msg))
    return out


class Destinations:
    """The destinations of one workspace (its store and segments)."""

    def __init__(self, segs: Segments) -> None:
        self.segs = segs
        self.store = segs.store
        self.ws = segs.ws

    # -- managing --------------------------------------------------------------------------

    def _row(self, s: Any, name: str) -> DestinationRow:
        row = s.scalar(select(DestinationRow).where(DestinationRow.name == name))
        if row is None:
            names = s.scalars(select(DestinationRow.name)).all()
            from segmenta.model.schema import hint

            raise NotFound([Problem(name, f"no destination has this name{hint(name, names)}")])
        return row

    def _check(
        self, kind: str, sets: dict[str, Any], given: dict[str, str], *, partial_secrets: bool = False
    ) -> tuple[dict[str, Any], dict[str, bool]]:
        cls = kind_class(kind)
        common = {k: _flag(sets.pop(k), f"--set {k}") for k in list(sets) if k in COMMON}
        problems: list[Problem] = []
        try:
            settings = cls.Settings.model_validate(sets)
        except ValidationError as exc:
            problems += _problems(exc, "--set")
        problems += [
            Problem(f"--secret {k}", f"kind {kind!r} takes no secret {k!r}; its secrets: {', '.join(cls.secret_names) or 'none'}")
            for k in given
            if k not in cls.secret_names
        ]
        if not partial_secrets:
            problems += [
                Problem(f"--secret {k}", f"kind {kind!r} needs it: give --secret {k}=@FILE (the file holds the value)")
                for k in cls.secret_names
                if k not in given
            ]
        problems += [Problem(f"--secret {k}", "the file is empty") for k, v in given.items() if not v]
        if problems:
            raise RejectedInput(problems)
        return settings.model_dump(mode="json", exclude_defaults=True), common

    def create(
        self, name: str, *, kind: str, sets: list[str] | dict[str, Any], secret_values: dict[str, str], actor: str = "(cli)"
    ) -> dict[str, Any]:
        """A new destination; settings checked by its kind, secrets encrypted (exit 2, nothing saved, on bad input)."""
        name = clean_name(name)
        settings, common = self._check(kind, parse_sets(sets), dict(secret_values))
        now = clock.now()
        with self.store.session() as s:
            if s.scalar(select(DestinationRow.id).where(DestinationRow.name == name)) is not None:
                raise Conflict([Problem(name, "a destination has this name already")])
            token = secrets.encrypt(self.ws.path, dict(secret_values)) if secret_values else None
            s.add(
                DestinationRow(
                    name=name,
                    kind=kind,
                    settings=settings,
                    secrets=token,
                    admin_only=common.get("admin_only", True),
                    pii=common.get("pii", False),
                    created_at=now,
                    updated_at=now,
                )
            )
        self._audit(actor, "destination.create", name, f"kind {kind}")
        return self.show(name)

    def update(
        self, name: str, *, sets: list[str] | dict[str, Any], secret_values: dict[str, str], actor: str = "(cli)"
    ) -> dict[str, Any]:
        """Change settings (merged with the current ones) and replace the secrets given."""
        with self.store.session() as s:
            row = self._row(s, name)
            merged = {**row.settings, **parse_sets(sets)}
            common_now = {"pii": row.pii, "admin_only": row.admin_only}
            settings, common = self._check(row.kind, merged, dict(secret_values), partial_secrets=True)
            old = secrets.decrypt(self.ws.path, row.secrets, destination=name)
            values = {**old, **secret_values}
            row.settings = settings
            row.secrets = secrets.encrypt(self.ws.path, values) if values else None
            row.pii = common.get("pii", common_now["pii"])
            row.admin_only = common.get("admin_only", common_now["admin_only"])
            row.updated_at = clock.now()
        self._audit(actor, "destination.update", name, "settings" + (" and secrets" if secret_values else ""))
        return self.show(name)

    def delete(self, name: str, *, actor: str = "(cli)") -> None:
        """Delete a destination, its history and its auto-sends (their segments are no longer used by it)."""
        from segmenta.services.usages import unregister_usage

        with self.store.session() as s:
            row = self._row(s, name)
            attached = s.scalars(
                select(Segment.name)
                .join(DestinationAttachment, DestinationAttachment.segment_id == Segment.id)
                .where(DestinationAttachment.destination_id == row.id, Segment.deleted_at.is_(None))
            ).all()
        for segment in attached:
            unregister_usage(self.segs, segment, kind="destination", user=name, role="auto-send")
        with self.store.session() as s:
            row = self._row(s, name)
            for model in (DestinationSend, DestinationAttachment):
                for r in s.scalars(select(model).where(model.destination_id == row.id)).all():
                    s.delete(r)
            s.delete(row)
        self._audit(actor, "destination.delete", name)

    def _view(self, row: DestinationRow) -> dict[str, Any]:
        cls = kind_class(row.kind)
        return {
            "id": row.id,
            "name": row.name,
            "kind": row.kind,
            "settings": dict(row.settings),
            "secrets": {k: ("set" if row.secrets else "missing") for k in cls.secret_names},
            "credential_kind": cls.credential_kind,
            "pii": row.pii,
            "admin_only": row.admin_only,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }

    def show(self, name: str) -> dict[str, Any]:
        """A destination without its secrets (only which are set)."""
        with self.store.session() as s:
            row = self._row(s, name)
            view = self._view(row)
            seg_names = {i: n for i, n in s.execute(select(Segment.id, Segment.name)).all()}
            attached = s.scalars(select(DestinationAttachment).where(DestinationAttachment.destination_id == row.id)).all()
            view["auto_send"] = [seg_names.get(a.segment_id, str(a.segment_id)) for a in attached]
        return view

    def all(self) -> list[dict[str, Any]]:
        with self.store.session() as s:
            return [self._view(r) for r in s.scalars(select(DestinationRow).order_by(DestinationRow.name)).all()]

    @staticmethod
    def kinds() -> list[dict[str, Any]]:
        """Every kind known (entry points and built-ins), with its settings' JSON schema and secret names."""
        out = []
        for kind in sorted(kinds()):
            cls = kind_class(kind)
            out.append(
                {
                    "kind": kind,
                    "description": cls.description,
                    "settings": cls.Settings.model_json_schema(),
                    "secrets": list(cls.secret_names),
                    "credential_kind": cls.credential_kind,
                }
            )
        return out

    def instance(self, name: str) -> Destination:
        """The destination of ``name`` with its checked settings and decrypted secrets (for this command only)."""
        with self.store.session() as s:
            row = self._row(s, name)
            kind, settings, token = row.kind, dict(row.settings), row.secrets
        cls = kind_class(kind)
        values = secrets.decrypt(self.ws.path, token, destination=name)
        try:
            checked = cls.Settings.model_validate(settings)
        except ValidationError as exc:
            raise RejectedInput(_problems(exc, f"destination {name!r}:")) from None
        return cls(name, checked, values)

    def test(self, name: str, *, actor: str = "(cli)") -> str:
        """Check the destination's settings and credentials against the receiver."""
        try:
            line = self.instance(name).test_connection()
        except Exception as exc:
            self._audit(actor, "destination.test", name, str(exc)[:300], outcome="error")
            raise
        self._audit(actor, "destination.test", name, "ok")
        return line

    def rotate_key(self, *, actor: str = "(cli)") -> int:
        """Re-encrypt every destination's secrets with a new key (the key file's old keys are then dropped)."""
        with self.store.session() as s:
            rows = [r for r in s.scalars(select(DestinationRow)).all() if r.secrets]
            rotated, new_file = secrets.rotate(self.ws.path, [r.secrets or "" for r in rows])
            for r, token in zip(rows, rotated, strict=True):
                r.secrets = token
        if not new_file.startswith("re-encrypted"):
            secrets.commit_rotation(self.ws.path, new_file)
        self._audit(actor, "destination.rotate_key", "", f"{len(rows)} destinations")
        return len(rows)

    # -- auto-send after refreshes --------------------------------------------------------------

    def attach(self, name: str, segment: str, *, columns: list[str] | None = None, actor: str = "(cli)") -> None:
        """Send ``segment`` to ``name`` after each of its refreshes (a delta since the last send)."""
        from segmenta.services.usages import register_usage

        seg = self.segs._snapshot_of(segment)
        with self.store.session() as s:
            self._row(s, name)  # NotFound before anything is recorded
        # the segment is in use while a destination sends it: it does not expire and cannot be stopped
        register_usage(self.segs, seg.name, kind="destination", user=name, role="auto-send")
        with self.store.session() as s:
            row = self._row(s, name)
            exists = s.scalar(
                select(DestinationAttachment).where(
                    DestinationAttachment.destination_id == row.id, DestinationAttachment.segment_id == seg.id
                )
            )
            if exists is None:
                s.add(DestinationAttachment(destination_id=row.id, segment_id=seg.id, columns=columns, created_at=clock.now()))
            else:
                exists.columns = columns
        self._audit(actor, "destination.attach", name, f"segment {segment}")

    def detach(self, name: str, segment: str, *, actor: str = "(cli)") -> None:
        seg = self.segs._snapshot_of(segment)
        with self.store.session() as s:
            row = self._row(s, name)
            for a in s.scalars(
                select(DestinationAttachment).where(
                    DestinationAttachment.destination_id == row.id, DestinationAttachment.segment_id == seg.id
                )
            ).all():
                s.delete(a)
        from segmenta.services.usages import unregister_usage

        unregister_usage(self.segs, seg.name, kind="destination", user=name, role="auto-send")
        self._audit(actor, "destination.detach", name, f"segment {segment}")

    def after_refresh(self, segment: str) -> list[dict[str, Any]]:
        """Send ``segment``'s delta to every destination attached to it; a failure is recorded, never raised."""
        seg = self.segs._snapshot_of(segment)
        with self.store.session() as s:
            pairs = s.execute(
                select(DestinationRow.name, DestinationAttachment.columns)
                .join(DestinationAttachment, DestinationAttachment.destination_id == DestinationRow.id)
                .where(DestinationAttachment.segment_id == seg.id)
            ).all()
        out = []
        for dest, columns in pairs:
            try:
                result, send_id = self.send(dest, segment, columns=columns, mode=DELTA, trigger="refresh")
                out.append({"destination": dest, "send_id": send_id, **result.to_dict()})
            except Exception as exc:  # noqa: BLE001 - a failed destination never blocks a refresh
                log.warning("auto-send of %r to %r failed: %s", segment, dest, exc)
                out.append({"destination": dest, "error": str(exc)})
        return out

    def sync(self) -> list[dict[str, Any]]:
        """Every attached segment whose membership moved since its last send to that destination, sent (a delta).

        The hook for "after every refresh": the worker (or ``segmenta destination sync``, e.g. from
        cron) calls it after its refreshes; a segment that did not change costs one lookup. A failed
        destination is recorded in its history and never stops the others, nor the refresh.
        """
        with self.store.session() as s:
            pairs = s.execute(
                select(DestinationRow.name, Segment.name)
                .join(DestinationAttachment, DestinationAttachment.destination_id == DestinationRow.id)
                .join(Segment, Segment.id == DestinationAttachment.segment_id)
                .where(Segment.deleted_at.is_(None))
                .order_by(DestinationRow.name, Segment.name)
            ).all()
        out = []
        for segment in sorted({seg for _, seg in pairs}):
            for row in self.after_refresh(segment):
                if row.get("error") or row.get("send_id"):
                    out.append({"segment": segment, **row})
        return out

    # -- sending ------------------------------------------------------------------------------------

    def _columns(
        self, inst: Destination, audience: str, columns: list[str] | None, *, pii_restricted: bool, pii_allowed: bool
    ) -> list[str]:
        from segmenta.model.schema import hint

        table = self.ws.model.table(audience)
        audience_columns = list(table.columns)
        required = inst.required_columns(audience_columns, table.key)  # refused here, before any call
        chosen = list(columns) if columns else inst.default_columns(audience_columns, table.key)
        unknown = [c for c in chosen if c not in table.columns]
        if unknown:
            raise RejectedInput(
                [Problem("--columns", f"{audience!r} has no column {c!r}{hint(c, table.columns)}") for c in unknown]
            )
        for c in required:
            if c not in chosen:
                chosen.append(c)
        chosen = list(dict.fromkeys(chosen))
        pii = [c for c in chosen if table.columns[c].pii]
        if pii and pii_restricted:
            raise RejectedInput([Problem("--columns", f"{', '.join(pii)}: PII columns, and you are restricted from PII")])
        if pii and not pii_allowed:
            raise RejectedInput(
                [
                    Problem(
                        "--columns",
                        f"{', '.join(pii)}: marked pii in the model, and destination {inst.name!r} does not "
                        "accept PII (an admin may set pii=true on it)",
                    )
                ]
            )
        return chosen

    def _rows_query(self, audience: str, columns: list[str], keys: exp.Query) -> exp.Select:
        table = self.ws.model.table(audience)
        alias = "a"
        return (
            exp.select(*[exp.column(c, table=alias, quoted=True) for c in columns])
            .from_(exp.Table(this=exp.to_identifier(audience, quoted=True), alias=exp.TableAlias(this=exp.to_identifier(alias))))
            .where(exp.In(this=exp.column(table.key, table=alias, quoted=True), query=keys.subquery()))
            .order_by(exp.column(table.key, table=alias, quoted=True))
        )

    def _stream(self, query: exp.Select) -> Iterator[list[dict[str, Any]]]:
        for batch in self.ws.engine.stream(query, batch_size=50_000):
            yield batch.to_pylist()

    def _net_delta(self, m: Any, seg_id: int, after_run: int, upto_run: int) -> tuple[list[Any], list[Any]]:
        """(entered, exited) keys between two runs: each run's ``delta(run)`` folded in order."""
        with self.store.session() as s:
            runs = s.scalars(
                select(RefreshRun.id)
                .where(
                    RefreshRun.segment_id == seg_id,
                    RefreshRun.id > after_run,
                    RefreshRun.id <= upto_run,
                    RefreshRun.status == "done",
                )
                .order_by(RefreshRun.id)
            ).all()
        net: dict[Any, str] = {}
        for run in runs:
            for batch in m.delta(run):
                for row in batch.to_pylist():
                    key, change = row[m.key], row["change"]
                    if net.get(key) not in (None, change):
                        del net[key]  # entered then exited (or the reverse): as it was
                    else:
                        net[key] = change
        return sorted(k for k, c in net.items() if c == ENTERED), sorted(k for k, c in net.items() if c == EXITED)

    def send(
        self,
        name: str,
        segment: str,
        *,
        columns: list[str] | None = None,
        mode: str = FULL,
        trigger: str = "cli",
        actor: str = "(cli)",
        pii_restricted: bool = False,
    ) -> tuple[SendResult, int]:
        """Send ``segment`` to ``name``: the full membership, or (``delta``) what changed since the last successful send."""
        name = clean_name(name)
        with self.store.session() as s:
            row = self._row(s, name)
            dest_id, pii_allowed = row.id, row.pii
        inst = self.instance(name)
        seg = self.segs._snapshot_of(segment)
        chosen = self._columns(inst, seg.audience, columns, pii_restricted=pii_restricted, pii_allowed=pii_allowed)
        m = self.segs.membership(seg)
        latest = m.latest() if m.exists() else None
        if latest is None:
            raise RejectedInput([Problem(segment, f"is {seg.status} and has no members yet; publish it first")])
        run_id = latest.run_id
        key = self.ws.model.table(seg.audience).key
        with self.store.session() as s:
            last_done = s.scalar(
                select(DestinationSend)
                .where(
                    DestinationSend.destination_id == dest_id,
                    DestinationSend.segment_id == seg.id,
                    DestinationSend.status == "done",
                )
                .order_by(DestinationSend.id.desc())
                .limit(1)
            )
            previous = (last_done.run_id, last_done.state) if last_done is not None else None
        if mode == DELTA and previous is not None and previous[0] == run_id:
            return SendResult(detail={"unchanged": True}), 0  # nothing changed since the last send
        if mode == DELTA and previous is None:
            mode = FULL
        try:
            return self._send(
                inst,
                dest_id,
                seg,
                m,
                run_id,
                key,
                chosen,
                mode,
                trigger,
                actor,
                previous[0] if previous else None,
                previous[1] if previous else None,
            )
        except NeedFullSend:
            return self._send(inst, dest_id, seg, m, run_id, key, chosen, FULL, trigger, actor, None, None)

    def _send(
        self,
        inst: Destination,
        dest_id: int,
        seg: Segment,
        m: Any,
        run_id: int,
        key: str,
        chosen: list[str],
        mode: str,
        trigger: str,
        actor: str,
        prev_run: int | None,
        prev_state: dict[str, Any] | None,
    ) -> tuple[SendResult, int]:
        if mode == DELTA:
            assert prev_run is not None
            entered, exited = self._net_delta(m, seg.id, prev_run, run_id)
            keys_q: exp.Query = values_query(key, entered)
            count = len(entered)
        else:
            exited, keys_q, count = [], m.source(), m.size()
        query = self._rows_query(seg.audience, chosen, keys_q)
        now = clock.now()
        with self.store.session() as s:
            stale: Sequence[DestinationSend] = s.scalars(
                select(DestinationSend).where(
                    DestinationSend.destination_id == dest_id,
                    DestinationSend.segment_id == seg.id,
                    DestinationSend.status == "running",
                )
            ).all()
            resumed_row: DestinationSend | None = next(
                (r for r in stale if r.run_id == run_id and r.mode == mode and r.columns == chosen), None
            )
            for r in stale:
                if r is not resumed_row:
                    r.status, r.finished_at, r.message = "abandoned", now, "superseded by a later send"
            if resumed_row is None:
                resumed_row = DestinationSend(
                    destination_id=dest_id,
                    segment_id=seg.id,
                    run_id=run_id,
                    mode=mode,
                    trigger=trigger,
                    status="running",
                    started_at=now,
                    columns=chosen,
                    state=None,
                )
                s.add(resumed_row)
                s.flush()
            send_id, resumed = resumed_row.id, (dict(resumed_row.state) if resumed_row.state else None)

        def save(state: dict[str, Any]) -> None:
            with self.store.session() as s:
                row = s.get(DestinationSend, send_id)
                assert row is not None
                row.state = dict(state)

        work = self.ws.path / DIR / str(dest_id)
        payload = Payload(
            mode=mode,
            segment=seg.name,
            audience=seg.audience,
            key=key,
            columns=chosen,
            count=count,
            rows=lambda: self._stream(query.copy()),
            exited=exited,
            run_id=run_id,
            work_dir=work,
        )
        try:
            result = inst.send(payload, Checkpoint(resumed=resumed, save=save, previous=prev_state))
        except NeedFullSend:
            with self.store.session() as s:
                failed = s.get(DestinationSend, send_id)
                assert failed is not None
                failed.status, failed.finished_at, failed.message = (
                    "abandoned",
                    clock.now(),
                    "a delta could not be applied; sent in full",
                )
            raise
        except Exception as exc:
            with self.store.session() as s:
                failed = s.get(DestinationSend, send_id)
                assert failed is not None
                failed.status, failed.finished_at, failed.message = "error", clock.now(), str(exc)[:2000]
            self._audit(actor, "destination.send", inst.name, f"segment {seg.name}: {str(exc)[:300]}", outcome="error")
            raise
        rejected_file = self._write_rejected(work, send_id, key if mode else key, result.rejected) if result.rejected else None
        with self.store.session() as s:
            sent = s.get(DestinationSend, send_id)
            assert sent is not None
            sent.status, sent.finished_at = "done", clock.now()
            sent.rows, sent.calls, sent.retries, sent.rejected = result.rows, result.calls, result.retries, len(result.rejected)
            sent.rejected_file = rejected_file
            state = dict(sent.state or {})
            state.pop("rejected", None)
            sent.state = state
        result.detail["send_id"] = send_id
        if rejected_file:
            result.detail["rejected_file"] = rejected_file
        self._audit(
            actor,
            "destination.send",
            inst.name,
            f"segment {seg.name} ({mode}): {result.rows} rows, {result.calls} calls, {len(result.rejected)} rejected",
        )
        return result, send_id

    @staticmethod
    def _write_rejected(work: Path, send_id: int, key: str, ids: list[Any]) -> str:
        from segmenta.fileio import atomic_output, private_dir

        private_dir(work)
        path = work / f"send-{send_id}-rejected.csv"
        with atomic_output(path) as fh:
            w = csv.writer(fh)
            w.writerow(["id"])
            w.writerows([i] for i in ids)
        return str(path)

    def history(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The destination's sends, newest first (failures with their message)."""
        with self.store.session() as s:
            row = self._row(s, name)
            seg_names = {i: n for i, n in s.execute(select(Segment.id, Segment.name)).all()}
            sends = s.scalars(
                select(DestinationSend)
                .where(DestinationSend.destination_id == row.id)
                .order_by(DestinationSend.id.desc())
                .limit(limit)
            ).all()
            return [
                {
                    "id": r.id,
                    "segment": seg_names.get(r.segment_id, str(r.segment_id)),
                    "run": r.run_id,
                    "mode": r.mode,
                    "trigger": r.trigger,
                    "status": r.status,
                    "started_at": r.started_at.isoformat(),
                    "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                    "rows": r.rows,
                    "calls": r.calls,
                    "retries": r.retries,
                    "rejected": r.rejected,
                    "has_rejected_file": bool(r.rejected_file),
                    "message": r.message,
                }
                for r in sends
            ]

    def rejected_file(self, name: str, send_id: int) -> Path:
        with self.store.session() as s:
            row = self._row(s, name)
            r = s.get(DestinationSend, send_id)
            if r is None or r.destination_id != row.id or not r.rejected_file:
                raise NotFound([Problem(f"send {send_id}", f"destination {name!r} has no rejected ids for this send")])
            return Path(r.rejected_file)

    def _audit(self, actor: str, action: str, obj: str, detail: str = "", *, outcome: str = "ok") -> None:
        from segmenta.services import audit

        audit.record(self.store, user=actor, action=action, obj=obj, outcome=outcome, detail=detail)
