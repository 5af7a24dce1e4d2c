"""End to end: the Serve app on a free local port, the tiny Llama and tiny LoRA adapters.

Called with the official ``openai`` client and with raw HTTP (urllib) for the error cases.
One app serves the whole module; it requires an API key, so every call sends it.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serving.conftest import tiny_server

pytestmark = pytest.mark.ray

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(
    method: str,
    url: str,
    body: object = None,
    raw: bytes | None = None,
    headers: dict | None = None,
) -> tuple[int, dict | str]:
    """One raw HTTP call; returns (status, parsed JSON or text)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def assert_error(status: int, body: object, expected: int, code: str | None = None) -> dict:
    """An OpenAI-shaped error with the expected status (and code)."""
    assert status == expected, body
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(scope="module")
def server(ray_session, tiny_model_dir, adapters_template, tmp_path_factory):
    """The app with limits small enough to hit, two CPUs' worth of test budget."""
    settings = [
        "limits.max_prompt_tokens=64",
        "limits.max_tokens=32",
        "limits.default_max_tokens=8",
        "limits.max_request_bytes=4096",
        "batching.max_batch_size=4",
        "batching.batch_wait_timeout_s=0.05",
        "scaling.num_cpus=1",
        "scaling.max_replicas=1",  # one replica, so generator_info() sees every batch
        "scaling.max_ongoing_requests=16",
        "max_adapters_per_replica=2",
        "app_name=finesift-test",
    ]
    workdir = tmp_path_factory.mktemp("served")
    with tiny_server(tiny_model_dir, adapters_template, workdir, settings, KEY) as (url, dirs, cfg):
        yield {"url": url, "adapters": dirs, "cfg": cfg}


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=server["url"], api_key=KEY, max_retries=0, timeout=60)


def generator_info() -> dict:
    from ray import serve

    handle = serve.get_deployment_handle("Generator", app_name="finesift-test")
    return handle.info.remote().result(timeout_s=30)


def test_models_list_has_base_and_servable_adapters(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "base"
    assert {"tiny-a", "tiny-b", "tiny-c", "misfit"} <= set(ids)
    # Never offered: pickle weights, corrupt safetensors, weights linked from outside.
    assert not {"pickled", "broken", "escaped"} & set(ids)


@pytest.mark.parametrize("name", ["broken", "escaped"])
def test_adapters_that_cannot_load_are_refused_without_server_paths(server, name):
    status, body = http(
        "POST", server["url"] + "/chat/completions", {"model": name, "messages": HELLO}
    )
    error = assert_error(status, body, 400, "invalid_adapter")
    assert name in error["message"]
    assert str(server["adapters"]) not in error["message"] and "/tmp" not in error["message"]


def test_chat_completion_shape_usage_and_determinism(client, server):
    out = client.chat.completions.create(model="base", messages=HELLO, max_tokens=6, temperature=0)
    assert out.object == "chat.completion" and out.model == "base"
    choice = out.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(server["cfg"].base_model)
    prompt = tok.apply_chat_template(HELLO, tokenize=False, add_generation_prompt=True)
    expected_prompt_tokens = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert out.usage.prompt_tokens == expected_prompt_tokens
    assert 1 <= out.usage.completion_tokens <= 6
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    again = client.chat.completions.create(
        model="base", messages=HELLO, max_tokens=6, temperature=0
    )
    assert again.choices[0].message.content == choice.message.content


def test_completions_honour_stop(client):
    def complete(**extra):
        return client.completions.create(
            model="tiny-a", prompt="Add 2 and 3.", max_tokens=12, temperature=0, **extra
        )

    full = complete()
    text = full.choices[0].text
    assert full.object == "text_completion" and full.usage.completion_tokens >= 1
    assert len(text) >= 2, text
    stop = text[-2:]
    cut = complete(stop=[stop])
    assert cut.choices[0].text == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_streaming_chat_matches_the_whole_answer(client, server):
    whole = (
        client.chat.completions.create(model="tiny-a", messages=HELLO, max_tokens=10, temperature=0)
        .choices[0]
        .message.content
    )
    stream = client.chat.completions.create(
        model="tiny-a",
        messages=HELLO,
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and not any(finishes[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 1
    # The raw wire format: data: lines, ending with [DONE].
    status, body = http(
        "POST",
        server["url"] + "/completions",
        {"model": "base", "prompt": "Add 2 and 3.", "max_tokens": 4, "stream": True},
    )
    assert status == 200
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "text_completion"


def test_adapters_change_answers_and_stay_within_the_lru(client):
    def answer(model: str) -> str:
        out = client.chat.completions.create(
            model=model, messages=HELLO, max_tokens=10, temperature=0
        )
        return out.choices[0].message.content

    answers = {m: answer(m) for m in ("base", "tiny-a", "tiny-b", "tiny-c")}
    assert len(set(answers.values())) == 4, answers
    assert answer("tiny-a") == answers["tiny-a"]  # reloaded after eviction, same weights
    assert len(generator_info()["attached"]) <= 2  # max_adapters_per_replica


def test_an_adapter_is_also_base_colon_name(client, server):
    """The form Ray Serve LLM lists (base_model_id:lora_id) routes to the same adapter, so
    a client written for the vLLM backend works here unchanged."""

    def answer(model: str) -> tuple[str, str]:
        out = client.chat.completions.create(
            model=model, messages=HELLO, max_tokens=10, temperature=0
        )
        return out.model, out.choices[0].message.content

    assert answer("base:tiny-a") == ("base:tiny-a", answer("tiny-a")[1])
    assert answer("base:tiny-b")[1] == answer("tiny-b")[1] != answer("base")[1]
    chat = server["url"] + "/chat/completions"
    error = assert_error(
        *http("POST", chat, {"model": "llama:tiny-a", "messages": HELLO}), 404, "model_not_found"
    )
    assert "'llama'" in error["message"]
    for bad in ("base:", "base:../tiny-a", "base:tiny-a:x"):
        assert_error(*http("POST", chat, {"model": bad, "messages": HELLO}), 400)
    assert_error(*http("POST", chat, {"model": "base:nope", "messages": HELLO}), 404)
    assert_error(*http("POST", chat, {"model": "base:pickled", "messages": HELLO}), 400)


def test_concurrent_requests_are_batched(client):
    def ask(i: int) -> str:
        out = client.completions.create(
            model="base", prompt=f"Add {i} and 3.", max_tokens=8, temperature=0
        )
        return out.choices[0].text

    before = generator_info()["batch_sizes"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert len(answers) == 8
    after = generator_info()["batch_sizes"]
    grown = {int(k): after[k] - before.get(k, 0) for k in after}
    assert any(size > 1 and count > 0 for size, count in grown.items()), grown


def test_adapter_added_at_runtime_is_served(client, server):
    assert "late" not in [m.id for m in client.models.list().data]
    status, _ = http(
        "POST", server["url"] + "/chat/completions", {"model": "late", "messages": HELLO}
    )
    assert status == 404
    shutil.copytree(server["adapters"] / "tiny-b", server["adapters"] / "late")
    assert "late" in [m.id for m in client.models.list().data]
    late = client.chat.completions.create(
        model="late", messages=HELLO, max_tokens=10, temperature=0
    )
    b = client.chat.completions.create(model="tiny-b", messages=HELLO, max_tokens=10, temperature=0)
    assert late.choices[0].message.content == b.choices[0].message.content


def test_auth(server):
    url = server["url"] + "/models"
    assert_error(*http("GET", url, headers={}), 401, "invalid_api_key")
    assert_error(*http("GET", url, headers={"Authorization": "Bearer wrong"}), 401)
    assert_error(
        *http(
            "POST",
            server["url"] + "/chat/completions",
            {"model": "base", "messages": HELLO},
            headers={},
        ),
        401,
    )
    assert http("GET", url)[0] == 200
    status, body = http("GET", server["url"].removesuffix("/v1") + "/healthz", headers={})
    assert (status, body) == (200, {"status": "ok"})


def test_request_errors_are_openai_shaped(server):
    chat = server["url"] + "/chat/completions"
    assert_error(*http("POST", chat, raw=b'{"model": "base", "messages": ['), 400, "invalid_json")
    assert_error(*http("POST", chat, {"model": "nope", "messages": HELLO}), 404, "model_not_found")
    assert_error(*http("POST", chat, {"model": "base", "messages": HELLO, "n": 3}), 400)
    error = assert_error(
        *http("POST", chat, {"model": "base", "messages": HELLO, "max_tokens": 33}), 400
    )
    assert error["param"] == "max_tokens"
    long = [{"role": "user", "content": "Paris " * 80}]
    assert_error(
        *http("POST", chat, {"model": "base", "messages": long}), 413, "context_length_exceeded"
    )
    huge = [{"role": "user", "content": "x" * 5000}]
    assert_error(*http("POST", chat, {"model": "base", "messages": huge}), 413, "request_too_large")
    assert_error(*http("GET", server["url"] + "/no-such-route"), 404)


@pytest.mark.parametrize(
    "name",
    [
        "../tiny-a",
        "tiny-a/../tiny-a",
        "/etc/passwd",
        "..",
        "..%2Ftiny-a",
        "tiny-a\\..\\x",
        "base:../tiny-a",
        "base:/etc/passwd",
    ],
)
def test_path_traversal_through_model_is_refused(server, name):
    status, body = http(
        "POST", server["url"] + "/chat/completions", {"model": name, "messages": HELLO}
    )
    assert status in (400, 404)
    assert_error(status, body, status)


def test_pickle_adapter_is_refused_and_never_opened(server):
    status, body = http(
        "POST", server["url"] + "/chat/completions", {"model": "pickled", "messages": HELLO}
    )
    error = assert_error(status, body, 400, "unsafe_adapter")
    assert "adapter_model.bin" in error["message"]
    assert not Path("/tmp/pwned").exists()


def test_a_failing_generation_is_a_500_and_the_replica_keeps_serving(client, server):
    chat = server["url"] + "/chat/completions"
    for stream in (False, True):
        status, body = http("POST", chat, {"model": "misfit", "messages": HELLO, "stream": stream})
        error = assert_error(status, body, 500, "adapter_load_failed")
        assert "misfit" in error["message"]
        assert str(server["adapters"]) not in error["message"]
    out = client.chat.completions.create(model="base", messages=HELLO, max_tokens=4)
    assert out.choices[0].message.content is not None
    assert "misfit" not in generator_info()["attached"]


def test_the_llm_judge_talks_to_finesift_serve(server, tmp_path):
    """quality.judge against the real app: the request succeeds, the answer is kept, and an
    answer the tiny model garbles is recorded as unparseable rather than guessed."""
    from quality.judge import FAILED, OK, UNPARSEABLE, Judge, parse_score
    from quality.score_cache import ScoreCache

    judge = Judge(
        server["url"],
        "base",
        KEY,
        concurrency=2,
        max_tokens=8,
        cache=ScoreCache(tmp_path / "judge.sqlite"),
        template="Rate 1-5: {prompt} {response}",  # the test app caps prompts at 64 tokens
    )
    results = judge.rate(["Add 2 and 3."], ["The answer is 5."])
    (result,) = results
    assert result.status in (OK, UNPARSEABLE) and result.status != FAILED, result.raw
    assert result.score == parse_score(result.raw)
    (again,) = judge.rate(["Add 2 and 3."], ["The answer is 5."])
    assert again.cached and again.raw == result.raw
