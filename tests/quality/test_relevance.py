"""Relevance: a response that answers another row's task is found; clean rows are not."""

from __future__ import annotations

import numpy as np
import pytest

from quality.composite import relevance_term
from quality.relevance import mismatched, relevance_margin


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
