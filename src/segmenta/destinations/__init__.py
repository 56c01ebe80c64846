"""Destinations: where a saved segment's members are sent (contract section 8).

Kinds are found through the ``segmenta.destinations`` entry points (a third party adds one by
shipping a package whose entry point names a :class:`~segmenta.destinations.base.Destination`
subclass); the built-in kinds below are also registered as entry points in segmenta's own
``pyproject.toml``, and are found here even when the package metadata does not list them (a
source checkout that was not reinstalled).
"""

from __future__ import annotations

from importlib import import_module

from segmenta.destinations.base import Destination, DestinationError
from segmenta.errors import Problem, RejectedInput

__all__ = ["BUILTIN", "GROUP", "Destination", "DestinationError", "kind_class", "kinds"]

GROUP = "segmenta.destinations"
#: kind -> "module:Class" of the kinds segmenta ships.
BUILTIN = {
    "dynamics365-marketing": "segmenta.destinations.dynamics:Dynamics365Marketing",
    "file": "segmenta.destinations.files:FileDestination",
    "webhook": "segmenta.destinations.webhook:WebhookDestination",
}


def _load(ref: str) -> type[Destination]:
    module, _, attr = ref.partition(":")
    cls = getattr(import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise TypeError(f"{ref} is not a segmenta Destination class")
    return cls


def kinds() -> dict[str, str]:
    """kind -> where its class lives: the entry points, then the built-ins they do not name."""
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    return {**BUILTIN, **found}


def kind_class(kind: str) -> type[Destination]:
    """The class of ``kind``; exit 2 naming the known kinds when there is none."""
    known = kinds()
    if kind not in known:
        raise RejectedInput([Problem("--kind", f"no destination kind {kind!r}; kinds: {', '.join(sorted(known))}")])
    return _load(known[kind])
