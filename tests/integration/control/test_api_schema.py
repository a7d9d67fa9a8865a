"""The REST API against its own OpenAPI schema, property-based (schemathesis strategies driven by hypothesis) on a
real server: no generated request, valid or not, gets a 5xx, and every response matches what the schema says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

TOKEN = "schema-test-token"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def test_every_operation_keeps_the_schema(start_server: Callable[..., str]) -> None:
    url = start_server(token=TOKEN)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, [f"{op.method} {op.path}" for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def keeps_schema(case: Any) -> None:
            case.call_and_validate(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

        keeps_schema()
