"""The training data of each experiment arm, built from the noisy input and curate's run.

- ``curated``: curate's selection (selected.jsonl), used as is;
- ``random``: as many rows as curate selected, drawn uniformly from the readable input
  rows with each seed;
- ``longest``: as many rows as curate selected, the longest answers among the rows that
  survived every filter and dedup stage (the ledger's ``selected`` and ``not_selected``
  rows): the "Long Is More for Alignment" baseline (Zhao et al. 2024), which picks the
  longest responses of a cleaned pool and is hard to beat;
- ``full``: every readable input row.

Arm files are JSONL ``{"id", "messages"}``, what ``finesift train`` reads.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.errors import InputError
from quality import schema

LONGEST_COLUMNS = ["id", "status", "reason", "response", "messages"]


@dataclass(frozen=True)
class TrainingRun:
    """One adapter to train: an arm's data with one seed."""

    arm: str
    seed: int
    data: Path
    rows: int

    @property
    def model(self) -> str:
        """The adapter's name (OUT/adapters/NAME, and its name in eval.json)."""
        return f"{self.arm}-seed{self.seed}"


def readable_rows(path: str) -> list[dict[str, Any]]:
    """The input rows curate can read (not quarantined): id, messages, prompt, response."""
    from quality.readers import read_all

    rows = [
        {"id": r["id"], "messages": r["messages"], "prompt": r["prompt"], "response": r["response"]}
        for r in read_all([path])
        if r["status"] == schema.ACTIVE
    ]
    if not rows:
        raise InputError(f"no readable rows in {path}; check it with `finesift curate` first")
    return rows


def overlap(pool: list[dict[str, Any]], eval_path: str) -> int:
    """Held-out rows whose normalized instruction also occurs in the input (leakage)."""
    from quality.readers import read_all
    from quality.text import instruction_key

    seen = {instruction_key(r["prompt"]) for r in pool}
    return sum(
        1
        for r in read_all([eval_path])
        if r["status"] == schema.ACTIVE and instruction_key(r["prompt"]) in seen
    )


def random_sample(rows: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` rows drawn uniformly without replacement (all of them when n >= len), seeded."""
    if n >= len(rows):
        return list(rows)
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]


def survived_selection_filters(row: dict[str, Any]) -> bool:
    """A ledger row that passed every rule, filter and dedup stage: selection alone decided
    whether it was picked."""
    return row["status"] == schema.SELECTED or row["reason"] == "not_selected"


def longest_rows(ledger_path: Path, n: int) -> list[dict[str, Any]]:
    """The ``n`` rows with the longest answers among the ledger's survivors.

    Length is the final answer's characters (tokenizer-free, as the published baseline
    ranks by response length); ties go to the smaller id, so the arm is reproducible.

    Args:
        ledger_path: curate's ledger.parquet.
        n: rows to take (fewer when fewer survived).

    Raises:
        InputError: when the ledger is missing or no row survived.
    """
    import pyarrow.parquet as pq

    if not ledger_path.is_file():
        raise InputError(f"{ledger_path} is missing; the longest arm needs curate's ledger")
    ledger = pq.read_table(ledger_path, columns=LONGEST_COLUMNS).to_pylist()
    survivors = [r for r in ledger if survived_selection_filters(r)]
    if not survivors:
        raise InputError(
            f"no row of {ledger_path} survived curation's filters; the longest arm is empty"
        )
    survivors.sort(key=lambda r: (-len(r["response"] or ""), r["id"]))
    return survivors[:n]


def write_arm(rows: list[dict[str, Any]], path: Path) -> Path:
    """Training rows as JSONL ``{"id", "messages"}`` (what ``finesift train`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            record = {"id": row["id"], "messages": json.loads(row["messages"])}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def count_rows(path: Path) -> int:
    """Non-empty lines of a JSONL file.

    Raises:
        InputError: when there are none (curate selected nothing).
    """
    with open(path, encoding="utf-8") as handle:
        n = sum(1 for line in handle if line.strip())
    if n == 0:
        raise InputError(f"curate selected no rows ({path} is empty); check summary.json")
    return n
