"""Per-row generation state for batched decoding: sampling, stops and streamed text.

A batch of OpenAI requests has its own temperature, top_p, seed, stop strings and max
length per row, and ``serving.decoding`` decodes them together. Two per-row pieces:

* :class:`RowSampler` samples a row with its own temperature, top_p and seeded
  ``torch.Generator``; greedy rows take the argmax, as ``generate`` does. A seeded request
  samples the same way whatever batch it lands in.
* :class:`RowState` takes each new token of its row: it decodes text, finds stop strings
  and EOS, counts tokens and knows which text is safe to stream. A row can also fail on
  its own (its sampler cannot be seeded, a draw or a decode raises): it then ends with an
  error result and leaves the batch, and the other rows go on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

SAMPLING_EPS = 1e-5
"""Temperatures below this decode greedily (as vLLM does): dividing logits by a temperature
near 0 overflows to inf, and softmax of inf is NaN, which ``multinomial`` refuses."""


@dataclass(frozen=True)
class GenParams:
    """One request as the generator sees it (sent from the ingress, so kept plain).

    Attributes:
        prompt_ids: prompt token ids, unpadded.
        max_tokens: most tokens to generate.
        temperature: 0 (or below SAMPLING_EPS) for greedy decoding, else the softmax
            temperature.
        top_p: nucleus sampling mass in (0, 1].
        stop: strings that end the answer (not included in it).
        seed: seeds this row's sampler; None draws a random seed.
    """

    prompt_ids: tuple[int, ...]
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class RowResult:
    """A finished answer, or an error that replaces it.

    Attributes:
        text: the answer, stop strings and EOS removed.
        completion_tokens: tokens generated (an EOS token counts).
        finish_reason: ``stop`` (EOS or a stop string) or ``length`` (max_tokens reached).
        error: None, or a message when generation failed.
        status: HTTP status for the error (400 for the client's fault, else 500).
        code: short error code for the error.
    """

    text: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None
    error: str | None = None
    status: int = 500
    code: str | None = None


@dataclass(frozen=True)
class StreamDelta:
    """New text for one streamed row since its previous delta.

    Attributes:
        text: the new text (may be empty).
        finish_reason: set on the row's last delta.
        completion_tokens: tokens generated so far.
        error: set, with ``status``, when generation failed; the stream ends with it.
        status: HTTP-like status of the error.
        code: short error code of the error.
    """

    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int = 0
    error: str | None = None
    status: int = 500
    code: str | None = None


class RowState:
    """The tokens, text and finish state of one row while it is generated.

    Args:
        params: the row's request.
        decode: token ids to text (special tokens skipped).
        eos_ids: token ids that end an answer.
    """

    def __init__(
        self, params: GenParams, decode: Callable[[list[int]], str], eos_ids: Sequence[int]
    ) -> None:
        self.params = params
        self._decode = decode
        self._eos = frozenset(eos_ids)
        self.tokens: list[int] = []
        self.generated = 0
        self.text = ""
        self.finish_reason: str | None = None
        self.failure: RowResult | None = None
        self._emitted = 0
        # A stop string may be split across tokens: keep back enough text to cut it off.
        self._hold = max((len(s) for s in params.stop), default=1) - 1

    @property
    def done(self) -> bool:
        """Whether the row has finished, normally or with a failure."""
        return self.finish_reason is not None or self.failure is not None

    def fail(self, error: str, status: int = 500, code: str = "generation_failed") -> None:
        """End this row with an error; the batch drops it and its other rows go on."""
        if self.failure is None:
            self.failure = RowResult(error=error, status=status, code=code)

    def push(self, token_id: int) -> None:
        """Add the row's next generated token; a finished row ignores it (it is padding)."""
        if self.done:
            return
        self.generated += 1
        if token_id in self._eos:
            self.finish_reason = "stop"
            return
        self.tokens.append(token_id)
        self.text = self._decode(self.tokens)
        cut = self._first_stop()
        if cut is not None:
            self.text = self.text[: max(cut, self._emitted)]
            self.finish_reason = "stop"
        elif self.generated >= self.params.max_tokens:
            self.finish_reason = "length"

    def _first_stop(self) -> int | None:
        """Index of the earliest stop string in the text, or None."""
        hits = [i for i in (self.text.find(s) for s in self.params.stop) if i >= 0]
        return min(hits) if hits else None

    def take_delta(self) -> str:
        """Text not yet streamed that can no longer change: never part of a stop string,
        never half a multi-byte character."""
        end = len(self.text)
        if not self.done:
            end = min(end - self._hold, len(self.text.rstrip("\ufffd")))
        if end <= self._emitted:
            return ""
        delta = self.text[self._emitted : end]
        self._emitted = end
        return delta

    def result(self) -> RowResult:
        """The finished row (a row cut short by the batch's end counts as ``length``), or
        its failure."""
        if self.failure is not None:
            return self.failure
        return RowResult(self.text, self.generated, self.finish_reason or "length")


class RowSampler:
    """One row's token choice: the argmax when greedy, else a draw from its own generator.

    Args:
        params: the row's request (temperature, top_p, seed).
        device: where the row's logits live.
    """

    def __init__(self, params: GenParams, device: torch.device | str = "cpu") -> None:
        self.params = params
        self.generator: torch.Generator | None = None
        if params.temperature >= SAMPLING_EPS:
            self.generator = torch.Generator(device=device)
            seed = params.seed if params.seed is not None else random.getrandbits(63)
            self.generator.manual_seed(seed)


def pick_tokens(
    logits: torch.Tensor,
    samplers: Sequence[RowSampler],
    on_error: Callable[[int, Exception], None] | None = None,
) -> torch.Tensor:
    """The next token of every row from its ``(rows, vocab)`` float logits (on the CPU).

    Args:
        logits: one row of next-token logits per sampler.
        samplers: the rows' samplers.
        on_error: called with a row's index and the exception when its draw fails (that
            row keeps its argmax, which it will ignore); None lets the exception through.
    """
    chosen = torch.argmax(logits, dim=-1)
    for i, sampler in enumerate(samplers):
        if sampler.generator is not None:
            p = sampler.params
            try:
                chosen[i] = sample_token(logits[i], p.temperature, p.top_p, sampler.generator)
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(i, exc)
    return chosen.cpu()


def sample_token(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator
) -> torch.Tensor:
    """Draw one token id from ``softmax(logits / temperature)`` cut to its top_p mass."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        # Drop a token when the mass before it already reaches top_p; the first always stays.
        drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        pick = torch.multinomial(sorted_probs, 1, generator=generator)
        return order[pick].squeeze(0)
    return torch.multinomial(probs, 1, generator=generator).squeeze(0)
