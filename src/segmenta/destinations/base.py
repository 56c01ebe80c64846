"""The destination interface: what every kind of destination declares and does.

A kind (``dynamics365-marketing``, ``file``, ``webhook``, or a third party's, found through the
``segmenta.destinations`` entry points) is a :class:`Destination` subclass that declares

- ``Settings``: a pydantic model of its ``--set KEY=VALUE`` settings (checked at create time);
- ``secret_names``: the secrets it needs (``--secret KEY=@FILE``), stored encrypted, never shown;
- ``credential_kind``: what kind of credential those secrets make (shown, never the values);
- :meth:`Destination.test_connection` and :meth:`Destination.send`.

A send is handed a :class:`Payload`: either the full membership (``rows``) or the delta since
the last successful send (``entered`` rows and ``exited`` keys), with the chosen columns, and a
:class:`Checkpoint` it may write its progress to so a killed send can resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from segmenta.errors import SegmentaError

FULL, DELTA = "full", "delta"


class DestinationError(SegmentaError):
    """A destination failed (unreachable, refused the credentials, kept failing after the retries)."""


class NeedFullSend(SegmentaError):
    """A delta cannot be applied here (nothing earlier to build on): the caller sends the full membership instead."""


class NoSettings(BaseModel):
    """A kind without settings."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Checkpoint:
    """A send's progress, kept in the store while it runs (``state``); ``save`` commits it.

    ``resumed`` is the state a killed send with the same membership run left, or None.
    """

    resumed: dict[str, Any] | None
    save: Callable[[dict[str, Any]], None]
    #: The state the last successful send to this destination of this segment left (a delta builds on it).
    previous: dict[str, Any] | None = None


@dataclass
class Payload:
    """What one send carries.

    ``mode`` is ``full`` (``rows``: every member) or ``delta`` (``rows``: members that entered
    since the last successful send; ``exited``: keys that left). Rows are dicts of ``columns``;
    ``count`` is how many rows ``rows`` yields. ``key`` is the audience's key column.
    """

    mode: str
    segment: str
    audience: str
    key: str
    columns: list[str]
    count: int
    rows: Callable[[], Iterator[list[dict[str, Any]]]]
    exited: list[Any] = field(default_factory=list)
    run_id: int | None = None
    #: A directory for files the send leaves behind (rejected ids), private to this send.
    work_dir: Path | None = None


@dataclass
class SendResult:
    """The summary of one send: rows sent, calls made, retries, and ids the receiver rejected."""

    rows: int = 0
    calls: int = 0
    retries: int = 0
    rejected: list[Any] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The contract's ``send --json`` object."""
        return {"rows": self.rows, "calls": self.calls, "retries": self.retries, "rejected": len(self.rejected)}


class Destination:
    """One configured destination of a kind: its checked settings and decrypted secrets.

    Subclasses set the class attributes and implement the two methods. Secrets are held here
    only for the length of a command; ``__repr__`` never shows them.
    """

    kind: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    secret_names: ClassVar[tuple[str, ...]] = ()
    credential_kind: ClassVar[str] = "none"
    description: ClassVar[str] = ""

    def __init__(self, name: str, settings: BaseModel, secrets: dict[str, str]) -> None:
        self.name = name
        self.settings = settings
        self._secrets = secrets

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} kind={self.kind!r}>"

    def secret(self, name: str) -> str:
        return self._secrets[name]

    def required_columns(self, audience_columns: list[str], key: str) -> list[str]:
        """The columns every send carries, whatever ``--columns`` says (by default the audience's key);
        a kind refuses here, before any call, an audience that lacks what it needs."""
        return [key]

    def default_columns(self, audience_columns: list[str], key: str) -> list[str]:
        """The columns sent when ``--columns`` is not given."""
        return [key]

    def test_connection(self) -> str:
        """Check the settings and credentials against the receiver; a short line saying what was checked."""
        raise NotImplementedError

    def send(self, payload: Payload, checkpoint: Checkpoint) -> SendResult:
        """Send ``payload``; a full send leaves the receiver with exactly those rows."""
        raise NotImplementedError
