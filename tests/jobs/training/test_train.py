"""finesift train: config, data checks, held-out split, LoRA training, Ray Train runs.

Unit tests use the tiny Llama in-process; `ray` tests run the whole job on the session's
local Ray (2 CPUs): a worker failure retried and resumed from its checkpoint, a rerun of the
same name resuming on two CPU workers (DDP over gloo).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config, to_dict
from infra.errors import FinesiftError, InputError
from jobs.training.config import TrainConfig
from jobs.training.data import (
    apply_length_policy,
    file_sha256,
    load_examples,
    split_heldout,
    to_prompt_completion,
)

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def chat(question: str, answer: str, **extra) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        **extra,
    }


def arithmetic_rows(n: int) -> list[dict]:
    """Short rows the tiny tokenizer knows well: 'Add a and b.' -> 'The answer is c.'."""
    return [
        chat(f"Add {i % 7} and {i % 5}.", f"The answer is {i % 7 + i % 5}.", id=f"r{i}")
        for i in range(n)
    ]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def tiny_cfg(
    tmp_path: Path, model_dir: Path, data: Path, name: str = "t", *overrides: str, **fields
) -> TrainConfig:
    """A config for the tiny model with every output under tmp_path."""
    return load_config(
        TrainConfig,
        None,
        [
            "optim.learning_rate=0.01",
            "eval.fraction=0.25",
            f"scaling.storage_path={tmp_path}/runs",
            *overrides,
        ],
        **{
            "data": str(data),
            "name": name,
            "base_model": str(model_dir),
            "adapters_dir": str(tmp_path / "adapters"),
            **fields,
        },
    )


# --- config ---------------------------------------------------------------------------------


def test_shipped_yaml_matches_defaults():
    assert load_config(TrainConfig, CONFIGS / "train.yaml") == TrainConfig()


@pytest.mark.parametrize(
    "override, key",
    [
        ("lora.r=0", "lora.r"),
        ("text.too_long=cut", "text.too_long"),
        ("optim.lr_scheduler=warp", "optim.lr_scheduler"),
        ("eval.fraction=1.5", "eval.fraction"),
        ("scaling.num_workers=-1", "scaling.num_workers"),
        ("tracking=comet_ml", "tracking"),
        ("early_stop.patience=-1", "early_stop.patience"),
        ("text.train_on=first", "text.train_on"),
    ],
)
def test_bad_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(TrainConfig, None, [override])


def test_name_must_be_a_plain_directory_name():
    with pytest.raises(ConfigError, match="--name"):
        load_config(TrainConfig, None, [], name="../escape")


def test_data_and_name_are_required_to_train():
    with pytest.raises(ConfigError, match="--data"):
        TrainConfig(name="x").require_inputs()
    with pytest.raises(ConfigError, match="--name"):
        TrainConfig(data="x.jsonl").require_inputs()


# --- data -----------------------------------------------------------------------------------


def test_formats_become_prompt_completion(tmp_path):
    rows = [
        chat("Q1", "A1", id="a"),
        {"id": "b", "messages": json.dumps(chat("Q2", "A2")["messages"])},
        {"instruction": "Q3", "input": "ctx", "output": "A3"},
        {"conversations": [{"from": "human", "value": "Q4"}, {"from": "gpt", "value": "A4"}]},
        {"prompt": "Q5", "response": "A5"},
    ]
    examples, report = load_examples(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.warning() is None
    assert [e["completion"][0]["content"] for e in examples] == ["A1", "A2", "A3", "A4", "A5"]
    assert examples[2]["prompt"] == [{"role": "user", "content": "Q3\n\nctx"}]
    assert examples[0]["id"] == "a" and examples[1]["id"] == "b"
    assert len({e["id"] for e in examples}) == 5  # rows without id get a content hash


def test_multi_turn_splits_at_the_last_assistant_turn():
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"},
        {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "dangling"},
    ]
    example = to_prompt_completion(messages)
    assert [m["content"] for m in example["prompt"]] == ["S", "U1", "A1", "U2"]
    assert example["completion"] == [{"role": "assistant", "content": "A2"}]


def test_bad_rows_are_skipped_and_counted(tmp_path):
    rows = [
        chat("Q", "A"),
        "{not json",
        {"messages": [{"role": "user", "content": "no answer"}]},
        {"text": "unknown schema"},
        chat("Q", "   "),
        chat("Q2", "A2"),
    ]
    examples, report = load_examples(write_jsonl(tmp_path / "d.jsonl", rows))
    assert len(examples) == 2 and report.rows == 6
    warning = report.warning()
    assert "skipped 4 of 6 rows" in warning
    assert "invalid JSON" in warning and "no assistant turn" in warning and "line 2" in warning


def test_empty_missing_and_useless_files_are_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_examples(tmp_path / "absent.jsonl")
    with pytest.raises(InputError, match="is empty"):
        load_examples(write_jsonl(tmp_path / "empty.jsonl", []))
    useless = write_jsonl(tmp_path / "u.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(InputError, match="no usable rows.*assistant"):
        load_examples(useless)


def test_data_files_can_be_uris(tmp_path):
    # file:// goes through pyarrow.fs like s3:// and gs://: same rows, same skips, same hash.
    rows = [chat("Q", "A", id="a"), "{not json", chat("Q2", "A2", id="b")]
    local = write_jsonl(tmp_path / "d.jsonl", rows)
    examples, report = load_examples(f"file://{local}")
    assert [e["id"] for e in examples] == ["a", "b"]
    assert report.path == f"file://{local}" and "line 2: invalid JSON" in report.warning()
    assert (examples, report.rows) == (load_examples(local)[0], 3)
    assert file_sha256(f"file://{local}") == file_sha256(local)
    array = tmp_path / "d.json"
    array.write_text(json.dumps([chat("Q3", "A3", id="c")]))
    assert [e["id"] for e in load_examples(f"file://{array}")[0]] == ["c"]
    with pytest.raises(InputError, match=r"file://.*absent\.jsonl does not exist"):
        load_examples(f"file://{tmp_path}/absent.jsonl")


def test_heldout_split_is_deterministic_and_order_free():
    examples = [{"id": f"r{i}", "prompt": [], "completion": []} for i in range(100)]
    train, held = split_heldout(examples, 0.1, 200, seed=0)
    assert len(held) == 10 and len(train) == 90
    held_ids = {e["id"] for e in held}
    assert held_ids.isdisjoint(e["id"] for e in train)
    assert split_heldout(examples, 0.1, 200, seed=0)[1] == held
    assert {e["id"] for e in split_heldout(examples[::-1], 0.1, 200, seed=0)[1]} == held_ids
    assert {e["id"] for e in split_heldout(examples, 0.1, 200, seed=1)[1]} != held_ids
    assert len(split_heldout(examples, 0.5, 7, seed=0)[1]) == 7  # max_rows caps it
    assert split_heldout(examples, 0.0, 200, seed=0) == (examples, [])
    assert len(split_heldout(examples[:2], 0.01, 200, seed=0)[1]) == 1  # at least one row


def test_long_rows_are_truncated_or_skipped_with_counts(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    short = to_prompt_completion(chat("Add 2 and 3.", "The answer is 5.")["messages"])
    long_answer = to_prompt_completion(chat("Add 2 and 3.", "five " * 80)["messages"])
    long_prompt = to_prompt_completion(chat("two " * 80, "The answer is 5.")["messages"])
    rows = [short, long_answer, long_prompt]
    kept, report = apply_length_policy(rows, tokenizer, 48, "truncate")
    assert kept == [short, long_answer]  # a prompt filling max_length leaves nothing to learn
    assert (report.too_long, report.prompt_fills, report.skipped) == (2, 1, 1)
    kept, report = apply_length_policy(rows, tokenizer, 48, "skip")
    assert kept == [short] and report.skipped == 2


# --- the trainer, in process (no Ray) --------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_model_dir, tmp_path_factory):
    """The SFTTrainer the workers build, trained for a few steps in this process."""
    import torch

    from jobs.training.loop import build_sft_trainer

    tmp = tmp_path_factory.mktemp("sft")
    rows = [to_prompt_completion(r["messages"]) for r in arithmetic_rows(24)]
    cfg = load_config(
        TrainConfig,
        None,
        [
            "optim.learning_rate=0.02",
            "optim.max_steps=12",
            "eval.every_steps=12",
            "checkpoint.every_steps=12",
            "optim.lr_scheduler=constant",
        ],
    )
    trainer = build_sft_trainer(
        cfg, str(tiny_model_dir), rows[:20], rows[20:], tmp / "out", eval_on_start=True
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    return trainer, before, after, torch


def test_only_lora_weights_change(trained):
    trainer, before, after, torch = trained
    lora = [n for n in before if "lora_" in n]
    base = [n for n in before if "lora_" not in n]
    assert lora and base
    assert all(not torch.equal(before[n], after[n]) for n in lora if "lora_B" in n)
    assert all(torch.equal(before[n], after[n]) for n in base)
    assert all(not p.requires_grad for n, p in trainer.model.named_parameters() if n in base)


def test_loss_is_finite_and_falls(trained):
    trainer = trained[0]
    history = trainer.state.log_history
    losses = [e["loss"] for e in history if "loss" in e]
    evals = [(e["step"], e["eval_loss"]) for e in history if "eval_loss" in e]
    assert all(math.isfinite(x) for x in losses)
    assert evals[0][0] == 0 and evals[-1][0] == 12  # base model first, adapter last
    assert evals[-1][1] < evals[0][1]
    assert losses[-1] < losses[0]


def test_loss_covers_the_answer_only(trained):
    trainer = trained[0]
    tokenizer = trainer.processing_class
    example = trainer.train_dataset[0]
    learned = [
        t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != -100
    ]
    text = tokenizer.decode(learned)
    assert text.startswith("The answer is") and "<|im_end|>" in text  # learns to stop
    assert "Add" not in text and "user" not in text  # the prompt is masked


# --- adapters, names and the driver's checks (no Ray) ----------------------------------------


def test_a_name_taken_by_other_data_is_refused_and_kept(tmp_path, tiny_model_dir):
    from jobs.training import train as train_job

    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    adapter = tmp_path / "adapters" / "t"
    adapter.mkdir(parents=True)
    meta = {"base_model": str(tiny_model_dir), "data": {"path": "old.jsonl", "sha256": "0" * 64}}
    (adapter / "finesift.json").write_text(json.dumps(meta))
    with pytest.raises(FinesiftError, match="--name t is taken.*old.jsonl"):
        train_job.train(tiny_cfg(tmp_path, tiny_model_dir, data))
    assert json.loads((adapter / "finesift.json").read_text()) == meta
    foreign = tmp_path / "adapters" / "f"
    foreign.mkdir()
    with pytest.raises(FinesiftError, match="not a finesift adapter"):
        train_job.train(tiny_cfg(tmp_path, tiny_model_dir, data, "f"))


def test_a_run_started_with_other_base_model_or_lora_is_refused(tmp_path, tiny_model_dir):
    from jobs.training import adapters
    from jobs.training import train as train_job

    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    cfg = tiny_cfg(tmp_path, tiny_model_dir, data)
    lora = to_dict(cfg.lora)
    other = adapters.run_identity("some/other-model", str(data), "1" * 64, 8, lora)
    adapters.write_run_manifest(cfg.scaling.storage_path, "t", other)
    with pytest.raises(FinesiftError, match="base model 'some/other-model'"):
        train_job.train(cfg)
    sha = file_sha256(data)
    same = adapters.run_identity(str(tiny_model_dir), str(data), sha, 8, {**lora, "r": 4})
    adapters.write_run_manifest(cfg.scaling.storage_path, "t", same)
    with pytest.raises(FinesiftError, match="LoRA settings"):
        train_job.train(cfg)


def test_unknown_base_model_and_missing_mlflow_are_clear(tmp_path, tiny_model_dir):
    from infra.errors import ModelNotFoundError
    from jobs.training import train as train_job

    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(8))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        train_job.train(tiny_cfg(tmp_path, tiny_model_dir, data, base_model="./no/such/dir"))
    try:
        import mlflow  # noqa: F401
    except ImportError:
        with pytest.raises(FinesiftError, match="pip install mlflow"):
            train_job.train(tiny_cfg(tmp_path, tiny_model_dir, data, tracking="mlflow"))


def test_rows_that_never_fit_are_an_error(tmp_path, tiny_model_dir):
    from jobs.training.train import prepare_rows

    data = write_jsonl(tmp_path / "d.jsonl", [chat("two " * 80, "ok")] * 3)
    with pytest.raises(FinesiftError, match="text.max_length"):
        prepare_rows(
            tiny_cfg(tmp_path, tiny_model_dir, data, "t", "text.max_length=32"), str(tiny_model_dir)
        )


def test_prepare_rows_reports_long_rows(tmp_path, tiny_model_dir):
    from jobs.training.train import prepare_rows

    rows = arithmetic_rows(12) + [chat("Add 1 and 2.", "three " * 60, id="long")]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    prepared = prepare_rows(
        tiny_cfg(tmp_path, tiny_model_dir, data, "t", "text.max_length=48", "eval.fraction=0"),
        str(tiny_model_dir),
    )
    assert len(prepared.train) == 13 and prepared.eval == []
    assert any("1 training rows are longer than text.max_length=48" in n for n in prepared.notes)
    assert prepared.data_rows == 13 and len(prepared.data_sha256) == 64


def test_eval_data_file_replaces_the_heldout_split(tmp_path, tiny_model_dir):
    from jobs.training.train import prepare_rows

    data = write_jsonl(tmp_path / "d.jsonl", arithmetic_rows(10))
    held = write_jsonl(tmp_path / "e.jsonl", [chat("Add 9 and 9.", "The answer is 18.")])
    prepared = prepare_rows(
        tiny_cfg(tmp_path, tiny_model_dir, data, eval_data=str(held)), str(tiny_model_dir)
    )
    assert len(prepared.train) == 10
    assert [e["completion"][0]["content"] for e in prepared.eval] == ["The answer is 18."]


def test_worker_resources_default_to_all_cpus_of_a_node(monkeypatch):
    import ray

    from jobs.training.train import worker_resources

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 16.0})
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 8.0}}] * 2)
    assert worker_resources(TrainConfig()) == (1, {"CPU": 8})
    cfg = load_config(TrainConfig, None, ["scaling.num_workers=4"])
    assert worker_resources(cfg) == (4, {"CPU": 4})
    with pytest.raises(FinesiftError, match="no GPU"):
        worker_resources(load_config(TrainConfig, None, ["scaling.use_gpu=true"]))


def test_adapters_listing(tmp_path, capsys):
    from jobs.cli.training import adapters_command
    from jobs.training.adapters import list_adapters

    assert list_adapters(tmp_path / "none") == []
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "finesift.json").write_text(
        json.dumps(
            {
                "base_model": "default",
                "data": {"path": "sel.jsonl", "rows": 5},
                "steps": 3,
                "base_eval_loss": 2.5,
                "final_eval_loss": 1.25,
            }
        )
    )
    (tmp_path / "stray").mkdir()
    listed = list_adapters(tmp_path)
    assert [a["name"] for a in listed] == ["a"] and listed[0]["final_eval_loss"] == 1.25
    adapters_command(adapters_dir=str(tmp_path))
    out = capsys.readouterr().out
    assert "sel.jsonl" in out and "1.2500" in out and "2.5000" in out


def test_train_command_turns_options_into_config(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from jobs.cli import app
    from jobs.training import train as train_job

    seen = {}
    monkeypatch.setattr(train_job, "train", lambda cfg: seen.setdefault("cfg", cfg))
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            "sel.jsonl",
            "--name",
            "n",
            "--num-workers",
            "2",
            "--cpu",
            "--max-steps",
            "7",
            "--merge",
            "lora.r=4",
            "optim.learning_rate=0.001",
        ],
    )
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.data, cfg.name, cfg.merge) == ("sel.jsonl", "n", True)
    assert (cfg.scaling.num_workers, cfg.scaling.use_gpu, cfg.optim.max_steps) == (2, False, 7)
    assert (cfg.lora.r, cfg.optim.learning_rate) == (4, 0.001)


# --- Ray Train, end to end -------------------------------------------------------------------


def _read_meta(adapter_dir: Path) -> dict:
    return json.loads((adapter_dir / "finesift.json").read_text())


@pytest.mark.ray
def test_failure_retry_resume_rerun_and_ddp(ray_session, tmp_path, tiny_model_dir):
    """One run, three worker-group starts (each costs seconds of process spawn and imports):

    1. one worker; every worker raises at step 3 of a fresh session, Ray Train retries it
       and the retry resumes from the step-2 checkpoint;
    2. the same --name again with more steps resumes from step 4 instead of starting over,
       now on 2 CPU workers (DDP over gloo), with --merge.
    """
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from jobs.training.adapters import list_adapters
    from jobs.training.train import train

    data = write_jsonl(tmp_path / "sel.jsonl", arithmetic_rows(24))
    overrides = (
        "checkpoint.every_steps=2",
        "eval.every_steps=2",
        "checkpoint.logging_steps=1",
        "scaling.max_failures=1",
        "optim.batch_size=2",
    )
    result = train(
        tiny_cfg(tmp_path, tiny_model_dir, data, "t", *overrides, "optim.max_steps=4"),
        fail_at_step=3,
    )
    assert result.resumed_from == (2,) and result.steps == 4
    meta = _read_meta(result.adapter_dir)
    assert meta["data"]["rows"] == 24 and meta["data"]["sha256"] and meta["steps"] == 4
    assert [e["step"] for e in meta["train_loss_history"]] == [1, 2, 3, 4]
    assert all(math.isfinite(e["loss"]) for e in meta["train_loss_history"])
    assert meta["base_eval_loss"] > meta["final_eval_loss"]
    assert meta["tokens_seen"] > 0 and meta["versions"]["ray"] and meta["config"]["lora"]["r"]
    assert meta["peak_rss_mb"] > 0 and meta["tokens_per_second"] > 0
    weights = load_file(result.adapter_dir / "adapter_model.safetensors")
    lora_b = [t for k, t in weights.items() if "lora_B" in k]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # B starts at zero

    # The adapter loads with peft and generates.
    tokenizer = AutoTokenizer.from_pretrained(result.adapter_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_q = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    model = PeftModel.from_pretrained(base, str(result.adapter_dir))
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Add 2 and 3."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    # Same name, longer run, 2 workers: resumes at step 4; both ranks save their RNG state
    # and Ray Train merges them into one checkpoint.
    again = train(
        tiny_cfg(
            tmp_path,
            tiny_model_dir,
            data,
            "t",
            *overrides,
            "optim.max_steps=6",
            "scaling.num_workers=2",
            merge=True,
        )
    )
    assert again.resumed_from == (2, 4) and again.steps == 6
    meta = _read_meta(again.adapter_dir)
    assert [e["step"] for e in meta["train_loss_history"]][-2:] == [5, 6]
    checkpoint = tmp_path / "runs" / "t" / "checkpoint-0000006"
    assert {p.name for p in checkpoint.glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }
    merged = AutoModelForCausalLM.from_pretrained(again.merged_dir)
    assert not torch.equal(merged.model.layers[0].self_attn.q_proj.weight, base_q)
    assert [a["name"] for a in list_adapters(tmp_path / "adapters")] == ["t"]


@pytest.mark.parametrize("grouped", [False, True])
def test_group_by_length_pads_less(tiny_model_dir, tmp_path, grouped):
    """text.group_by_length batches rows of similar length: far fewer padded tokens."""
    from jobs.training.loop import build_sft_trainer

    # Alternate short and long answers: random batches mix them. transformers sorts
    # mega-batches of len // 4 rows (at most 50 batches), so a few batches stay mixed.
    lengths = [2, 40] * 64
    rows = [
        to_prompt_completion(chat(f"Say it {i}.", "word " * n)["messages"])
        for i, n in enumerate(lengths)
    ]
    cfg = load_config(
        TrainConfig, None, ["optim.batch_size=4", f"text.group_by_length={str(grouped).lower()}"]
    )
    trainer = build_sft_trainer(cfg, str(tiny_model_dir), rows, [], tmp_path / "out")
    batches = list(trainer.get_train_dataloader())
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    padded = sum(b["input_ids"].numel() for b in batches)
    assert sum(len(b["input_ids"]) for b in batches) == len(rows)  # every row, once
    if grouped:
        assert padded / real < 1.2
    else:
        assert padded / real > 1.4
