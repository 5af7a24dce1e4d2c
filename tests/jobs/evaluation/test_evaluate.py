"""finesift eval: answer-only scoring, model resolution, and a Ray Data run on a tiny model."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config
from infra.errors import ModelNotFoundError
from jobs.evaluation.config import EvalConfig, ExperimentConfig
from quality.metrics import IGNORE_INDEX

ROWS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("List three primary colors.", "Red, blue and yellow."),
    ("Add 2 and 3.", "The answer is 5."),
    ("Summarize: the cat sat on the mat.", "A cat sat on a mat."),
]


def write_rows(path: Path, rows=ROWS) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for i, (question, answer) in enumerate(rows):
            messages = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
            handle.write(json.dumps({"id": f"r{i}", "messages": messages}) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from jobs.evaluation.model import load_model

    return load_model(str(tiny_model_dir), None)


def test_labels_count_the_answer_and_end_of_turn_only(tiny):
    from jobs.evaluation.model import answer_labels

    _, tokenizer = tiny
    prompt = [{"role": "user", "content": "What is the capital of France?"}]
    ids, labels = answer_labels(tokenizer, prompt, "Paris.", max_length=512)
    assert len(ids) == len(labels)
    counted = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
    assert tokenizer.decode(counted).startswith("Paris.<|im_end|>")
    assert "capital" not in tokenizer.decode(counted)
    # Cut inside the prompt: nothing of the answer is left to score.
    ids, labels = answer_labels(tokenizer, prompt, "Paris.", max_length=4)
    assert len(ids) == 4 and set(labels) == {IGNORE_INDEX}


def test_scores_are_finite_and_grow_with_answer_length(tiny):
    from jobs.evaluation.model import score_answers

    model, tokenizer = tiny
    prompt = [{"role": "user", "content": "Add 2 and 3."}]
    sums, counts = score_answers(
        model, tokenizer, [prompt, prompt], ["5.", "The answer is 5, as 2 plus 3 is 5."], 512
    )
    assert all(math.isfinite(s) and s > 0 for s in sums)
    assert counts[1] > counts[0] > 0
    # Padding must not change a row's score: scored alone it gets the same NLL.
    alone, _ = score_answers(model, tokenizer, [prompt], ["5."], 512)
    assert alone[0] == pytest.approx(sums[0], rel=1e-4)


def test_generation_returns_one_string_per_prompt(tiny):
    from jobs.evaluation.model import generate_answers

    model, tokenizer = tiny
    prompts = [[{"role": "user", "content": q}] for q, _ in ROWS[:3]]
    answers = generate_answers(model, tokenizer, prompts, max_new_tokens=6, max_length=64)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert generate_answers(model, tokenizer, [], 6, 64) == []


def test_unknown_model_name_says_what_exists(tmp_path):
    from jobs.evaluation.evaluate import resolve_models

    (tmp_path / "smol").mkdir()
    (tmp_path / "smol" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=r"'nope'.*smol.*finesift train"):
        resolve_models(("base", "nope"), base_model="default", adapters_dir=str(tmp_path))


def test_eval_rows_keep_order_limit_and_generation_subset(tmp_path):
    from jobs.evaluation.evaluate import load_eval_rows

    rows = load_eval_rows(str(write_rows(tmp_path / "e.jsonl")), max_rows=3, generate_rows=2)
    assert [r["id"] for r in rows] == ["r0", "r1", "r2"]
    assert [r["generate"] for r in rows] == [True, True, False]
    assert rows[1]["reference"] == "Red, blue and yellow."
    assert json.loads(rows[1]["prompt"]) == [{"role": "user", "content": ROWS[1][0]}]


def test_eval_rows_read_from_a_uri(tmp_path):
    from jobs.evaluation.evaluate import load_eval_rows

    path = write_rows(tmp_path / "e.jsonl")
    rows = load_eval_rows(f"file://{path}", max_rows=0, generate_rows=0)
    assert rows == load_eval_rows(str(path), max_rows=0, generate_rows=0)
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", "r3"]


def test_actor_threads_come_from_the_biggest_node_not_the_cluster(monkeypatch):
    import ray

    from jobs.evaluation.evaluate import actor_threads

    nodes = [{"Alive": True, "Resources": {"CPU": 8.0}}, {"Alive": True, "Resources": {"CPU": 4.0}}]
    nodes.append({"Alive": False, "Resources": {"CPU": 64.0}})
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    # Free CPUs cluster-wide (12, or 2 while other jobs run) must not matter.
    monkeypatch.setattr(ray, "available_resources", lambda: {"CPU": 2.0})
    assert actor_threads(EvalConfig().inference) == 8
    cfg = load_config(EvalConfig, None, ["inference.num_actors=3"])
    assert actor_threads(cfg.inference) == 2
    cfg = load_config(EvalConfig, None, ["inference.num_actors=16"])
    assert actor_threads(cfg.inference) == 1
    cfg = load_config(EvalConfig, None, ["inference.num_cpus=5"])
    assert actor_threads(cfg.inference) == 5


def test_answer_figures_average_chrf_over_answers_and_pool_it_for_corpus_chrf():
    from jobs.evaluation.evaluate import answer_figures
    from quality import metrics

    refs = ["The capital of France is Paris.", "It is 5."]
    preds = ["Paris is the capital of France, a country in Europe.", "5."]
    figures = answer_figures(preds, refs)
    each = [metrics.chrf(p, r) for p, r in zip(preds, refs, strict=True)]
    assert figures["chrf"] == pytest.approx(sum(each) / 2, abs=1e-4)
    assert figures["corpus_chrf"] == pytest.approx(metrics.corpus_chrf(preds, refs), abs=1e-4)
    assert figures["chrf"] != pytest.approx(figures["corpus_chrf"], abs=1.0)
    assert figures["rouge_l"] == pytest.approx(metrics.mean_rouge_l(preds, refs), abs=1e-4)
    assert figures["length_ratio"] == pytest.approx(54 / 39, abs=1e-4)
    assert answer_figures([], []) == dict.fromkeys(
        ("chrf", "corpus_chrf", "rouge_l", "length_ratio")
    )


def test_shipped_eval_yaml_is_the_defaults():
    configs = Path(__file__).resolve().parents[3] / "configs"
    assert load_config(EvalConfig, configs / "eval.yaml") == EvalConfig()


def test_eval_config_checks_models_and_arms():
    with pytest.raises(ConfigError, match="twice"):
        EvalConfig(models=("base", "base"))
    with pytest.raises(ConfigError, match="eval-data"):
        EvalConfig().require_inputs()
    with pytest.raises(ConfigError, match="unknown arm"):
        load_config(ExperimentConfig, None, ["arms=[curated, best]"])
    cfg = load_config(ExperimentConfig, None, ["train.optim.epochs=2", "curate.seed=3"])
    assert cfg.train.optim.epochs == 2.0 and cfg.curate.seed == 3


@pytest.fixture(scope="module")
def fitted_adapter(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter fitted for a few steps on ROWS' answers: it must lower their NLL."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jobs.evaluation.model import answer_labels, pad_right

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    pairs = [answer_labels(tokenizer, [{"role": "user", "content": q}], a, 512) for q, a in ROWS]
    ids = torch.from_numpy(pad_right([p[0] for p in pairs], tokenizer.pad_token_id))
    labels = torch.from_numpy(pad_right([p[1] for p in pairs], IGNORE_INDEX))
    mask = torch.from_numpy(pad_right([[1] * len(p[0]) for p in pairs], 0))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(30):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    adapters = tmp_path_factory.mktemp("adapters")
    model.save_pretrained(adapters / "fitted")
    (adapters / "fitted" / "finesift.json").write_text(
        json.dumps({"base_model": str(tiny_model_dir)})
    )
    return adapters


@pytest.mark.ray
def test_eval_run_writes_eval_json_and_the_fitted_adapter_wins(
    ray_session, tiny_model_dir, fitted_adapter, tmp_path
):
    from jobs.evaluation.evaluate import run

    cfg = load_config(
        EvalConfig,
        None,
        ["generation.max_new_tokens=8", "generation.max_rows=3", "inference.batch_size=2"],
        models=("base", "fitted"),
        eval_data=str(write_rows(tmp_path / "heldout.jsonl")),
        base_model=str(tiny_model_dir),
        adapters_dir=str(fitted_adapter),
        out=str(tmp_path / "eval"),
    )
    from jobs.evaluation.result import EvalResult

    result = run(cfg)
    on_disk = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert EvalResult.from_dict(on_disk) == result
    assert result.rows == 4 and result.generated_rows == 3
    by_name = {m.name: asdict(m) for m in result.models}
    assert set(by_name) == {"base", "fitted"}
    for m in by_name.values():
        assert math.isfinite(m["nll"]) and m["nll"] > 0
        assert m["perplexity"] == pytest.approx(math.exp(m["nll"]), rel=1e-3)
        assert 0 <= m["rouge_l"] <= 1 and 0 <= m["chrf"] <= 100
        assert 0 <= m["corpus_chrf"] <= 100 and m["length_ratio"] >= 0  # tiny: maybe empty
        assert m["rows"] == 4 and m["generated"] == 3 and m["tokens"] > 0
    assert by_name["fitted"]["adapter"].endswith("fitted")
    assert by_name["fitted"]["nll"] < by_name["base"]["nll"]
    lines = (tmp_path / "eval" / "eval_samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len(samples) == 8
    assert sum("generation" in s for s in samples) == 6
