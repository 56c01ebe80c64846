"""A small service over the conformance workspace: one user per role, a few saved segments.

The template (workspace + store with users, tokens and segments) is built once per session;
each test gets its own copy, a Service on it and a TestClient, so tests may change anything.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import segmenta
from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from segmenta.services.users import FirstAdmin

ROLES = ("admin", "operator", "marketer", "viewer")
#: username per role; "rita" is a marketer restricted from PII, "spare" a viewer to change and delete.
USERS = {"operator": "olga", "marketer": "mark", "viewer": "vera"}
PASSWORD = "correct horse battery"
GOLD = {"audience": "contact", "groups": [{"where": {"attribute": "tier", "op": "eq", "value": "Gold"}}]}
UK = {"audience": "contact", "groups": [{"where": {"attribute": "country", "op": "eq", "value": "UK"}}]}


@dataclass
class Template:
    path: Path
    first: FirstAdmin
    tokens: dict[str, str]


@pytest.fixture(scope="session")
def template(conformance_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    path = tmp_path_factory.mktemp("api-template") / "ws"
    ws = segmenta.Workspace.init(path, model=conformance_dir / "model.yaml")
    for csv_file in sorted((conformance_dir / "data").glob("*.csv")):
        ws.load(csv_file.stem, csv_file)
    ws.close()
    service = Service(path)
    try:
        first = service.users.ensure_admin()
        assert first is not None
        tokens = {"admin": first.token}
        for role, name in USERS.items():
            service.users.create_user(name, password=PASSWORD, role=role)
            tokens[role] = service.users.create_token(name)
        service.users.create_user("rita", password=PASSWORD, role="marketer", pii_restricted=True)
        tokens["restricted"] = service.users.create_token("rita")
        service.users.create_user("spare", password=PASSWORD, role="viewer")
        with service.segments() as segs:
            segs.create(GOLD, name="Gold")
            segs.publish("Gold")
            segs.create(UK, name="Draft")
            segs.create_list(audience="contact", name="List")
            segs.create(UK, name="Old")
            segs.delete("Old")
    finally:
        service.close()
    return Template(path, first, tokens)


@dataclass
class Api:
    """A test client on a fresh copy of the template, with role tokens."""

    client: TestClient
    service: Service
    tokens: dict[str, str]
    first: FirstAdmin

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, who: str | None, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**(self.auth(who) if who else {}), **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@contextmanager
def serving(template: Template, path: Path) -> Iterator[Api]:
    """A Service and TestClient on a fresh copy of the template at ``path``."""
    shutil.copytree(template.path, path)
    service = Service(path)
    with TestClient(create_app(service=service)) as client:
        yield Api(client, service, dict(template.tokens), template.first)


@pytest.fixture
def api(template: Template, tmp_path: Path) -> Iterator[Api]:
    """For tests that change things: a copy of its own."""
    with serving(template, tmp_path / "ws") as made:
        yield made


@pytest.fixture(scope="module")
def shared_api(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """For calls that change nothing (reads, refusals): one copy per test module."""
    with serving(template, tmp_path_factory.mktemp("api-shared") / "ws") as made:
        yield made
