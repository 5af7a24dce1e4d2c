"""End to end: finesift's backend serving adapters from a store (file://), asked by the
client commands with NAME and base:NAME, and `finesift eval --url` scoring its answers.

One Serve app on a free port with the tiny Llama; it requires an API key, which the
commands read from FINESIFT_API_KEY as a user's shell would pass it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time

import pytest
from typer.testing import CliRunner

from tests.jobs.evaluation.test_evaluate import ROWS, write_rows

pytestmark = pytest.mark.ray

KEY = "url-key"
HELLO = [{"role": "user", "content": "What is the capital of France?"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(ray_session, tiny_model_dir, tmp_path_factory):
    from infra.config import load_config
    from infra.models import finesift_home
    from serving.config import ServeConfig
    from serving.launch import start_server, stop_server
    from tests.serving.conftest import make_adapter

    store = tmp_path_factory.mktemp("bucket") / "adapters"
    for seed, name in enumerate(("tiny-a", "tiny-b"), 1):
        make_adapter(tiny_model_dir, store / name, seed=seed)
    pickled = store / "pickled"  # pickle weights only: never fetched, never served
    pickled.mkdir()
    shutil.copy(store / "tiny-a" / "adapter_config.json", pickled / "adapter_config.json")
    (pickled / "adapter_model.bin").write_bytes(b"cos\nsystem\n(S'touch /tmp/pwned'\ntR.")
    uri = f"file://{store}"
    cfg = load_config(
        ServeConfig,
        None,
        [
            "limits.max_tokens=32",
            "batching.max_batch_size=4",
            "scaling.num_cpus=1",
            "scaling.max_replicas=1",
            "scaling.max_ongoing_requests=16",
            "app_name=finesift-url-test",
        ],
        base_model=str(tiny_model_dir),
        adapters_dir=uri,
        port=free_port(),
    )
    url = start_server(cfg, api_key=KEY)
    yield {"url": url, "store": store}
    stop_server()
    # The replicas mirror the store under FINESIFT_HOME (this machine's): leave no copy.
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    shutil.rmtree(finesift_home() / "adapter-cache" / key, ignore_errors=True)


@pytest.fixture
def client(server, monkeypatch):
    from serving.client import make_client

    monkeypatch.setenv("FINESIFT_API_KEY", KEY)
    return make_client(server["url"])


def answer(client, model: str, messages=HELLO, max_tokens: int = 10) -> str:
    out = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0
    )
    return out.choices[0].message.content


def test_adapters_are_served_from_the_store_under_both_names(client, server):
    listed = [m.id for m in client.models.list().data]
    assert listed[0] == "base" and {"tiny-a", "tiny-b"} <= set(listed)
    assert "pickled" not in listed  # pickle weights are never fetched from a store either
    a, b = answer(client, "tiny-a"), answer(client, "tiny-b")
    assert len({a, b, answer(client, "base")}) == 3
    assert answer(client, "base:tiny-a") == a

    # An adapter pushed while the server runs is found as soon as it is asked for.
    shutil.copytree(server["store"] / "tiny-b", server["store"] / "pushed")
    time.sleep(1.1)  # serving.adapter_mirror.MISS_REFRESH_S
    assert answer(client, "base:pushed") == b


def test_spot_check_and_query_accept_both_names(client, server, tmp_path, monkeypatch):
    from jobs.cli import app

    monkeypatch.setenv("FINESIFT_API_KEY", KEY)
    out = tmp_path / "answers.jsonl"
    args = ["spot-check", "--url", server["url"], "--models", "base,tiny-a,base:tiny-b"]
    result = CliRunner().invoke(app, [*args, "--max-tokens", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    by_model = {(r["prompt"], r["model"]): r["answer"] for r in rows}
    assert {r["model"] for r in rows} == {"base", "tiny-a", "base:tiny-b"}
    prompt = "What is the capital of France?"
    assert by_model[(prompt, "tiny-a")] == answer(client, "tiny-a")
    assert by_model[(prompt, "base:tiny-b")] == answer(client, "tiny-b")

    query = ["query", prompt, "--url", server["url"], "--model", "base:tiny-a"]
    result = CliRunner().invoke(app, [*query, "--max-tokens", "10"])
    assert result.exit_code == 0 and result.output.strip() == answer(client, "tiny-a").strip()


def test_eval_url_scores_the_servers_answers(client, server, tmp_path, monkeypatch):
    from jobs.cli import app
    from jobs.evaluation.result import EvalResult

    monkeypatch.setenv("FINESIFT_API_KEY", KEY)
    heldout = write_rows(tmp_path / "heldout.jsonl")
    out = tmp_path / "eval"
    args = ["eval", "--url", server["url"], "--models", "base,tiny-a,base:tiny-b"]
    args += ["--eval-data", str(heldout), "--out", str(out), "generation.max_new_tokens=12"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "NLL not available" in result.output

    evaluation = EvalResult.from_dict(json.loads((out / "eval.json").read_text()))
    assert evaluation.url == server["url"] and evaluation.rows == len(ROWS)
    for score in evaluation.models:
        assert score.generated == len(ROWS)
        assert score.rouge_l is not None and 0.0 <= score.rouge_l <= 1.0
        assert score.chrf is not None and 0.0 <= score.chrf <= 100.0
        # finesift's backend refuses logprobs/echo: NLL is reported missing, not made up.
        assert score.nll is None and "does not return prompt logprobs" in score.note

    samples = [json.loads(line) for line in (out / "eval_samples.jsonl").open()]
    first = ROWS[0][0]
    generated = {s["model"]: s["generation"] for s in samples if s["id"] == "r0"}
    messages = [{"role": "user", "content": first}]
    assert generated["tiny-a"] == answer(client, "tiny-a", messages, 12).strip()
    assert generated["base:tiny-b"] == answer(client, "tiny-b", messages, 12).strip()
    assert generated["base"] != generated["tiny-a"]
