"""quality.records: one raw object -> one canonical Row, or a RowError naming the reason."""

from __future__ import annotations

import json

import pytest

from infra.errors import InputError
from quality.records import RowError, detect_schema, normalize, quarantined_row
from quality.schema import REASONS, ROW_SCHEMA, Row


def turns(row: Row) -> list[dict[str, str]]:
    return json.loads(row["messages"])


def reason_of(obj: object, **kwargs: object) -> str:
    with pytest.raises(RowError) as info:
        normalize(obj, source="t.jsonl:1", **kwargs)  # type: ignore[arg-type]
    assert info.value.reason in REASONS
    assert info.value.detail
    return info.value.reason


ALPACA = {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "category": "math"}
MESSAGES = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
}
SHAREGPT = {
    "conversations": [
        {"from": "human", "value": "Name a colour."},
        {"from": "gpt", "value": "Blue."},
    ]
}
PROMPT_COMPLETION = {"prompt": "Say yes.", "completion": "Yes."}
# GPTeacher (general, codegen, toolformer): alpaca with ``response`` for ``output``.
GPTEACHER = {"instruction": "Add the numbers.", "input": "2 and 3", "response": "5"}


@pytest.mark.parametrize(
    ("obj", "schema"),
    [
        (ALPACA, "alpaca"),
        (MESSAGES, "messages"),
        (SHAREGPT, "sharegpt"),
        (PROMPT_COMPLETION, "prompt_completion"),
        (GPTEACHER, "alpaca"),
        ({"prompt": "p", "response": "r"}, "prompt_completion"),
        ({**MESSAGES, "response": "r"}, "messages"),
        ({**SHAREGPT, "response": "r"}, "sharegpt"),
        ({**PROMPT_COMPLETION, "response": "r"}, "prompt_completion"),
        ({"question": "q", "answer": "a"}, None),
    ],
)
def test_detect_schema(obj: dict, schema: str | None) -> None:
    assert detect_schema(obj) == schema


def test_alpaca_row_has_every_key_and_plain_prompt() -> None:
    row = normalize(
        {**ALPACA, "id": 17, "timestamp": "2024-05-01", "system": "You are terse."},
        source="a.jsonl:3",
    )
    assert list(row) == ROW_SCHEMA.names
    assert row["id"] == "17"
    assert row["source"] == "a.jsonl:3"
    assert row["prompt"] == "Add the numbers.\n\n2 and 3"
    assert row["response"] == "5"
    assert turns(row) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert json.loads(row["extras"]) == {"category": "math"}
    assert row["timestamp"] == "2024-05-01"
    assert row["status"] == "active"
    assert row["raw"] is row["reason"] is row["detail"] is row["quality"] is None
    assert row["duplicate_of"] is row["kept_instead"] is None
    assert row["failed_rules"] == [] and row["cluster"] == -1


def test_alpaca_empty_input_is_left_out_of_prompt() -> None:
    row = normalize({"instruction": " Say hi. ", "input": "  ", "output": "hi\n"}, source="s")
    assert row["prompt"] == "Say hi."
    assert row["response"] == "hi"
    assert row["timestamp"] is None


def test_messages_multi_turn_prompt_joins_turns_before_final_answer() -> None:
    row = normalize(MESSAGES, source="m.jsonl:1")
    assert row["prompt"] == "Hi\n\nHello.\n\nCapital of France?"  # system prompt excluded
    assert row["response"] == "Paris."
    assert [t["role"] for t in turns(row)] == ["system", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(("human", "gpt"), [("human", "gpt"), ("user", "assistant")])
def test_sharegpt_roles_are_mapped(human: str, gpt: str) -> None:
    obj = {
        "conversations": [
            {"from": "system", "value": "Be kind."},
            {"from": human, "value": "Name a colour."},
            {"from": gpt, "value": "Blue."},
        ],
        "lang": "en",
    }
    row = normalize(obj, source="s")
    assert turns(row) == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
    ]
    assert json.loads(row["extras"]) == {"lang": "en"}


def test_prompt_completion() -> None:
    row = normalize(PROMPT_COMPLETION, source="p")
    assert (row["prompt"], row["response"]) == ("Say yes.", "Yes.")


def test_field_map_renames_before_detection() -> None:
    obj = {"question": "Why?", "answer": "Because.", "gold": "B"}
    row = normalize(obj, source="f", field_map={"question": "instruction", "answer": "output"})
    assert (row["prompt"], row["response"]) == ("Why?", "Because.")
    assert json.loads(row["extras"]) == {"gold": "B"}  # ground-truth columns survive


def test_forced_format_skips_detection() -> None:
    obj = {**PROMPT_COMPLETION, "instruction": "ignored", "output": "ignored"}
    row = normalize(obj, source="f", fmt="prompt_completion")
    assert row["response"] == "Yes."
    assert json.loads(row["extras"]) == {"instruction": "ignored", "output": "ignored"}
    assert reason_of(MESSAGES, fmt="alpaca") == "missing_field"


def test_unknown_forced_format_is_a_user_error() -> None:
    with pytest.raises(InputError, match="chatml.*alpaca"):
        normalize(ALPACA, source="f", fmt="chatml")


def test_content_hash_id_is_stable_and_source_specific() -> None:
    a1 = normalize(ALPACA, source="a.jsonl:1")
    a2 = normalize(dict(ALPACA), source="a.jsonl:1")
    b = normalize(ALPACA, source="b.jsonl:1")
    assert a1["id"] == a2["id"]
    assert a1["id"] != b["id"]
    assert len(a1["id"]) == 16 and int(a1["id"], 16) >= 0
    assert normalize({**ALPACA, "id": "  "}, source="a.jsonl:1")["id"] == a1["id"]
    assert normalize({**ALPACA, "uid": "x-1"}, source="s", id_field="uid")["id"] == "x-1"


def test_custom_timestamp_field() -> None:
    row = normalize(
        {**ALPACA, "created": "2023-01-02T03:04:05Z"}, source="s", timestamp_field="created"
    )
    assert row["timestamp"] == "2023-01-02T03:04:05Z"
    assert "created" not in json.loads(row["extras"])


def test_missing_field_detail_suggests_field_map() -> None:
    with pytest.raises(RowError) as info:
        normalize({"instruction": "x", "answer": "y"}, source="s")
    assert info.value.reason == "missing_field"
    assert "{answer: output}" in info.value.detail


def test_gpteacher_response_is_the_alpaca_answer() -> None:
    row = normalize(GPTEACHER, source="codegen-instruct.json#0")
    assert turns(row) == [
        {"role": "user", "content": "Add the numbers.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert json.loads(row["extras"]) == {}  # response was the answer, not an extra column
    # The explicit field map that GPTeacher needed before still works the same way.
    mapped = normalize(GPTEACHER, source="c.json#0", field_map={"response": "output"})
    assert turns(mapped) == turns(row)
    assert reason_of({**GPTEACHER, "response": " "}) == "empty_field"
    assert reason_of({"input": "x", "response": "y"}) == "missing_field"  # no instruction


def test_output_wins_over_response_which_stays_an_extra() -> None:
    row = normalize({**ALPACA, "response": "a rejected answer"}, source="s")
    assert row["response"] == "5"
    assert json.loads(row["extras"]) == {"category": "math", "response": "a rejected answer"}


def test_prompt_with_response_is_prompt_completion() -> None:
    row = normalize({"prompt": "Say yes.", "response": "Yes."}, source="s")
    assert (row["prompt"], row["response"]) == ("Say yes.", "Yes.")


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"question": "q", "answer": "a"}, "unknown_schema"),
        ({"instruction": "Do it."}, "missing_field"),
        ({"messages": [{"role": "user"}, assistant("a")]}, "missing_field"),
        ({"instruction": "Do it.", "output": "   "}, "empty_field"),
        ({"instruction": "", "output": "ok"}, "empty_field"),
        ({"instruction": "Do it.", "output": None}, "empty_field"),
        ({"messages": []}, "empty_field"),
        ({"messages": [user("q"), assistant(" \n")]}, "empty_field"),
        ({"instruction": "Do it.", "output": 5}, "wrong_type"),
        ({"instruction": "Do it.", "input": ["x"], "output": "ok"}, "wrong_type"),
        ({"messages": "hi"}, "wrong_type"),
        ({"messages": [user("q"), {"role": "assistant", "content": ["a"]}]}, "wrong_type"),
        ({"messages": ["q", "a"]}, "wrong_type"),
        (["not", "an", "object"], "wrong_type"),
        ({"messages": [assistant("a"), user("q")]}, "bad_roles"),
        ({"messages": [user("q"), user("q2"), assistant("a")]}, "bad_roles"),
        (
            {"messages": [user("q"), assistant("a"), {"role": "system", "content": "s"}]},
            "bad_roles",
        ),
        ({"messages": [user("q"), {"role": "tool", "content": "42"}]}, "bad_roles"),
        ({"messages": [user("q"), assistant("a"), user("more?")]}, "bad_roles"),
        (
            {"conversations": [{"from": "human", "value": "q"}, {"from": "bot", "value": "a"}]},
            "bad_roles",
        ),
        ({"messages": [user("q")]}, "no_assistant_turn"),
        ({"messages": [{"role": "system", "content": "s"}, user("q")]}, "no_assistant_turn"),
        ({"instruction": "Do it.", "output": "bad \ud800 text"}, "invalid_utf8"),
    ],
)
def test_bad_rows_raise_reason(obj: object, reason: str) -> None:
    assert reason_of(obj) == reason


def test_wrong_type_detail_names_the_field() -> None:
    with pytest.raises(RowError) as info:
        normalize({"messages": [user("q"), {"role": "assistant", "content": 3}]}, source="s")
    assert "messages[1].content" in info.value.detail


def test_quarantined_row() -> None:
    row = quarantined_row(source="x.jsonl:4", raw="{oops", reason="invalid_json", detail="bad")
    assert list(row) == ROW_SCHEMA.names
    assert row["status"] == "quarantined"
    assert (row["raw"], row["reason"], row["detail"]) == ("{oops", "invalid_json", "bad")
    same = quarantined_row(source="x.jsonl:4", raw="{oops", reason="invalid_json", detail="bad")
    other = quarantined_row(source="x.jsonl:5", raw="{oops", reason="invalid_json", detail="bad")
    assert row["id"] == same["id"] != other["id"]
    with pytest.raises(ValueError, match="unknown reason"):
        quarantined_row(source="s", raw="r", reason="because", detail="d")


def test_assistant_turns_pairs_every_answer_with_what_precedes_it() -> None:
    from quality.records import assistant_turns

    row = normalize(MESSAGES, source="m.jsonl:1")
    pairs = assistant_turns(row["messages"])
    assert pairs == [("Hi", "Hello."), ("Hi\n\nHello.\n\nCapital of France?", "Paris.")]
    assert pairs[-1] == (row["prompt"], row["response"])  # the last pair is the row's own
    assert assistant_turns("not json") == []
