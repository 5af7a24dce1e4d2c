"""The canonical row that flows through curation, and the vocabulary of its ledger.

Every stage reads and writes these columns. A stage never deletes a row: it sets
``status`` to a final value and ``reason`` to a code from :data:`REASONS`, so the
ledger can say what happened to every input row.
"""

from __future__ import annotations

from typing import TypedDict

# Status values. ``active`` only exists while the pipeline runs.
ACTIVE = "active"
SELECTED = "selected"
DROPPED = "dropped"
QUARANTINED = "quarantined"
FINAL_STATUSES = (SELECTED, DROPPED, QUARANTINED)

# Reason codes for rows that are not selected (rule names from quality.heuristics
# are reasons too; they are listed there).
REASONS = {
    # quarantine
    "invalid_json": "the line is not valid JSON",
    "invalid_utf8": "the bytes are not valid UTF-8",
    "unknown_schema": "no known schema matches the row's fields",
    "missing_field": "a required field is missing",
    "empty_field": "a required field is empty",
    "wrong_type": "a field has the wrong type",
    "bad_roles": "roles are out of order or unknown",
    "no_assistant_turn": "the conversation has no assistant turn to learn from",
    "too_large": "the record is larger than read.max_record_bytes",
    # dedup and conflicts
    "exact_duplicate": "same text as another row after normalization",
    "near_duplicate": "MinHash Jaccard similarity above dedup.fuzzy_threshold",
    "semantic_duplicate": "embedding cosine similarity above dedup.semantic_threshold",
    "conflict": "same instruction as another row, with a different answer",
    # filters
    "stale": "timestamp older than filters.since",
    "off_distribution": "far from every row of the trusted reference set",
    # model-based signals
    "mismatched": "the response fits other instructions of the dataset better than its own",
    "misaligned": "IFD at or above signals.max_ifd: the instruction does not help the answer",
    "high_perplexity": "response perplexity above signals.max_perplexity",
    "judge_low": "the LLM judge rated the row below judge.min_score",
    # selection
    "not_selected": "survived every filter but did not fit the budget",
}


class Row(TypedDict, total=False):
    """One input row, normalized. Optional keys are absent or None until set."""

    id: str  # the input's id column, else a stable content hash
    source: str  # "path:line" (1-based line for JSONL/CSV, 0-based index for JSON/Parquet)
    messages: str  # JSON list of {"role": "system"|"user"|"assistant", "content": str}
    prompt: str  # every turn before the final assistant turn, as plain text
    response: str  # the final assistant turn
    extras: str  # JSON object: the input's other columns (category, ...)
    timestamp: str | None  # ISO-8601 when the input had a timestamp field
    raw: str | None  # the raw input text, kept for quarantined rows only
    status: str  # ACTIVE while running, then one of FINAL_STATUSES
    reason: str | None  # a code from REASONS or a heuristic rule name
    detail: str | None  # a human-readable explanation of the reason (e.g. the JSON error)
    duplicate_of: str | None  # id of the surviving row of a duplicate group
    kept_instead: str | None  # id of the surviving row of a conflict group
    quality: float | None  # quality score in [0, 1]
    failed_rules: list[str]  # names of the heuristic rules the row failed
    cluster: int  # k-means cluster, -1 before clustering or when not embedded
