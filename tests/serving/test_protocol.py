"""Request parsing and validation, error shapes, prompts and limits (no Ray, no model)."""

from __future__ import annotations

import json

import pytest

from serving.protocol import (
    ApiError,
    ChatCompletionRequest,
    CompletionRequest,
    error_body,
    parse_request,
    sse,
)

LIMIT = 10_000


def parse_error(body: bytes, cls=ChatCompletionRequest, limit: int = LIMIT) -> ApiError:
    with pytest.raises(ApiError) as info:
        parse_request(body, cls, limit)
    return info.value


def chat(**fields) -> bytes:
    data = {"model": "base", "messages": [{"role": "user", "content": "hi"}], **fields}
    return json.dumps(data).encode()


def test_error_body_has_openai_shape():
    err = ApiError(404, "no such model", type="not_found_error", param="model", code="x")
    assert err.body() == {
        "error": {
            "message": "no such model",
            "type": "not_found_error",
            "param": "model",
            "code": "x",
        }
    }
    assert set(error_body("m", "t")["error"]) == {"message", "type", "param", "code"}


def test_valid_chat_request_parses_with_defaults_and_content_parts():
    body = json.dumps(
        {
            "model": "tiny-a",
            "messages": [
                {"role": "system", "content": "be brief"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
            ],
            "stop": "END",
            "user": "someone",  # unknown OpenAI fields are ignored
        }
    ).encode()
    req = parse_request(body, ChatCompletionRequest, LIMIT)
    assert req.model == "tiny-a"
    assert req.messages[1].text() == "ab"
    assert req.stop_list() == ["END"]
    assert req.wanted_tokens(64) == 64
    assert not req.stream and req.temperature == 1.0


def test_malformed_json_is_400_invalid_json():
    err = parse_error(b'{"model": "base", ')
    assert (err.status, err.code) == (400, "invalid_json")
    assert parse_error(b"[1, 2]").status == 400  # JSON, but not an object


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ],
)
def test_bad_fields_are_400_naming_the_field(fields, param):
    err = parse_error(chat(**fields))
    assert err.status == 400
    assert err.param == param
    assert param.split(".")[0] in err.message


def test_missing_model_is_400():
    err = parse_error(json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode())
    assert (err.status, err.param) == (400, "model")


def test_oversized_body_is_413_before_parsing():
    err = parse_error(b"x" * 2000, limit=1024)
    assert (err.status, err.code) == (413, "request_too_large")


def test_completion_request_takes_one_prompt():
    req = parse_request(b'{"model": "base", "prompt": ["hello"]}', CompletionRequest, LIMIT)
    assert req.prompt_text() == "hello"
    err = parse_error(b'{"model": "base", "prompt": ["a", "b"]}', CompletionRequest)
    assert err.param == "prompt"
    assert (
        parse_error(b'{"model": "base", "prompt": "a", "echo": true}', CompletionRequest).param
        == "echo"
    )


def test_stream_options_and_max_completion_tokens():
    req = parse_request(
        chat(stream=True, stream_options={"include_usage": True}, max_completion_tokens=7),
        ChatCompletionRequest,
        LIMIT,
    )
    assert req.include_usage() and req.wanted_tokens(64) == 7


def test_sse_frames_events():
    assert sse("[DONE]") == "data: [DONE]\n\n"
    assert json.loads(sse({"a": 1})[len("data: ") :]) == {"a": 1}
