"""Normalization, keys, shingles and Jaccard (quality/text.py)."""

from __future__ import annotations

import pytest

from quality.text import exact_key, instruction_key, jaccard, normalize_text, shingles


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Hello,   WORLD!  ", "hello world"),
        ("Bonjour, comment allez-vous ?", "bonjour comment allez vous"),
        ("Don\u2019t stop", "dont stop"),  # apostrophes join, other punctuation separates
        ("\uff28\uff45\uff4c\uff4c\uff4f", "hello"),  # full-width letters (NFKC)
        ("Stra\u00dfe", "strasse"),  # casefold, not just lower
        ("line\n\tbreak", "line break"),
        ("What is 2+2?", "what is 2+2"),  # symbols and digits are content
        ("\u00abquoted\u00bb \u2014 text", "quoted text"),
        ("", ""),
    ],
)
def test_normalize_text(raw: str, normalized: str) -> None:
    assert normalize_text(raw) == normalized


def test_normalize_text_is_idempotent() -> None:
    s = "  \u00c9t\u00e9 \u2014 l'\u00e9t\u00e9, C'EST \uff11\uff12!  "
    assert normalize_text(normalize_text(s)) == normalize_text(s)


def test_exact_key_ignores_case_punctuation_and_spacing() -> None:
    key = exact_key("What is the capital of France?", "Paris.")
    assert exact_key("what is the  capital of france", "PARIS") == key
    assert exact_key("What is the capital of Spain?", "Paris.") != key
    assert exact_key("What is the capital of France?", "Lyon.") != key
    assert len(key) == 32 and int(key, 16) >= 0


def test_exact_key_keeps_the_prompt_response_boundary() -> None:
    assert exact_key("a b", "c") != exact_key("a", "b c")
    assert exact_key("ab", "") != exact_key("a", "b")


def test_instruction_key_ignores_the_response() -> None:
    assert instruction_key("Translate to French: Hello!") == instruction_key(
        "translate to french hello"
    )
    assert instruction_key("Translate to French: Hello!") != instruction_key(
        "Translate to German: Hello!"
    )


def test_shingles() -> None:
    assert shingles("The cat sat on the mat.", 3) == {
        "the cat sat",
        "cat sat on",
        "sat on the",
        "on the mat",
    }
    assert shingles("Hello, world!", 3) == {"hello world"}  # short text: one shingle
    assert shingles("a b c", 3) == {"a b c"}
    assert shingles("  ...  ", 3) == set()
    assert shingles("x y", 1) == {"x", "y"}
    with pytest.raises(ValueError, match="shingle size"):
        shingles("x", 0)


def test_jaccard() -> None:
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert jaccard({"a"}, {"a"}) == 1.0
    assert jaccard({"a"}, {"b"}) == 0.0
    assert jaccard(set(), {"a"}) == 0.0
    assert jaccard(set(), set()) == 1.0
