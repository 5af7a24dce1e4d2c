"""What review reads from a curate run directory: the pick, the ledger and the run's config.

A review needs, per row of the queue, its signals and cluster (the ledger), its exact
conversation (selected.jsonl; for a refill, the ledger's ``messages`` column), the rows it
displaced (ledger rows whose ``duplicate_of`` or ``kept_instead`` names it) and, to refill
a rejected pick, the cluster's other survivors (rows dropped as ``not_selected``) with the
settings the selection used (summary.json's config). Everything but the text is read once,
column by column; text is read for the rows shown, and cached.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from infra import storage
from infra.errors import InputError
from quality import schema

SIGNALS = ("quality", "relevance", "ifd", "perplexity", "judge_score")
"""Numeric signals a row may carry (null where a signal did not run)."""
KEY_COLUMNS = [
    "id",
    "source",
    "status",
    "reason",
    "detail",
    "duplicate_of",
    "kept_instead",
    "failed_rules",
    "cluster",
    *SIGNALS,
    "judge_status",
]
TEXT_COLUMNS = ["id", "source", "prompt", "response", "extras"]
NOT_SELECTED = "not_selected"


@dataclass(frozen=True)
class Settings:
    """The parts of the curate config the selection used, as summary.json recorded them."""

    embed_model: str
    """``embed.model``: the encoder whose vectors the selection compared."""
    embed_batch_size: int
    embed_max_length: int
    min_distance: float
    """``selection.min_distance``: the cosine distance a pick keeps from every other pick."""
    informative_weight: float
    """``selection.informative_weight``: the IFD bonus in the selection order."""
    method: str = "diverse"
    """``selection.method``: facility (coverage gains) or diverse (distance threshold);
    runs from before the facility method recorded none and used diverse."""
    quality_power: float = 1.5
    """``selection.quality_power``: the quality weight of a pick's coverage (facility)."""

    @classmethod
    def from_summary(cls, summary: dict[str, Any], where: Path) -> Settings:
        """Read the settings from summary.json's ``config``.

        Raises:
            InputError: summary.json has no config (it was not written by ``finesift curate``).
        """
        config = summary.get("config")
        if not isinstance(config, dict) or "selection" not in config or "embed" not in config:
            raise InputError(
                f"{where} records no curate config (embed, selection); review needs the "
                "summary.json that `finesift curate` writes: rerun curate for this run"
            )
        embed, selection = config["embed"], config["selection"]
        return cls(
            embed_model=str(embed.get("model", "default")),
            embed_batch_size=int(embed.get("batch_size", 128)),
            embed_max_length=int(embed.get("max_length", 256)),
            min_distance=float(selection.get("min_distance", 0.1)),
            informative_weight=float(selection.get("informative_weight", 0.0)),
            method=str(selection.get("method", "diverse")),
            quality_power=float(selection.get("quality_power", 1.5)),
        )


class Run:
    """A local curate run directory, read for review.

    Args:
        run_dir: the ``--out`` directory of ``finesift curate`` (local; a cloud run must be
            copied here first, since the verdict store is a SQLite file beside it).

    Raises:
        InputError: the directory or one of its files is missing or unreadable.
    """

    def __init__(self, run_dir: str | Path) -> None:
        if storage.is_uri(str(run_dir)):
            raise InputError(
                f"review works on a local run directory, not {run_dir}: copy the run "
                "(ledger.parquet, selected.jsonl, summary.json) to a local directory first"
            )
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise InputError(
                f"run directory {run_dir} does not exist; pass the --out directory of "
                "`finesift curate`"
            )
        for name in ("ledger.parquet", "selected.jsonl", "summary.json"):
            if not (self.run_dir / name).is_file():
                raise InputError(
                    f"{self.run_dir / name} is missing; review needs a complete "
                    "`finesift curate` output directory (rerun curate with --out here)"
                )
        self.ledger_path = self.run_dir / "ledger.parquet"
        summary = _read_json(self.run_dir / "summary.json")
        self.settings = Settings.from_summary(summary, self.run_dir / "summary.json")
        self.fingerprint = _sha256(self.run_dir / "selected.jsonl")
        self.selected_ids, self._selected_messages = _read_selected(self.run_dir)
        self._has_messages = "messages" in _ledger_columns(self.ledger_path)
        self.rows = self._read_keys()
        missing = [i for i in self.selected_ids if self.rows.get(i, {}).get("status") != "selected"]
        if missing:
            raise InputError(
                f"selected.jsonl names {len(missing)} rows (e.g. {missing[0]!r}) that "
                f"{self.ledger_path} does not list as selected; the two files come from "
                "different runs: rerun `finesift curate` for this directory"
            )
        self.displaced_by = _displaced_index(self.rows)
        self.survivors_by_cluster = _survivors_index(self.rows)
        self._text: dict[str, dict[str, Any]] = {}
        self._orders: dict[int, list[str]] = {}
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------

    def _read_keys(self) -> dict[str, dict[str, Any]]:
        """Key columns of the rows review can show: survivors and rows with a partner."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(self.ledger_path, columns=KEY_COLUMNS)
        wanted = pc.or_(
            pc.or_(
                pc.equal(table["status"], schema.SELECTED),
                pc.equal(pc.fill_null(table["reason"], ""), NOT_SELECTED),
            ),
            pc.or_(pc.is_valid(table["duplicate_of"]), pc.is_valid(table["kept_instead"])),
        )
        rows: dict[str, dict[str, Any]] = {}
        for row in table.filter(wanted).to_pylist():
            # Ids are unique in practice; when an input repeats one, the survivor wins.
            current = rows.get(row["id"])
            if current is None or _rank_status(row) < _rank_status(current):
                rows[row["id"]] = row
        return rows

    def text(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Prompt, response, extras and the exact conversation of rows, by id (cached).

        A row's conversation comes from selected.jsonl when it was picked, else from the
        ledger's ``messages`` column; a ledger written before that column existed gives
        a single user/assistant turn rebuilt from prompt and response (``rebuilt`` True).
        """
        import pyarrow.parquet as pq

        with self._lock:
            wanted = sorted({i for i in ids if i not in self._text and i in self.rows})
        if wanted:
            columns = TEXT_COLUMNS + (["messages"] if self._has_messages else [])
            table = pq.read_table(self.ledger_path, columns=columns, filters=[("id", "in", wanted)])
            found: dict[str, dict[str, Any]] = {}
            for row in table.to_pylist():
                if row["source"] == self.rows[row["id"]]["source"]:
                    found[row["id"]] = self._with_messages(row)
            with self._lock:
                self._text.update(found)
        with self._lock:
            return {i: self._text[i] for i in ids if i in self._text}

    def _with_messages(self, row: dict[str, Any]) -> dict[str, Any]:
        messages, rebuilt = self._selected_messages.get(row["id"]), False
        if messages is None and row.get("messages"):
            messages = json.loads(row["messages"])
        if messages is None:
            messages, rebuilt = rebuilt_messages(row["prompt"], row["response"]), True
        try:
            extras = json.loads(row.get("extras") or "{}")
        except json.JSONDecodeError:
            extras = {}
        return {
            "prompt": row["prompt"] or "",
            "response": row["response"] or "",
            "messages": messages,
            "rebuilt": rebuilt,
            "extras": extras if isinstance(extras, dict) else {},
        }

    # --- selection facts -------------------------------------------------------------------

    def selection_score(self, row_id: str) -> float:
        """The score the selection ordered this row by: quality (+ the IFD bonus)."""
        from quality.composite import informativeness

        row = self.rows[row_id]
        quality = row["quality"]
        score = float("-inf") if quality is None or np.isnan(quality) else float(quality)
        if self.settings.informative_weight > 0:
            ifd = np.asarray([np.nan if row["ifd"] is None else row["ifd"]], dtype=float)
            score += self.settings.informative_weight * float(informativeness(ifd)[0])
        return score

    def cluster_order(self, cluster: int) -> list[str]:
        """The cluster's survivors in the selection's order: score descending, then id."""
        order = self._orders.get(cluster)
        if order is None:
            ids = self.survivors_by_cluster.get(cluster, [])
            order = sorted(ids, key=lambda i: (-self.selection_score(i), i))
            self._orders[cluster] = order
        return list(order)


def rebuilt_messages(prompt: str | None, response: str | None) -> list[dict[str, str]]:
    """One user turn and one assistant turn, for a ledger row without its conversation."""
    return [
        {"role": "user", "content": prompt or ""},
        {"role": "assistant", "content": response or ""},
    ]


def _rank_status(row: dict[str, Any]) -> int:
    if row["status"] == schema.SELECTED:
        return 0
    return 1 if row["reason"] == NOT_SELECTED else 2


def _displaced_index(rows: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """Row id -> ids of the rows that lost to it (its duplicates and its conflict group)."""
    index: dict[str, list[str]] = {}
    for row_id, row in sorted(rows.items()):
        for key in ("duplicate_of", "kept_instead"):
            if row[key]:
                index.setdefault(row[key], []).append(row_id)
    return index


def _survivors_index(rows: dict[str, dict[str, Any]]) -> dict[int, list[str]]:
    """Cluster -> ids of the rows the selection chose from (picks and not_selected)."""
    index: dict[int, list[str]] = {}
    for row_id, row in rows.items():
        if row["status"] == schema.SELECTED or row["reason"] == NOT_SELECTED:
            index.setdefault(int(row["cluster"]), []).append(row_id)
    return index


def _read_selected(run_dir: Path) -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """Ids of selected.jsonl in file order, and each row's conversation."""
    ids: list[str] = []
    messages: dict[str, list[dict[str, str]]] = {}
    path = run_dir / "selected.jsonl"
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                row_id, turns = str(record["id"]), record["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(
                    f"{path} line {line_no} is not a selected row ({exc}); rerun "
                    "`finesift curate` to rewrite it"
                ) from exc
            if row_id in messages:
                raise InputError(
                    f"{path} has two rows with id {row_id!r}; review keys verdicts by id: give "
                    "the input unique ids (read.id_field) and rerun `finesift curate`"
                )
            ids.append(row_id)
            messages[row_id] = turns
    return ids, messages


def _ledger_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc}); rerun `finesift curate`") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
