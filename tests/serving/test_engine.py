"""The generation engine on the tiny Llama: batching, adapters, limits (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.decoding import left_pad
from serving.engine import AdapterLoadError, GenerationEngine
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


def plain_generate(engine: GenerationEngine, params: list[GenParams]) -> list[str]:
    """``model.generate`` on the whole left-padded batch (no row ever leaves it), each row's
    answer cut at its own max_tokens and EOS: the reference a shrinking batch must match."""
    import torch
    from transformers import GenerationConfig

    input_ids, mask = left_pad([p.prompt_ids for p in params], engine.pad_id)
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max(p.max_tokens for p in params),
        eos_token_id=list(engine.eos_ids),
        pad_token_id=engine.pad_id,
    )
    with torch.inference_mode():
        out = engine.lm.generate(input_ids=input_ids, attention_mask=mask, generation_config=config)
    answers = []
    for p, tokens in zip(params, out[:, input_ids.shape[1] :].tolist(), strict=True):
        tokens = tokens[: p.max_tokens]
        ends = [i for i, t in enumerate(tokens) if t in engine.eos_ids]
        answers.append(engine.tokenizer.decode(tokens[: ends[0] if ends else None]))
    return answers


def test_rows_leave_the_batch_as_they_finish_without_changing_the_others(engine):
    params = [
        greedy(engine, "Add 2 and 3.", 2),
        greedy(engine, "What is the capital of France?", 12),
        greedy(engine, "List three primary colors.", 5),
    ]
    decoding = engine.open()
    rows = [engine.row(p) for p in params]
    decoding.advance(rows)
    live_and_cached = []
    while decoding.rows:
        live_and_cached.append((len(decoding.rows), decoding.batch.cache_shape[0]))
        decoding.advance()
    decoding.close()
    # The cache holds only live rows: finished rows stopped costing compute at once.
    assert all(live == cached for live, cached in live_and_cached)
    assert live_and_cached[0][0] == 2 and live_and_cached[-1][0] == 1
    assert [r.result().text for r in rows] == plain_generate(engine, params)
    assert [r.result().completion_tokens for r in rows] == [2, 12, 5]


def test_rows_joining_a_running_batch_answer_as_if_alone(engine):
    first = greedy(engine, "What is the capital of France?", 12)
    short = greedy(engine, "Add 2 and 3.", 6)  # narrower than the running batch
    long = greedy(engine, "Write a haiku about the sea. Waves fold into foam, the tide", 6)
    seeded = GenParams(ids(engine, "List three primary colors."), 6, temperature=1.0, seed=3)
    decoding = engine.open()
    rows = [engine.row(p) for p in (first, short, long, seeded)]
    decoding.advance(rows[:1])
    decoding.advance()
    decoding.advance(rows[1:2])
    decoding.advance(rows[2:])  # wider than the batch: the batch's cache is padded instead
    while decoding.rows:
        decoding.advance()
    decoding.close()
    alone = [engine.generate([p])[0] for p in (first, short, long, seeded)]
    assert [r.result() for r in rows] == alone


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


def test_an_adapter_stays_attached_and_selected_while_its_batch_runs(engine, adapters_dir):
    prompt = greedy(engine, "Write a haiku about the sea.", 8)
    tiny_a = ("tiny-a", adapters_dir / "tiny-a")
    expected = engine.generate([prompt], adapter=tiny_a)[0]
    decoding = engine.open(tiny_a)
    row = engine.row(prompt)
    decoding.advance([row])
    engine.retire("tiny-a")  # evicted from Serve's LRU mid-batch
    engine.attach("tiny-b", adapters_dir / "tiny-b")  # would sweep it
    engine.generate([prompt])  # a base-model batch between two steps
    assert "tiny-a" in engine.attached
    while decoding.rows:
        decoding.advance()
    decoding.close()
    assert row.result() == expected
    engine.retire("tiny-b")
    engine.generate([prompt])  # the batch is closed: the next one detaches both
    assert engine.attached == []


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


def test_a_chat_template_that_refuses_the_messages_is_400(engine, tiny_model_dir):
    from transformers import AutoTokenizer

    strict = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    strict.chat_template = (
        "{% if messages[0]['role'] == 'assistant' %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        + strict.chat_template
    )
    req = ChatCompletionRequest(model="base", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(ApiError) as info:
        encode_request(strict, req)
    assert (info.value.status, info.value.param) == (400, "messages")
    assert "alternate" in info.value.message


@pytest.mark.parametrize("chat", [True, False])
def test_text_that_is_not_valid_unicode_is_400_not_a_tokenizer_crash(engine, chat):
    """Models built in code bypass the JSON checks; the tokenizer's TypeError used to be a 500."""
    if chat:
        req = ChatCompletionRequest(model="base", messages=[{"role": "user", "content": "a\ud800"}])
    else:
        req = CompletionRequest(model="base", prompt="a\udfff")
    with pytest.raises(ApiError) as info:
        encode_request(engine.tokenizer, req)
    assert (info.value.status, info.value.code) == (400, "invalid_prompt")
    assert info.value.param == ("messages" if chat else "prompt")


def test_generation_params_carry_the_request_within_the_limits(engine):
    from serving.config import LimitsConfig
    from serving.prompts import generation_params

    limits = LimitsConfig(max_prompt_tokens=64, max_tokens=32, default_max_tokens=8)
    req = CompletionRequest(model="base", prompt="Add 2 and 3.", seed=2**64 - 1, stop=["x"])
    params = generation_params(engine.tokenizer, req, limits, context_length=128)
    assert params.prompt_ids == ids(engine, "Add 2 and 3.")
    assert (params.max_tokens, params.seed, params.stop) == (8, 2**64 - 1, ("x",))
    many = CompletionRequest(model="base", prompt="hi", stop=["a", "b", "c", "d", "e"])
    with pytest.raises(ApiError) as info:
        generation_params(engine.tokenizer, many, limits, context_length=128)
    assert info.value.param == "stop"
