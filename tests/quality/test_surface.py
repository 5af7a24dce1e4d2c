"""Casing and spelling of a text (quality/surface.py)."""

from __future__ import annotations

import numpy as np

from quality.surface import (
    bundled_lexicon,
    lexicon_from_vocab,
    lost_casing,
    misspelled_share,
    surface_term,
)

LEXICON = lexicon_from_vocab(["the", "cat", "sat", "on", "mat", "it", "was", "happy", "[CLS]"])


def test_lost_casing_counts_lower_case_sentence_starts_of_prose_only() -> None:
    assert lost_casing("The cat sat. It was happy.") == 0.0
    assert lost_casing("the cat sat. it was happy.") == 1.0
    assert lost_casing("The cat sat. it was happy.") == 0.5
    code = "def area(width, height):\n    return width * height  # the area\n"
    assert lost_casing(code) == 0.5  # code without one capital letter: half
    assert lost_casing("def Area(w, h):\n    return w * h  # Width times height\n") == 0.0
    assert lost_casing("") == 0.0 and lost_casing("42.") == 0.0


def test_misspelled_share_against_a_lexicon() -> None:
    assert misspelled_share("The cat sat on the mat.", LEXICON) == 0.0
    # "teh" and "mta" are unknown; "on" is too short to count
    assert misspelled_share("teh cat sat on the mta", LEXICON) == 2 / 5
    assert "[cls]" not in LEXICON and "cls" not in LEXICON
    # identifiers are split at camelCase; lower-cased they become one unknown word
    assert misspelled_share("class CatMat:", LEXICON) == 1 / 3  # "class" unknown
    assert misspelled_share("class catmat:", LEXICON) == 1.0


def test_surface_term_prefers_the_careful_original_to_its_sloppy_copy() -> None:
    texts = ["The cat sat on the mat. It was happy.", "teh cat sat on the mta. it was hapy."]
    terms = surface_term(texts, LEXICON, baseline=0.0)
    assert terms[0] == 1.0 and terms[1] < 0.5
    casing_only = surface_term(texts, None)
    assert casing_only.tolist() == [1.0, 0.0]
    assert np.all((terms >= 0) & (terms <= 1))


def test_bundled_lexicon_holds_common_words_when_installed() -> None:
    lexicon = bundled_lexicon()
    if lexicon is None:  # the bundled encoder package is optional
        return
    assert {"the", "ocean", "because"} <= lexicon
    assert "teh" not in lexicon
