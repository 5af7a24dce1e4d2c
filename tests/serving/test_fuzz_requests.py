"""Property-based tests of the serving boundary: any body gets a parsed request or an
OpenAI-shaped 4xx error, never an exception, and whatever passes can be decoded.

Bodies are generated field by field (every request field with values of its type, of its
range and just outside it, of other types, and nested), as raw bytes, as JSON cut short or
with a flipped byte, and deeply nested. Profiles are in tests/conftest.py: a few dozen
examples per test by default, many more with HYPOTHESIS_PROFILE=full (make test-all).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving.adapters import resolve_adapter
from serving.config import LimitsConfig
from serving.protocol import (
    SEED_MAX,
    SEED_MIN,
    ApiError,
    ChatCompletionRequest,
    CompletionRequest,
    parse_request,
)
from serving.unsupported import UNSUPPORTED

LIMIT = 20_000
LIMITS = LimitsConfig(max_prompt_tokens=64, max_tokens=32, default_max_tokens=4)

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def around(low: float, high: float) -> st.SearchStrategy[Any]:
    """Numbers inside ``[low, high]``, at and just past its ends, as ints and floats."""
    edges = [low, high, low - 1, high + 1, low - 1e-9, high + 1e-9]
    return (
        st.floats(min_value=low - 2, max_value=high + 2, allow_nan=False)
        | st.integers(min_value=int(low) - 2, max_value=int(high) + 2)
        | st.sampled_from(edges)
    )


texts = st.text(max_size=40) | st.sampled_from(["", "Add 2 and 3.", "\u00e9\u4e2d\U0001f600"])
part = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": texts})
message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "developer", "user", "assistant", "tool", "robot"]),
        "content": texts | st.lists(part, max_size=3) | json_values,
    },
    optional={"name": st.text(max_size=4), "weight": json_values},
)
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "max_tokens": around(1, 40) | st.integers(min_value=2**31 - 2, max_value=2**63),
    "max_completion_tokens": around(1, 40),
    "temperature": around(0, 2) | st.sampled_from([1e-300, 5e-324, 1e-6]),
    "top_p": around(0, 1) | st.sampled_from([1e-300, 5e-324]),
    "seed": st.integers(min_value=SEED_MIN - 2, max_value=SEED_MAX + 2)
    | st.sampled_from([SEED_MIN, SEED_MAX, SEED_MIN - 1, SEED_MAX + 1, 2**64, 10**30]),
    "stop": texts | st.lists(texts, max_size=6),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "user": texts,
    "metadata": st.dictionaries(st.text(max_size=5), texts, max_size=3),
    **{name: st.sampled_from([None, *neutral]) for name, (neutral, _) in UNSUPPORTED.items()},
    "top_k": st.integers(0, 50),  # not an OpenAI field: unknown
}


@st.composite
def request_dicts(draw: st.DrawFn, chat: bool) -> dict[str, Any]:
    """A request object: mostly well-formed, with fields drawn from their types, ranges,
    other types and nesting; sometimes without a required field or with an unknown one."""
    body: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # a missing model now and then
        body["model"] = draw(st.sampled_from(["base", "tiny-a", "../x", "", "a" * 300]) | texts)
    if chat:
        body["messages"] = draw(st.lists(message, min_size=0, max_size=3) | json_values)
    else:
        body["prompt"] = draw(texts | st.lists(texts, max_size=2) | json_values)
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=6, unique=True)):
        body[name] = draw(FIELDS[name] | json_values)  # its type and range, or anything
    if draw(st.booleans()):
        body[draw(st.text(max_size=10))] = draw(json_values)
    return body


def nested(depth: int) -> bytes:
    return b'{"model": "base", "prompt": "x", "stop": ' + b"[" * depth + b"]" * depth + b"}"


def to_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, allow_nan=False).encode()


raw_bodies = st.one_of(
    st.builds(to_json, request_dicts(chat=True)),
    st.builds(to_json, request_dicts(chat=False)),
    st.binary(max_size=120),
    st.builds(nested, st.integers(min_value=1, max_value=3000)),
    st.sampled_from(
        [b'{"model": "base", "temperature": NaN}', b'{"seed": 1e999}', b"\xef\xbb\xbf{}"]
    ),
    # JSON cut short, or with one byte changed.
    st.builds(
        lambda b, cut: b[: cut % (len(b) + 1)],
        st.builds(to_json, request_dicts(chat=True)),
        st.integers(0, 500),
    ),
    st.builds(
        lambda b, at, byte: b[: at % len(b)] + bytes([byte]) + b[at % len(b) + 1 :],
        st.builds(to_json, request_dicts(chat=True)),
        st.integers(0, 500),
        st.integers(0, 255),
    ),
)


def outcome(body: bytes, cls: type) -> Any:
    """The parsed request, or the ApiError (checked to be an OpenAI-shaped 4xx)."""
    try:
        return parse_request(body, cls, LIMIT)
    except ApiError as err:
        assert 400 <= err.status < 500, err.message
        error = err.body()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["message"] and "\n" not in error["message"]
        json.dumps(err.body())  # serializable as sent
        return err


def check_parsed(req: Any) -> None:
    """What a request that passed the edge is guaranteed to hold."""
    assert isinstance(req.model, str) and 1 <= len(req.model) <= 256
    assert isinstance(req.temperature, float) and 0.0 <= req.temperature <= 2.0
    assert isinstance(req.top_p, float) and 0.0 < req.top_p <= 1.0
    assert req.seed is None or (type(req.seed) is int and SEED_MIN <= req.seed <= SEED_MAX)
    for tokens in (req.max_tokens, req.max_completion_tokens):
        assert tokens is None or (type(tokens) is int and tokens >= 1)
    assert all(isinstance(s, str) and s for s in req.stop_list())
    assert type(req.stream) is bool and type(req.include_usage()) is bool
    assert math.isfinite(req.temperature)


@given(raw_bodies, st.sampled_from([ChatCompletionRequest, CompletionRequest]))
def test_any_body_is_a_request_or_an_openai_shaped_4xx(body, cls):
    result = outcome(body, cls)
    if not isinstance(result, ApiError):
        check_parsed(result)


@given(st.sampled_from(sorted(UNSUPPORTED)), json_values)
def test_unsupported_fields_pass_only_with_their_neutral_value(name, value):
    body = {"model": "base", "prompt": "hi", name: value}
    result = outcome(to_json(body), CompletionRequest)
    neutral = value is None or any(
        json.dumps(value) == json.dumps(n) and type(value) is type(n) for n in UNSUPPORTED[name][0]
    )
    if isinstance(result, ApiError):
        assert result.param == name and not neutral
    else:
        assert neutral or isinstance(value, float)  # 0.0 is as neutral as 0


@given(st.text(min_size=1, max_size=20).filter(lambda k: k not in FIELDS), json_values)
def test_unknown_top_level_fields_are_refused_by_name(name, value):
    known = set(ChatCompletionRequest.model_fields) | set(UNSUPPORTED)
    body = {"model": "base", "messages": [{"role": "user", "content": "hi"}], name: value}
    result = outcome(to_json(body), ChatCompletionRequest)
    if name in known:
        return
    assert isinstance(result, ApiError) and result.param == name
    assert result.code == "unknown_parameter"


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> Any:
    from serving.engine import GenerationEngine

    return GenerationEngine(tiny_model_dir)


@pytest.fixture(scope="module")
def no_adapters(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("no-adapters")


@given(
    body=st.one_of(
        st.builds(to_json, request_dicts(chat=True)), st.builds(to_json, request_dicts(chat=False))
    )
)
def test_whatever_passes_the_edge_decodes_without_failing_its_batch(engine, no_adapters, body):
    """The ingress's whole path (parse, model name, template, tokens, limits), then two
    decoding steps beside an honest row: the honest row's answer never changes."""
    from serving.prompts import generation_params
    from serving.sampling import GenParams

    for cls in (ChatCompletionRequest, CompletionRequest):
        req = outcome(body, cls)
        if isinstance(req, ApiError):
            continue
        try:
            if req.model != "base":
                resolve_adapter(req.model, no_adapters)
            params = generation_params(engine.tokenizer, req, LIMITS, context_length=128)
        except ApiError as err:
            assert 400 <= err.status < 500, err.message
            continue
        honest = GenParams(tuple(engine.tokenizer("Add 2 and 3.")["input_ids"]), 2, 0.0)
        fuzzed = dataclasses.replace(params, max_tokens=min(params.max_tokens, 2))
        results = engine.generate([honest, fuzzed])
        assert results[0] == engine.generate([honest])[0]
        assert results[1].error is None, results[1].error
