"""Instruction-following difficulty (IFD) and response perplexity from a causal LM.

IFD (Li et al. 2024, "From Quantity to Quality", the Cherry data paper; reused with a
small model by Superfiltering) compares two losses over the same response tokens:

- conditioned: mean NLL of the response given its instruction, in the chat format the
  model will be fine-tuned in (the tokenizer's chat template);
- unconditioned: mean NLL of the same response tokens after an empty user turn: the same
  chat format (system prompt, headers) with only the instruction taken out.

``IFD = conditioned / unconditioned``. Below 1 the instruction helps predict the answer;
among such rows a higher IFD is a harder, more informative example. At or above 1 the
instruction does not help: the answer belongs to something else. Perplexity is
``exp(unconditioned)``: the response's fluency on its own (garbage scores high).

Only response tokens are scored: the response is tokenized on its own (as the model
would generate it) and appended to the rendered prompt, so template tokens, the
instruction and the end-of-turn marker never enter either loss.

Pure torch and transformers; importable without Ray.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True)
class IFDScore:
    """The losses of one row."""

    conditioned: float
    """Mean NLL (nats/token) of the response given the instruction."""
    unconditioned: float
    """Mean NLL of the same tokens without the instruction."""
    tokens: int
    """Response tokens scored (after the length cap); 0 means nothing could be scored."""

    @property
    def ifd(self) -> float:
        """conditioned / unconditioned; NaN when nothing was scored."""
        if self.tokens == 0 or self.unconditioned <= 0:
            return math.nan
        return self.conditioned / self.unconditioned

    @property
    def perplexity(self) -> float:
        """exp(unconditioned): the response's perplexity on its own."""
        return math.exp(min(self.unconditioned, 50.0)) if self.tokens else math.nan


def _render(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of a one-user-turn chat up to where the assistant's answer starts."""
    if tokenizer.chat_template is None:
        return tokenizer(f"{prompt}\n\n", add_special_tokens=False)["input_ids"]
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=True, add_generation_prompt=True
    )
    if hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def build_pair(
    tokenizer: Any, prompt: str, response: str, *, max_length: int = DEFAULT_MAX_LENGTH
) -> tuple[list[int], list[int], int]:
    """The conditioned and unconditioned token sequences of one row.

    The response keeps at most ``max_length // 2`` tokens when the row does not fit; the
    prompt is cut from the left, so the end of the instruction and the assistant header
    stay next to the answer. Both sequences end with the same response tokens.

    Returns:
        (conditioned ids, unconditioned ids, number of response tokens at the end of each).
    """
    answer = tokenizer(response, add_special_tokens=False)["input_ids"]
    head = _render(tokenizer, prompt)
    bare = _render(tokenizer, "")
    if len(head) + len(answer) > max_length:
        answer = answer[: max(max_length // 2, max_length - len(head))]
    room = max_length - len(answer)
    return _last(head, room) + answer, _last(bare, room) + answer, len(answer)


def _last(ids: list[int], n: int) -> list[int]:
    """The last ``n`` ids (none when n <= 0; ``ids[-0:]`` would be all of them)."""
    return ids[-n:] if n > 0 else []


def response_nll(
    model: Any,
    sequences: Sequence[list[int]],
    n_targets: Sequence[int],
    *,
    pad_id: int,
    batch_size: int = 8,
) -> list[float]:
    """Mean NLL of the last ``n_targets[i]`` tokens of each sequence, batched with padding.

    Sequences are sorted by length so each padded batch wastes little; right padding
    with an attention mask, so positions are those of the unpadded sequence.

    Returns:
        One mean NLL per sequence, in input order (NaN where there is nothing to score:
        no target tokens, or a target at position 0 with nothing before it).
    """
    import torch

    device = next(model.parameters()).device
    out = [math.nan] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in chunk)
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            seq = sequences[i]
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        spans = []
        for row, i in enumerate(chunk):
            length = len(sequences[i])
            k = max(0, min(n_targets[i], length - 1))  # the first token has no prediction
            spans.append((row, i, length, k))
        rows = torch.tensor([r for r, _, n, k in spans for _ in range(k)], dtype=torch.long)
        # position p predicts token p + 1: the k targets are predicted from n-1-k .. n-2
        cols = torch.tensor(
            [p for _, _, n, k in spans for p in range(n - 1 - k, n - 1)], dtype=torch.long
        )
        if len(rows) == 0:
            continue
        with torch.inference_mode():
            logits = _logits_at(model, ids.to(device), mask.to(device), rows, cols)
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            targets = ids[rows, cols + 1].to(device)
            token_nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
        offset = 0
        for _, i, _, k in spans:
            if k > 0:
                out[i] = float(token_nll[offset : offset + k].mean())
            offset += k
    return out


def _logits_at(model: Any, ids: Any, mask: Any, rows: Any, cols: Any) -> Any:
    """Logits at the (row, column) positions only.

    The vocabulary projection of every position of every padded sequence is most of the
    memory and much of the time for a small model with a large vocabulary, so the decoder
    runs alone and the output head sees only the positions that predict response tokens.
    Models without a separate decoder fall back to the full forward.
    """
    base = getattr(model, "base_model", None)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if base is None or base is model or head is None:
        return model(input_ids=ids, attention_mask=mask).logits[rows, cols]
    hidden = base(input_ids=ids, attention_mask=mask).last_hidden_state
    return head(hidden[rows.to(hidden.device), cols.to(hidden.device)])


def score_ifd(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_length: int = DEFAULT_MAX_LENGTH,
    batch_size: int = 8,
) -> list[IFDScore]:
    """Conditioned and unconditioned response losses of each row.

    Args:
        model: A causal LM (``model(input_ids, attention_mask).logits``), in eval mode.
        tokenizer: Its tokenizer; its chat template formats the instruction.
        prompts: Each row's instruction (the user turn).
        responses: Each row's answer.
        max_length: Tokens per sequence; memory and time grow with it.
        batch_size: Sequences per forward pass (each row makes two).

    Returns:
        One :class:`IFDScore` per row.
    """
    sequences, targets = [], []
    for prompt, response in zip(prompts, responses, strict=True):
        conditioned, unconditioned, k = build_pair(
            tokenizer, prompt, response, max_length=max_length
        )
        sequences += [conditioned, unconditioned]
        targets += [k, k]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    nll = response_nll(model, sequences, targets, pad_id=pad, batch_size=batch_size)
    scores = []
    for i in range(len(prompts)):
        c, u = nll[2 * i], nll[2 * i + 1]
        ok = not (math.isnan(c) or math.isnan(u))
        scores.append(IFDScore(c if ok else math.nan, u if ok else math.nan, targets[2 * i] * ok))
    return scores


def load_causal_lm(path: str, *, device: str = "cpu", threads: int = 0) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local directory (or cached Hub id), eval mode.

    Args:
        path: What ``from_pretrained`` loads (see ``infra.models.resolve_base_model``).
        device: "cpu" or "cuda".
        threads: torch CPU threads; 0 leaves torch's default.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads > 0:
        torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(path)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    return model, tokenizer
