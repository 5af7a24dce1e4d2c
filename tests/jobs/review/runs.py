"""A small curate run directory built without Ray, with planted facts for review tests.

Two clusters of four picks each, written as `finesift curate` writes them (ledger.parquet
with LEDGER_SCHEMA, selected.jsonl, summary.json with the config, embed.model=hashing):

- cluster 0: picks c0-p0..c0-p3 (quality .99 .. .96); candidates (not_selected)
  c0-n0 (.95, a near-copy of pick c0-p1: the selection's rule must skip it while c0-p1
  stands), c0-n1 (.94, carries a system turn, so its conversation cannot be rebuilt from
  prompt and response), c0-n2.. (lower). c0-p0 displaced c0-dup (near_duplicate) and
  c0-conflict (conflict).
- cluster 1: picks c1-p0..c1-p3, c1-p0 holding HTML (<script>, <img onerror>) that must
  show as text; one candidate c1-n0.
- one quarantined row and one row dropped by a rule.

:func:`build_run` checks that the selection's own function picks exactly these picks.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from infra.config import load_config, to_dict
from jobs.curation.config import CurateConfig
from quality.embeddings import HashingEncoder, row_vectors
from quality.schema import LEDGER_SCHEMA
from quality.selection import select_diverse

HTML_PROMPT = (
    "Explain this markup: <script>window.__xss = 1</script> and "
    '<img src="x" onerror="window.__xss = 1"> and **bold** `code`'
)
# Pseudo-words: random sentences over them are far apart for the hashing encoder.
WORDS = tuple(f"{c}{v}{e}" for c in "bdfgklmnprstvz" for v in "aeiou" for e in "nrls")


def _sentence(rng: random.Random, n: int = 14) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _row(row_id: str, cluster: int, quality: float, prompt: str, response: str, **extra) -> dict:
    messages = extra.pop("messages", None) or [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": response},
    ]
    row = {name: None for name in LEDGER_SCHEMA.names}
    row |= {
        "id": row_id,
        "source": f"input.jsonl:{row_id}",
        "status": "selected",
        "quality": quality,
        "failed_rules": [],
        "cluster": cluster,
        "prompt": prompt,
        "response": response,
        "extras": json.dumps({"category": f"topic{cluster}"}),
        "messages": json.dumps(messages),
    }
    return row | extra


def planted_rows(seed: int = 0) -> list[dict]:
    """The ledger rows (see the module docstring)."""
    rng = random.Random(seed)
    rows = []
    for cluster, n_candidates in ((0, 6), (1, 1)):
        for k in range(4):
            prompt = HTML_PROMPT if (cluster, k) == (1, 0) else _sentence(rng)
            rows.append(
                _row(
                    f"c{cluster}-p{k}",
                    cluster,
                    0.99 - k / 100,
                    prompt,
                    _sentence(rng, 30),
                    relevance=[0.4, 0.1, None, 0.3][k],
                )
            )
        for k in range(n_candidates):
            rows.append(
                _row(
                    f"c{cluster}-n{k}",
                    cluster,
                    0.95 - k / 100,
                    _sentence(rng),
                    _sentence(rng, 30),
                    status="dropped",
                    reason="not_selected",
                )
            )
    near = next(r for r in rows if r["id"] == "c0-n0")
    pick = next(r for r in rows if r["id"] == "c0-p1")
    near["prompt"], near["response"] = pick["prompt"], pick["response"] + " Indeed."
    near["messages"] = json.dumps(
        [
            {"role": "user", "content": near["prompt"]},
            {"role": "assistant", "content": near["response"]},
        ]
    )
    system = next(r for r in rows if r["id"] == "c0-n1")
    system["messages"] = json.dumps(
        [
            {"role": "system", "content": "You answer in one paragraph."},
            {"role": "user", "content": system["prompt"]},
            {"role": "assistant", "content": system["response"]},
        ]
    )
    p0 = next(r for r in rows if r["id"] == "c0-p0")
    rows.append(
        _row(
            "c0-dup",
            0,
            0.9,
            p0["prompt"],
            p0["response"],
            status="dropped",
            reason="near_duplicate",
            detail="MinHash Jaccard 0.91 >= dedup.fuzzy_threshold 0.8",
            duplicate_of="c0-p0",
        )
    )
    rows.append(
        _row(
            "c0-conflict",
            0,
            0.7,
            p0["prompt"],
            "A different answer. " + _sentence(rng),
            status="dropped",
            reason="conflict",
            detail="same instruction, a different answer",
            kept_instead="c0-p0",
        )
    )
    rows.append(_row("junk", -1, 0.1, "hi", "N/A", status="dropped", reason="placeholder_response"))
    quarantined = {name: None for name in LEDGER_SCHEMA.names}
    quarantined |= {
        "id": "bad",
        "source": "input.jsonl:bad",
        "status": "quarantined",
        "reason": "invalid_json",
        "failed_rules": [],
        "cluster": -1,
        "messages": "[]",
    }
    rows.append(quarantined)
    return rows


def build_run(run_dir: Path, *, with_messages: bool = True, seed: int = 0) -> Path:
    """Write the planted run into ``run_dir`` and return it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    rows = planted_rows(seed)
    _check_selection(rows)
    schema = (
        LEDGER_SCHEMA
        if with_messages
        else LEDGER_SCHEMA.remove(LEDGER_SCHEMA.get_field_index("messages"))
    )
    table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)
    pq.write_table(table, run_dir / "ledger.parquet")
    with (run_dir / "selected.jsonl").open("w", encoding="utf-8") as handle:
        for r in rows:
            if r["status"] == "selected":
                record = {
                    "id": r["id"],
                    "messages": json.loads(r["messages"]),
                    "source": r["source"],
                    "quality": r["quality"],
                    "cluster": r["cluster"],
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    # The planted picks are what the DEITA-style rule takes: record that method.
    overrides = ["embed.model=hashing", "selection.budget=8", "selection.method=diverse"]
    cfg = load_config(CurateConfig, None, [*overrides, "selection.quota=sqrt"])
    summary = {"input_rows": len(rows), "config": to_dict(cfg)}
    (run_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return run_dir


def vectors(rows: list[dict]) -> np.ndarray:
    """Row vectors as curation computes them with embed.model=hashing."""
    return row_vectors(
        HashingEncoder(), [r["prompt"] for r in rows], [r["response"] for r in rows]
    )[0]


def _check_selection(rows: list[dict]) -> None:
    """The planted picks are what select_diverse picks, and c0-n0 is a near-copy of c0-p1."""
    for cluster in (0, 1):
        group = sorted(
            (r for r in rows if r["cluster"] == cluster and r["reason"] in (None, "not_selected")),
            key=lambda r: r["id"],
        )
        picks = select_diverse(
            vectors(group), np.array([r["quality"] for r in group]), 4, min_distance=0.1
        )
        chosen = {group[i]["id"] for i in picks}
        assert chosen == {f"c{cluster}-p{k}" for k in range(4)}, chosen
    by_id = {r["id"]: r for r in rows}
    v = vectors([by_id["c0-n0"], by_id["c0-p1"]])
    assert 1 - float(v[0] @ v[1]) < 0.1, "c0-n0 must be a near-duplicate of c0-p1"
