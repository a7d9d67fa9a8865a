"""Bearer token: every mutating endpoint needs it when set; reads stay open."""

from __future__ import annotations

import httpx
import pytest

from livedenoise.clients.control import ControlClient, ControlError

MUTATING = [
    ("POST", "/v1/models"),
    ("DELETE", "/v1/models/m-000000000000"),
    ("POST", "/v1/models/m-000000000000/load"),
    ("POST", "/v1/jobs"),
    ("POST", "/v1/jobs/j-000000000000/cancel"),
    ("POST", "/v1/data"),
]


@pytest.fixture
def secured(start_server) -> str:
    return start_server(token="s3cret-token")


def test_mutating_endpoints_refuse_missing_or_wrong_token(secured: str) -> None:
    for method, path in MUTATING:
        for header in (None, "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer s3cret-token-but-longer"):
            headers = {"Authorization": header} if header else {}
            response = httpx.request(method, f"{secured}{path}", headers=headers)
            assert response.status_code == 401, (method, path, header, response.text)
            assert response.json()["error"]["code"] == "unauthorized"


def test_reads_are_open_and_the_right_token_works(secured: str, model_file) -> None:
    for path in ("/v1/health", "/v1/models", "/v1/jobs", "/v1/status", "/metrics"):
        assert httpx.get(f"{secured}{path}").status_code == 200, path
    with ControlClient(secured) as anonymous, pytest.raises(ControlError) as info:
        anonymous.upload_model(model_file(seed=7))
    assert info.value.status == 401
    with ControlClient(secured, token="s3cret-token", timeout=30) as authorised:
        model = authorised.upload_model(model_file(seed=7))
        assert authorised.load_model(model.id).active


def test_no_token_configured_means_open(client: ControlClient, model_file) -> None:
    assert client.upload_model(model_file(seed=8)).id.startswith("m-")
