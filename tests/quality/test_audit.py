"""The pre-training audit counts exact duplicates, empty or placeholder answers and
conflicting answers, and names a few rows of each."""

from __future__ import annotations

from quality.audit import audit_rows


def chat(question: str, *answers: str) -> list[dict[str, str]]:
    """A conversation: the question, then one assistant turn per answer (with follow-ups)."""
    turns = [{"role": "user", "content": question}]
    for i, answer in enumerate(answers):
        if i:
            turns.append({"role": "user", "content": f"And then? ({i})"})
        turns.append({"role": "assistant", "content": answer})
    return turns


def test_planted_problems_are_counted_by_kind():
    rows = {
        "ok1": chat("What is the boiling point of water?", "100 degrees Celsius at sea level."),
        "dup": chat("what is the boiling point of water", "100 degrees celsius at sea level"),
        "na": chat("Describe a cat.", "N/A"),  # placeholder answer
        "mid": chat("Describe a dog.", "TODO", "A loyal animal that barks."),  # earlier turn
        "c1": chat("Who wrote Hamlet?", "William Shakespeare wrote Hamlet."),
        "c2": chat("Who wrote Hamlet?", "Christopher Marlowe wrote it in 1620."),  # conflict
        "ok2": chat("Name a color.", "Blue."),
    }
    result = audit_rows(list(rows), list(rows.values()))
    assert result.rows == 7
    assert (result.exact_duplicates, result.empty_answers, result.conflicts) == (1, 2, 1)
    assert result.examples == {"duplicate": ["dup"], "empty": ["na", "mid"], "conflict": ["c2"]}
    assert result.problems == 4
    assert "1 exact duplicates, 2 empty or placeholder answers" in result.summary()


def test_clean_rows_have_no_findings():
    rows = [chat(f"Add {i} and {i}.", f"The answer is {2 * i}.") for i in range(20)]
    result = audit_rows([f"r{i}" for i in range(20)], rows)
    assert result.problems == 0 and result.examples == {}
