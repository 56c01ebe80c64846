"""``segment import-csv``: add the records whose email matches a CSV's to a static list.

Contract 5.1: the CSV has a header; its email column is matched, trimmed and ignoring case, against the ``email`` (or ``emailaddress1``)
column of the list's audience; every ACTIVE record that matches joins (two records sharing
an address both join). Counted: ``read`` (data rows), ``found`` (rows matching at least one
active record), ``not_found`` (the rest, empty addresses included; written with the original
header to ``--not-found``), ``duplicates`` (rows whose address appeared on an earlier row),
``members`` (the list's size after the import). A bad file (no email column, not UTF-8,
malformed, over the row limit) is rejected whole and the list is left as it was.

Files as users really have them: the delimiter is ``,``, ``;`` or tab (whichever the header row
uses most, outside quotes); the email column is the one whose header, ignoring case, spaces,
hyphens and underscores, reads ``email``, ``emailaddress`` or ``emailaddress1`` (``E-mail
Address``, ``Email Address``, ...), or the one the caller names (``column``: ``--column`` in
the CLI, the ``column`` form field in the API). Added to the contract's counts:
``multi_matched`` (rows whose address matched more than one active record) and
``max_matches`` (the most records one address matched), with a warning when any did. The
not-found file is safe to open in a spreadsheet: a cell starting with = + - @ tab or CR
gets a leading ' (OWASP's advice against CSV formula injection).
Errors name the file as the user knows it (``source_name``), never a server's temp path.

One algorithm on every engine, through the engine hooks: the file is parsed and counted by
the local engine (an in-memory DuckDB: ``read_csv``, strict); its distinct addresses are staged
in the data engine (``Engine.stage``), matched there against the audience once into a scratch
table (``Engine.materialise``), and the list's membership store adds the matched keys from it;
only one row per matched address (its record count) comes back for the counts and the
not-found file. On DuckDB this is hash joins on the workspace's connection (2M rows in about a
second); on PostgreSQL and Spark the matched keys never leave the server or the cluster.
"""

from __future__ import annotations

import csv
import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from segmenta.engines import local_engine
from segmenta.errors import DataError, EngineError, Problem, RejectedInput
from segmenta.model.schema import ColumnType

if TYPE_CHECKING:
    from segmenta.engines.base import Engine
    from segmenta.services.lifecycle_base import RefreshResult
    from segmenta.services.segments import Segments

EMAIL_NAMES = ("email", "emailaddress1")
#: Header spellings of an uploaded file's email column, compared after :func:`_squash`, in order of preference.
FILE_EMAIL_NAMES = ("email", "emailaddress", "emailaddress1")
DELIMITERS = (",", ";", "\t")
IMPORT = "__segmenta_import"
MATCHES = "__segmenta_matches"
STEPS = ("reading", "matching", "storing", "not found")

log = logging.getLogger("segmenta.csvimport")


@dataclass(frozen=True)
class ImportResult:
    read: int
    found: int
    not_found: int
    duplicates: int
    members: int
    #: rows whose address matched more than one active record, and the most records one address matched
    multi_matched: int = 0
    max_matches: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def warnings(self) -> list[str]:
        """What the user should know before trusting the list (one address, many records)."""
        if not self.multi_matched:
            return []
        rows = "row's address" if self.multi_matched == 1 else f"{self.multi_matched:,} rows' addresses"
        return [
            f"{rows} matched more than one record (up to {self.max_matches:,} records for one address); "
            "every active record with the address joined the list"
        ]


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _table(name: str) -> exp.Table:
    return exp.Table(this=_ident(name))


def import_csv(
    segs: Segments,
    name: str,
    file: str | Path,
    *,
    not_found: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    column: str | None = None,
    source_name: str | None = None,
) -> ImportResult:
    """Match ``file``'s emails against the list's audience and add the matches to list ``name``.

    ``column`` names the file's email column when its header is not a usual one; ``source_name``
    is how errors name the file (an upload's own name rather than where the server keeps it).
    """
    step = progress or (lambda _s: None)
    seg = segs._detached(name)
    if seg.static_type != "list":
        kind = "static snapshot" if seg.static_type else "dynamic segment"
        raise RejectedInput([Problem(name, f"is a {kind}; import-csv adds records to a static list (segment create --list)")])
    segs._require_list(seg, "import-csv")
    table = segs.ws.model.table(seg.audience)
    target = _email_column(list(table.columns), f"audience {seg.audience!r}", "has no email or emailaddress1 column to match")
    path = Path(file)
    shown = source_name or str(path)
    delim = _delimiter(path, shown)
    header = _header(path, shown, delim)
    source = _file_email_column(header, shown, column)
    engine = segs.ws.engine
    local = local_engine()  # parses, checks and counts the file (local to the user); the data engine matches
    scratch = f"segmenta_import_{uuid.uuid4().hex}"  # a name per import: imports may run side by side
    staged: list[str] = []
    step(STEPS[0])
    try:
        try:
            local.execute([_load(path, header, header.index(source), delim)])
        except EngineError as exc:
            raise DataError([Problem(shown, _csv_error(exc).replace(str(path), shown))]) from None
        read = local.run(exp.select(exp.Count(this=exp.Star())).from_(_table(IMPORT))).column(0)[0].as_py()
        limit = segs.config.import_max_rows
        if read > limit:
            raise DataError([Problem(shown, f"has {read:,} rows; at most {limit:,} (segments.import_max_rows in segmenta.yaml)")])
        step(STEPS[1])
        matches = _match(segs, engine, local, seg.audience, target, scratch, staged)
        matched = _matched_addresses(engine, local, matches)
        counts = local.run(_counts(matched)).to_pylist()[0]
        multi = local.run(_multi(matched)).to_pylist()[0]
        step(STEPS[2])
        key_q = exp.select(exp.column(table.key, quoted=True)).distinct().from_(matches.copy())
        result = segs.change_members(seg, key_q, "import")
        step(STEPS[3])
        if not_found is not None:
            _write_not_found(local, matched, Path(not_found), header, delim)
    finally:
        for name in reversed(staged):
            try:
                engine.drop_staged(name)
            except Exception:  # noqa: BLE001 - the import's own outcome (or error) is what the user needs
                log.warning("could not drop the import's scratch table %s", name, exc_info=True)
        local.close()
    found = int(counts["found"] or 0)
    return ImportResult(
        read=int(read),
        found=found,
        not_found=int(read) - found,
        duplicates=int(counts["duplicates"] or 0),
        members=result.size,
        multi_matched=int(multi["rows"] or 0),
        max_matches=int(multi["most"] or 0),
    )


def _match(
    segs: Segments, engine: Engine, local: Engine, audience: str, email: str, scratch: str, staged: list[str]
) -> exp.Table:
    """The active audience records matching the file, as a scratch table (key, addr) in the data engine.

    The file's distinct addresses are staged in the data engine (``Engine.stage``) and the match
    runs there, once (``Engine.materialise``): the same compiled query on every engine, so the
    same trimming, case folding and active rule. The matched keys never leave the engine.
    ``staged`` collects the scratch names for the caller to drop.
    """
    addresses = (
        exp.select(exp.column("__addr")).distinct().from_(_table(IMPORT)).where(exp.column("__addr").is_(exp.null()).not_())
    )
    staged.append(f"{scratch}_addresses")
    wanted = engine.stage(staged[-1], local.run(addresses))
    staged.append(f"{scratch}_matches")
    return engine.materialise(staged[-1], match_query(segs, audience, email, exp.select(exp.column("__addr")).from_(wanted)))


def _matched_addresses(engine: Engine, local: Engine, matches: exp.Table) -> exp.Table:
    """Each matched address with how many records it matched, as ``MATCHES(addr, n)`` in the local engine.

    What comes back from the data engine for the counts, the multi-match warning and the
    not-found file: at most one row per distinct address of the file, never the matched keys.
    """
    per_addr = (
        exp.select(exp.column("addr"), exp.Count(this=exp.Star()).as_("n")).from_(matches.copy()).group_by(exp.column("addr"))
    )
    return local.stage(MATCHES, engine.run(per_addr))


def _email_column(columns: list[str], where: str, problem: str) -> str:
    """The column named email (preferred) or emailaddress1, any case; exactly one."""
    for wanted in EMAIL_NAMES:
        hits = [c for c in columns if c.strip().lower() == wanted]
        if len(hits) > 1:
            raise RejectedInput([Problem(where, f"has {len(hits)} columns named {wanted} ({', '.join(hits)}); keep one")])
        if hits:
            return hits[0]
    raise RejectedInput([Problem(where, f"{problem}; columns: {', '.join(columns) or '(none)'}")])


def _squash(header: str) -> str:
    """A header compared loosely: ``E-mail Address`` -> ``emailaddress``."""
    return "".join(ch for ch in header.casefold() if ch.isalnum())


def _file_email_column(header: list[str], where: str, column: str | None) -> str:
    """The file's email column: the one named by ``column``, else the one with a usual email header."""
    found = ", ".join(repr(h) for h in header)
    if column is not None:
        hits = [h for h in header if h == column] or [h for h in header if h.strip().casefold() == column.strip().casefold()]
        if len(hits) != 1:
            why = "has no column" if not hits else f"has {len(hits)} columns"
            raise RejectedInput([Problem(where, f"{why} named {column!r} (the column asked for); headers found: {found}")])
        return hits[0]
    for wanted in FILE_EMAIL_NAMES:
        hits = [h for h in header if _squash(h) == wanted]
        if len(hits) > 1:
            raise RejectedInput(
                [Problem(where, f"has {len(hits)} email columns ({found}); name the one to match with --column / column=")]
            )
        if hits:
            return hits[0]
    raise RejectedInput(
        [
            Problem(
                where,
                "has no email column (a header such as email, E-mail, Email Address or emailaddress1, any case); "
                f"headers found: {found}; name the column to match with --column NAME (CLI) or the column form field (API)",
            )
        ]
    )


def _first_line(path: Path, where: str) -> str:
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except FileNotFoundError:
        raise RejectedInput([Problem(where, "no such file")]) from None
    except OSError as exc:
        raise DataError([Problem(where, f"cannot be read: {exc.strerror or exc}")]) from None
    text = head.decode("utf-8-sig", errors="ignore")
    return text.splitlines()[0] if text.strip() else ""


def _delimiter(path: Path, where: str) -> str:
    """``,``, ``;`` or tab: whichever the header row holds most often outside quotes (``,`` when none)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in _first_line(path, where):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # ties keep the earlier (",")
    return best if counts[best] else ","


def _header(path: Path, where: str, delimiter: str = ",") -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            row = next(csv.reader(fh, delimiter=delimiter), None)
    except FileNotFoundError:
        raise RejectedInput([Problem(where, "no such file")]) from None
    except UnicodeDecodeError:
        raise DataError([Problem(where, "is not UTF-8 text; save the CSV as UTF-8")]) from None
    except (OSError, csv.Error) as exc:
        raise DataError([Problem(where, f"cannot read the header row: {exc}")]) from None
    if not row:
        raise DataError([Problem(where, "is empty; a CSV with a header row (e.g. 'email') is needed")])
    return row


def _load(path: Path, header: list[str], email_index: int, delimiter: str = ",") -> exp.Create:
    """CREATE TEMP TABLE import AS SELECT c0.., NULLIF(lower(trim(email)), '') AS __addr FROM read_csv(... strict ...)."""
    cols = [f"c{i}" for i in range(len(header))]
    struct = exp.Struct(
        expressions=[exp.PropertyEQ(this=exp.to_identifier(c), expression=exp.Literal.string("VARCHAR")) for c in cols]
    )

    def opt(name: str, value: exp.Expression) -> exp.EQ:
        return exp.EQ(this=exp.column(name), expression=value)

    reader = exp.ReadCSV(
        this=exp.Literal.string(str(path)),
        expressions=[
            opt("header", exp.true()),
            opt("auto_detect", exp.false()),
            opt("columns", struct),
            opt("delim", exp.Literal.string(delimiter)),
            opt("quote", exp.Literal.string('"')),
            opt("escape", exp.Literal.string('"')),
            opt("strict_mode", exp.true()),
            opt("null_padding", exp.false()),
        ],
    )
    addr = exp.func("NULLIF", normalised_email(exp.column(cols[email_index])), exp.Literal.string(""))
    select = exp.select(*[exp.column(c) for c in cols], addr.as_("__addr")).from_(exp.Table(this=reader))
    return exp.Create(
        this=_table(IMPORT),
        kind="TABLE",
        replace=True,
        expression=select,
        properties=exp.Properties(expressions=[exp.TemporaryProperty()]),
    )


def match_query(segs: Segments, audience: str, email: str, wanted: exp.Query) -> exp.Select:
    """``SELECT key, addr`` of the active audience records whose trimmed, lower-cased email is among ``wanted``'s."""
    from segmenta import clock
    from segmenta.compiler.compile import compile_definition
    from segmenta.model.validate import parse_definition

    table = segs.ws.model.table(audience)
    everyone = compile_definition(
        parse_definition({"audience": audience, "groups": [{"where": {"all": []}}]}, segs.ws.model),
        segs.ws.model,
        as_of=clock.now(),
    )
    everyone.set("order", None)  # SELECT t.key FROM audience AS t WHERE <active rule>: add the address beside the key
    key_column = everyone.selects[0]
    assert isinstance(key_column, exp.Column)
    alias = key_column.table
    addr = normalised_email(exp.column(email, table=alias, quoted=True))
    active = everyone.select(addr.as_("addr"), copy=False)
    return (
        exp.select(exp.column(table.key, quoted=True), exp.column("addr"))
        .from_(active.subquery("a"))
        .where(exp.In(this=exp.column("addr"), query=wanted.subquery()))
    )


def normalised_email(column: exp.Expr) -> exp.Expr:
    """trim(lower(x)): the same as lower(trim(x)), since white space has no case, and ~40% cheaper in DuckDB."""
    return exp.Trim(this=exp.Lower(this=column))


def _counts(matched: exp.Table) -> exp.Select:
    """read, found and duplicates in one pass over the file's addresses grouped once.

    found = rows whose address matched (the sum of the matched groups' sizes);
    duplicates = rows whose address appeared on an earlier row (each group's size - 1).
    """
    addr = exp.column("__addr")
    groups = (
        exp.select(addr, exp.Count(this=exp.Star()).as_("n"))
        .from_(_table(IMPORT))
        .where(addr.is_(exp.null()).not_())
        .group_by(addr.copy())
    )
    n = exp.column("n")
    read = exp.select(exp.Count(this=exp.Star())).from_(_table(IMPORT)).subquery().as_("read")
    found = exp.Filter(
        this=exp.Sum(this=n.copy()),
        expression=exp.Where(this=exp.In(this=addr.copy(), query=exp.select("addr").from_(matched.copy()).subquery())),
    )
    dups = exp.Sum(this=exp.Sub(this=n.copy(), expression=exp.Literal.number(1))).as_("duplicates")
    return exp.select(read, found.as_("found"), dups).from_(groups.subquery("g"))


def _multi(matched: exp.Table) -> exp.Select:
    """rows (file rows whose address matched more than one record) and most (records one address matched).

    ``matched`` holds one row per matched address with its count ``n`` (:func:`_matched_addresses`).
    """
    per_addr = exp.select(exp.column("addr"), exp.column("n")).from_(matched.copy())
    rows = (
        exp.select(exp.Count(this=exp.Star()))
        .from_(_table(IMPORT))
        .where(
            exp.In(
                this=exp.column("__addr"),
                query=exp.select(exp.column("addr")).from_(per_addr.subquery("m")).where(exp.column("n") > 1).subquery(),
            )
        )
    )
    most = exp.select(exp.Max(this=exp.column("n"))).from_(per_addr.subquery("m"))
    return exp.select(rows.subquery().as_("rows"), most.subquery().as_("most"))


def _write_not_found(engine: Engine, matched_addresses: exp.Table, target: Path, header: list[str], delimiter: str = ",") -> None:
    """The rows not found, in file order, under the file's own header row, with the file's own delimiter."""
    cols = [formula_safe_sql(exp.column(f"c{i}")).as_(f"c{i}") for i in range(len(header))]
    matched = exp.select("addr").from_(matched_addresses.copy())
    addr = exp.column("__addr")
    rows = (
        exp.select(*cols)
        .from_(_table(IMPORT))
        .where(exp.or_(addr.is_(exp.null()), exp.not_(exp.In(this=addr.copy(), query=matched.subquery()))))
        .order_by(exp.column("rowid"))
    )
    body = target.with_name(target.name + ".rows")
    copy = exp.Copy(
        this=rows.subquery(),
        kind=False,
        files=[exp.Literal.string(str(body))],
        params=[
            exp.CopyParameter(this=exp.Var(this="FORMAT"), expression=exp.Var(this="csv")),
            exp.CopyParameter(this=exp.Var(this="HEADER"), expression=exp.false()),
            exp.CopyParameter(this=exp.Var(this="DELIMITER"), expression=exp.Literal.string(delimiter)),
        ],
    )
    engine.execute([copy])
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow([formula_safe(h) for h in header])
        with body.open(encoding="utf-8", newline="") as rows_in:
            shutil.copyfileobj(rows_in, out, 1 << 20)
    body.unlink()
    partial.replace(target)


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(text: str) -> str:
    """``text`` with a leading ' when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def formula_safe_sql(cell: exp.Expr) -> exp.Expr:
    """:func:`formula_safe` in SQL, for a text column written by the engine."""
    starts = exp.Substring(this=cell.copy(), start=exp.Literal.number(1), length=exp.Literal.number(1))
    risky = exp.In(this=starts, expressions=[exp.Literal.string(c) for c in FORMULA_START])
    return exp.Case(ifs=[exp.If(this=risky, true=exp.DPipe(this=exp.Literal.string("'"), expression=cell.copy()))], default=cell)


def _csv_error(exc: Exception) -> str:
    text = str(exc).split("\n-- while running:")[0]
    text = text.split("Invalid Input Error:", 1)[-1].split("Possible fixes")[0].split("Possible Solution")[0]
    return " ".join(text.split()) or "is not a well-formed CSV file"


def as_json(result: ImportResult) -> dict[str, Any]:
    return result.to_json()


#: Up to this many keys, add/remove go straight to the lifecycle (a VALUES list); beyond, they are staged.
KEY_BATCH = 2_000
KEYS = "segmenta_keys"


def change_keys(segs: Segments, name: str, raw_keys: list[str], action: str) -> RefreshResult:
    """``segment add``/``remove`` of many keys at once, in bounded memory: one run, one membership change.

    Every key is checked first (a bad one rejects the whole call, nothing changed). Beyond
    ``KEY_BATCH`` keys, they are staged as one Arrow column (``Engine.stage``: no SQL literal per
    key, since a 100,000-key VALUES tree costs hundreds of MB and tens of seconds) and the list
    changes once from it, as an import does, on every engine.
    """
    seg = segs._detached(name)
    segs._require_list(seg, action)
    keys = segs.parse_keys(seg.audience, raw_keys)
    table = segs.ws.model.table(seg.audience)
    too_big = [raw for raw, k in zip(raw_keys, keys, strict=True) if isinstance(k, int) and not -(2**63) <= k < 2**63]
    if too_big:
        raise RejectedInput(
            [
                Problem(k, f"is not a {seg.audience} key ({table.key} is a 64-bit integer, at most {2**63 - 1:,})")
                for k in too_big[:20]
            ]
        )
    engine = segs.ws.engine
    if len(keys) <= KEY_BATCH:
        return segs.add(seg.name, raw_keys) if action == "add" else segs.remove(seg.name, raw_keys)
    column = table.column(table.key)
    arrow_type = pa.int64() if column.type is ColumnType.INTEGER else pa.string()
    name = f"{KEYS}_{uuid.uuid4().hex}"  # a name per call: calls may run side by side
    staged = engine.stage(name, pa.table({table.key: pa.array(keys, arrow_type)}))
    try:
        query = exp.select(exp.column(table.key, quoted=True)).distinct().from_(staged)
        return segs.change_members(seg, query, "remove" if action == "remove" else "add")
    finally:
        engine.drop_staged(name)
