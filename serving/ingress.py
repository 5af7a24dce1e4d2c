"""The HTTP ingress deployment: OpenAI's routes, auth, validation, limits and streaming.

It reserves no CPU: it parses, tokenizes and checks requests, resolves ``model`` against
the adapters directory, and calls the generator with the adapter name as Serve's
multiplexed model id. Every error is answered in OpenAI's JSON error shape.
"""

# No `from __future__ import annotations`: FastAPI must see real types (Request) at runtime.

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.storage import is_uri
from serving.adapters import AdapterEntry, resolve_adapter, scan_adapters
from serving.auth import API_KEY_ENV, check_bearer, hash_key
from serving.body import read_limited
from serving.config import ServeConfig
from serving.errors import redact_paths
from serving.model_names import adapter_of
from serving.protocol import (
    ApiError,
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionRequest,
    ModelCard,
    ModelList,
    Usage,
    error_body,
    error_type_for,
    new_id,
    now,
    parse_request,
    sse,
)
from serving.sampling import GenParams, RowResult, StreamDelta

log = logging.getLogger("ray.serve")

# The key's name and hash live in serving/auth.py (both backends check it); importing
# them from here keeps working.
__all__ = ["API_KEY_ENV", "OpenAIIngress", "hash_key"]

api = FastAPI(title="finesift", docs_url=None, redoc_url=None, openapi_url=None)


@api.exception_handler(ApiError)
async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        error_body(str(exc.detail), error_type_for(exc.status_code)), status_code=exc.status_code
    )


@api.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(
        error_body(f"invalid request: {exc.errors()[:1]}", "invalid_request_error"), status_code=400
    )


async def sse_events(
    first: StreamDelta, rest: Any, req: Any, prompt_tokens: int, chat: bool
) -> AsyncIterator[str]:
    """Server-sent events of one streamed answer, ending with ``data: [DONE]``."""
    ident, created = new_id("chatcmpl" if chat else "cmpl"), now()

    def chunk(text: str | None, finish: str | None, role: bool = False) -> Any:
        if chat:
            delta = ChunkDelta(role="assistant" if role else None, content=text)
            return ChatCompletionChunk(
                id=ident,
                created=created,
                model=req.model,
                choices=[ChatChunkChoice(delta=delta, finish_reason=finish)],
            )
        return CompletionChunk(
            id=ident,
            created=created,
            model=req.model,
            choices=[CompletionChunkChoice(text=text or "", finish_reason=finish)],
        )

    if chat:
        yield sse(chunk("", None, role=True))
    last = first
    try:
        delta = first
        while True:
            if delta.error:
                yield sse(error_body(delta.error, error_type_for(delta.status), None, delta.code))
                break
            if delta.text:
                yield sse(chunk(delta.text, None))
            last = delta
            if delta.finish_reason:
                yield sse(chunk(None if chat else "", delta.finish_reason))
                break
            try:
                delta = await rest.__anext__()
            except StopAsyncIteration:
                yield sse(chunk(None if chat else "", "length"))
                break
    except Exception as exc:  # the generator went away mid-stream
        log.exception("stream failed")
        yield sse(error_body(redact_paths(f"generation failed: {exc}")[:500], "server_error"))
    if req.include_usage():
        usage = Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=last.completion_tokens,
            total_tokens=prompt_tokens + last.completion_tokens,
        )
        empty = ChatCompletionChunk if chat else CompletionChunk
        yield sse(empty(id=ident, created=created, model=req.model, choices=[], usage=usage))
    yield sse("[DONE]")


@serve.deployment(name="OpenAIIngress")
@serve.ingress(api)
class OpenAIIngress:
    """HTTP front: OpenAI's routes, auth, validation, limits, streaming.

    Args:
        generator: handle to the Generator deployment.
        cfg: the serve config (names, limits, adapters directory).
        model_dir: local base model directory (for the tokenizer and context length).
        key_hash: SHA-256 of the API key, or None for no authentication.
    """

    def __init__(
        self, generator: DeploymentHandle, cfg: ServeConfig, model_dir: str, key_hash: str | None
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from serving.engine import context_length

        self.generator = generator
        self.cfg = cfg
        self.key_hash = key_hash
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=False)
        self.context_length = context_length(
            AutoConfig.from_pretrained(model_dir, trust_remote_code=False)
        )
        self.created = now()

    def _authorize(self, request: Request) -> None:
        check_bearer(request.headers.get("authorization"), self.key_hash)

    @api.get("/healthz")
    async def healthz(self) -> JSONResponse:
        """200 when the generator answers within 10 s, else 503 (no auth: it reveals nothing)."""
        try:
            await asyncio.wait_for(self.generator.info.remote(), timeout=10)
        except Exception:
            log.exception("health check: the generator did not answer")
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    @api.get("/v1/models")
    async def models(self, request: Request) -> JSONResponse:
        """The base model and every servable adapter, listed from the directory now."""
        self._authorize(request)
        cards = [ModelCard(id=self.cfg.base_name, created=self.created, owned_by="finesift")]
        for name, entry in (await self._adapters()).items():
            if entry.problem is None and name != self.cfg.base_name:
                created = int(entry.path.stat().st_mtime)
                cards.append(ModelCard(id=name, created=created, owned_by="finesift"))
        return JSONResponse(ModelList(data=cards).model_dump())

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: Request) -> Any:
        """OpenAI chat completions, whole or streamed."""
        return await self._guarded(request, ChatCompletionRequest)

    @api.post("/v1/completions")
    async def completions(self, request: Request) -> Any:
        """OpenAI (legacy) text completions, whole or streamed."""
        return await self._guarded(request, CompletionRequest)

    async def _guarded(
        self, request: Request, cls: type[ChatCompletionRequest] | type[CompletionRequest]
    ) -> Any:
        """Serve a request; anything unexpected becomes a 500 JSON error, never a crash."""
        try:
            return await self._serve(request, cls)
        except ApiError:
            raise
        except Exception as exc:
            log.exception("request failed")
            message = f"internal error: {type(exc).__name__}: {exc}"[:500]
            raise ApiError(500, message, type="server_error", code="internal_error") from exc

    async def _serve(
        self, request: Request, cls: type[ChatCompletionRequest] | type[CompletionRequest]
    ) -> Any:
        self._authorize(request)
        req, params, model_id = await self._prepare(request, cls)
        handle = (
            self.generator.options(multiplexed_model_id=model_id) if model_id else (self.generator)
        )
        chat = cls is ChatCompletionRequest
        if req.stream:
            return await self._stream(handle, req, params, chat)
        try:
            result: RowResult = await handle.complete.remote(params)
        except Exception as exc:
            log.exception("generator call failed")
            raise ApiError(500, f"generation failed: {exc}"[:500], type="server_error") from exc
        if result.error:
            raise ApiError(
                result.status, result.error, error_type_for(result.status), None, result.code
            )
        usage = Usage(
            prompt_tokens=len(params.prompt_ids),
            completion_tokens=result.completion_tokens,
            total_tokens=len(params.prompt_ids) + result.completion_tokens,
        )
        if chat:
            body: Any = ChatCompletion(
                id=new_id("chatcmpl"),
                created=now(),
                model=req.model,
                usage=usage,
                choices=[
                    ChatChoice(
                        message=AssistantMessage(content=result.text),
                        finish_reason=result.finish_reason,
                    )
                ],
            )
        else:
            body = Completion(
                id=new_id("cmpl"),
                created=now(),
                model=req.model,
                usage=usage,
                choices=[CompletionChoice(text=result.text, finish_reason=result.finish_reason)],
            )
        return JSONResponse(body.model_dump())

    async def _prepare(
        self, request: Request, cls: type[ChatCompletionRequest] | type[CompletionRequest]
    ) -> tuple[Any, GenParams, str]:
        """Read (within the size limit), parse, validate and tokenize a request; every
        failure is an ApiError for this request alone."""
        from serving.prompts import generation_params

        limits = self.cfg.limits
        body = await read_limited(
            request.stream(), limits.max_request_bytes, request.headers.get("content-length")
        )
        req = parse_request(body, cls, limits.max_request_bytes)
        model_id = await self._model_id(req.model)
        params = generation_params(self.tokenizer, req, limits, self.context_length)
        return req, params, model_id

    async def _model_id(self, model: str) -> str:
        """The multiplexed model id for ``model``: "" for the base model, else the adapter
        (named ``NAME`` or ``BASE:NAME``)."""
        adapter = adapter_of(model, self.cfg.base_name)
        if not adapter:
            return ""
        if is_uri(self.cfg.adapters_dir):  # may download it: off the event loop
            entry = await asyncio.to_thread(resolve_adapter, adapter, self.cfg.adapters_dir)
        else:
            entry = resolve_adapter(adapter, self.cfg.adapters_dir)
        return entry.name

    async def _adapters(self) -> dict[str, AdapterEntry]:
        """Every adapter of the adapters directory (or store, mirrored off the event loop)."""
        if is_uri(self.cfg.adapters_dir):
            return await asyncio.to_thread(scan_adapters, self.cfg.adapters_dir)
        return scan_adapters(self.cfg.adapters_dir)

    async def _stream(
        self, handle: DeploymentHandle, req: Any, params: GenParams, chat: bool
    ) -> StreamingResponse:
        """Start a streamed generation; errors before the first token keep their status."""
        deltas = handle.options(stream=True).stream.remote(params)
        try:
            first: StreamDelta = await deltas.__anext__()
        except StopAsyncIteration:
            first = StreamDelta(finish_reason="length")
        except Exception as exc:
            log.exception("generator stream failed")
            raise ApiError(500, f"generation failed: {exc}"[:500], type="server_error") from exc
        if first.error:
            raise ApiError(
                first.status, first.error, error_type_for(first.status), None, first.code
            )
        events = sse_events(first, deltas, req, len(params.prompt_ids), chat)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
