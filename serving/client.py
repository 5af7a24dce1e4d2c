"""Spot checks against a running server with the official ``openai`` client."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from infra.errors import FinesiftError
from serving.model_names import served_name

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where ``finesift serve`` listens by default."""

DEFAULT_PROMPTS = (
    "What is the capital of France?",
    "Give three tips for writing clear emails.",
    "Explain what a LoRA adapter is in one sentence.",
    "Translate to French: Good morning, how are you?",
)
"""Prompts ``finesift spot-check`` sends when --prompts is not given."""


def openai_url(url: str) -> str:
    """The client's base URL: ``http://host:port`` and ``.../v1`` both mean ``.../v1``."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def make_client(url: str = DEFAULT_URL, api_key: str | None = None, timeout: float = 120.0) -> Any:
    """An ``openai.OpenAI`` client for a finesift server.

    Args:
        url: server URL, with or without ``/v1``.
        api_key: bearer token; None reads ``FINESIFT_API_KEY`` (a placeholder when unset).
        timeout: seconds per request.
    """
    from openai import OpenAI

    key = api_key or os.environ.get("FINESIFT_API_KEY") or "no-key"
    return OpenAI(base_url=openai_url(url), api_key=key, timeout=timeout, max_retries=0)


def served_models(client: Any) -> list[str] | None:
    """The model ids the server lists (``GET /v1/models``), or None when it does not say."""
    import openai

    try:
        return [m.id for m in client.models.list().data]
    except openai.OpenAIError:  # unreachable, no key, no listing: the request will tell
        return None


def served_names(client: Any, names: Sequence[str]) -> dict[str, str]:
    """Each model a user named, as the server lists it: ``smol-demo`` and
    ``base:smol-demo`` both fit either backend (see :mod:`serving.model_names`)."""
    served = served_models(client)
    return {n: n if served is None else served_name(n, served) for n in names}


def ask(client: Any, prompt: str, model: str, max_tokens: int, temperature: float) -> dict:
    """One chat completion; returns answer, finish reason, token counts and latency.

    Raises:
        FinesiftError: when the server is unreachable or answers with an error.
    """
    import openai

    start = time.perf_counter()
    try:
        out = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=temperature,
        )
    except openai.APIConnectionError as exc:
        raise FinesiftError(
            f"no finesift server answers at {client.base_url}; start one with `finesift serve` "
            "or pass --url"
        ) from exc
    except openai.APIStatusError as exc:
        raise FinesiftError(
            f"model {model!r}: server said {exc.status_code}: {_message(exc)}"
        ) from exc
    choice = out.choices[0]
    return {
        "prompt": prompt,
        "model": model,
        "answer": choice.message.content or "",
        "finish_reason": choice.finish_reason,
        "completion_tokens": out.usage.completion_tokens if out.usage else None,
        "latency_s": round(time.perf_counter() - start, 3),
    }


def _message(exc: Any) -> str:
    """The ``error.message`` of an OpenAI-shaped error body, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(exc)


def spot_check(
    client: Any,
    prompts: Sequence[str],
    models: Sequence[str],
    max_tokens: int = 128,
    temperature: float = 0.0,
) -> list[dict]:
    """Ask every model every prompt (prompt-major order), one row per answer.

    Models may be named ``NAME`` or ``BASE:NAME`` whichever form the server lists; rows
    keep the name as given (and ``served_as``, the id sent, when that differs).
    """
    served = served_names(client, models)
    rows = []
    for prompt in prompts:
        for model in models:
            row = ask(client, prompt, served[model], max_tokens, temperature)
            row["model"] = model
            if served[model] != model:
                row["served_as"] = served[model]
            rows.append(row)
    return rows


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a file: JSONL rows with ``prompt`` (or ``instruction``), else one per line.

    Raises:
        FinesiftError: for a missing, non-UTF-8 or empty file, or a JSONL line that is not
            JSON or has no prompt.
    """
    p = Path(path)
    if not p.exists():
        raise FinesiftError(f"prompts file {p} does not exist; pass a text or JSONL file")
    if not p.is_file():
        raise FinesiftError(f"prompts file {p} is not a regular file; pass a text or JSONL file")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FinesiftError(
            f"prompts file {p} is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    prompts: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FinesiftError(
                    f"{p}:{number} is not valid JSON ({exc.msg}); write one JSON object per "
                    "line, or use a .txt file with one prompt per line"
                ) from exc
            text = (row.get("prompt") or row.get("instruction")) if isinstance(row, dict) else None
            if not text:
                raise FinesiftError(f"{p}:{number} has no 'prompt' (or 'instruction') field")
            prompts.append(str(text))
        else:
            prompts.append(line.strip())
    if not prompts:
        raise FinesiftError(f"prompts file {p} holds no prompts")
    return prompts


def side_by_side(rows: Sequence[dict], models: Sequence[str]) -> Any:
    """A rich table: one row per prompt, one column per model."""
    from rich.table import Table

    table = Table(show_lines=True, title="spot check")
    table.add_column("prompt", style="bold", max_width=40)
    for model in models:
        table.add_column(model, overflow="fold")
    answers = {(r["prompt"], r["model"]): r["answer"] for r in rows}
    for prompt in dict.fromkeys(r["prompt"] for r in rows):
        table.add_row(prompt, *(answers.get((prompt, m), "") for m in models))
    return table


def write_jsonl(rows: Sequence[dict], path: str | Path) -> None:
    """Write rows as JSONL, creating the parent directory."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
