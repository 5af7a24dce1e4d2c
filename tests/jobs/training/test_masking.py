"""The loss mask of a multi-turn conversation covers exactly its assistant turns' tokens:
the same tokens a template's {% generation %} markers name, also for a template that has
none (SmolLM2's), and only the last turn with text.train_on=last."""

from __future__ import annotations

import pytest

from infra.config import load_config
from jobs.training.config import TrainConfig
from jobs.training.masking import tokenize_conversation

# SmolLM2-135M-Instruct's own chat template: no generation markers, a default system turn.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONVERSATION = [
    {"role": "system", "content": "You add numbers."},
    {"role": "user", "content": "Add 2 and 3."},
    {"role": "assistant", "content": "The answer is 5."},
    {"role": "user", "content": "Add 1 and 1."},
    {"role": "assistant", "content": "The answer is 2."},
]


@pytest.fixture
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def learned_text(tokenizer, ids: list[int], mask: list[int]) -> list[str]:
    """The learned tokens, decoded run by run (one run per learned stretch)."""
    runs, current = [], []
    for token, bit in zip(ids, mask, strict=True):
        if bit:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    return runs + ([tokenizer.decode(current)] if current else [])


def test_every_assistant_turn_is_learned_and_nothing_else(tokenizer):
    tokens = tokenize_conversation(tokenizer, CONVERSATION, "all")
    # The template's own {% generation %} markers say which tokens are the assistant's.
    reference = tokenizer.apply_chat_template(
        CONVERSATION, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert tokens.input_ids == list(reference["input_ids"])
    assert tokens.assistant_masks == list(reference["assistant_masks"])
    assert learned_text(tokenizer, tokens.input_ids, tokens.assistant_masks) == [
        "The answer is 5.<|im_end|>",
        "The answer is 2.<|im_end|>",
    ]


def test_a_template_without_generation_markers_gets_the_same_mask(tokenizer):
    tokenizer.chat_template = SMOLLM2_TEMPLATE
    tokens = tokenize_conversation(tokenizer, CONVERSATION[1:], "all")  # default system turn
    text = tokenizer.decode(tokens.input_ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert learned_text(tokenizer, tokens.input_ids, tokens.assistant_masks) == [
        "The answer is 5.<|im_end|>",
        "The answer is 2.<|im_end|>",
    ]
    assert tokens.unaligned_turns == 0


def test_train_on_last_learns_the_final_answer_only(tokenizer):
    tokens = tokenize_conversation(tokenizer, CONVERSATION, "last")
    assert learned_text(tokenizer, tokens.input_ids, tokens.assistant_masks) == [
        "The answer is 2.<|im_end|>"
    ]
    first = tokens.first_learned
    assert first is not None and "The answer is 5." in tokenizer.decode(tokens.input_ids[:first])


def test_the_trainer_labels_cover_exactly_the_assistant_turns(tiny_model_dir, tmp_path):
    from jobs.training.data import to_prompt_completion
    from jobs.training.loop import build_sft_trainer

    example = to_prompt_completion(CONVERSATION)
    for train_on, expected in (
        ("all", ["The answer is 5.<|im_end|>", "The answer is 2.<|im_end|>"]),
        ("last", ["The answer is 2.<|im_end|>"]),
    ):
        cfg = load_config(TrainConfig, None, [f"text.train_on={train_on}", "optim.max_steps=1"])
        trainer = build_sft_trainer(cfg, str(tiny_model_dir), [example], [], tmp_path / train_on)
        row = trainer.train_dataset[0]
        learned = [int(label != -100) for label in row["labels"]]
        assert learned_text(trainer.processing_class, row["input_ids"], learned) == expected
        pairs = zip(row["input_ids"], row["labels"], strict=True)
        assert all(token == label for token, label in pairs if label != -100)
