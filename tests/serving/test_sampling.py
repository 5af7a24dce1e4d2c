"""Per-row state and sampling for batched generation (no model: tokens are characters)."""

from __future__ import annotations

import torch

from serving.sampling import GenParams, RowSampler, RowState, pick_tokens, sample_token

EOS = 0


def decode(tokens: list[int]) -> str:
    return "".join(chr(t) for t in tokens)


def row(max_tokens: int = 50, stop: tuple[str, ...] = ()) -> RowState:
    return RowState(GenParams((1,), max_tokens, stop=stop), decode, [EOS])


def feed(state: RowState, text: str) -> list[str]:
    """Push ``text`` one character-token at a time, collecting the streamed deltas."""
    deltas = []
    for ch in text:
        state.push(ord(ch))
        deltas.append(state.take_delta())
    return deltas


def test_eos_finishes_with_stop_and_is_counted_not_shown():
    state = row()
    feed(state, "hi")
    state.push(EOS)
    state.push(ord("x"))  # padding after the end is ignored
    result = state.result()
    assert (result.text, result.finish_reason, result.completion_tokens) == ("hi", "stop", 3)


def test_max_tokens_finishes_with_length():
    state = row(max_tokens=3)
    feed(state, "abc")
    assert state.done and state.result().finish_reason == "length"
    assert state.result().text == "abc"


def test_stop_string_split_across_tokens_is_cut_and_never_streamed():
    state = row(stop=("END",))
    deltas = feed(state, "hello ENDmore")
    assert state.result().text == "hello "
    assert state.result().finish_reason == "stop"
    streamed = "".join(deltas)
    assert streamed == "hello "
    assert "E" not in streamed


def test_streamed_deltas_add_up_to_the_text():
    state = row(max_tokens=12, stop=("zz",))
    deltas = feed(state, "abcdefghijkl")
    assert "".join(deltas) == state.result().text == "abcdefghijkl"


def test_half_a_character_is_held_back():
    state = RowState(
        GenParams((1,), 10), lambda toks: "ab\ufffd" if len(toks) == 1 else "abé", [EOS]
    )
    state.push(5)
    assert state.take_delta() == "ab"
    state.push(6)
    assert state.take_delta() == "é"


def test_sampler_greedy_rows_take_the_argmax_and_seeds_repeat():
    torch.manual_seed(0)
    scores = torch.randn(3, 50)
    params = [
        GenParams((1,), 5, temperature=0.0),
        GenParams((1,), 5, temperature=1.0, seed=7),
        GenParams((1,), 5, temperature=1.0, seed=7),
    ]
    chosen = pick_tokens(scores, [RowSampler(p) for p in params])
    assert chosen[0] == scores[0].argmax()
    again = pick_tokens(scores[1:2], [RowSampler(params[1])])
    assert again[0] == chosen[1]


def test_small_top_p_keeps_only_the_most_likely_token():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.9])
    gen = torch.Generator().manual_seed(1)
    picks = {int(sample_token(logits, 1.0, 0.01, gen)) for _ in range(50)}
    assert picks == {1}
    wide = {int(sample_token(logits, 1.0, 1.0, gen)) for _ in range(200)}
    assert {1, 3} <= wide
