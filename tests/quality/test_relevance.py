"""Relevance: a response that answers another row's task is found; clean rows are not."""

from __future__ import annotations

import numpy as np
import pytest

from quality.composite import relevance_term
from quality.relevance import (
    PAIRED_THRESHOLD,
    mismatched,
    paired_margin,
    relevance_margin,
    whitening,
)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def planted(n_topics: int = 6, per_topic: int = 20, seed: int = 0):
    """Rows whose instruction and response lie near their topic; row 7 is answered with a
    response from topic 3 while its instruction is from topic 0."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(n_topics, 32)))
    topic_of = np.repeat(np.arange(n_topics), per_topic)
    # Tasks differ in how close answers sit to their instructions (translation vs echo),
    # so no single cosine cut works; each row also has its own detail.
    spread = np.repeat(rng.uniform(0.4, 1.2, n_topics), per_topic)[:, None]
    detail = rng.normal(size=(len(topic_of), 32))
    instructions = unit(topics[topic_of] + 0.3 * detail + 0.2 * rng.normal(size=detail.shape))
    responses = unit(topics[topic_of] + 0.3 * detail + spread * unit(rng.normal(size=detail.shape)))
    responses[7] = responses[3 * per_topic + 5]  # mislabeled: row 7 answers a topic-3 task
    responses[7] = unit(responses[7] + 0.05 * rng.normal(size=32))
    return instructions, responses


def test_planted_mismatch_is_the_only_one_flagged():
    instructions, responses = planted()
    ids = [f"r{i}" for i in range(len(instructions))]
    margins = relevance_margin(
        instructions, responses, instructions, top_k=5, row_ids=ids, sample_ids=ids
    )
    flagged = np.flatnonzero(mismatched(margins, threshold=-0.2))
    assert flagged.tolist() == [7]
    terms = relevance_term(margins, threshold=-0.2)
    assert terms[7] < 0.5 < float(np.median(terms))


def test_a_row_never_competes_with_its_own_instruction():
    instructions, responses = planted()
    ids = [f"r{i}" for i in range(len(instructions))]
    with_self = relevance_margin(instructions, responses, instructions, top_k=1)
    without = relevance_margin(
        instructions, responses, instructions, top_k=1, row_ids=ids, sample_ids=ids
    )
    assert np.all(with_self <= 1e-9)  # its own instruction is in the sample: margin <= 0
    assert np.median(without) > np.median(with_self)


def test_instruction_keys_as_ids_keep_every_copy_of_the_own_instruction_out():
    instructions, responses = planted()
    # Row 0's instruction is asked three times in the sample (a duplicate, a conflict).
    sample = np.concatenate([instructions, instructions[[0, 0]]])
    keys = [f"k{i}" for i in range(len(instructions))]
    margins = relevance_margin(
        instructions, responses, sample, top_k=1, row_ids=keys, sample_ids=[*keys, "k0", "k0"]
    )
    by_row_id = relevance_margin(
        instructions, responses, sample, top_k=1, row_ids=keys, sample_ids=[*keys, "a", "b"]
    )
    assert margins[0] > 0 >= by_row_id[0] - 1e-9  # the copies no longer compete with row 0
    assert np.allclose(margins[1:], by_row_id[1:])


def test_empty_sample_flags_nothing_and_bad_shapes_are_named():
    instructions, responses = planted()
    assert not mismatched(relevance_margin(instructions, responses, np.zeros((0, 32)))).any()
    with pytest.raises(ValueError, match="differ in shape"):
        relevance_margin(instructions[:3], responses, instructions)
    with pytest.raises(ValueError, match="top_k"):
        relevance_margin(instructions, responses, instructions, top_k=0)


def static_like(seed: int, n_topics: int = 8, per_topic: int = 25, d: int = 32):
    """Rows as a static encoder places them: every vector shares a large common direction
    and three dimensions carry shared-vocabulary noise, so all cosines are high and raw
    margins are squeezed towards 0. Rows 7, 60 and 130 answer another topic's task."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.normal(size=(n_topics, d)))
    topic_of = np.repeat(np.arange(n_topics), per_topic)
    n = len(topic_of)
    common = unit(rng.normal(size=d))
    loud = np.zeros(d)
    loud[:3] = 1.0

    def part() -> np.ndarray:
        x = unit(topics[topic_of] + 0.4 * rng.normal(size=(n, d)) / np.sqrt(d))
        return unit(x + 2.5 * common + 0.3 * rng.normal(size=(n, d)) * loud)

    instructions, responses = part(), part()
    bad = [7, 60, 130]
    for b in bad:
        responses[b] = responses[(b + 3 * per_topic) % n]  # an answer three topics away
    return instructions, responses, bad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_paired_margin_finds_what_raw_margins_miss_in_an_anisotropic_space(seed):
    instructions, responses, bad = static_like(seed)
    keys = [f"k{i}" for i in range(len(instructions))]
    raw = relevance_margin(instructions, responses, instructions, row_ids=keys, sample_ids=keys)
    assert not mismatched(raw, threshold=-0.2)[bad].any()  # squeezed: the old cut misses them

    paired = paired_margin(
        instructions, responses, instructions, responses, row_ids=keys, sample_ids=keys
    )
    assert np.flatnonzero(mismatched(paired, threshold=PAIRED_THRESHOLD)).tolist() == bad


def test_a_clean_row_is_kept_and_the_mislabeled_one_flagged_in_the_isotropic_case():
    instructions, responses = planted()
    keys = [f"k{i}" for i in range(len(instructions))]
    paired = paired_margin(
        instructions, responses, instructions, responses, top_k=5, row_ids=keys, sample_ids=keys
    )
    assert np.flatnonzero(mismatched(paired, threshold=PAIRED_THRESHOLD)).tolist() == [7]


def test_whitening_removes_the_common_direction():
    rng = np.random.default_rng(0)
    common = unit(rng.normal(size=16))
    vectors = unit(rng.normal(size=(200, 16)) * 0.2 + common)
    assert float(np.mean(vectors @ vectors.T)) > 0.5
    white = whitening(vectors)(vectors)
    np.testing.assert_allclose(np.linalg.norm(white, axis=1), 1.0)
    assert abs(float(np.mean(white @ white.T))) < 0.05
    # a constant dimension is left unscaled, not divided by zero
    flat = vectors.copy()
    flat[:, 0] = 0.5
    assert np.isfinite(whitening(flat)(flat)).all()


def test_paired_margin_edges():
    instructions, responses = planted()
    assert not paired_margin(instructions, responses, np.zeros((0, 32)), np.zeros((0, 32))).any()
    with pytest.raises(ValueError, match="sampled instruction and response"):
        paired_margin(instructions, responses, instructions, responses[:5])
    with pytest.raises(ValueError, match="at least 1"):
        paired_margin(instructions, responses, instructions, responses, top_k=0)
    # a sample holding only the row's own instruction leaves it nothing to compete with
    one = paired_margin(
        instructions[:1],
        responses[:1],
        instructions[:1],
        responses[:1],
        row_ids=["a"],
        sample_ids=["a"],
    )
    assert np.isfinite(one).all()
