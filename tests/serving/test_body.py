"""Request bodies: the size limit enforced while reading, and safe JSON decoding (no Ray)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from starlette.requests import Request

from serving.body import MAX_JSON_DEPTH, decode_json_object, read_limited
from serving.errors import ApiError

LIMIT = 4096
CHUNK = 1024


class Sender:
    """An ASGI ``receive`` that sends ``total`` bytes in chunks, counting what was taken."""

    def __init__(self, total: int, chunk: int = CHUNK) -> None:
        self.total, self.chunk, self.sent = total, chunk, 0

    async def __call__(self) -> dict:
        size = min(self.chunk, self.total - self.sent)
        self.sent += size
        return {"type": "http.request", "body": b"x" * size, "more_body": self.sent < self.total}


def request(receive: Sender, headers: dict[str, str] | None = None) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "headers": raw}, receive)


def read(receive: Sender, headers: dict[str, str] | None = None) -> bytes:
    req = request(receive, headers)
    return asyncio.run(read_limited(req.stream(), LIMIT, req.headers.get("content-length")))


def test_a_chunked_100_mb_body_is_refused_after_the_limit_plus_one_chunk():
    sender = Sender(100 * 2**20)  # no Content-Length: a chunked upload
    with pytest.raises(ApiError) as info:
        read(sender)
    assert (info.value.status, info.value.code) == (413, "request_too_large")
    assert str(LIMIT) in info.value.message
    assert sender.sent <= LIMIT + CHUNK


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    sender = Sender(100 * 2**20)
    with pytest.raises(ApiError) as info:
        read(sender, {"Content-Length": str(100 * 2**20)})
    assert info.value.status == 413 and sender.sent == 0


def test_a_lying_content_length_does_not_lift_the_limit():
    sender = Sender(10 * LIMIT)
    with pytest.raises(ApiError):
        read(sender, {"Content-Length": "10"})
    assert sender.sent <= LIMIT + CHUNK


def test_a_body_at_the_limit_is_read_whole():
    assert read(Sender(LIMIT)) == b"x" * LIMIT
    assert read(Sender(0)) == b""


def test_the_ingress_stops_reading_a_chunked_body_at_the_limit():
    """The ingress's own method, without Ray: it used to read every byte before the 413."""
    from serving.config import LimitsConfig, ServeConfig
    from serving.ingress import OpenAIIngress
    from serving.protocol import ChatCompletionRequest

    # The method on a plain object: an instance of Serve's wrapper class has an async __del__.
    ingress = SimpleNamespace(cfg=ServeConfig(limits=LimitsConfig(max_request_bytes=LIMIT)))
    prepare = OpenAIIngress.func_or_class._prepare
    sender = Sender(20 * 2**20)
    with pytest.raises(ApiError) as info:
        asyncio.run(prepare(ingress, request(sender), ChatCompletionRequest))
    assert info.value.status == 413
    assert sender.sent <= LIMIT + CHUNK


def decode_error(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as info:
        decode_json_object(body, 10**7)
    assert info.value.status == 400 and info.value.code == "invalid_json"
    return info.value


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deep_nesting_is_a_400_never_a_recursion_error(depth):
    body = b'{"model": "base", "stream_options": ' + b"[" * depth + b"]" * depth + b"}"
    assert "nested" in decode_error(body).message


def test_nesting_up_to_the_limit_decodes():
    inner = MAX_JSON_DEPTH - 1
    body = b'{"x": ' + b"[" * inner + b"]" * inner + b"}"
    assert "x" in decode_json_object(body, 10**6)


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
def test_non_finite_numbers_are_refused(number):
    assert "finite" in decode_error(b'{"temperature": ' + number + b"}").message


def test_huge_integer_literals_are_a_400():
    decode_error(b'{"seed": ' + b"9" * 5000 + b"}")


def test_lone_surrogates_are_refused_naming_the_field():
    err = decode_error(b'{"messages": [{"role": "user", "content": "hi \\ud800"}]}')
    assert err.param == "messages.0.content" and "surrogate" in err.message
    assert decode_error(b'{"\\udfff": 1}').param == "\udfff"
    # A surrogate pair is one valid character.
    assert decode_json_object(b'{"a": "\\ud83d\\ude00"}', 100) == {"a": "\U0001f600"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"3", b"null", b"\xff\xfe{", b""])
def test_anything_but_a_json_object_is_a_400(body):
    decode_error(body)


def test_an_oversized_body_is_413_before_parsing():
    with pytest.raises(ApiError) as info:
        decode_json_object(json.dumps({"a": "x" * 100}).encode(), 50)
    assert info.value.status == 413
