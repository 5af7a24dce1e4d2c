"""One model in one process: loading (base or base + LoRA adapter), scoring, generating.

:class:`ModelRunner` is the Ray Data actor of ``finesift eval``: each actor loads the model
once, then scores and answers batches of rows. The tokenization and batching helpers
are plain functions so unit tests can run them on a tiny model without Ray.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from quality.metrics import IGNORE_INDEX, sequence_nll

Message = dict[str, str]


def load_model(base_model: str, adapter: str | None, device: str = "cpu") -> tuple[Any, Any]:
    """A causal LM in eval mode, with the LoRA adapter merged in when one is given.

    Merging folds the low-rank update into the base weights, so inference costs what the
    base model costs.

    Args:
        base_model: a model directory or Hub id that ``from_pretrained`` loads.
        adapter: a peft adapter directory, or None for the base model alone.
        device: "cpu" (float32) or "cuda" (bfloat16 where supported, else float32).

    Returns:
        ``(model, tokenizer)``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(
        base_model, dtype=torch.bfloat16 if bf16 else torch.float32
    )
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model.to(device).eval(), tokenizer


def chat_ids(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool) -> list[int]:
    """Token ids of ``messages`` rendered with the tokenizer's chat template."""
    out = tokenizer.apply_chat_template(
        list(messages), tokenize=True, return_dict=True, add_generation_prompt=add_generation_prompt
    )
    return list(out["input_ids"])


def answer_labels(
    tokenizer: Any, prompt: Sequence[Message], answer: str, max_length: int
) -> tuple[list[int], list[int]]:
    """Input ids of prompt + answer, and labels that count the answer tokens only.

    The answer tokens are what the full conversation adds after the prompt rendered with
    the generation prompt (the assistant header): the answer text and the template's
    end-of-turn tokens, the same split TRL's completion-only loss trains on.

    Args:
        tokenizer: a tokenizer with a chat template.
        prompt: the turns before the answer.
        answer: the reference assistant answer.
        max_length: longer sequences keep their start.

    Returns:
        ``(input_ids, labels)`` of equal length, ``IGNORE_INDEX`` on prompt positions.
    """
    prompt_ids = chat_ids(tokenizer, prompt, add_generation_prompt=True)
    full = chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": answer}], False)
    shared = 0
    for a, b in zip(prompt_ids, full, strict=False):
        if a != b:
            break
        shared += 1
    labels = [IGNORE_INDEX] * shared + full[shared:]
    return full[:max_length], labels[:max_length]


def pad_right(sequences: Sequence[Sequence[int]], value: int) -> np.ndarray:
    """Stack int sequences into a ``[batch, longest]`` array, padded with ``value``."""
    longest = max((len(s) for s in sequences), default=0)
    out = np.full((len(sequences), longest), value, dtype=np.int64)
    for i, seq in enumerate(sequences):
        out[i, : len(seq)] = seq
    return out


def score_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    answers: Sequence[str],
    max_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) of each reference answer given its prompt, and its token count.

    Args:
        model: a causal LM.
        tokenizer: its tokenizer, with a chat template.
        prompts: one list of turns per row.
        answers: one reference answer per row.
        max_length: tokens per row; answer tokens past it are not scored.

    Returns:
        ``(nll_sums, token_counts)``, float64 arrays of shape ``[rows]``.
    """
    import torch

    pairs = [
        answer_labels(tokenizer, p, a, max_length) for p, a in zip(prompts, answers, strict=True)
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.from_numpy(pad_right([p[0] for p in pairs], pad))
    labels = torch.from_numpy(pad_right([p[1] for p in pairs], IGNORE_INDEX))
    mask = torch.from_numpy(pad_right([[1] * len(p[0]) for p in pairs], 0))
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        sums, counts = sequence_nll(logits, labels.to(device))
    return sums.cpu().numpy(), counts.cpu().numpy()


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Message]],
    max_new_tokens: int,
    max_length: int,
) -> list[str]:
    """Greedy answers to a batch of prompts (left-padded, one ``generate`` call).

    Args:
        model: a causal LM.
        tokenizer: its tokenizer, with a chat template.
        prompts: one list of turns per row.
        max_new_tokens: tokens generated at most per answer.
        max_length: prompt + answer tokens; longer prompts keep their end (the question).

    Returns:
        The decoded answers, special tokens removed.
    """
    import torch
    from transformers import GenerationConfig

    if not prompts:
        return []
    keep = max(1, max_length - max_new_tokens)
    encoded = [chat_ids(tokenizer, p, add_generation_prompt=True)[-keep:] for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    longest = max(len(e) for e in encoded)
    ids = np.full((len(encoded), longest), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, seq in enumerate(encoded):
        ids[i, longest - len(seq) :] = seq
        mask[i, longest - len(seq) :] = 1
    device = next(model.parameters()).device
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=pad,
        eos_token_id=_stop_ids(model, tokenizer),
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.from_numpy(ids).to(device),
            attention_mask=torch.from_numpy(mask).to(device),
            generation_config=config,
        )
    new = out[:, longest:].cpu()
    return [tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """End-of-turn ids: the tokenizer's eos and the model's generation eos (ChatML has two)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


class ModelRunner:
    """Ray Data actor: one model, loaded once; each batch gets NLLs and (some) answers.

    Input batch columns: ``index``, ``prompt`` (JSON list of turns), ``reference`` (the
    answer), ``generate`` (bool: also answer this row). Output: ``index``, ``nll_sum``,
    ``tokens``, ``generation`` ("" where not generated).
    """

    def __init__(
        self,
        base_model: str,
        adapter: str | None,
        device: str,
        threads: int,
        max_length: int,
        max_new_tokens: int,
    ) -> None:
        import torch

        from infra.models import resolve_base_model

        if threads > 0:
            torch.set_num_threads(threads)
        # Resolved here, on the actor's node: it converts the bundled model once per node.
        self.model, self.tokenizer = load_model(resolve_base_model(base_model), adapter, device)
        self.max_length = max_length
        self.max_new_tokens = max_new_tokens

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Score every row of the batch; generate for rows flagged ``generate``."""
        prompts = [json.loads(p) for p in batch["prompt"]]
        answers = [str(r) for r in batch["reference"]]
        sums, counts = score_answers(self.model, self.tokenizer, prompts, answers, self.max_length)
        flagged = [i for i, g in enumerate(batch["generate"]) if g]
        generated = generate_answers(
            self.model,
            self.tokenizer,
            [prompts[i] for i in flagged],
            self.max_new_tokens,
            self.max_length,
        )
        texts = [""] * len(prompts)
        for i, text in zip(flagged, generated, strict=True):
            texts[i] = text
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "nll_sum": sums,
            "tokens": counts,
            "generation": np.asarray(texts, dtype=object),
        }
