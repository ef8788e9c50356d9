"""Property-based run of the OpenAPI schema: no 5xx, and responses match the schema.

Schemathesis generates requests from ``/api/v1/openapi.json`` for every
operation (as an admin, so requests get past authorization and reach the
service) and checks each response: never a server error, the status code
documented, the body of the documented content type and shape. (Driven with
Hypothesis directly: schemathesis' pytest plugin does not support pytest 9 yet.)
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from _api import Team

pytestmark = pytest.mark.slow

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 6


def test_the_api_keeps_its_schema(app: FastAPI, team: Team) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    headers = team.headers("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50
    cases = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            nonlocal cases
            cases += 1
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
    assert cases >= 200
