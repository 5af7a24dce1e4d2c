"""The signal operators without Ray: IFD through the cache, relevance verdicts, the score."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from jobs import curate_ops as ops
from jobs.curate_signals import IFDScorer, compose_quality, score_relevance


def rows_table(pairs: list[tuple[str, str]], **columns) -> pa.Table:
    rows = [
        {"id": f"r{i}", "prompt": p, "response": r, "status": "active", "quality": 0.8}
        for i, (p, r) in enumerate(pairs)
    ]
    for name, values in columns.items():
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return ops.to_row_schema(pa.Table.from_pylist(rows))


PAIRS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Add 2 and 3.", "The answer is 5."),
    ("List three primary colors.", "Red, blue and yellow."),
]


def test_ifd_scorer_hits_the_cache_on_a_rerun(tiny_model_dir, tmp_path):
    cache = tmp_path / "scores.sqlite"
    kwargs = dict(
        model=str(tiny_model_dir),
        device="cpu",
        max_length=64,
        batch_size=2,
        threads=1,
        cache_path=str(cache),
    )
    first = IFDScorer(**kwargs)
    out = first(rows_table(PAIRS))
    assert (first.cache.hits, first.cache.misses) == (0, 3)
    ifd = out["ifd"].to_pylist()
    assert all(x is not None and math.isfinite(x) for x in ifd)
    assert all(p > 1 for p in out["perplexity"].to_pylist())

    rerun = IFDScorer(**kwargs)  # a new actor, as after a restart
    rerun.model = None  # any forward pass now would fail: the answers must come from the cache
    again = rerun(rows_table(PAIRS))
    assert (rerun.cache.hits, rerun.cache.misses) == (3, 0)
    assert again["ifd"].to_pylist() == ifd

    other = IFDScorer(**{**kwargs, "max_length": 32})  # another setting is another key
    other(rows_table(PAIRS[:1]))
    assert other.cache.misses == 1


def test_ifd_scorer_drops_misaligned_rows_only_when_asked(tiny_model_dir, tmp_path):
    scorer = IFDScorer(
        model=str(tiny_model_dir),
        device="cpu",
        max_length=64,
        batch_size=4,
        threads=1,
        cache_path=str(tmp_path / "c.sqlite"),
        max_ifd=1e-6,  # every row's IFD is above this: all misaligned
    )
    out = scorer(rows_table(PAIRS))
    assert out["status"].to_pylist() == ["dropped"] * 3
    assert out["reason"].to_pylist() == ["misaligned"] * 3


def test_score_relevance_drops_the_planted_mismatch_and_sheds_part_columns():
    from ray.data.extensions import ArrowTensorArray

    rng = np.random.default_rng(0)
    topics = rng.normal(size=(4, 16))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    instructions = np.repeat(topics, 3, axis=0).astype(np.float32)
    responses = instructions.copy()
    responses[5] = topics[0]  # row 5 (topic 1) is answered with a topic-0 answer
    table = rows_table([("q", "a")] * 12)
    table = table.append_column(
        "instruction_embedding", ArrowTensorArray.from_numpy(instructions)
    ).append_column("response_embedding", ArrowTensorArray.from_numpy(responses))
    ids = table["id"].to_pylist()

    out = score_relevance(table, sample_ids=ids, sample=instructions, top_k=1, threshold=-0.2)
    reasons = out["reason"].to_pylist()
    assert reasons[5] == "mismatched" and reasons.count("mismatched") == 1
    assert out["status"].to_pylist()[5] == "dropped"
    assert "instruction_embedding" not in out.column_names
    assert out["relevance"].to_pylist()[5] < -0.2


def test_compose_quality_averages_the_signals_that_ran():
    table = rows_table(
        PAIRS,
        relevance=[0.1, None, 0.1],
        ifd=[0.5, None, 1.5],
        perplexity=[10.0, None, 10.0],
        judge_score=[None, None, 5.0],
    )
    weights = {"heuristics": 1.0, "relevance": 1.0, "ifd": 1.0, "perplexity": 0.0, "judge": 1.0}
    quality = compose_quality(table, weights=weights, relevance_threshold=-0.2)["quality"]
    q = quality.to_pylist()
    assert q[1] == pytest.approx(0.8)  # no signal ran: the heuristic score alone
    assert q[0] == pytest.approx((0.8 + 1.0 + 1.0) / 3, abs=1e-3)  # aligned, relevant
    assert q[2] == pytest.approx((0.8 + 1.0 + 0.0 + 1.0) / 4, abs=1e-3)  # IFD >= 1 counts 0
