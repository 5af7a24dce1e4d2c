"""The canonical row that flows through curation, and the vocabulary of its ledger.

Every stage reads and writes these columns. A stage never deletes a row: it sets
``status`` to a final value and ``reason`` to a code from :data:`REASONS`, so the
ledger can say what happened to every input row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

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
    "too_deep": "objects and arrays nest deeper than 128 levels",
    "unreadable": "text that could not be decoded (a damaged gzip file, a Parquet row group)",
    # dedup and conflicts
    "exact_duplicate": "same text as another row after normalization",
    "near_duplicate": "MinHash Jaccard similarity above dedup.fuzzy_threshold",
    "semantic_duplicate": "embedding cosine similarity above dedup.semantic_threshold",
    "conflict": "same instruction as another row, with a different answer",
    # filters
    "stale": "timestamp older than filters.since",
    "off_distribution": "far from every row of the trusted reference set",
    "contaminated": "duplicates (exact, fuzzy or semantic) a row of an evaluation set",
    # model-based signals
    "mismatched": "the response fits other instructions of the dataset better than its own",
    "misaligned": "IFD at or above signals.max_ifd: the instruction does not help the answer",
    "high_perplexity": "response perplexity above signals.max_perplexity",
    "judge_low": "the LLM judge rated the row below judge.min_score",
    # selection
    "not_selected": "survived every filter but did not fit the budget",
}


@dataclass(frozen=True)
class Column:
    """One column of the canonical row: its Arrow type, its value before any stage set
    it, whether the ledger keeps it, and what it means."""

    name: str
    type: pa.DataType
    default: Any
    doc: str
    in_ledger: bool = True


# The row, defined once. Stages add working columns while the job runs (grouping keys,
# embeddings); they never reach the ledger, which is this list minus the raw text.
COLUMNS: tuple[Column, ...] = (
    Column("id", pa.string(), "", "the input's id column, else a stable content hash"),
    Column(
        "source",
        pa.string(),
        "",
        '"path:line" (1-based line for JSONL/CSV, 0-based index for JSON/Parquet)',
    ),
    Column(
        "input_id",
        pa.string(),
        None,
        "the id as the input wrote it, set when other rows had it too (id is then id@source)",
    ),
    Column("status", pa.string(), ACTIVE, "ACTIVE while running, then one of FINAL_STATUSES"),
    Column("reason", pa.string(), None, "a code from REASONS or a heuristic rule name"),
    Column("detail", pa.string(), None, "the reason in words (the JSON error, the score...)"),
    Column("duplicate_of", pa.string(), None, "id of the row kept from this row's duplicates"),
    Column("kept_instead", pa.string(), None, "id of the row kept from this row's conflict"),
    Column("quality", pa.float64(), None, "the composed quality score in [0, 1]"),
    Column("heuristic", pa.float64(), None, "the rule-based score in [0, 1] (one of its terms)"),
    Column("failed_rules", pa.list_(pa.string()), [], "heuristic rules the row failed"),
    Column("cluster", pa.int64(), -1, "k-means cluster; -1 before clustering"),
    Column("timestamp", pa.string(), None, "ISO-8601, when the input had a timestamp field"),
    Column("prompt", pa.string(), "", "every turn before the final assistant turn, as text"),
    Column("response", pa.string(), "", "the final assistant turn"),
    Column("extras", pa.string(), "{}", "JSON object: the input's other columns (category...)"),
    Column("relevance", pa.float64(), None, "relevance margin; null where it did not run"),
    Column("ifd", pa.float64(), None, "instruction-following difficulty; null if not run"),
    Column("perplexity", pa.float64(), None, "response perplexity; null if not run"),
    Column("judge_score", pa.float64(), None, "the LLM judge's 1-5 rating; null if not run"),
    Column("judge_status", pa.string(), None, "ok, or what went wrong asking the judge"),
    Column(
        "messages",
        pa.string(),
        "[]",
        'JSON list of {"role": "system"|"user"|"assistant", "content": str}',
        # exactly as selected.jsonl writes it: review refills the budget from the ledger
    ),
    Column("raw", pa.string(), None, "the raw input text, kept for quarantined rows", False),
)

ROW_SCHEMA = pa.schema([(c.name, c.type) for c in COLUMNS])
"""Every column a block of rows carries while curation runs, in this order."""
LEDGER_SCHEMA = pa.schema([(c.name, c.type) for c in COLUMNS if c.in_ledger])
"""The columns of ledger.parquet: the row without its raw text."""

Row = dict[str, Any]
"""One row as a dict of :data:`COLUMNS` (readers build them with :func:`new_row`)."""


def new_row(**values: Any) -> Row:
    """A row with every column at its default, then ``values``."""
    row = {c.name: list(c.default) if isinstance(c.default, list) else c.default for c in COLUMNS}
    unknown = set(values) - set(row)
    if unknown:
        raise KeyError(f"not row columns: {sorted(unknown)}")
    row.update(values)
    return row
