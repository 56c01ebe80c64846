"""The sample CRM behind ``segmenta init --sample``: a realistic, seeded, vectorised generator.

``generate(ws, contacts=1_000_000, seed=1)`` fills every table of ``sample_model.yaml``:
about ``contacts / 10`` accounts and ``contacts / 5`` leads, 3 orders and 10 interactions
per contact on average (skewed: many contacts have none, a few have many), a few hundred
events and their registrations. Every instant is relative to :func:`segmenta.clock.now`
(``SEGMENTA_NOW``), so "in the last 90 days" finds people whenever the sample is built.
The same seed and the same clock give the same data.

Nothing loops over rows in Python: values are drawn with numpy over short vocabularies
(:mod:`segmenta.sample_vocab`) and text is assembled with Arrow compute kernels.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from segmenta import clock
from segmenta import sample_vocab as V
from segmenta.engines.ingest import arrow_schema
from segmenta.model.schema import Model

if TYPE_CHECKING:
    from segmenta.workspace import Workspace

Progress = Callable[[str, int, int], None]
Ints = np.ndarray[Any, np.dtype[np.int64]]
Bools = np.ndarray[Any, np.dtype[np.bool_]]

US = 1_000_000
DAY = 86_400 * US
YEAR = 365 * DAY
#: Rows per batch of behaviour records (orders, interactions): bounds temporary memory.
ROWS = 2_000_000
ORDERS_PER_CONTACT = 3.0
INTERACTIONS_PER_CONTACT = 10.0
REGISTRATIONS_PER_CONTACT = 0.4


def sample_model() -> Model:
    """The model of the sample CRM (``sample_model.yaml`` in the package)."""
    return Model.from_yaml_text(resources.files("segmenta").joinpath("sample_model.yaml").read_text(encoding="utf-8"))


@dataclass
class _People:
    """What later tables need to know about the contacts (one entry per contact)."""

    start: Ints  # createdon, in microseconds since the epoch
    end: Ints  # last moment of activity (churned contacts stop earlier)
    engagement: np.ndarray[Any, np.dtype[np.float64]]
    orders: Ints
    interactions: Ints
    donotemail: Bools
    account: Ints  # 0: none
    email: pa.Array


def generate(ws: Workspace, *, contacts: int, seed: int, progress: Progress | None = None) -> None:
    """Fill ``ws`` (a workspace with the sample model) with a CRM of ``contacts`` contacts."""
    now = _micros(clock.now()) // US * US  # whole seconds, like CRM timestamps
    gen = _Generator(ws, np.random.default_rng(seed), now, progress)
    n_accounts = max(1, contacts // 10)
    gen.accounts(n_accounts)
    people = gen.contacts(contacts, n_accounts)
    gen.leads(max(1, contacts // 5), people, n_accounts)
    gen.orders(people)
    gen.interactions(people)
    gen.events_and_registrations(people)


class _Generator:
    def __init__(self, ws: Workspace, rng: np.random.Generator, now_us: int, progress: Progress | None) -> None:
        self.ws = ws
        self.rng = rng
        self.now = now_us
        self.progress = progress
        self.account_country: Ints = np.zeros(0, dtype=np.int64)

    def _store(self, name: str, columns: dict[str, pa.Array] | list[pa.RecordBatch]) -> None:
        schema = arrow_schema(self.ws.model.table(name))
        if isinstance(columns, dict):
            table = pa.table([columns[f.name] for f in schema], schema=schema)
        else:
            table = pa.Table.from_batches(columns, schema=schema)
        self.ws.engine.replace_table(name, self.ws.model.table(name), table)
        self._report(name, table.num_rows, table.num_rows)

    def _report(self, name: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(name, done, total)

    def _ages(self, n: int, span: int, power: float = 1.0) -> Ints:
        """Ages in whole seconds within ``span`` microseconds; ``power`` > 1 favours recent moments."""
        return (_skew(self.rng.random(n), power) * (span // US)).astype(np.int64) * US

    # -- tables ---------------------------------------------------------------------------

    def accounts(self, n: int) -> None:
        rng = self.rng
        base = pc.binary_join_element_wise(
            _take(V.COMPANY_WORDS, rng.integers(0, len(V.COMPANY_WORDS), n)),
            _take(V.COMPANY_NOUNS, rng.integers(0, len(V.COMPANY_NOUNS), n)),
            " ",
        )
        suffix = _take(_values(V.COMPANY_SUFFIXES), _pick(rng, V.COMPANY_SUFFIXES, n))
        name = pc.if_else(pc.equal(suffix, ""), base, pc.binary_join_element_wise(base, suffix, " "))
        country = _pick(rng, [(c[0], c[1]) for c in V.COUNTRIES], n)
        self.account_country = country
        employees = np.clip(np.rint(rng.lognormal(np.log(40), 1.6, n)), 1, 250_000).astype(np.int64)
        revenue = np.rint(employees * rng.lognormal(np.log(120_000), 0.6, n)) * 100
        self._store(
            "account",
            {
                "accountid": pa.array(np.arange(1, n + 1)),
                "name": name,
                "industry": _take(_values(V.INDUSTRIES), _pick(rng, V.INDUSTRIES, n)),
                "employees": pa.array(employees),
                "revenue": _decimal(revenue.astype(np.int64), rng.random(n) < 0.1),
                "country": _take([c[0] for c in V.COUNTRIES], country),
                "createdon": _timestamps(self.now - self._ages(n, 8 * YEAR)),
            },
        )

    def contacts(self, n: int, n_accounts: int) -> _People:
        rng = self.rng
        first_i, last_i = _zipf_pick(rng, len(V.FIRST_NAMES), n), _zipf_pick(rng, len(V.LAST_NAMES), n)
        first, last = _take(V.FIRST_NAMES, first_i), _take(V.LAST_NAMES, last_i)
        email = _emails(rng, first_i, last_i)
        # Households and duplicate records share an address; some contacts have none.
        source = np.arange(n)
        shared = rng.random(n) < 0.015
        source[shared] = rng.integers(0, n, int(shared.sum()))
        email = email.take(pa.array(source, mask=rng.random(n) < 0.03))

        has_account = rng.random(n) < 0.85
        weights = rng.lognormal(0, 1.2, n_accounts)
        account = np.where(has_account, rng.choice(n_accounts, n, p=weights / weights.sum()) + 1, 0)
        country_i = _pick(rng, [(c[0], c[1]) for c in V.COUNTRIES], n)
        follows = has_account & (rng.random(n) < 0.75)
        country_i[follows] = self.account_country[account[follows] - 1]
        no_country = rng.random(n) < 0.02
        city_i = country_i * len(V.CITY_WEIGHTS) + rng.choice(len(V.CITY_WEIGHTS), n, p=V.CITY_WEIGHTS)
        cities = [city for c in V.COUNTRIES for city in c[3]]
        phone = pc.binary_join_element_wise(
            _take([c[2] for c in V.COUNTRIES], country_i),
            pc.cast(pa.array(rng.integers(100_000_000, 999_999_999, n)), pa.string()),
            " ",
        )
        phone = pc.if_else(pa.array(rng.random(n) < 0.12), pa.scalar(None, pa.string()), phone)

        start = self.now - self._ages(n, 5 * YEAR, power=1.4)
        people = self._behaviour(n, start)
        people.email, people.account = email, account
        people.donotemail = rng.random(n) < 0.10
        today = self.now // DAY
        birth = today - np.rint(np.clip(rng.normal(42, 12, n), 18, 85) * 365.25).astype(np.int64)
        score = np.clip(15 + 9 * np.log1p(people.interactions) + 12 * np.log1p(people.orders) + rng.normal(0, 8, n), 0, 100)
        self._store(
            "contact",
            {
                "contactid": pa.array(np.arange(1, n + 1)),
                "firstname": first,
                "lastname": last,
                "email": email,
                "phone": phone,
                "jobtitle": _take(_values(V.JOB_TITLES), _pick(rng, V.JOB_TITLES, n), rng.random(n) < 0.06),
                "tier": _take(_values(V.TIERS), _pick(rng, V.TIERS, n), rng.random(n) < 0.01),
                "country": _take([c[0] for c in V.COUNTRIES], country_i, no_country),
                "city": _take(cities, city_i, no_country | (rng.random(n) < 0.05)),
                "birthdate": pa.array(birth.astype(np.int32), pa.date32(), mask=rng.random(n) < 0.12),
                "createdon": _timestamps(start),
                "donotemail": pa.array(people.donotemail, mask=rng.random(n) < 0.01),
                "interests": _interests(rng, n),
                "score": _decimal(np.rint(score * 100).astype(np.int64)),
                "parentaccountid": pa.array(account, mask=account == 0),
                "statecode": pa.array((rng.random(n) < 0.05).astype(np.int64)),
                "fullname": pc.binary_join_element_wise(first, last, " "),
            },
        )
        return people

    def _behaviour(self, n: int, start: Ints) -> _People:
        """Per-contact activity: engagement, churn and how many orders and interactions each has."""
        rng = self.rng
        engagement = rng.gamma(0.9, 1 / 0.9, n)
        tenure = np.minimum(1.0, (self.now - start) / (2 * YEAR)) ** 0.5
        weight = engagement * tenure
        interactions = rng.poisson(INTERACTIONS_PER_CONTACT * weight / weight.mean())
        buying = weight * rng.gamma(0.6, 1 / 0.6, n)
        orders = rng.poisson(ORDERS_PER_CONTACT * buying / buying.mean())
        # A third of the contacts churned: their activity stops somewhere in the last two years.
        end = np.full(n, self.now, dtype=np.int64)
        churned = rng.random(n) < 0.33
        end[churned] -= self._ages(int(churned.sum()), 2 * YEAR)
        end = np.maximum(end, start)
        empty = np.zeros(0, dtype=np.int64)
        return _People(
            start,
            end,
            engagement,
            orders.astype(np.int64),
            interactions.astype(np.int64),
            np.zeros(0, bool),
            empty,
            pa.array([], pa.string()),
        )

    def leads(self, n: int, people: _People, n_accounts: int) -> None:
        rng = self.rng
        n_contacts = len(people.start)
        contact = np.where(rng.random(n) < 0.55, rng.integers(1, n_contacts + 1, n), 0)
        linked = contact > 0
        fresh = _emails(rng, _zipf_pick(rng, len(V.FIRST_NAMES), n), _zipf_pick(rng, len(V.LAST_NAMES), n))
        email = pc.if_else(pa.array(linked), people.email.take(pa.array(np.maximum(contact - 1, 0))), fresh)
        account = np.where(
            linked,
            people.account[np.maximum(contact - 1, 0)],
            np.where(rng.random(n) < 0.5, rng.integers(1, n_accounts + 1, n), 0),
        )
        budget = np.rint(rng.lognormal(np.log(5_000), 1.2, n)) * 100
        self._store(
            "lead",
            {
                "leadid": pa.array(np.arange(1, n + 1)),
                "subject": _take(V.LEAD_SUBJECTS, rng.integers(0, len(V.LEAD_SUBJECTS), n)),
                "source": _take(_values(V.LEAD_SOURCES), _pick(rng, V.LEAD_SOURCES, n)),
                "rating": _take(_values(V.RATINGS), _pick(rng, V.RATINGS, n), rng.random(n) < 0.05),
                "email": email,
                "parentcontactid": pa.array(contact, mask=~linked),
                "parentaccountid": pa.array(account, mask=account == 0),
                "createdon": _timestamps(self.now - self._ages(n, 3 * YEAR, power=1.2)),
                "budget": _decimal(budget.astype(np.int64), rng.random(n) < 0.25),
            },
        )

    def _timeline(self, counts: Ints, people: _People, floor: int, power: float) -> tuple[Ints, Ints]:
        """Owners (contact index) and instants of ``counts[i]`` records per contact, oldest first.

        Sorted by time as a CRM appends them, so keys rise with time and an engine's
        min/max statistics can skip old row groups for "in the last N days".
        """
        owner = np.repeat(np.arange(len(counts)), counts)
        ts = _between(self.rng, people.start[owner], people.end[owner], floor, power=power)
        order = np.argsort(ts, kind="stable")
        return owner[order], ts[order]

    def orders(self, people: _People) -> None:
        rng = self.rng
        n = len(people.start)
        spend = rng.lognormal(0, 0.5, n)  # big and small spenders
        preferred = _pick(rng, V.CHANNELS, n)
        owners, times = self._timeline(people.orders, people, self.now - 3 * YEAR, power=1.0)
        batches, total = [], len(owners)
        for lo in range(0, total, ROWS):
            owner, ts = owners[lo : lo + ROWS], times[lo : lo + ROWS]
            m = len(owner)
            cents = np.maximum(100, np.rint(rng.lognormal(np.log(55), 0.9, m) * spend[owner] * 100)).astype(np.int64)
            channel = np.where(rng.random(m) < 0.7, preferred[owner], _pick(rng, V.CHANNELS, m))
            batches.append(
                pa.record_batch(
                    {
                        "orderid": pa.array(np.arange(lo + 1, lo + m + 1)),
                        "contactid": pa.array(owner + 1),
                        "amount": _decimal(cents),
                        "ts": _timestamps(ts),
                        "channel": _take(_values(V.CHANNELS), channel),
                    }
                )
            )
            self._report("order", lo + m, total)
        self._store("order", batches)

    def interactions(self, people: _People) -> None:
        rng = self.rng
        types = _values(V.INTERACTION_TYPES)
        web, form = types.index("web_visit"), types.index("form_submitted")
        pages = _values(V.PAGES) + _values(V.FORM_PAGES)
        window = self.now - 2 * YEAR
        owners, times = self._timeline(people.interactions, people, window, power=1.5)
        batches, total = [], len(owners)
        for lo in range(0, total, ROWS):
            owner, ts = owners[lo : lo + ROWS], times[lo : lo + ROWS]
            m = len(owner)
            kind = _pick(rng, V.INTERACTION_TYPES, m)
            kind[(kind < web) & people.donotemail[owner]] = web  # opted-out contacts get no email
            is_email = kind < web
            # Newsletters go out in turn: the campaign follows the send time.
            campaign = 1001 + np.clip((ts - window) * V.CAMPAIGNS // (2 * YEAR), 0, V.CAMPAIGNS - 1)
            page = np.zeros(m, dtype=np.int64)
            page[kind == web] = _pick(rng, V.PAGES, int((kind == web).sum()))
            page[kind == form] = _pick(rng, V.FORM_PAGES, int((kind == form).sum())) + len(V.PAGES)
            batches.append(
                pa.record_batch(
                    {
                        "interactionid": pa.array(np.arange(lo + 1, lo + m + 1)),
                        "contactid": pa.array(owner + 1),
                        "type": _take(types, kind),
                        "emailid": pa.array(campaign, mask=~is_email),
                        "page": _take(pages, page, is_email),
                        "ts": _timestamps(ts),
                    }
                )
            )
            self._report("interaction", lo + m, total)
        self._store("interaction", batches)

    def events_and_registrations(self, people: _People) -> None:
        rng = self.rng
        n_contacts = len(people.start)
        n = int(np.clip(n_contacts // 20, 20, 300))
        category = _pick(rng, V.EVENT_CATEGORIES, n)
        today = self.now // DAY
        start_day = today - 730 + rng.integers(0, 730 + 180, n)
        ids = np.arange(1, n + 1)
        name = pc.binary_join_element_wise(
            _take(V.EVENT_TOPICS, rng.integers(0, len(V.EVENT_TOPICS), n)),
            _take(_values(V.EVENT_CATEGORIES), category),
            pc.binary_join_element_wise("#", pc.cast(pa.array(ids), pa.string()), ""),
            " ",
        )
        self._store(
            "event",
            {
                "eventid": pa.array(ids),
                "name": name,
                "category": _take(_values(V.EVENT_CATEGORIES), category),
                "startdate": pa.array(start_day.astype(np.int32), pa.date32()),
            },
        )
        per_contact = rng.poisson(REGISTRATIONS_PER_CONTACT * people.engagement)
        owner = np.repeat(np.arange(n_contacts), per_contact)
        m = len(owner)
        popularity = rng.lognormal(0, 1, n)
        event = rng.choice(n, m, p=popularity / popularity.sum())
        registered = np.minimum(start_day[event] * DAY + 9 * 3600 * US - self._ages(m, 60 * DAY), self.now)
        past = start_day[event] < today
        show_rate = np.array([0.45, 0.8, 0.7])[category[event]]
        self._store(
            "registration",
            {
                "registrationid": pa.array(np.arange(1, m + 1)),
                "contactid": pa.array(owner + 1),
                "eventid": pa.array(event + 1),
                "registeredon": _timestamps(registered),
                "checkedin": pa.array(rng.random(m) < show_rate, mask=~past),  # unknown until the event happened
            },
        )


# -- helpers ---------------------------------------------------------------------------------


def _micros(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)


def _values(weighted: V.Weighted) -> list[str]:
    return [v for v, _ in weighted]


def _pick(rng: np.random.Generator, weighted: Sequence[tuple[str, float]], n: int) -> Ints:
    """``n`` indices into ``weighted``, drawn by weight."""
    cdf = np.cumsum([w for _, w in weighted], dtype=np.float64)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1).astype(np.int64)


def _zipf_pick(rng: np.random.Generator, size: int, n: int) -> Ints:
    """Indices with a gentle Zipf skew: common names are common."""
    weights = 1 / np.arange(1, size + 1) ** 0.7
    cdf = np.cumsum(weights) / weights.sum()
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), size - 1).astype(np.int64)


def _take(values: Sequence[str], index: Ints, null: Bools | None = None) -> pa.Array:
    """``values[index]`` as an Arrow string array; null where ``null``."""
    return pa.array(list(values), pa.string()).take(pa.array(index, mask=null))


def _timestamps(micros: Ints) -> pa.Array:
    return pa.array(micros, pa.timestamp("us"))


def _decimal(cents: Ints, null: Bools | None = None) -> pa.Array:
    """Whole cents as exact ``decimal128(38, 10)`` values (built as scale 2, then rescaled)."""
    n = len(cents)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # sign extension to 128 bits
    validity = None if null is None else pa.py_buffer(np.packbits(~null, bitorder="little"))
    exact = pa.Array.from_buffers(pa.decimal128(38, 2), n, [validity, pa.py_buffer(words)])
    return exact.cast(pa.decimal128(38, 10))


def _skew(u: np.ndarray[Any, np.dtype[np.float64]], power: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    """``u ** power`` (uniform numbers pushed towards 0), with the common powers done cheaply."""
    if power == 1.0:
        return u
    if power == 1.5:
        return u * np.sqrt(u)
    return u**power


def _between(rng: np.random.Generator, start: Ints, end: Ints, floor: int, *, power: float) -> Ints:
    """Instants in [max(start, floor), end], whole seconds; ``power`` > 1 crowds them towards ``end``."""
    low = np.maximum(start, floor)
    span = np.maximum(end - low, 0) // US
    ages: Ints = (_skew(rng.random(len(start)), power) * span).astype(np.int64) * US
    return end - ages


def _emails(rng: np.random.Generator, first_i: Ints, last_i: Ints) -> pa.Array:
    """Addresses such as ``anna.smith42@gmail.com`` derived from the names."""
    n = len(first_i)
    first = _take([f.lower() for f in V.FIRST_NAMES], first_i)
    last = _take([s.lower() for s in V.LAST_NAMES], last_i)
    style = rng.choice(3, n, p=[0.55, 0.2, 0.25])  # first.last, first_last, flast
    first = pc.if_else(pa.array(style == 2), pc.utf8_slice_codeunits(first, 0, 1), first)
    sep = _take([".", "_", ""], style)
    number = pc.cast(pa.array(rng.integers(1, 1000, n)), pa.string())
    number = pc.if_else(pa.array(rng.random(n) < 0.6), number, "")
    domain = _take(_values(V.EMAIL_DOMAINS), _pick(rng, V.EMAIL_DOMAINS, n))
    return pc.binary_join_element_wise(first, sep, last, number, "@", domain, "")


def _interests(rng: np.random.Generator, n: int) -> pa.Array:
    """A multi-select: 0 to 4 distinct interests per contact, popular ones more often."""
    k = len(V.INTERESTS)
    weights = np.array([w for _, w in V.INTERESTS], dtype=np.float64)
    how_many = rng.choice(len(V.INTEREST_COUNTS), n, p=V.INTEREST_COUNTS)
    # Weighted sampling without replacement: the k largest of log(u) / weight.
    keys = np.log(rng.random((n, k))) / weights
    rank = (keys[:, None, :] > keys[:, :, None]).sum(axis=2)  # how many keys beat each one
    chosen = rank < how_many[:, None]
    offsets = np.concatenate([[0], np.cumsum(chosen.sum(axis=1))]).astype(np.int32)
    values = _take(_values(V.INTERESTS), np.nonzero(chosen)[1])
    return pa.ListArray.from_arrays(pa.array(offsets), values)
