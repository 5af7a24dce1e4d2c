"""An LLM judge (the AlpaGasus approach): rate each row 1-5 for helpfulness and accuracy.

Any OpenAI-compatible chat-completions endpoint works: ``finesift serve``, vLLM, or a
hosted API. Requests run concurrently under an asyncio semaphore, transient failures
(connection errors, timeouts, 429, 5xx) are retried with exponential backoff, answers
are cached by row content, endpoint, model and prompt template, and
:func:`estimate_cost` prices a run before it starts.

A judge answer is parsed, never guessed: ``Score: 4``, a bare ``4`` or ``4/5`` on the
first line are read; anything else (no score, a score outside 1-5, two different
unlabelled numbers) is recorded as ``unparseable`` with the raw answer kept.

Importable without Ray.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quality.score_cache import ScoreCache, score_key

JUDGE_TEMPLATE = (
    "We would like to request your feedback on the performance of an AI assistant in "
    "response to the instruction displayed below.\n\n"
    "### Instruction:\n{prompt}\n\n### Response:\n{response}\n\n"
    "Rate the response for its accuracy and helpfulness with respect to the instruction, "
    "on a scale of 1 to 5, where a higher score means a more accurate and helpful response. "
    'First output one line of the form "Score: N" with N from 1 to 5, then one short '
    "line explaining the score."
)
"""The user message sent per row (the AlpaGasus rating prompt, on a 1-5 scale)."""

OK, UNPARSEABLE, FAILED = "ok", "unparseable", "failed"
CHARS_PER_TOKEN = 4.0
"""Rough characters per token for the cost estimate (English text, BPE tokenizers)."""

_LABELLED = re.compile(r"\b(?:score|rating)\s*(?:[:=]|is)\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_OUT_OF = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:/\s*5|out of 5)\b", re.IGNORECASE)
_BARE = re.compile(r"^\W*(\d+(?:\.\d+)?)\W*$")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


@dataclass(frozen=True)
class JudgeResult:
    """One row's verdict."""

    score: float | None
    """1-5, or None when the answer was unparseable or the request failed."""
    status: str
    """ok, unparseable (the raw answer is kept) or failed (the error is kept)."""
    raw: str
    """The judge's answer text, or the error message when the request failed."""
    cached: bool = False
    """True when the verdict came from the cache."""


@dataclass(frozen=True)
class CostEstimate:
    """What a judge run is expected to cost."""

    requests: int
    input_tokens: int
    output_tokens: int
    usd: float


def parse_score(text: str) -> float | None:
    """The 1-5 score in a judge's answer, or None when it cannot be read without guessing.

    Tried in order: a labelled score anywhere ("Score: 4", "rating is 3.5"); "4/5" or
    "4 out of 5"; a first line that is just a number; a first line whose numbers all
    agree. Scores outside [1, 5] are None.
    """
    text = text or ""
    for pattern in (_LABELLED, _OUT_OF):
        found = {float(m) for m in pattern.findall(text)}
        if len(found) == 1:
            return _in_range(found.pop())
        if len(found) > 1:
            return None
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    bare = _BARE.match(first)
    if bare:
        return _in_range(float(bare.group(1)))
    numbers = {float(n) for n in _NUMBER.findall(first)}
    return _in_range(numbers.pop()) if len(numbers) == 1 else None


def _in_range(score: float) -> float | None:
    return score if 1.0 <= score <= 5.0 else None


def judge_message(prompt: str, response: str, template: str = JUDGE_TEMPLATE) -> str:
    """The user message for one row."""
    return template.format(prompt=prompt, response=response)


def estimate_cost(
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    max_tokens: int,
    usd_per_1k_input: float,
    usd_per_1k_output: float,
    template: str = JUDGE_TEMPLATE,
) -> CostEstimate:
    """Tokens and dollars for judging these rows (input from characters, output at the cap).

    Args:
        prompts: Rows still to judge (leave cached rows out: they cost nothing).
        responses: Their responses.
        max_tokens: The judge's answer cap; the estimate assumes every answer uses it.
        usd_per_1k_input: Price per 1,000 prompt tokens (0 for a local server).
        usd_per_1k_output: Price per 1,000 completion tokens.
        template: The rating prompt.
    """
    overhead = len(template.format(prompt="", response=""))
    chars = sum(len(p) + len(r) + overhead for p, r in zip(prompts, responses, strict=True))
    input_tokens = int(chars / CHARS_PER_TOKEN)
    output_tokens = max_tokens * len(prompts)
    usd = input_tokens / 1000 * usd_per_1k_input + output_tokens / 1000 * usd_per_1k_output
    return CostEstimate(len(prompts), input_tokens, output_tokens, round(usd, 4))


class Judge:
    """Rates rows through an OpenAI-compatible chat endpoint.

    Args:
        url: Server URL, with or without ``/v1`` (e.g. http://127.0.0.1:8000).
        model: Model name the server knows.
        api_key: Bearer token ("no-key" for servers that ignore it).
        concurrency: Requests in flight at once.
        retries: Extra attempts after a transient failure.
        backoff: Seconds before the first retry; doubles each attempt (with jitter).
        timeout: Seconds per request.
        max_tokens: Answer cap; the score is on the first line, so little is needed.
        cache: Where verdicts are kept across runs; None caches nothing.
        template: The rating prompt, with ``{prompt}`` and ``{response}``.
    """

    def __init__(
        self,
        url: str,
        model: str,
        api_key: str,
        *,
        concurrency: int = 8,
        retries: int = 3,
        backoff: float = 1.0,
        timeout: float = 60.0,
        max_tokens: int = 64,
        cache: ScoreCache | None = None,
        template: str = JUDGE_TEMPLATE,
    ) -> None:
        if concurrency < 1 or retries < 0:
            raise ValueError("judge.concurrency must be >= 1 and judge.retries >= 0")
        url = url.rstrip("/")
        self.base_url = url if url.endswith("/v1") else url + "/v1"
        self.model, self.api_key = model, api_key
        self.concurrency, self.retries, self.backoff = concurrency, retries, backoff
        self.timeout, self.max_tokens = timeout, max_tokens
        self.cache, self.template = cache, template
        digest = hashlib.blake2b(template.encode(), digest_size=6).hexdigest()
        self.signal = f"judge:{digest}:max_tokens={max_tokens}"

    def key(self, prompt: str, response: str) -> str:
        """Cache key of one row's verdict."""
        return score_key(self.signal, f"{self.base_url}|{self.model}", prompt, response)

    def uncached(self, prompts: Sequence[str], responses: Sequence[str]) -> list[int]:
        """Indices of rows the cache does not answer (what a run would pay for)."""
        keys = [self.key(p, r) for p, r in zip(prompts, responses, strict=True)]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        return [i for i, k in enumerate(keys) if k not in found]

    def rate(self, prompts: Sequence[str], responses: Sequence[str]) -> list[JudgeResult]:
        """Verdicts for rows, in order (blocking; runs its own event loop)."""
        return asyncio.run(self.rate_async(prompts, responses))

    async def rate_async(
        self, prompts: Sequence[str], responses: Sequence[str]
    ) -> list[JudgeResult]:
        """Verdicts for rows, in order: cached ones first, the rest over the network."""
        from openai import AsyncOpenAI

        keys = [self.key(p, r) for p, r in zip(prompts, responses, strict=True)]
        found = self.cache.get_many(keys) if self.cache is not None else {}
        results: list[JudgeResult | None] = [
            JudgeResult(v["score"], v["status"], v["raw"], cached=True) if k in found else None
            for k, v in ((k, found.get(k)) for k in keys)
        ]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            client = AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
            gate = asyncio.Semaphore(self.concurrency)
            try:
                fresh = await asyncio.gather(
                    *(self._rate_one(client, gate, prompts[i], responses[i]) for i in todo)
                )
            finally:
                await client.close()
            for i, result in zip(todo, fresh, strict=True):
                results[i] = result
            if self.cache is not None:  # failures are not cached: a rerun tries them again
                self.cache.put_many(
                    {
                        keys[i]: {"score": r.score, "status": r.status, "raw": r.raw}
                        for i, r in zip(todo, fresh, strict=True)
                        if r.status != FAILED
                    }
                )
        return [r for r in results if r is not None]

    async def _rate_one(self, client: Any, gate: asyncio.Semaphore, prompt: str, response: str):
        import openai

        transient = (
            openai.APIConnectionError,  # includes timeouts
            openai.RateLimitError,
            openai.InternalServerError,
        )
        message = judge_message(prompt, response, self.template)
        error = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                await asyncio.sleep(delay * (0.5 + random.random()))
            try:
                async with gate:
                    reply = await client.chat.completions.create(
                        model=self.model,
                        messages=[{"role": "user", "content": message}],
                        max_tokens=self.max_tokens,
                        temperature=0.0,
                    )
            except transient as exc:
                error = f"{type(exc).__name__}: {exc}"
                continue
            except openai.APIError as exc:  # a bad request or key: retrying will not help
                return JudgeResult(None, FAILED, f"{type(exc).__name__}: {exc}")
            text = (reply.choices[0].message.content or "") if reply.choices else ""
            score = parse_score(text)
            return JudgeResult(score, OK if score is not None else UNPARSEABLE, text)
        return JudgeResult(None, FAILED, f"gave up after {self.retries + 1} attempts: {error}")
