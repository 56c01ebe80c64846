"""One exception tree for segmenta.

Every error a user can cause derives from :class:`SegmentaError`. Errors caused
by bad input (a definition, a model, a data file, an argument) derive from
:class:`RejectedInput`; the CLI maps those to exit status 2, everything else to 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class SegmentaError(Exception):
    """Base of every error segmenta raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is (a JSON pointer or a file location) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class RejectedInput(SegmentaError, ValueError):
    """Input was rejected whole; nothing was changed. Carries one problem per line."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class DefinitionError(RejectedInput):
    """A segment definition does not fit the model (contract section 4)."""


class ModelError(RejectedInput):
    """model.yaml is malformed or inconsistent."""


class DataError(RejectedInput):
    """A data file does not fit the model; the table was left as it was."""


class NotFound(RejectedInput):
    """A named object (table, segment, workspace) does not exist."""


class UnsupportedFeature(SegmentaError):
    """The compiler or an engine met a node it cannot handle."""


class EngineError(SegmentaError):
    """The engine failed while running SQL; carries the SQL that failed."""

    def __init__(self, message: str, *, sql: str | None = None) -> None:
        self.sql = sql
        super().__init__(message if sql is None else f"{message}\n-- while running:\n{sql}")


class Conflict(RejectedInput):
    """The request clashes with the current state: a name already taken, a status change not allowed now."""


class Unauthenticated(SegmentaError):
    """No valid session or API token was given (the service answers 401)."""


class PermissionDenied(SegmentaError):
    """The signed-in user's role does not allow this (the service answers 403)."""


class Timeout(SegmentaError):
    """A statement ran longer than its limit (``limits.statement_timeout_s``) and was cancelled.

    The engine's connection stays usable; the service answers 503, the CLI exits 1.
    """

    def __init__(self, message: str, *, sql: str | None = None, limit_s: float | None = None) -> None:
        self.sql = sql
        self.limit_s = limit_s
        super().__init__(message)


class WorkspaceBusy(SegmentaError):
    """Another process (typically ``segmenta serve``) holds the workspace's data file open.

    DuckDB lets one process at a time open a database for writing, and none for reading beside
    it; the message names the workspace and the other process.
    """

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        self.pid = pid
        super().__init__(message)
