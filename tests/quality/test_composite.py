"""The quality terms: directions, bounds, and missing signals left out."""

from __future__ import annotations

import numpy as np
import pytest

from quality.composite import combine, ifd_term, informativeness, perplexity_term


def test_fluency_is_lost_to_noise_and_to_repetition():
    terms = perplexity_term(np.array([1.0, 1.5, 12.0, 80.0, 300.0, 5000.0]))
    assert terms[2] == terms[3] == 1.0  # natural text
    assert terms[0] == 0.0 and 0 < terms[1] < 0.5  # looping text is too predictable
    assert 0 < terms[4] < 1 and terms[5] == 0.0  # noise


def test_alignment_and_informativeness():
    ifd = np.array([0.3, 0.85, 0.95, 1.0, 1.4, np.nan])
    assert ifd_term(ifd)[:5].tolist() == pytest.approx([1.0, 1.0, 0.5, 0.0, 0.0])
    assert np.isnan(ifd_term(ifd)[5])
    assert informativeness(ifd).tolist() == pytest.approx([0.3, 0.85, 0.95, 0.0, 0.0, 0.0])


def test_combine_skips_missing_terms_and_zero_weights():
    terms = {"a": np.array([1.0, np.nan]), "b": np.array([0.0, 0.5]), "c": np.array([0.2, 0.2])}
    out = combine(terms, {"a": 1.0, "b": 1.0, "c": 0.0})
    assert out.tolist() == pytest.approx([0.5, 0.5])
