"""A quick audit of training rows that did not come from ``finesift curate``.

Three checks that need no model and take a second on thousands of rows: exact
duplicates (equal after normalizing case, whitespace and punctuation), empty or
placeholder answers ("N/A", "TODO", "I don't know", in any assistant turn) and
conflicting answers to the same instruction. It only counts: ``finesift curate`` is what
resolves them (and much more).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from quality.conflicts import resolve_instruction_group
from quality.rules import empty_response
from quality.text import exact_key, instruction_key

Message = dict[str, str]
EXAMPLES = 3  # row ids quoted per finding


@dataclass(frozen=True)
class AuditResult:
    """What the audit found in a set of rows."""

    rows: int
    exact_duplicates: int = 0
    """Rows equal, after normalization, to an earlier row."""
    empty_answers: int = 0
    """Rows with an empty or placeholder assistant turn."""
    conflicts: int = 0
    """Rows whose answer disagrees with another row's answer to the same instruction."""
    examples: dict[str, list[str]] = field(default_factory=dict)
    """A few row ids per finding, to look at."""

    @property
    def problems(self) -> int:
        """Rows with any finding (a row can count under two)."""
        return self.exact_duplicates + self.empty_answers + self.conflicts

    def summary(self) -> str:
        """The counts in one line."""
        parts = [
            f"{self.exact_duplicates} exact duplicates",
            f"{self.empty_answers} empty or placeholder answers",
            f"{self.conflicts} conflicting answers to the same instruction",
        ]
        shown = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in self.examples.items() if ids)
        return f"{', '.join(parts)} in {self.rows} rows" + (f" (e.g. {shown})" if shown else "")


def prompt_response(messages: Sequence[Message]) -> tuple[str, str]:
    """A conversation as curation reads it: the turns before the last answer, and it."""
    body = [m["content"] for m in messages if m["role"] != "system"]
    return "\n\n".join(body[:-1]), body[-1] if body else ""


def audit_rows(
    ids: Sequence[str],
    conversations: Sequence[Sequence[Message]],
    *,
    agree_threshold: float = 0.6,
    shingle_size: int = 3,
) -> AuditResult:
    """Count exact duplicates, empty or placeholder answers and conflicting answers.

    Args:
        ids: row ids, for the examples.
        conversations: each row's ``[{role, content}]``, ending with an assistant turn.
        agree_threshold: answers to the same instruction at least this similar agree
            (curate's ``conflicts.agree_threshold``); below it they conflict.
        shingle_size: words per shingle when comparing answers.

    Returns:
        The counts, and a few row ids per finding.
    """
    if len(ids) != len(conversations):
        raise ValueError(f"got {len(conversations)} conversations for {len(ids)} ids")
    examples: dict[str, list[str]] = defaultdict(list)

    def note(kind: str, row_id: str) -> None:
        if len(examples[kind]) < EXAMPLES:
            examples[kind].append(row_id)

    seen: set[str] = set()
    by_instruction: dict[str, list[int]] = defaultdict(list)
    pairs = [prompt_response(messages) for messages in conversations]
    duplicates = empty = 0
    for i, (row_id, messages) in enumerate(zip(ids, conversations, strict=True)):
        prompt, response = pairs[i]
        answers = [m["content"] for m in messages if m["role"] == "assistant"]
        if any(empty_response(prompt, answer) for answer in answers):
            empty += 1
            note("empty", row_id)
        key = exact_key(prompt, response)
        if key in seen:
            duplicates += 1
            note("duplicate", row_id)
            continue
        seen.add(key)
        by_instruction[instruction_key(prompt)].append(i)
    conflicts = 0
    for members in by_instruction.values():
        if len(members) < 2:
            continue
        # Equal scores: the first row (smallest id) stands for the group, like curate's ties.
        _, conflict_with = resolve_instruction_group(
            [pairs[i][1] for i in members],
            np.zeros(len(members)),
            [ids[i] for i in members],
            agree_threshold=agree_threshold,
            shingle_size=shingle_size,
        )
        for j in np.flatnonzero(conflict_with >= 0):
            conflicts += 1
            note("conflict", ids[members[j]])
    return AuditResult(
        rows=len(ids),
        exact_duplicates=duplicates,
        empty_answers=empty,
        conflicts=conflicts,
        examples=dict(examples),
    )
