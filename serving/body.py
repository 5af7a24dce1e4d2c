"""A request body from the wire to a JSON object: read within the size limit, decoded safely.

Reading: the limit is enforced while the body arrives, chunk by chunk, so a client that
sends a 100 MB chunked body (no Content-Length) is refused once the limit is passed, having
cost the ingress at most the limit plus one chunk, not the whole body. Under Ray Serve the
HTTP proxy in front of the ingress reads the socket ahead of the ingress without
backpressure (it queues every ``http.request`` message for the replica to fetch), so what
the proxy buffers before the ingress answers 413 is bounded only by how fast the client
sends; a reverse proxy with a body limit in front of Serve bounds that (docs/security.md).

Decoding: ``json.loads`` accepts things no OpenAI client sends and the models must not
see: ``NaN``/``Infinity`` and number literals that overflow to infinity, nesting deep enough
to exhaust the recursion limit (a RecursionError, which used to be a 500), and ``\\ud800``
escapes that decode to lone surrogates, which the tokenizer cannot encode. Each is a 400
naming the problem.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterable
from typing import Any

from serving.errors import ApiError, shown

MAX_JSON_DEPTH = 16
"""Deepest nesting of arrays and objects a request may have. A chat request with content
parts is 5 deep (body, messages, message, content, part); nothing finesift accepts is deeper."""


def too_large(size: int | None, max_bytes: int) -> ApiError:
    """The 413 for a body over ``max_bytes`` (``size`` when known, else "more than")."""
    told = f"{size} bytes" if size is not None else f"more than {max_bytes} bytes"
    return ApiError(
        413,
        f"request body is {told}, over the limit of {max_bytes}; send a shorter prompt",
        code="request_too_large",
    )


async def read_limited(
    chunks: AsyncIterable[bytes], max_bytes: int, declared_length: str | None = None
) -> bytes:
    """Read a body from its chunks, refusing it as soon as it passes ``max_bytes``.

    Args:
        chunks: the body as it arrives (Starlette's ``request.stream()``).
        max_bytes: the largest body accepted.
        declared_length: the Content-Length header, if any; a declared size over the
            limit is refused before anything is read.

    Raises:
        ApiError: 413 once the declared or the received size passes the limit; the rest
            of the body is never read.
    """
    if declared_length is not None and declared_length.strip().isdigit():
        declared = int(declared_length)
        if declared > max_bytes:
            raise too_large(declared, max_bytes)
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise too_large(None, max_bytes)
    return bytes(body)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; send a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range; send a finite number")
    return value


def decode_json_object(body: bytes, max_bytes: int) -> dict[str, Any]:
    """Decode a request body that must be a JSON object of modest depth and valid text.

    Args:
        body: the raw body.
        max_bytes: bodies larger than this get 413 without being parsed.

    Raises:
        ApiError: 413 for an oversized body; 400 (code ``invalid_json``) for malformed
            JSON, NaN or infinite numbers, nesting deeper than :data:`MAX_JSON_DEPTH`,
            strings holding lone surrogates, or anything but an object at the top.
    """
    if len(body) > max_bytes:
        raise too_large(len(body), max_bytes)
    try:
        data = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise _invalid(f"request body is nested too deeply (limit {MAX_JSON_DEPTH})") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, our own refusals
        raise _invalid(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _invalid("request body must be a JSON object")
    check_structure(data)
    return data


def check_structure(data: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_JSON_DEPTH` and strings that are not valid
    Unicode (lone surrogates), without recursion, so no input can exhaust the stack.

    Raises:
        ApiError: 400 naming the path of the first offending value.
    """
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            _check_text(value, path)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise _invalid(
                f"request body is nested more than {MAX_JSON_DEPTH} levels deep at "
                f"{shown(path) if path else 'the top'}; no field of this API needs that",
                param=path or None,
            )
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                _check_text(key, where)
            stack.append((item, depth + 1, where))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where, code = shown(path) if path else "body", ord(text[exc.start])
        raise _invalid(
            f"field {where} holds a lone surrogate (\\u{code:04x}), "
            "which is not valid Unicode; send UTF-8 text",
            param=path or None,
        ) from exc


def _invalid(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_json")
