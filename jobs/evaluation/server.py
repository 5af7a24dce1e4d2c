"""``finesift eval --url``: the held-out evaluation pointed at a running server.

The rows, the greedy settings and the metrics are those of ``finesift eval``; only where
the answers come from changes, so the same evaluation can be pointed at finesift's backend
or the vLLM one (or any OpenAI-compatible server) and compared with a local run.

- ROUGE-L and chrF: each generated row is one chat completion (temperature 0,
  ``generation.max_new_tokens``), ``server.concurrency`` at a time.
- NLL needs the log-probabilities of the reference answer's tokens, which a server gives
  only as prompt logprobs: a legacy completion of the whole conversation (rendered with
  the base model's chat template, ``echo`` and ``logprobs``) returns each token's
  logprob and text offset; the tokens from the assistant turn on are summed, the tokens
  the local NLL counts (the answer and its end-of-turn). vLLM answers such requests;
  finesift's backend refuses them, and NLL is then reported as not available, with why.

A request that fails for one row (a prompt over the server's limits, say) leaves that row
out of that model's figures, and the model's ``note`` says how many; a server that cannot
be reached, refuses the key or does not know the model (401, 403, 404) stops the
evaluation with the server's message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.console import Console

from infra.errors import FinesiftError
from jobs.evaluation.config import EvalConfig
from jobs.evaluation.evaluate import finish, load_eval_rows, sample_records, summarize
from jobs.evaluation.result import EvalResult

console = Console(stderr=True)
Message = dict[str, str]


def run_against_server(cfg: EvalConfig) -> EvalResult:
    """Evaluate every model of ``cfg.models`` as served at ``cfg.server.url``.

    Raises:
        FinesiftError: the server cannot be reached or does not serve a model.
        InputError: eval_data cannot be read.
    """
    from serving.client import make_client, served_names

    assert cfg.eval_data is not None and cfg.server.url is not None
    gen_rows = cfg.generation.max_rows if cfg.generation.enabled else -1
    rows = load_eval_rows(cfg.eval_data, cfg.max_rows, max(gen_rows, 0))
    if gen_rows < 0:
        rows = [{**r, "generate": False} for r in rows]
    client = make_client(cfg.server.url, timeout=cfg.server.timeout_s)
    served = served_names(client, cfg.models)
    tokenizer = TokenizerOnce(cfg.base_model)
    summaries, samples = [], []
    for name in cfg.models:
        console.print(f"[bold cyan]finesift eval[/] {name} at {cfg.server.url}: {len(rows)} rows")
        start = time.perf_counter()
        outputs, answered, notes = evaluate_served(client, served[name], rows, cfg, tokenizer)
        summary = summarize(answered, outputs)
        summaries.append(
            {
                "name": name,
                "base_model": cfg.base_model,
                "adapter": None,
                **summary,
                "seconds": round(time.perf_counter() - start, 1),
                "served_as": served[name] if served[name] != name else None,
                "note": "; ".join(notes) or None,
            }
        )
        samples.extend(sample_records(name, answered, outputs))
    return finish(cfg, rows, summaries, samples, url=cfg.server.url)


class TokenizerOnce:
    """The base model's tokenizer (for its chat template), loaded on first use only: a
    server that gives no prompt logprobs never needs it."""

    def __init__(self, base_model: str) -> None:
        self.base_model = base_model
        self._tokenizer: Any = None

    def __call__(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from infra.models import resolve_base_model

            self._tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(self.base_model))
        return self._tokenizer


def evaluate_served(
    client: Any,
    model: str,
    rows: list[dict[str, Any]],
    cfg: EvalConfig,
    tokenizer: Callable[[], Any],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """One served model over the rows.

    Returns:
        ``(outputs, rows, notes)``: per-row ``nll_sum``, ``tokens`` and ``generation`` as
        :func:`summarize` takes them; the rows with ``generate`` cleared where the answer
        failed; and what could not be measured.
    """
    notes: list[str] = []
    flagged = [i for i, r in enumerate(rows) if r["generate"]]
    answers = _answers(client, model, rows, flagged, cfg)
    failed = [i for i in flagged if isinstance(answers[i], Exception)]
    if failed:
        notes.append(
            f"{len(failed)} of {len(flagged)} answers failed and are left out of ROUGE-L and "
            f"chrF (first: {answers[failed[0]]})"
        )
    scores, why_not = _reference_nlls(client, model, rows, cfg, tokenizer)
    if why_not:
        notes.append(f"NLL not available: {why_not}")
    outputs = [
        {
            "index": r["index"],
            "nll_sum": scores[i][0],
            "tokens": scores[i][1],
            "generation": "" if isinstance(answers.get(i), Exception) else answers.get(i, ""),
        }
        for i, r in enumerate(rows)
    ]
    answered = [{**r, "generate": r["generate"] and i not in failed} for i, r in enumerate(rows)]
    return outputs, answered, notes


def _answers(
    client: Any, model: str, rows: list[dict[str, Any]], flagged: list[int], cfg: EvalConfig
) -> dict[int, str | Exception]:
    """Greedy answers of the flagged rows; a failure is kept as the row's exception. The
    first row is asked alone: an error there (unknown model, no key) stops the evaluation."""
    if not flagged:
        return {}

    def answer(i: int) -> str:
        prompt = json.loads(rows[i]["prompt"])
        return greedy_answer(client, model, prompt, cfg.generation.max_new_tokens)

    first = flagged[0]
    found: dict[int, str | Exception] = {first: _unless_fatal(model, lambda: answer(first))}
    found.update(_each(answer, flagged[1:], cfg.server.concurrency))
    return found


def greedy_answer(client: Any, model: str, prompt: Sequence[Message], max_tokens: int) -> str:
    """The server's greedy answer to a conversation, stripped as local eval strips it."""
    out = client.chat.completions.create(
        model=model, messages=list(prompt), max_tokens=max_tokens, temperature=0
    )
    return (out.choices[0].message.content or "").strip()


def _reference_nlls(
    client: Any,
    model: str,
    rows: list[dict[str, Any]],
    cfg: EvalConfig,
    tokenizer: Callable[[], Any],
) -> tuple[list[tuple[float, int]], str | None]:
    """Each row's summed answer NLL and token count from the server's prompt logprobs;
    zeros and the reason when the server does not give them."""
    import openai

    none = [(0.0, 0)] * len(rows)
    if not rows:
        return none, None

    def score(i: int) -> tuple[float, int]:
        prompt = json.loads(rows[i]["prompt"])
        return reference_nll(client, model, tokenizer(), prompt, rows[i]["reference"])

    first = _unless_fatal(model, lambda: score(0))
    if isinstance(first, openai.APIStatusError):  # the server refuses echo / logprobs
        return none, f"the server does not return prompt logprobs ({_said(first)})"
    if isinstance(first, ValueError):  # the answer is not a suffix of the conversation
        return none, str(first)
    if isinstance(first, Exception):
        raise first
    rest = _each(score, range(1, len(rows)), cfg.server.concurrency)
    failed = [i for i, v in rest.items() if isinstance(v, Exception)]
    if failed:
        return none, f"{len(failed)} rows failed (first: {rest[failed[0]]})"
    return [first, *(rest[i] for i in range(1, len(rows)))], None  # type: ignore[list-item]


def reference_nll(
    client: Any, model: str, tokenizer: Any, prompt: Sequence[Message], reference: str
) -> tuple[float, int]:
    """Summed NLL (nats) of the reference answer's tokens, and their count, as the server
    scores them: the conversation with the answer is sent as a legacy completion with
    ``echo`` and ``logprobs``, and the tokens that start at or after the assistant turn's
    text are summed (the answer and its end-of-turn, as the local NLL counts them).

    Raises:
        openai.APIStatusError: the server refuses echo or logprobs.
        ValueError: the chat template does not render the answer after the prompt.
    """
    head = tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
    turns = [*prompt, {"role": "assistant", "content": reference}]
    full = tokenizer.apply_chat_template(turns, tokenize=False)
    if not full.startswith(head):
        raise ValueError("the chat template does not render the answer after the prompt")
    out = client.completions.create(
        model=model, prompt=full, max_tokens=1, temperature=0, echo=True, logprobs=1
    )
    logprobs = out.choices[0].logprobs
    if logprobs is None or not logprobs.text_offset:
        raise ValueError("the server's answer carries no prompt logprobs")
    total, count = 0.0, 0
    for offset, value in zip(logprobs.text_offset, logprobs.token_logprobs, strict=False):
        # Tokens of the echoed conversation from the answer on; the generated token
        # (offset past the conversation) is not part of it.
        if len(head) <= offset < len(full) and value is not None:
            total -= float(value)
            count += 1
    return total, count


def _each(
    work: Callable[[int], Any], indexes: Sequence[int] | range, concurrency: int
) -> dict[int, Any]:
    """``work(i)`` for each index, ``concurrency`` at a time; an exception is kept as the
    index's value."""

    def attempt(i: int) -> Any:
        try:
            return work(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(max(1, concurrency)) as pool:
        return dict(zip(indexes, pool.map(attempt, indexes), strict=True))


def _unless_fatal(model: str, work: Callable[[], Any]) -> Any:
    """``work()``, or its exception when it concerns one row only. No server, no access
    or no such model (401, 403, 404) is the whole evaluation's failure, in one line.

    Raises:
        FinesiftError: the server is unreachable, refuses the key or lacks the model.
    """
    import openai

    try:
        return work()
    except openai.APIConnectionError as exc:
        raise FinesiftError(
            "no server answers at the --url given; start one with `finesift serve`"
        ) from exc
    except openai.APIStatusError as exc:
        if exc.status_code in (401, 403, 404):
            raise FinesiftError(
                f"model {model!r}: server said {exc.status_code}: {_said(exc)}"
            ) from exc
        return exc
    except ValueError as exc:
        return exc


def _said(exc: Any) -> str:
    """The ``error.message`` of an OpenAI-shaped error body, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(exc)[:300]
