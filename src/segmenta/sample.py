"""The sample CRM behind ``segmenta init --sample`` (generator to be filled in)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING

from segmenta.model.schema import Model

if TYPE_CHECKING:
    from segmenta.workspace import Workspace


def sample_model() -> Model:
    """The model of the sample CRM (``sample_model.yaml`` in the package)."""
    return Model.from_yaml_text(resources.files("segmenta").joinpath("sample_model.yaml").read_text(encoding="utf-8"))


def generate(ws: Workspace, *, contacts: int, seed: int, progress: Callable[[str, int, int], None] | None = None) -> None:
    raise NotImplementedError
