"""A bounded schemathesis run over /openapi.json against the in-process app: no 5xx, and answers as documented.

Every operation gets a few generated requests (valid and invalid), signed in as the admin,
checked for server errors and for conformance with the OpenAPI document (documented status
codes, content types, response schemas, a 405 with Allow, ...). Bounded: a handful of examples
per operation, no deadline per example, derandomised so a failure reproduces.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from segmenta.interfaces.api.app import create_app
from segmenta.interfaces.api.runtime import Service
from tests.api.conftest import Template

EXAMPLES = 4
#: Business rules no schema states (a name taken, a status change refused, a definition that does not
#: fit the model) reject schema-valid requests with 4xx by design; every other check runs.
EXCLUDED = [positive_data_acceptance]


@pytest.fixture(scope="module")
def app(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    import shutil

    path = tmp_path_factory.mktemp("schemathesis") / "ws"
    shutil.copytree(template.path, path)
    made = create_app(service=Service(path))
    with TestClient(made):  # runs the lifespan: the service is closed at the end
        yield made


@pytest.fixture(scope="module")
def api_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def admin(template: Template) -> dict[str, str]:
    return {"Authorization": f"Bearer {template.tokens['admin']}"}


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> str | None:
    """The first failure of ``EXAMPLES`` generated requests to ``operation``, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, excluded_checks=EXCLUDED)

    try:
        check()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Unsatisfiable:  # nothing to generate in this mode (e.g. no invalid value for a path string)
        return None
    except BaseException as exc:  # schemathesis's FailureGroup: every failed check of the case in its message
        return f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:1500]}"
    return None


def test_the_api_answers_as_documented_and_never_5xx(api_schema: Any, admin: dict[str, str]) -> None:
    started = time.monotonic()
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _run(operation, mode, admin)
            if failure:
                failures.append(failure)
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)
    assert elapsed < 170, f"the run took {elapsed:.0f} s; keep it bounded"


def test_the_document_states_real_status_codes_and_types(app: FastAPI) -> None:
    doc = app.openapi()
    estimate = doc["paths"]["/api/definitions/estimate"]["post"]
    assert {"401", "403", "413", "422"} <= set(estimate["responses"])
    body = doc["components"]["schemas"][estimate["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/")[-1]]
    assert body["properties"]["definition"]["type"] == "object"
    segment = doc["paths"]["/api/segments/{name}"]["get"]
    assert {"401", "403", "404"} <= set(segment["responses"])
    assert "409" in doc["paths"]["/api/segments/{name}/publish"]["post"]["responses"]
    assert "text/csv" in doc["paths"]["/api/segments/{name}/members.csv"]["get"]["responses"]["200"]["content"]


def test_a_wrong_method_is_405_with_allow(app: FastAPI, admin: dict[str, str]) -> None:
    with TestClient(app) as client:
        wrong = client.patch("/api/definitions/estimate", json={}, headers=admin)
        assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
        assert wrong.json()["error"]["type"] == "MethodNotAllowed"
        segment = client.post("/api/segments/Gold", headers=admin)
        assert segment.status_code == 405 and set(segment.headers["allow"].split(", ")) == {"GET", "PUT", "DELETE"}
        unknown = client.get("/api/nothing-here", headers=admin)
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "NotFound"
        assert client.get("/").status_code == 200  # the web UI is still served at "/"
