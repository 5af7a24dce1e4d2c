"""The generation engine on the tiny Llama: batching, adapters, limits (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.engine import AdapterLoadError, GenerationEngine, left_pad
from serving.prompts import chat_prompt, check_limits, encode_request
from serving.protocol import ApiError, ChatCompletionRequest, CompletionRequest
from serving.sampling import GenParams


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> GenerationEngine:
    return GenerationEngine(tiny_model_dir)


def ids(engine: GenerationEngine, text: str) -> tuple[int, ...]:
    return tuple(engine.tokenizer(text)["input_ids"])


def greedy(engine: GenerationEngine, text: str, max_tokens: int = 10) -> GenParams:
    return GenParams(ids(engine, text), max_tokens, temperature=0.0)


def test_left_pad_puts_padding_on_the_left():
    input_ids, mask = left_pad([(5, 6, 7), (8,)], pad_id=0)
    assert input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_a_left_padded_batch_answers_like_one_request_at_a_time(engine):
    a = greedy(engine, "What is the capital of France?", 12)
    b = greedy(engine, "Add 2 and 3.", 5)
    alone = engine.generate([a]) + engine.generate([b])
    together = engine.generate([a, b])
    assert together == alone
    assert [r.completion_tokens for r in together] == [12, 5]  # per-row max_tokens
    assert all(r.finish_reason == "length" for r in together)


def test_seeded_sampling_does_not_depend_on_the_batch(engine):
    sampled = GenParams(ids(engine, "List three primary colors."), 8, temperature=1.0, seed=11)
    alone = engine.generate([sampled])[0]
    in_batch = engine.generate([greedy(engine, "Add 2 and 3."), sampled])[1]
    assert alone == in_batch


def test_adapters_change_answers_and_leave_the_base_model_exact(engine, adapters_dir):
    prompt = greedy(engine, "Write a haiku about the sea.", 12)
    before = engine.generate([prompt])
    engine.attach("tiny-a", adapters_dir / "tiny-a")
    engine.attach("tiny-b", adapters_dir / "tiny-b")
    with_a = engine.generate([prompt], adapter=("tiny-a", adapters_dir / "tiny-a"))
    with_b = engine.generate([prompt], adapter=("tiny-b", adapters_dir / "tiny-b"))
    assert with_a != before and with_b != before and with_a != with_b
    assert engine.generate([prompt]) == before  # base rows bypass every adapter
    engine.retire("tiny-a")
    engine.retire("tiny-b")
    engine.generate([prompt])  # the next batch detaches retired adapters
    assert engine.attached == []
    # A batch whose adapter was detached meanwhile attaches it again, same answer.
    assert engine.generate([prompt], adapter=("tiny-a", adapters_dir / "tiny-a")) == with_a
    assert engine.attached == ["tiny-a"]
    engine.retire("tiny-a")
    assert engine.generate([prompt]) == before


def test_a_broken_adapter_fails_cleanly(engine, adapters_dir):
    prompt = greedy(engine, "Add 2 and 3.")
    before = engine.generate([prompt])
    with pytest.raises(AdapterLoadError, match="broken"):
        engine.attach("broken", adapters_dir / "broken")
    assert "broken" not in engine.attached
    assert engine.generate([prompt]) == before


def test_chat_prompt_uses_the_template_and_maps_developer_to_system(engine):
    req = ChatCompletionRequest(
        model="base",
        messages=[{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}],
    )
    text = chat_prompt(engine.tokenizer, req)
    assert text == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    tokens = encode_request(engine.tokenizer, req)
    assert engine.tokenizer.decode(tokens) == text  # no extra special tokens


def test_chat_without_a_template_is_400(engine):
    class NoTemplate:
        chat_template = None

    req = ChatCompletionRequest(model="base", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ApiError) as info:
        chat_prompt(NoTemplate(), req)
    assert info.value.status == 400 and "/v1/completions" in info.value.message
    plain = CompletionRequest(model="base", prompt="Add 2 and 3.")
    assert encode_request(engine.tokenizer, plain) == list(ids(engine, "Add 2 and 3."))


@pytest.mark.parametrize(
    ("prompt", "max_tokens", "status", "param"),
    [
        (65, 10, 413, "messages"),
        (10, 33, 400, "max_tokens"),
        (60, 30, 400, "max_tokens"),
        (0, 10, 400, "prompt"),
    ],
)
def test_limits(prompt, max_tokens, status, param):
    with pytest.raises(ApiError) as info:
        check_limits(
            prompt, max_tokens, max_prompt_tokens=64, max_tokens_limit=32, context_length=80
        )
    assert (info.value.status, info.value.param) == (status, param)
    check_limits(64, 16, max_prompt_tokens=64, max_tokens_limit=32, context_length=80)
