"""The signal stages without Ray: IFD through the cache, relevance, the judge, the score."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from infra.errors import InputError, ModelNotFoundError
from jobs.curation.config import CurateConfig, JudgeConfig, SignalsConfig
from jobs.curation.runner import to_row_schema
from jobs.curation.stages import ifd, judge, relevance
from jobs.curation.stages.compose import compose_quality
from jobs.curation.stages.ifd import IFDScorer
from jobs.curation.stages.relevance import score_relevance
from quality.judge import FAILED, OK, JudgeResult
from quality.ranking import DEFAULT_WEIGHTS
from quality.relevance import paired_margin


def rows_table(pairs: list[tuple[str, str]], **columns) -> pa.Table:
    rows = [
        {
            "id": f"r{i}",
            "prompt": p,
            "response": r,
            "status": "active",
            "quality": 0.8,
            "heuristic": 0.8,
        }
        for i, (p, r) in enumerate(pairs)
    ]
    for name, values in columns.items():
        for row, value in zip(rows, values, strict=True):
            row[name] = value
    return to_row_schema(pa.Table.from_pylist(rows))


PAIRS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Add 2 and 3.", "The answer is 5."),
    ("List three primary colors.", "Red, blue and yellow."),
]


def scorer_kwargs(model_dir, cache, **overrides) -> dict:
    """IFDScorer arguments for the tiny model on one CPU thread."""
    kwargs = dict(model=str(model_dir), device="cpu", max_length=64, batch_size=2, threads=1)
    return {**kwargs, "cache_path": str(cache), **overrides}


def test_ifd_scorer_hits_the_cache_on_a_rerun(tiny_model_dir, tmp_path):
    kwargs = scorer_kwargs(tiny_model_dir, tmp_path / "scores.sqlite")
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
        **scorer_kwargs(
            tiny_model_dir,
            tmp_path / "c.sqlite",
            batch_size=4,
            max_ifd=1e-6,  # every row's IFD is above this: all misaligned
        )
    )
    out = scorer(rows_table(PAIRS))
    assert out["status"].to_pylist() == ["dropped"] * 3
    assert out["reason"].to_pylist() == ["misaligned"] * 3


def test_score_relevance_drops_the_planted_mismatch_and_sheds_part_columns():
    from ray.data.extensions import ArrowTensorArray

    rng = np.random.default_rng(0)
    topics = rng.normal(size=(4, 16))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    instructions = np.repeat(topics, 6, axis=0) + 0.05 * rng.normal(size=(24, 16))
    instructions = (instructions / np.linalg.norm(instructions, axis=1, keepdims=True)).astype(
        np.float32
    )
    responses = instructions.copy()
    responses[8] = topics[0]  # row 8 (topic 1) is answered with a topic-0 answer
    table = rows_table([("q", "a")] * 24)
    keys = [f"instruction {i}" for i in range(24)]
    table = (
        table.append_column("instruction_embedding", ArrowTensorArray.from_numpy(instructions))
        .append_column("response_embedding", ArrowTensorArray.from_numpy(responses))
        .append_column("instruction_key", pa.array(keys))
    )
    plan = relevance.competitors(BlockView([table]), size=100, seed=0)
    assert sorted(plan.kwargs["sample_ids"]) == sorted(keys)  # every row sampled
    np.testing.assert_array_equal(
        plan.kwargs["sample_responses"][np.argsort(plan.kwargs["sample_ids"])],
        responses[np.argsort(keys)],
    )

    deferred = score_relevance(
        table, **plan.kwargs, top_k=3, threshold=-0.8, method="paired", defer=True
    )
    assert set(deferred["status"].to_pylist()) == {"active"}  # the instructions stage decides
    why = deferred["mismatch"].to_pylist()
    assert why[8].startswith("paired relevance margin") and why.count(None) == 23

    out = score_relevance(table, **plan.kwargs, top_k=3, threshold=-0.8, method="paired")
    assert "mismatch" not in out.column_names
    reasons = out["reason"].to_pylist()
    assert reasons[8] == "mismatched" and reasons.count("mismatched") == 1
    assert out["status"].to_pylist()[8] == "dropped"
    assert "paired relevance margin" in out["detail"].to_pylist()[8]
    assert "instruction_embedding" not in out.column_names
    # The ranking term reads the margin that decided, its threshold on the cross scale.
    assert out["relevance"].to_pylist()[8] < -0.2
    decided = paired_margin(
        instructions,
        responses,
        plan.kwargs["sample"],
        plan.kwargs["sample_responses"],
        top_k=3,
        row_ids=keys,
        sample_ids=plan.kwargs["sample_ids"],
    )
    np.testing.assert_allclose(out["relevance"].to_numpy(), decided * 0.25, rtol=1e-6)
    cross = score_relevance(table, **plan.kwargs, top_k=3, threshold=-0.2)  # method="cross"
    assert cross["reason"].to_pylist().count("mismatched") == 1
    assert cross["detail"].to_pylist()[8].startswith("cross relevance margin")
    assert cross["relevance"].to_pylist() != out["relevance"].to_pylist()


def test_compose_quality_averages_the_signals_that_ran():
    table = rows_table(
        PAIRS,
        relevance=[0.4, None, 0.4],
        ifd=[0.5, None, 1.5],
        perplexity=[10.0, None, 10.0],
        judge_score=[None, None, 5.0],
    )
    only = {"heuristics": 1.0, "relevance": 1.0, "ifd": 1.0, "judge": 1.0}
    quality = compose_quality(table, weights=only)["quality"]
    q = quality.to_pylist()
    assert q[1] == pytest.approx(0.8)  # no signal ran: the heuristic score alone
    assert q[0] == pytest.approx((0.8 + 1.0 + 1.0) / 3, abs=1e-2)  # aligned, relevant
    assert q[2] == pytest.approx((0.8 + 1.0 + 0.0 + 1.0) / 4, abs=1e-2)  # IFD >= 1 counts 0


def test_compose_quality_ranks_a_fitting_answer_above_a_sloppy_or_cut_off_one():
    fitting = "Paris is the capital of France. It sits on the Seine in the north of the country."
    rows = [
        ("What is the capital of France?", fitting),
        ("What is the capital of France?", fitting.lower().replace("capital", "captial")),
        ("What is the capital of France?", fitting[:40]),
    ]
    table = rows_table(rows, relevance=[0.3, 0.3, 0.3])
    q = compose_quality(table, weights=DEFAULT_WEIGHTS)["quality"].to_pylist()
    assert q[0] > q[1] and q[0] > q[2]


def judge_kwargs(tmp_path, **overrides) -> dict:
    return dict(
        url="http://127.0.0.1:9",  # nothing listens: a test that reaches the network fails
        model="m",
        api_key="k",
        concurrency=1,
        retries=0,
        timeout=1.0,
        max_tokens=8,
        cache_path=str(tmp_path / "judge.sqlite"),
        **overrides,
    )


class RecordingJudge:
    """Rates every row 2 and remembers which prompts it was asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def rate(self, prompts, responses):
        self.asked.extend(prompts)
        return [JudgeResult(2.0, OK, "Score: 2") for _ in prompts]


def test_judge_rater_sends_only_active_rows(tmp_path):
    rater = judge.JudgeRater(min_score=3.0, **judge_kwargs(tmp_path))
    rater.judge = RecordingJudge()
    # row 1 was already dropped as misaligned by IFD: a paid judge must not rate it
    table = rows_table(PAIRS, status=["active", "dropped", "active"])
    out = rater(table)
    assert rater.judge.asked == [PAIRS[0][0], PAIRS[2][0]]
    assert out["judge_score"].to_pylist() == [2.0, None, 2.0]
    assert out["judge_status"].to_pylist() == ["ok", None, "ok"]
    assert out["reason"].to_pylist()[0] == "judge_low"


def test_judge_estimate_prices_only_active_uncached_rows(tmp_path):
    table = rows_table(PAIRS, status=["active", "dropped", "active"])
    out = judge.judge_estimate_batch(
        table, usd_per_1k_input=1.0, usd_per_1k_output=0.0, **judge_kwargs(tmp_path)
    )
    assert out["requests"].to_pylist() == [2]
    assert out["output_tokens"].to_pylist() == [2 * 8]
    assert out["usd"].to_pylist()[0] > 0


def test_judge_api_key_is_required_for_a_remote_judge(monkeypatch):
    monkeypatch.delenv("FINESIFT_TEST_KEY", raising=False)
    with pytest.raises(InputError, match=r"FINESIFT_TEST_KEY.*export"):
        judge.judge_api_key("https://api.example.com/v1", "FINESIFT_TEST_KEY")
    assert judge.judge_api_key("http://127.0.0.1:8000", "FINESIFT_TEST_KEY") == "no-key"
    assert judge.judge_api_key("localhost:8000", "FINESIFT_TEST_KEY") == "no-key"
    monkeypatch.setenv("FINESIFT_TEST_KEY", "sk-test")
    assert judge.judge_api_key("https://api.example.com", "FINESIFT_TEST_KEY") == "sk-test"


def test_building_the_stages_checks_models_and_keys_on_the_driver(tmp_path, monkeypatch):
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        ifd.build(CurateConfig(signals=SignalsConfig(ifd=True, ifd_model=missing)))
    monkeypatch.delenv("FINESIFT_TEST_KEY", raising=False)
    remote = JudgeConfig(
        enabled=True, url="https://api.example.com", api_key_env="FINESIFT_TEST_KEY"
    )
    with pytest.raises(InputError, match="FINESIFT_TEST_KEY"):
        judge.build(CurateConfig(judge=remote))
    assert not ifd.build(CurateConfig()).enabled  # nothing to check when off
    assert not judge.build(CurateConfig()).enabled


def test_judge_outcomes_are_counted_in_the_summary(tmp_path):
    from jobs.curation.outputs import write_outputs

    statuses = ["ok", f"{FAILED}: AuthenticationError: 401", None]
    assert judge.judge_outcomes(statuses) == {"ok": 1, "failed": 1}

    class Ledger:  # write_outputs only iterates batches
        def iter_batches(self, **_):
            yield rows_table(PAIRS, status=["dropped"] * 3, judge_status=statuses)

    counts = write_outputs(Ledger(), str(tmp_path))
    assert dict(counts.judge) == {"ok": 1, "failed": 1}


class BlockView:
    """The DataView the runner gives a stage, over explicit blocks; batches come back in
    reverse, as Ray gives no fixed order."""

    def __init__(self, blocks: list[pa.Table]) -> None:
        self.blocks = blocks

    def count(self) -> int:
        return sum(b.num_rows for b in self.blocks)

    def collect(self, fn, **kwargs) -> pa.Table:
        return pa.concat_tables([fn(b, **kwargs) for b in reversed(self.blocks)])


def test_relevance_sample_does_not_depend_on_the_block_layout():
    from ray.data.extensions import ArrowTensorArray

    n = 400
    vectors = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    table = pa.table(
        {
            "id": [f"row-{i:03d}" for i in range(n)],
            "instruction_key": [f"key-{i:03d}" for i in range(n)],
            "instruction_embedding": ArrowTensorArray.from_numpy(vectors),
            "response_embedding": ArrowTensorArray.from_numpy(vectors[::-1].copy()),
        }
    )
    two = BlockView([table.slice(0, 200), table.slice(200)])
    five = BlockView([table.slice(i, 80) for i in range(0, n, 80)])

    def sample(view, seed):
        plan = relevance.competitors(view, size=100, seed=seed)
        return plan.kwargs["sample_ids"], plan.kwargs["sample"]

    ids_a, sample_a = sample(two, 3)
    ids_b, sample_b = sample(five, 3)
    assert 50 < len(ids_a) < 150
    assert ids_a == ids_b == sorted(ids_a)  # instruction keys, in the rows' id order
    np.testing.assert_array_equal(sample_a, sample_b)
    np.testing.assert_array_equal(sample_a, vectors[[int(i[4:]) for i in ids_a]])
    assert sample(two, 4)[0] != ids_a  # the seed matters


def test_compose_quality_falls_back_to_the_heuristic_score():
    # the judge is the only weighted signal and its request failed for row 1
    table = rows_table(PAIRS, judge_score=[5.0, None, 1.0])
    q = compose_quality(table, weights={"judge": 1.0})["quality"].to_pylist()
    assert q == pytest.approx([1.0, 0.8, 0.0])
