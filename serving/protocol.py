"""OpenAI's request and response shapes as pydantic models, and its JSON error shape.

Only what finesift serves is modelled: chat and text completions with one choice,
optional streaming and usage counts. Unknown request fields are ignored, as OpenAI
clients send many; fields that would change the answer in a way we cannot honour
(``n > 1``, ``logprobs``, ``echo``, tools) are refused with a 400 naming the field.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with an HTTP status, in OpenAI's shape.

    Args:
        status: HTTP status code.
        message: what went wrong and how to fix it.
        type: OpenAI error type, e.g. ``invalid_request_error``.
        param: the request field at fault, if any.
        code: a short machine-readable code, e.g. ``model_not_found``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse: ``{"error": {message, type, param, code}}``."""
        return error_body(self.message, self.type, self.param, self.code)


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_type_for(status: int) -> str:
    """The OpenAI error ``type`` conventionally used with an HTTP status."""
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")


class _Request(BaseModel):
    """Fields shared by chat and text completions requests."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    logprobs: bool | int | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported; send several requests for more choices")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | int | None) -> bool | int | None:
        if value:
            raise ValueError("logprobs are not supported; leave logprobs unset")
        return value

    def stop_list(self) -> list[str]:
        """``stop`` as a list without empty strings."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def wanted_tokens(self, default: int) -> int:
        """``max_tokens`` (or the newer ``max_completion_tokens``), else ``default``."""
        return self.max_tokens or self.max_completion_tokens or default

    def include_usage(self) -> bool:
        """Whether a stream ends with a usage-only chunk (``stream_options.include_usage``)."""
        return bool((self.stream_options or {}).get("include_usage"))


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are served."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]

    def text(self) -> str:
        """The message's content as one string (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_Request):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    tools: list[Any] | None = None

    @field_validator("tools")
    @classmethod
    def _no_tools(cls, value: list[Any] | None) -> list[Any] | None:
        if value:
            raise ValueError("tool calling is not supported; leave tools unset")
        return value


class CompletionRequest(_Request):
    """POST /v1/completions."""

    prompt: str | list[str]
    echo: bool = False
    suffix: str | None = None

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("send exactly one prompt per request (a string or a 1-item list)")
        return value

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, value: bool) -> bool:
        if value:
            raise ValueError("echo is not supported; leave it false")
        return value

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("suffix (insertion) is not supported; leave it unset")
        return value

    def prompt_text(self) -> str:
        """The single prompt string."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


R = TypeVar("R", bound=_Request)


class Usage(BaseModel):
    """Token counts of one request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    """The message of a chat completion choice."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One choice of a chat completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class ChatCompletion(BaseModel):
    """Response of POST /v1/chat/completions."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class CompletionChoice(BaseModel):
    """One choice of a text completion."""

    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"]
    logprobs: None = None


class Completion(BaseModel):
    """Response of POST /v1/completions."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ChunkDelta(BaseModel):
    """What a chat stream chunk adds to the message."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    """One choice of a chat stream chunk."""

    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


class CompletionChunkChoice(BaseModel):
    """One choice of a text completion stream chunk."""

    index: int = 0
    text: str
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class CompletionChunk(BaseModel):
    """One server-sent event of a streamed text completion (OpenAI reuses text_completion)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None


class ModelCard(BaseModel):
    """One entry of GET /v1/models."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """Response of GET /v1/models."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def parse_request(body: bytes, cls: type[R], max_bytes: int) -> R:
    """Parse and validate a request body, turning every failure into an :class:`ApiError`.

    Args:
        body: the raw HTTP body.
        cls: ChatCompletionRequest or CompletionRequest.
        max_bytes: bodies larger than this get 413 without being parsed.

    Raises:
        ApiError: 413 for an oversized body, 400 for malformed JSON or a bad field (its
            ``param`` names the field).
    """
    if len(body) > max_bytes:
        raise ApiError(
            413,
            f"request body is {len(body)} bytes, over the limit of {max_bytes}; send a "
            "shorter prompt",
            code="request_too_large",
        )
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        message = first["msg"].removeprefix("Value error, ")
        raise ApiError(
            400, f"invalid field {param}: {message}", param=param, code="invalid_value"
        ) from exc


def new_id(prefix: str) -> str:
    """An OpenAI-style object id such as ``chatcmpl-3f2a...``."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix time in seconds, as OpenAI's ``created`` fields hold."""
    return int(time.time())


def sse(payload: BaseModel | dict[str, Any] | str) -> str:
    """One server-sent event: ``data: {...}\\n\\n`` (or ``data: [DONE]\\n\\n``)."""
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(exclude_none=False)
    elif isinstance(payload, dict):
        text = json.dumps(payload)
    else:
        text = payload
    return f"data: {text}\n\n"
