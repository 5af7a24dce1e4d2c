"""finesift eval --url: the held-out evaluation pointed at a server, without Ray.

The server here is a small OpenAI-compatible app (called in process through FastAPI's
TestClient) that lists models the way Ray Serve LLM does (base, base:NAME). Its legacy
completions return prompt logprobs computed with the tiny model itself, so the NLL taken
from a server's logprobs can be compared with the NLL finesift eval computes locally.
The finesift backend end to end is in test_eval_url_e2e.py (ray-marked).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from infra.config import ConfigError, load_config
from infra.errors import FinesiftError
from jobs.evaluation.config import EvalConfig
from tests.jobs.evaluation.test_evaluate import ROWS, write_rows

WRONG = "Purple elephants dance quietly."


def fake_server(model: Any, tokenizer: Any, echo: bool) -> FastAPI:
    """Lists base and base:tuned; base:tuned answers each reference exactly, base with
    WRONG; a prompt about cats is over the server's limits; completions with echo return
    the tiny model's logprobs (only when ``echo``)."""
    import torch

    references = {q: a for q, a in ROWS}
    app = FastAPI()

    def error(status: int, message: str) -> JSONResponse:
        body = {"error": {"message": message, "type": "x", "param": None, "code": None}}
        return JSONResponse(body, status_code=status)

    @app.get("/v1/models")
    def models() -> dict:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model"} for m in ("base", "base:tuned")],
        }

    @app.post("/v1/chat/completions")
    def chat(body: dict) -> Any:
        if body["model"] not in ("base", "base:tuned"):
            return error(404, f"model {body['model']} does not exist")
        question = body["messages"][-1]["content"]
        if "cat" in question:
            return error(413, "prompt is too long")
        text = references[question] if body["model"] == "base:tuned" else WRONG
        message = {"role": "assistant", "content": f" {text} "}
        return {
            "id": "c",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }

    @app.post("/v1/completions")
    def completions(body: dict) -> Any:
        if not echo:
            return error(400, "logprobs is not supported by this server; drop the field")
        assert body["echo"] is True and body["logprobs"] >= 0
        text = body["prompt"]
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        ids = encoded["input_ids"]
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
        after = int(logprobs[-1].argmax())
        values = [None] + [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]
        choice = {
            "index": 0,
            "text": text + tokenizer.decode([after]),
            "finish_reason": "length",
            "logprobs": {
                "tokens": tokenizer.convert_ids_to_tokens([*ids, after]),
                "token_logprobs": [*values, float(logprobs[-1, after])],
                "text_offset": [start for start, _ in encoded["offset_mapping"]] + [len(text)],
                "top_logprobs": None,
            },
        }
        return {
            "id": "x",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": [choice],
        }

    return app


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from jobs.evaluation.model import load_model

    return load_model(str(tiny_model_dir), None)


def openai_client(app: FastAPI) -> Any:
    from openai import OpenAI

    return OpenAI(base_url="http://testserver/v1", api_key="k", http_client=TestClient(app))


def eval_cfg(tmp_path: Path, tiny_model_dir: Path, *models: str) -> EvalConfig:
    return load_config(
        EvalConfig,
        None,
        ["server.url=http://testserver", "generation.max_new_tokens=16", "server.concurrency=2"],
        models=tuple(models),
        eval_data=str(write_rows(tmp_path / "heldout.jsonl")),
        base_model=str(tiny_model_dir),
        out=str(tmp_path / "eval"),
    )


def test_nll_from_a_servers_prompt_logprobs_equals_the_local_nll(tiny):
    from jobs.evaluation.model import score_answers
    from jobs.evaluation.server import reference_nll

    model, tokenizer = tiny
    client = openai_client(fake_server(model, tokenizer, echo=True))
    for question, answer in ROWS:
        prompt = [{"role": "user", "content": question}]
        remote_sum, remote_tokens = reference_nll(client, "base", tokenizer, prompt, answer)
        sums, counts = score_answers(model, tokenizer, [prompt], [answer], max_length=1024)
        assert remote_tokens == int(counts[0]) > 0
        assert remote_sum == pytest.approx(float(sums[0]), rel=1e-4)


def test_eval_url_scores_the_servers_answers_and_maps_names(
    tmp_path, tiny, tiny_model_dir, monkeypatch
):
    import serving.client
    from jobs.evaluation.evaluate import run

    model, tokenizer = tiny
    client = openai_client(fake_server(model, tokenizer, echo=True))
    monkeypatch.setattr(serving.client, "make_client", lambda url, timeout: client)
    # "tuned" as finesift's backend names it; the server lists base:tuned (Ray Serve LLM).
    result = run(eval_cfg(tmp_path, tiny_model_dir, "base", "tuned"))

    assert result.url == "http://testserver" and result.rows == len(ROWS)
    base, tuned = result.model("base"), result.model("tuned")
    assert tuned.served_as == "base:tuned" and base.served_as is None
    # The cat prompt failed on the server: left out of both models' answers, and said so.
    assert base.generated == tuned.generated == len(ROWS) - 1
    assert "1 of 4 answers failed" in tuned.note and "prompt is too long" in tuned.note
    assert tuned.rouge_l == 1.0 and tuned.chrf == 100.0  # exactly the references
    assert base.rouge_l < 0.2 and base.chrf < tuned.chrf
    # NLL from the server's logprobs: the same model behind both names, so the same NLL.
    assert base.nll is not None and base.nll == tuned.nll and base.rows == len(ROWS)
    samples = [json.loads(line) for line in (tmp_path / "eval" / "eval_samples.jsonl").open()]
    assert {s["model"] for s in samples} == {"base", "tuned"}
    stored = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert stored["url"] == "http://testserver" and stored["models"][1]["note"] == tuned.note


def test_a_server_without_prompt_logprobs_reports_nll_as_not_available(
    tmp_path, tiny, tiny_model_dir, monkeypatch
):
    import serving.client
    from jobs.evaluation.evaluate import print_table, run

    model, tokenizer = tiny
    client = openai_client(fake_server(model, tokenizer, echo=False))
    monkeypatch.setattr(serving.client, "make_client", lambda url, timeout: client)
    result = run(eval_cfg(tmp_path, tiny_model_dir, "base:tuned"))
    (tuned,) = result.models
    assert tuned.nll is None and tuned.perplexity is None and tuned.rows == 0
    assert "NLL not available: the server does not return prompt logprobs" in tuned.note
    assert "logprobs is not supported" in tuned.note
    assert tuned.rouge_l == 1.0  # generation metrics are still measured

    from rich.console import Console

    console = Console(record=True, width=200)
    print_table(result, console)
    shown = console.export_text()
    assert "NLL not available" in shown and "http://testserver" in shown
    from jobs.evaluation.table import EVAL_COLUMNS

    assert all(c.header in shown for c in EVAL_COLUMNS)  # the report's columns too
    assert "100.00" in shown and "1.00x" in shown  # chrF and length of exact answers


def test_a_model_the_server_does_not_serve_stops_with_its_message(
    tmp_path, tiny, tiny_model_dir, monkeypatch
):
    import serving.client
    from jobs.evaluation.evaluate import run

    client = openai_client(fake_server(*tiny, echo=False))
    monkeypatch.setattr(serving.client, "make_client", lambda url, timeout: client)
    with pytest.raises(FinesiftError, match="model 'nope': server said 404: model nope"):
        run(eval_cfg(tmp_path, tiny_model_dir, "nope"))


def test_url_option_and_its_checks(monkeypatch):
    from typer.testing import CliRunner

    import jobs.evaluation.evaluate
    from jobs.cli import app

    seen = []
    monkeypatch.setattr(jobs.evaluation.evaluate, "run", seen.append)
    monkeypatch.setattr(jobs.evaluation.evaluate, "print_table", lambda result, out: None)
    args = ["eval", "--url", "http://h:8000", "--models", "base,base:x", "--eval-data", "e"]
    CliRunner().invoke(app, args)
    (cfg,) = seen
    assert cfg.server.url == "http://h:8000" and cfg.models == ("base", "base:x")
    with pytest.raises(ConfigError, match="--url 'h:8000' must be an http"):
        load_config(EvalConfig, None, ["server.url=h:8000"])


def test_a_first_row_over_the_servers_limits_fails_alone(
    tmp_path, tiny, tiny_model_dir, monkeypatch
):
    import dataclasses

    import serving.client
    from jobs.evaluation.evaluate import run

    client = openai_client(fake_server(*tiny, echo=True))
    monkeypatch.setattr(serving.client, "make_client", lambda url, timeout: client)
    cat_first = write_rows(tmp_path / "cat-first.jsonl", [ROWS[3], *ROWS[:3]])
    cfg = dataclasses.replace(eval_cfg(tmp_path, tiny_model_dir, "tuned"), eval_data=str(cat_first))
    (tuned,) = run(cfg).models
    assert tuned.generated == len(ROWS) - 1 and "1 of 4 answers failed" in tuned.note
    assert tuned.rouge_l == 1.0 and tuned.nll is not None
