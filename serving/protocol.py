"""OpenAI's request and response shapes as pydantic models, and the parsing of a request body.

Only what finesift serves is modelled: chat and text completions with one choice,
optional streaming and usage counts. Requests are strict, so what a client gets is what it
asked for:

* types are not coerced (``"max_tokens": "16"``, ``true`` or ``16.5`` is a 400, not 16 or 1),
  and every number has its range (``seed`` must fit a 64-bit sampler seed);
* OpenAI fields that would change the answer in a way finesift cannot honour (``n > 1``,
  ``best_of``, ``logprobs``, ``echo``, tools and functions, ``response_format``, penalties,
  ``logit_bias``...) are refused with a 400 naming the field, unless they hold their neutral
  value (``n: 1``, ``presence_penalty: 0``, ``response_format: {"type": "text"}``);
* fields that do not touch the answer (``user``, ``metadata``, ``service_tier``...) are
  accepted and have no effect;
* any other field is refused as unknown: an extension such as ``top_k`` or
  ``repetition_penalty``, silently ignored, would give a different answer than asked for.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from serving.body import decode_json_object
from serving.errors import ApiError, error_body, error_type_for, shown
from serving.unsupported import MESSAGE_UNSUPPORTED, UNSUPPORTED, refuse_unsupported

# Errors moved to serving/errors.py; importing them from here keeps working.
__all__ = ["ApiError", "error_body", "error_type_for"]

MAX_INT32 = 2**31 - 1
SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1
"""The seeds a sampler takes (torch.Generator.manual_seed's range)."""

STRICT = ConfigDict(extra="forbid", strict=True)
"""Request models: no type coercion, no unknown fields."""


class StreamOptions(BaseModel):
    """``stream_options`` of a streamed request."""

    model_config = STRICT

    include_usage: bool = False
    include_obfuscation: bool | None = None  # accepted; streams are never padded here


class _Request(BaseModel):
    """Fields shared by chat and text completions requests."""

    model_config = STRICT

    model: str = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_INT32)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=SEED_MIN, le=SEED_MAX)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Accepted, no effect on the answer.
    user: str | None = Field(default=None, max_length=512)
    safety_identifier: str | None = Field(default=None, max_length=512)
    prompt_cache_key: str | None = Field(default=None, max_length=512)
    metadata: dict[str, str] | None = None
    service_tier: str | None = Field(default=None, max_length=64)
    parallel_tool_calls: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, UNSUPPORTED)

    def stop_list(self) -> list[str]:
        """``stop`` as a list without empty strings."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def wanted_tokens(self, default: int) -> int:
        """``max_tokens`` (or the newer ``max_completion_tokens``), else ``default``."""
        return self.max_tokens or self.max_completion_tokens or default

    def include_usage(self) -> bool:
        """Whether a stream ends with a usage-only chunk (``stream_options.include_usage``)."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ContentPart(BaseModel):
    """One part of a message's content; only text parts are served."""

    model_config = STRICT

    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One chat message."""

    model_config = STRICT

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart]

    @model_validator(mode="before")
    @classmethod
    def _unsupported(cls, data: Any) -> Any:
        return refuse_unsupported(data, MESSAGE_UNSUPPORTED)

    def text(self) -> str:
        """The message's content as one string (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_Request):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(_Request):
    """POST /v1/completions."""

    prompt: str | list[str]

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("send exactly one prompt per request (a string or a 1-item list)")
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
        ApiError: 413 for an oversized body, 400 for malformed or unsafe JSON
            (serving/body.py) or a bad, unsupported or unknown field (its ``param``
            names the field).
    """
    data = decode_json_object(body, max_bytes)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc) from exc


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "dict", "list"}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def field_error(exc: ValidationError) -> ApiError:
    """The 400 for a request that failed validation, naming the most specific field at fault.

    Union members add their type to pydantic's error locations
    (``messages.0.content.list[ContentPart].0.type``); they are left out of ``param``.
    """
    first = max(exc.errors(), key=lambda e: len(e["loc"]))  # the deepest is most specific
    *path, last = first["loc"] or ("",)
    loc = [str(p) for p in path if not _is_union_tag(p)]
    if first["type"] == "extra_forbidden" or not _is_union_tag(last):  # an unknown key stays
        loc.append(str(last))
    loc = [p for p in loc if p]
    field = (first.get("ctx") or {}).get("field")
    if field:
        loc.append(field)
    param = ".".join(loc) or None
    name = shown(param or "")
    kind, message = first["type"], first["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return ApiError(
            400,
            f"unknown field {name}: this server does not support it (it would be ignored, "
            "and the answer would not be what you asked for); remove it",
            param=param,
            code="unknown_parameter",
        )
    if kind == "unsupported_field":
        return ApiError(
            400,
            f"unsupported field {name}: {message}",
            param=param,
            code="unsupported_parameter",
        )
    got = first.get("input")
    if kind.endswith("_type") and got is not None:
        message += f" (got {_JSON_TYPES.get(type(got), 'a number')})"
    return ApiError(400, f"invalid field {name}: {message}", param=param, code="invalid_value")


def _is_union_tag(part: str | int) -> bool:
    """Whether a location part is a union member's tag (``str``, ``list[ContentPart]``)."""
    return isinstance(part, str) and (
        "[" in part or part in _TYPE_TAGS or part in ("ContentPart", "StreamOptions")
    )


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
