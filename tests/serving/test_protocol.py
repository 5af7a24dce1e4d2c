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
            "user": "someone",  # OpenAI fields that do not touch the answer are accepted
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


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", "16"),
        ("max_tokens", True),
        ("max_tokens", 16.5),
        ("max_tokens", 16.0),
        ("max_completion_tokens", "7"),
        ("temperature", "0.5"),
        ("temperature", True),
        ("top_p", "1"),
        ("seed", "42"),
        ("seed", 4.2),
        ("stream", "true"),
        ("stream", 1),
        ("stop", 5),
        ("model", 7),
        ("stream_options", {"include_usage": "yes"}),
    ],
)
def test_types_are_strict_never_coerced(field, value):
    err = parse_error(chat(**{field: value}))
    assert (err.status, err.code) == (400, "invalid_value")
    assert err.param.split(".")[0] == field and field in err.message


@pytest.mark.parametrize("seed", [2**64, -(2**63) - 1, 10**30])
def test_seed_out_of_the_samplers_range_is_400_at_the_edge(seed):
    err = parse_error(chat(seed=seed, temperature=1.0))
    assert (err.status, err.param) == (400, "seed")


def test_seed_and_numbers_at_their_bounds_are_accepted():
    for seed in (2**64 - 1, -(2**63), 0):
        assert parse_request(chat(seed=seed), ChatCompletionRequest, LIMIT).seed == seed
    req = parse_request(chat(temperature=2, top_p=1, max_tokens=1), ChatCompletionRequest, LIMIT)
    assert (req.temperature, req.top_p, req.max_tokens) == (2.0, 1.0, 1)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
        ({"functions": [{"name": "f", "parameters": {}}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"tool_choice": "auto"}, "tool_choice"),
        ({"best_of": 3}, "best_of"),
        ({"n": True}, "n"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"logit_bias": {"50": 10}}, "logit_bias"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy"}}, "audio"),
        ({"reasoning_effort": "high"}, "reasoning_effort"),
        ({"store": True}, "store"),
        ({"echo": True}, "echo"),
        ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages.0.name"),
    ],
)
def test_fields_that_would_be_ignored_are_refused_naming_them(fields, param):
    err = parse_error(chat(**fields))
    assert (err.status, err.param, err.code) == (400, param, "unsupported_parameter")
    assert err.message.startswith(f"unsupported field {param}: ")


def test_neutral_values_of_unsupported_fields_are_accepted():
    neutral = {
        "n": 1,
        "best_of": 1,
        "logprobs": False,
        "top_logprobs": 0,
        "tools": [],
        "tool_choice": "none",
        "response_format": {"type": "text"},
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "logit_bias": {},
        "store": False,
        "modalities": ["text"],
        "audio": None,
        "user": "u-1",
        "metadata": {"run": "7"},
        "service_tier": "auto",
        "parallel_tool_calls": False,
    }
    req = parse_request(chat(**neutral), ChatCompletionRequest, LIMIT)
    assert req.model == "base" and req.user == "u-1"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"repetition_penalty": 1.2}, "repetition_penalty"),
        ({"messages": [{"role": "user", "content": "x", "weight": 1}]}, "messages.0.weight"),
        ({"stream_options": {"include_usage": True, "chunk": 4}}, "stream_options.chunk"),
    ],
)
def test_unknown_fields_are_refused_naming_them(fields, param):
    err = parse_error(chat(**fields))
    assert (err.status, err.param, err.code) == (400, param, "unknown_parameter")
    assert "remove it" in err.message


def test_a_bad_content_part_names_the_part_not_the_union():
    err = parse_error(chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]))
    assert err.param == "messages.0.content.0.type"


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


def test_client_given_names_are_shown_on_one_line():
    """Found by the fuzz tests: a field named "\\n" broke the one-line error message."""
    err = parse_error(chat(**{"\n": 1, "model": "base"}))
    assert err.param == "\n" and "\n" not in err.message and "'\\n'" in err.message
    err = parse_error(chat(**{"x" * 500: 1}))
    assert len(err.message) < 300
