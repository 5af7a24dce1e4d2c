"""The vLLM backend's ingress (Ray Serve LLM's OpenAiIngress + finesift's key and names).

Ray's ingress module needs vLLM, so a stand-in base class with the handler signatures Ray
2.60 has (recorded in tests/serving/data/ray_serve_llm.json) takes its place. The routes
go through the same wiring as in a Serve replica: decorated on a subclass as Ray's
``make_fastapi_ingress`` does, then bound by Serve's own class-based view.
"""

from __future__ import annotations

import types
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from serving.auth import hash_key
from serving.llm_ingress import build_ingress_class

KEY = "vllm-key"


class ChatBody(BaseModel):
    model: str | None = None
    messages: list[dict[str, str]]


class RaysIngress:
    """Stands in for ray.llm's OpenAiIngress: same constructor, _get_response and routes."""

    def __init__(
        self, llm_deployments: dict, model_cards: dict, *, lora_paths: dict | None = None
    ) -> None:
        self._model_cards = dict(model_cards)
        self._lora_paths = dict(lora_paths or {})

    async def _get_response(self, *, body: Any, call_method: str, raw_request: Any = None):
        yield {"routed_to": body.model, "call": call_method}

    async def model(self, model_id: str) -> dict | None:
        return {"id": model_id}  # Ray's: the base's card, or the adapter's from the store

    async def models(self) -> dict:
        listed = [*self._model_cards, "base:good", "base:.hidden"]  # folders in the store
        cards = [await self.model(m) for m in listed]
        return {"data": [c for c in cards if c is not None]}

    async def model_data(self, model: str) -> Any:
        card = await self.model(model)
        return card if card is not None else JSONResponse({"error": "not found"}, 404)

    async def chat(self, body: ChatBody, request: Request) -> dict:
        responses = self._get_response(body=body, call_method="chat", raw_request=request)
        return [r async for r in responses][0]


ROUTES = {
    "models": lambda app: app.get("/v1/models"),
    "model_data": lambda app: app.get("/v1/models/{model:path}"),
    "chat": lambda app: app.post("/v1/chat/completions"),
}


@pytest.fixture
def serve_app(monkeypatch):
    """An ingress replica's ASGI app, wired the way Ray Serve LLM and Serve wire it."""
    from ray import serve
    from ray.serve._private.http_util import make_fastapi_class_based_view

    def wired(key_hash: str | None) -> TestClient:
        cls = build_ingress_class(RaysIngress, ROUTES)
        app = FastAPI()
        # ray.llm's make_fastapi_ingress: decorate each route method on a fresh subclass
        routes = {name: route(app)(getattr(cls, name)) for name, route in ROUTES.items()}
        served = type(cls.__name__, (cls,), routes)
        make_fastapi_class_based_view(app, served)
        replica = served({}, {"base": {}}, lora_paths={"base": "s3://b/a"}, key_hash=key_hash)
        context = types.SimpleNamespace(servable_object=replica)
        monkeypatch.setattr(serve, "get_replica_context", lambda: context)
        return TestClient(app)

    return wired


def chat(client: TestClient, model: str, headers: dict | None = None):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return client.post("/v1/chat/completions", json=body, headers=headers or {})


def test_every_route_needs_the_key(serve_app):
    client = serve_app(hash_key(KEY))
    auth = {"Authorization": f"Bearer {KEY}"}
    for response in (
        client.get("/v1/models"),
        client.get("/v1/models/base"),
        chat(client, "base"),
        chat(client, "base", {"Authorization": "Bearer wrong"}),
    ):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "FINESIFT_API_KEY" in response.text
    listed = client.get("/v1/models", headers=auth).json()
    assert listed == {"data": [{"id": "base"}, {"id": "base:good"}]}
    assert client.get("/v1/models/base:x", headers=auth).json() == {"id": "base:x"}
    assert chat(client, "base", auth).json() == {"routed_to": "base", "call": "chat"}


def test_no_key_configured_means_open(serve_app):
    client = serve_app(None)
    assert client.get("/v1/models").status_code == 200


def test_bare_adapter_names_are_routed_as_base_colon_name(serve_app):
    client = serve_app(None)
    assert chat(client, "smol-demo").json()["routed_to"] == "base:smol-demo"
    assert chat(client, "base:smol-demo").json()["routed_to"] == "base:smol-demo"
    assert chat(client, "base").json()["routed_to"] == "base"


@pytest.mark.parametrize("model", ["../x", "base:../x", "base:", "base:a/b", "base:.x"])
def test_adapter_names_follow_finesifts_rule(serve_app, model):
    client = serve_app(None)
    response = chat(client, model)
    assert response.status_code == 400 and "not a valid model name" in response.text
    assert client.get(f"/v1/models/{model}").status_code == 404


def test_the_handlers_keep_the_names_serve_binds_routes_by():
    cls = build_ingress_class(RaysIngress, ROUTES)
    assert cls.chat.__qualname__ == "RaysIngress.chat"
    assert issubclass(cls, RaysIngress) and cls.__module__ == "serving.llm_ingress"
