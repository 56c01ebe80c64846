"""One typed :class:`Settings` per process: ``segmenta.yaml``, the environment and the CLI flags.

They are read here and nowhere else, in this order of precedence::

    CLI flags (--workspace, --engine, --store)  >  environment  >  segmenta.yaml  >  defaults

and a composition root (the CLI's callback, ``serve``, the API's :class:`Service`,
:meth:`segmenta.Workspace.open`) loads them once with :func:`load_settings` and hands the
object on. The environment variables (:data:`ENV`) each stand for one dotted key;
``SEGMENTA_NOW`` is the clock's (:func:`segmenta.clock.now`), not a setting.

The top level (``version``, ``engine``, ``store``, ``plugins``, ``lock_wait``, ``realtime``) is
checked by the pydantic model here. Each other section has one owner that knows what its values
mean, and :class:`Settings` gives it typed: ``settings.duckdb`` is a
:class:`~segmenta.engines.duckdb.DuckDBSettings`, ``settings.postgres`` a ``PostgresSettings``,
``settings.spark`` a ``SparkSettings``, ``settings.service`` the API's ``HttpSettings``,
``settings.limits`` the model's ``DefinitionLimits``, ``settings.segments`` a ``SegmentConfig``
(computed on first use, so a command pays only for the sections it reads). Unknown keys are
refused here, for every section alike, with a "did you mean" hint; :meth:`Settings.check`
builds every section (a bad value: :class:`RejectedInput` naming the dotted key, exit 2).

Test hooks are plugins: ``plugins:`` (or ``$SEGMENTA_PLUGINS``, comma-separated) names Python
modules, each with a ``register(hooks)`` function that may set the callables of :class:`Hooks`.
Production code calls the hooks; it never tests for a test's environment variable.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from segmenta.errors import Problem, RejectedInput

if TYPE_CHECKING:
    from segmenta.engines.duckdb import DuckDBSettings
    from segmenta.engines.postgres import PostgresSettings
    from segmenta.engines.spark import SparkSettings
    from segmenta.interfaces.api.app import HttpSettings
    from segmenta.model.validate import DefinitionLimits
    from segmenta.services.segment_config import SegmentConfig

CONFIG_FILE = "segmenta.yaml"
DEFAULT_WORKSPACE = "segmenta-workspace"

#: Environment variable -> the dotted key it sets (it wins over segmenta.yaml, a flag over it).
ENV: dict[str, str] = {
    "SEGMENTA_WORKSPACE": "workspace",
    "SEGMENTA_ENGINE": "engine",
    "SEGMENTA_STORE_URL": "store",
    "SEGMENTA_POSTGRES_URL": "postgres.url",
    "SEGMENTA_SPARK_MASTER": "spark.master",
    "SEGMENTA_SPARK_REMOTE": "spark.remote",
    "SEGMENTA_LOCK_WAIT": "lock_wait",
    "SEGMENTA_PLUGINS": "plugins",
}
#: CLI flag -> the dotted key it sets.
FLAGS: dict[str, str] = {"--workspace": "workspace", "--engine": "engine", "--store": "store"}

#: The keys each section takes (their owners check the values; tests/test_settings.py keeps these in step).
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "duckdb": ("memory_limit", "threads"),
    "postgres": ("url", "schema", "tables_schema", "tables", "pool_size"),
    "spark": ("master", "remote", "tables_path", "tables", "conf", "app_name"),
    "service": (
        "max_body_bytes",
        "max_upload_bytes",
        "login_free_failures",
        "login_max_delay_seconds",
        "max_evaluate_keys",
        "max_member_keys",
    ),
    "limits": (
        "max_conditions",
        "max_depth",
        "max_groups",
        "max_list_values",
        "max_text_length",
        "max_definition_bytes",
        "statement_timeout_s",
    ),
    "segments": ("refresh", "interaction_tables", "expiry_days", "import_max_rows", "limits", "worker"),
    "segments.refresh": ("unused_minutes", "in_use_minutes", "in_use_interaction_minutes"),
    "segments.worker": ("lease_seconds", "interval_seconds"),
    "realtime": (),
}
#: Top-level keys of segmenta.yaml besides the sections.
TOP_KEYS = ("version", "engine", "store", "plugins", "lock_wait")
KNOWN_TOP = (*TOP_KEYS, *(s for s in SECTION_KEYS if "." not in s))


def _hint(name: str, known: tuple[str, ...] | list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shown(value: Any) -> str:
    return json.dumps(value, default=str)


@dataclass
class Hooks:
    """Points where a plugin may run code inside segmenta (tests kill a process at them).

    ``before_refresh_commit`` runs when a refresh has written its membership and committed nothing.
    ``before_ack`` runs when ``records consume`` has committed a change and not yet acked its messages.
    """

    before_refresh_commit: Callable[[], None] | None = None
    before_ack: Callable[[], None] | None = None


def load_plugins(names: tuple[str, ...], where: str = "plugins") -> Hooks:
    """Import each plugin module and let its ``register(hooks)`` fill :class:`Hooks`."""
    hooks = Hooks()
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise RejectedInput([Problem(where, f"cannot import plugin {name!r}: {exc}")]) from None
        register = getattr(module, "register", None)
        if not callable(register):
            raise RejectedInput([Problem(where, f"plugin {name!r} has no register(hooks) function")])
        register(hooks)
    return hooks


class RealtimeSettings(BaseModel):
    """``realtime:``: no settings yet; any key is refused (the section is reserved)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Settings(BaseModel):
    """The effective settings of one workspace in one process (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, arbitrary_types_allowed=True)

    #: The workspace directory (--workspace, $SEGMENTA_WORKSPACE, else ./segmenta-workspace).
    workspace: Path = Path(DEFAULT_WORKSPACE)
    #: The format version of segmenta.yaml that ``init`` writes.
    version: int = 1
    #: The data engine: a name in the registry, :data:`segmenta.engines.ENGINES`.
    engine: str = "duckdb"
    #: The metadata store URL; None: ``W/store.sqlite``.
    store: str | None = None
    #: Python modules whose ``register(hooks)`` adds hooks (tests' kill points).
    plugins: tuple[str, ...] = ()
    #: Seconds a command waits for a DuckDB file another process holds.
    lock_wait: float = Field(default=30.0, ge=0, le=86_400)
    realtime: RealtimeSettings = RealtimeSettings()
    #: The sections as merged from file and environment (owners check the values; see the properties).
    sections: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: Where each value set by the environment or a flag came from: dotted key -> ``$VAR`` / ``--flag``.
    sources: dict[str, str] = Field(default_factory=dict)

    @field_validator("engine", mode="before")
    @classmethod
    def _engine(cls, value: Any) -> Any:
        from segmenta.engines import ENGINES

        if isinstance(value, str) and value.strip().lower() in ENGINES:
            return value.strip().lower()
        raise ValueError("unknown engine")  # worded by _problem, with the registry's names

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, list) and all(isinstance(p, str) for p in value):
            return tuple(value)
        return value

    # -- the sections, typed by their owners ------------------------------------------------

    def where(self, key: str) -> str:
        """Where the dotted ``key`` was set, for messages: ``$VAR``, ``--flag`` or ``segmenta.yaml: key``."""
        return self.sources.get(key) or f"{CONFIG_FILE}: {key}"

    @property
    def config(self) -> dict[str, Any]:
        """The settings as one plain mapping (the shape of segmenta.yaml, environment and flags applied)."""
        out: dict[str, Any] = {"version": self.version, "engine": self.engine, **self.sections}
        if self.store is not None:
            out["store"] = self.store
        if self.plugins:
            out["plugins"] = list(self.plugins)
        return out

    @cached_property
    def duckdb(self) -> DuckDBSettings:
        from segmenta.engines.duckdb import DuckDBSettings

        return DuckDBSettings.from_config(self.sections.get("duckdb"))

    @cached_property
    def postgres(self) -> PostgresSettings:
        from segmenta.engines.postgres import PostgresSettings

        return PostgresSettings.from_config(
            self.sections.get("postgres"), workspace=self.workspace, url_source=self.sources.get("postgres.url")
        )

    @cached_property
    def spark(self) -> SparkSettings:
        from segmenta.engines.spark import SparkSettings

        return SparkSettings.from_config(self.sections.get("spark"))

    @cached_property
    def service(self) -> HttpSettings:
        from segmenta.interfaces.api.app import HttpSettings

        return HttpSettings.from_config(self.config)

    @cached_property
    def limits(self) -> DefinitionLimits:
        from segmenta.model.validate import DefinitionLimits, statement_timeout_from_config

        statement_timeout_from_config(self.sections.get("limits"))  # checked with the others
        return DefinitionLimits.from_config(self.sections.get("limits"))

    @cached_property
    def segments(self) -> SegmentConfig:
        from segmenta.services.segment_config import SegmentConfig

        return SegmentConfig.from_workspace(self.config)

    def engine_section(self) -> Any:
        """The chosen engine's section for its ``Engine.open``: checked here where more than the file set it
        (PostgreSQL's URL names ``$SEGMENTA_POSTGRES_URL`` when it came from there), else as written."""
        if self.engine == "postgres":
            return self.postgres
        if self.engine == "spark":
            return self.spark
        return self.sections.get(self.engine)

    @cached_property
    def hooks(self) -> Hooks:
        return load_plugins(self.plugins, self.where("plugins"))

    def check(self) -> Settings:
        """Build every section, so that any bad value is refused now (the engine's only for the chosen engine)."""
        sections: tuple[str, ...] = ("limits", "segments", "service", "hooks", self.engine)
        for name in sections:
            getattr(self, name)
        return self


# -- loading ----------------------------------------------------------------------------------


def read_file(path: Path) -> dict[str, Any]:
    """The mapping in a ``segmenta.yaml`` (empty when there is none); not a mapping: rejected."""
    import yaml

    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise RejectedInput([Problem(str(path), f"is not valid YAML{at}; fix the file or remove it")]) from None
    except OSError as exc:
        raise RejectedInput([Problem(str(path), f"cannot read the settings: {exc.strerror or exc}")]) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RejectedInput([Problem(str(path), "must be a mapping of settings (engine:, postgres:, ...)")])
    return loaded


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the password of every database URL replaced by ``***`` (for showing settings)."""
    import re

    def hide(value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", value)
        if isinstance(value, Mapping):
            return {k: hide(v) for k, v in value.items()}
        return value

    return {k: hide(v) for k, v in config.items()}


def environ_value(name: str) -> str | None:
    """The environment variable ``name`` (empty counts as unset): the one place segmenta reads the environment."""
    return os.environ.get(name) or None


def default_workspace() -> Path:
    """``$SEGMENTA_WORKSPACE``, else ``./segmenta-workspace``."""
    return Path(environ_value("SEGMENTA_WORKSPACE") or DEFAULT_WORKSPACE)


def load_settings(
    workspace: str | Path | None = None,
    *,
    engine: str | None = None,
    store: str | None = None,
    file: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The settings of ``workspace`` (default: ``$SEGMENTA_WORKSPACE`` or ./segmenta-workspace).

    ``workspace``, ``engine`` and ``store`` are the CLI flags (None: not given). ``file`` stands
    for the contents of segmenta.yaml (default: read from the workspace), ``environ`` for the
    environment (default: ``os.environ``). Raises :class:`RejectedInput` naming the dotted key.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k in ENV and v}
    flags = {"workspace": workspace, "engine": engine, "store": store}
    path = Path(flags["workspace"] or env.get("SEGMENTA_WORKSPACE") or DEFAULT_WORKSPACE)
    raw = dict(read_file(path / CONFIG_FILE) if file is None else file)
    return _build(path, raw, env, {k: v for k, v in flags.items() if v is not None and k != "workspace"}, workspace)


def from_config(workspace: str | Path, config: Mapping[str, Any], *, engine: str | None = None) -> Settings:
    """Settings from an already merged mapping (``Workspace(...)`` built by hand, tests): no environment read."""
    return _build(Path(workspace), dict(config), {}, {"engine": engine} if engine else {}, None)


def _build(path: Path, raw: dict[str, Any], env: Mapping[str, str], flags: Mapping[str, Any], workspace_flag: Any) -> Settings:
    problems = _unknown_keys(raw)
    sources: dict[str, str] = {}
    if workspace_flag is not None:
        sources["workspace"] = "--workspace"
    elif "SEGMENTA_WORKSPACE" in env:
        sources["workspace"] = "$SEGMENTA_WORKSPACE"
    for var, key in ENV.items():
        if var in env and key != "workspace":
            _put(raw, key, env[var] if key != "lock_wait" else _number(env[var]))
            sources[key] = f"${var}"
    for flag, key in FLAGS.items():
        if key in flags:
            _put(raw, key, flags[key])
            sources[key] = flag
    sections = {k: v for k, v in raw.items() if k in SECTION_KEYS and k != "realtime"}
    for name, section in sections.items():
        if section is None:
            sections[name] = {}
        elif not isinstance(section, Mapping):
            problems.append(
                Problem(
                    f"{CONFIG_FILE}: {name}",
                    f"must be a mapping of settings ({', '.join(SECTION_KEYS[name])}), not {_shown(section)}",
                )
            )
    if problems:
        raise RejectedInput(problems)
    top = {k: v for k, v in raw.items() if k in TOP_KEYS or k == "realtime"}
    if top.get("realtime") is None:
        top.pop("realtime", None)
    if isinstance(top.get("lock_wait"), int) and not isinstance(top.get("lock_wait"), bool):
        top["lock_wait"] = float(top["lock_wait"])
    try:
        return Settings(workspace=path, sections=sections, sources=sources, **top)
    except ValidationError as exc:
        raise RejectedInput([_problem(e, sources) for e in exc.errors()]) from None


def _put(raw: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, leaf = dotted.partition(".")
    if not leaf:
        raw[head] = value
        return
    section = raw.get(head)
    raw[head] = {**(section if isinstance(section, Mapping) else {}), leaf: value}


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def _unknown_keys(raw: Mapping[str, Any]) -> list[Problem]:
    """Every unknown key, at the top and in each section, with a hint at the nearest known one."""
    problems = []
    for key in raw:
        if key not in KNOWN_TOP:
            problems.append(
                Problem(f"{CONFIG_FILE}: {key}", f"unknown setting{_hint(str(key), KNOWN_TOP)}; known: {', '.join(KNOWN_TOP)}")
            )
    for section, known in SECTION_KEYS.items():
        head, _, sub = section.partition(".")
        values = raw.get(head)
        if sub and isinstance(values, Mapping):
            values = values.get(sub)
        if not isinstance(values, Mapping):
            continue
        for key in values:
            if key not in known:
                takes = f"known: {', '.join(known)}" if known else f"{section} takes no settings yet"
                problems.append(Problem(f"{CONFIG_FILE}: {section}.{key}", f"unknown setting{_hint(str(key), known)}; {takes}"))
    return problems


_EXPECTED = {
    "workspace": "a directory",
    "version": "a whole number (1)",
    "store": "a database URL such as postgresql://user@host/db or sqlite:///path",
    "plugins": "a list of Python module names (comma-separated in $SEGMENTA_PLUGINS)",
    "lock_wait": "a number of seconds from 0 to 86,400",
}


def _problem(error: Any, sources: Mapping[str, str]) -> Problem:
    loc = [str(p) for p in error.get("loc", ())]
    key = ".".join(loc)
    top = loc[0] if loc else ""
    where = sources.get(top) or f"{CONFIG_FILE}: {key}"
    value = error.get("input")
    if error.get("type") == "extra_forbidden":
        return Problem(where, "unknown setting; realtime takes no settings yet")
    if top == "engine":
        from segmenta.engines import ENGINES

        names = list(ENGINES)
        shown = repr(value) if isinstance(value, str) else _shown(value)
        return Problem(where, f"unknown engine {shown}{_hint(str(value), names)}; known: {', '.join(names)}")
    return Problem(where, f"must be {_EXPECTED.get(top, 'a valid value')}, not {_shown(value)}")
