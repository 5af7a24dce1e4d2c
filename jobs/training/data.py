"""Training rows: reading, validation, prompt/completion split, held-out split, length policy.

No Ray and no torch here; the driver prepares the rows once and hands them to the workers.
Each conversation becomes a conversational prompt-completion example (prompt = the turns
before the last assistant turn, completion = that turn); training joins them back and
learns every assistant turn, or the last one (:mod:`jobs.training.masking`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import storage
from infra.errors import InputError

Message = dict[str, str]
Example = dict[str, Any]  # {"id": str, "prompt": [Message], "completion": [Message]}

ROLES = ("system", "user", "assistant", "tool")
EMPTY_ANSWER = "empty answer"
CURATE_FIELDS = frozenset({"messages", "quality", "cluster"})  # curate's selected.jsonl record
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}


@dataclass
class LoadReport:
    """What happened to the rows of one file."""

    path: str
    rows: int = 0
    """Non-empty lines (or array items) read."""
    skipped: Counter = field(default_factory=Counter)
    """Skipped rows by reason."""
    examples_of_skips: list[str] = field(default_factory=list)
    """A few 'line N: reason' strings, for the warning."""
    curated: int = 0
    """Rows carrying the fields `finesift curate` writes beside the messages (quality and
    cluster in selected.jsonl, and in review's verified.jsonl)."""

    @property
    def from_curate(self) -> bool:
        """Every row of the file came out of ``finesift curate``."""
        return self.rows > 0 and self.curated == self.rows

    def skip(self, line: int, reason: str) -> None:
        """Count one skipped row."""
        self.skipped[reason] += 1
        if len(self.examples_of_skips) < 5:
            self.examples_of_skips.append(f"line {line}: {reason}")

    def warning(self) -> str | None:
        """A one-paragraph warning when rows were skipped, else None."""
        if not self.skipped:
            return None
        counts = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        return (
            f"{self.path}: skipped {sum(self.skipped.values())} of {self.rows} rows ({counts}); "
            f"e.g. {'; '.join(self.examples_of_skips)}"
        )


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (recorded in finesift.json to identify the data).

    A URI (``s3://...``) is streamed a block at a time, never downloaded whole.
    """
    digest = hashlib.sha256()
    with storage.open_input(str(path)) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_examples(path: str | Path) -> tuple[list[Example], LoadReport]:
    """Read chat rows and turn each into a prompt-completion example.

    Accepted rows (JSONL, or a JSON array in a .json file): ``messages`` (a list of
    ``{role, content}`` or that list as a JSON string), ShareGPT ``conversations``,
    alpaca ``instruction``/``input``/``output``, or ``prompt`` with ``response``/``completion``.
    Rows that cannot be used (bad JSON, no assistant turn...) are skipped and counted.

    Args:
        path: the data file: a local path or a URI (``s3://bucket/selected.jsonl``).

    Returns:
        The examples, and a report of skipped rows.

    Raises:
        InputError: when the file is missing, empty, or has no usable row.
    """
    p = str(path) if storage.is_uri(str(path)) else str(Path(path))
    if storage.kind_of(p) != "file":
        raise InputError(f"data file {p} does not exist; pass curate's selected.jsonl to --data")
    report = LoadReport(path=p)
    examples: list[Example] = []
    for line_no, row in _read_rows(p, report):
        try:
            messages = row_messages(row)
        except ValueError as exc:
            report.skip(line_no, str(exc))
            continue
        example = to_prompt_completion(messages)
        if example is None:
            has_answer = any(m["role"] == "assistant" for m in messages[1:])
            report.skip(line_no, EMPTY_ANSWER if has_answer else "no assistant turn to learn from")
            continue
        if row.keys() >= CURATE_FIELDS:
            report.curated += 1
        example["id"] = str(row.get("id") or _content_id(messages))
        examples.append(example)
    if report.rows == 0:
        raise InputError(
            f"data file {p} is empty; run `finesift curate` first, or pass a "
            'JSONL file with one {"messages": [...]} object per line'
        )
    if not examples:
        raise InputError(
            f"no usable rows in {p}: {report.warning()}. Each row needs a "
            "`messages` list ending in an assistant turn"
        )
    return examples, report


def _read_rows(path: str, report: LoadReport):
    """Yield (line number, dict) for each row; count rows that are not JSON objects."""
    if Path(storage.name_of(path)).suffix == ".json":
        try:
            items = json.loads(storage.read_text(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"{path} is not valid JSON ({exc}); use JSONL, one row per line"
            ) from exc
        if not isinstance(items, list):
            raise InputError(f"{path} must hold a JSON array of rows, or be JSONL")
        for index, item in enumerate(items):
            report.rows += 1
            if isinstance(item, dict):
                yield index, item
            else:
                report.skip(index, "not a JSON object")
        return
    with io.TextIOWrapper(storage.open_input(path), encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report.rows += 1
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                report.skip(line_no, "invalid JSON")
                continue
            if isinstance(item, dict):
                yield line_no, item
            else:
                report.skip(line_no, "not a JSON object")


def row_messages(row: dict[str, Any]) -> list[Message]:
    """The conversation of one row as ``[{role, content}]``.

    Raises:
        ValueError: with a short reason when the row has no usable conversation.
    """
    if "messages" in row:
        messages = row["messages"]
        if isinstance(messages, str):
            try:
                messages = json.loads(messages)
            except json.JSONDecodeError as exc:
                raise ValueError("messages is a string but not a JSON list") from exc
        return _check_messages(messages)
    if "conversations" in row:
        turns = row["conversations"]
        if not isinstance(turns, list):
            raise ValueError("conversations is not a list")
        return _check_messages(
            [
                {
                    "role": SHAREGPT_ROLES.get(str(t.get("from")), str(t.get("from"))),
                    "content": t.get("value"),
                }
                if isinstance(t, dict)
                else t
                for t in turns
            ]
        )
    if "instruction" in row and "output" in row:
        prompt = str(row["instruction"])
        if row.get("input"):
            prompt = f"{prompt}\n\n{row['input']}"
        return _check_messages(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
        )
    answer = row.get("response", row.get("completion"))
    if "prompt" in row and answer is not None:
        return _check_messages(
            [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
        )
    raise ValueError("no messages field (nor conversations, instruction/output, prompt/response)")


def _check_messages(messages: Any) -> list[Message]:
    """Validate roles and contents; keep only role and content."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages is not a non-empty list")
    clean = []
    for message in messages:
        if not isinstance(message, dict):
            raise ValueError("a message is not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if not isinstance(content, str):
            raise ValueError(f"a {role} message has no text content")
        clean.append({"role": role, "content": content})
    return clean


def to_prompt_completion(messages: list[Message]) -> Example | None:
    """Split a conversation at its last assistant turn.

    Turns after the last assistant turn are dropped; earlier assistant turns are context.

    Returns:
        ``{"prompt": [...], "completion": [last assistant turn]}``, or None when there is
        no assistant turn with text, or nothing before it.
    """
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None or last == 0 or not messages[last]["content"].strip():
        return None
    return {"prompt": messages[:last], "completion": [messages[last]]}


def _content_id(messages: list[Message]) -> str:
    """A stable id for rows without one."""
    text = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def split_heldout(
    examples: list[Example], fraction: float, max_rows: int, seed: int
) -> tuple[list[Example], list[Example]]:
    """Hold out rows for evaluation, deterministically.

    Rows are ranked by a seeded hash of their id, so the held-out set depends on the
    rows and the seed, not on file order (for unique ids), and is the same on every run.

    Args:
        examples: all rows.
        fraction: share of rows to hold out; 0 holds out none.
        max_rows: upper bound on held-out rows.
        seed: changes which rows are held out.

    Returns:
        (train, held out), each in input order.
    """
    if fraction <= 0 or len(examples) < 2:
        return list(examples), []
    n_eval = min(max_rows, len(examples) - 1, max(1, round(len(examples) * fraction)))

    def rank(item: tuple[int, Example]) -> tuple[str, int]:
        index, example = item  # the index only breaks ties between repeated ids
        return hashlib.sha256(f"{seed}:{example['id']}".encode()).hexdigest(), index

    held = {index for index, _ in sorted(enumerate(examples), key=rank)[:n_eval]}
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


@dataclass
class LengthReport:
    """Rows over max_length and what was done about them."""

    too_long: int = 0
    """Rows whose conversation exceeds max_length tokens."""
    prompt_fills: int = 0
    """Of those, rows whose first learned token lies past max_length: truncation leaves no
    answer token, so they are always skipped."""
    skipped: int = 0
    """Rows removed."""
    longest: int = 0
    """Tokens in the longest row."""
    tokens: int = 0
    """Tokens in all rows (before truncation)."""
    unaligned_turns: int = 0
    """Assistant turns left out of the loss because the chat template renders the history
    differently once the conversation goes on (see :mod:`jobs.training.masking`)."""
    nothing_to_learn: int = 0
    """Rows skipped because none of their assistant turns could be located."""


def messages_of(example: Example) -> list[Message]:
    """The whole conversation of a prompt-completion example."""
    return [*example["prompt"], *example["completion"]]


def apply_length_policy(
    examples: list[Example],
    tokenizer: Any,
    max_length: int,
    too_long: str,
    train_on: str = "all",
) -> tuple[list[Example], LengthReport]:
    """Count rows longer than ``max_length`` tokens and skip them when asked.

    Truncation itself happens in TRL (keeping the start); a row whose first learned token
    lies past ``max_length`` would keep nothing to learn, so it is skipped either way.

    Args:
        examples: prompt-completion rows.
        tokenizer: a tokenizer with a chat template.
        max_length: the training sequence length.
        too_long: 'truncate' or 'skip'.
        train_on: the assistant turns learned: 'all' or 'last'.

    Returns:
        The rows to train on, and a report.
    """
    from jobs.training.masking import tokenize_conversation

    report = LengthReport()
    kept = []
    for example in examples:
        tokens = tokenize_conversation(tokenizer, messages_of(example), train_on)
        total, first = len(tokens.input_ids), tokens.first_learned
        report.tokens += total
        report.longest = max(report.longest, total)
        report.unaligned_turns += tokens.unaligned_turns
        if first is None:
            report.nothing_to_learn += 1
            report.skipped += 1
            continue
        if total <= max_length:
            kept.append(example)
            continue
        report.too_long += 1
        if first >= max_length:
            report.prompt_fills += 1
        if too_long == "skip" or first >= max_length:
            report.skipped += 1
        else:
            kept.append(example)
    return kept, report
