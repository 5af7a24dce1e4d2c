"""IFD from the tiny Llama: the right tokens, by hand, with padding and a length cap."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from quality.ifd import build_pair, load_causal_lm, score_ifd  # noqa: E402

PROMPT = "What is the capital of France?"
RESPONSE = "The capital of France is Paris."


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_causal_lm(str(tiny_model_dir))


def hand_nll(model, tokenizer, context: str, response: str) -> float:
    """Mean NLL of the response tokens after ``context``, one token at a time, no batching."""
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    ans = tokenizer(response, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + ans])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    total = 0.0
    for j, token in enumerate(ans):
        position = len(ctx) + j - 1  # the logits that predict token j of the answer
        total -= torch.log_softmax(logits[position], dim=-1)[token].item()
    return total / len(ans)


def test_ifd_scores_only_the_assistant_tokens(tiny):
    model, tokenizer = tiny
    # The tiny template (ChatML) written out by hand: everything before the answer.
    with_instruction = f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
    without = "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
    expected_c = hand_nll(model, tokenizer, with_instruction, RESPONSE)
    expected_u = hand_nll(model, tokenizer, without, RESPONSE)

    # A second, longer row in the same batch makes the first one padded.
    rows = [(PROMPT, RESPONSE), ("Write a haiku about the sea. " * 3, "Waves fold into foam.")]
    scores = score_ifd(model, tokenizer, *zip(*rows, strict=True), batch_size=4)

    first = scores[0]
    assert first.tokens == len(tokenizer(RESPONSE, add_special_tokens=False)["input_ids"])
    assert first.conditioned == pytest.approx(expected_c, rel=1e-4)
    assert first.unconditioned == pytest.approx(expected_u, rel=1e-4)
    assert first.ifd == pytest.approx(expected_c / expected_u, rel=1e-4)
    assert first.perplexity == pytest.approx(math.exp(expected_u), rel=1e-4)
    assert all(math.isfinite(s.ifd) and s.perplexity > 1 for s in scores)


def test_batching_does_not_change_scores(tiny):
    model, tokenizer = tiny
    rows = [(PROMPT, RESPONSE), ("Add 2 and 3.", "The answer is 5."), ("List colors.", "Red.")]
    together = score_ifd(model, tokenizer, *zip(*rows, strict=True), batch_size=3)
    alone = [score_ifd(model, tokenizer, [p], [r], batch_size=1)[0] for p, r in rows]
    for a, b in zip(together, alone, strict=True):
        assert a.conditioned == pytest.approx(b.conditioned, rel=1e-4)
        assert a.unconditioned == pytest.approx(b.unconditioned, rel=1e-4)


def test_length_cap_keeps_the_answer_next_to_the_end_of_the_prompt(tiny):
    _, tokenizer = tiny
    long_prompt = "Summarize: the cat sat on the mat. " * 40
    conditioned, unconditioned, k = build_pair(tokenizer, long_prompt, RESPONSE, max_length=48)
    answer = tokenizer(RESPONSE, add_special_tokens=False)["input_ids"]
    assert len(conditioned) <= 48 and len(unconditioned) <= 48
    assert k == len(answer) and conditioned[-k:] == answer and unconditioned[-k:] == answer
    header = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert conditioned[-k - len(header) : -k] == header

    long_answer = "Red, blue and yellow. " * 60
    conditioned, _, k = build_pair(tokenizer, PROMPT, long_answer, max_length=64)
    assert len(conditioned) <= 64 and k >= 32  # the answer keeps at least half the budget


def test_empty_response_scores_nothing(tiny):
    model, tokenizer = tiny
    (score,) = score_ifd(model, tokenizer, [PROMPT], [""])
    assert score.tokens == 0 and math.isnan(score.ifd) and math.isnan(score.perplexity)
