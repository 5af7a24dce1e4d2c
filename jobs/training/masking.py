"""Token ids of a conversation and its loss mask: which tokens the model learns to write.

The loss covers the assistant's turns and masks the system and user turns. With
``text.train_on: all`` (the default) every assistant turn of a multi-turn conversation is
learned; with ``last`` only the final one, the other turns being context.

TRL can build this mask itself (``assistant_only_loss``), but only from a chat template
with ``{% generation %}`` markers, which most shipped templates (SmolLM2's among them)
lack. So the mask is built here, from any chat template: an assistant turn is the text
that rendering the conversation up to that turn adds after the rendered history and its
generation prompt (``<|im_start|>assistant\\n`` for ChatML), i.e. the answer and its
end-of-turn token. Token offsets then map those character spans onto tokens. For a
template with generation markers the result equals the template's own assistant mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Message = dict[str, str]
TRAIN_ON = ("all", "last")


@dataclass(frozen=True)
class Tokenized:
    """One conversation, tokenized, with its loss mask."""

    input_ids: list[int]
    assistant_masks: list[int]
    """1 for a token the loss covers (an assistant turn's), else 0."""
    unaligned_turns: int = 0
    """Assistant turns left out of the mask because the template does not render the
    conversation's start the same way when it is continued (see :func:`assistant_spans`)."""

    @property
    def first_learned(self) -> int | None:
        """Position of the first token the loss covers, or None when there is none."""
        return next((i for i, bit in enumerate(self.assistant_masks) if bit), None)


def render(tokenizer: Any, messages: list[Message], add_generation_prompt: bool) -> str:
    """The conversation as the chat template writes it (text, no tokenization)."""
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(
    tokenizer: Any, messages: list[Message], train_on: str = "all"
) -> tuple[str, list[tuple[int, int]], int]:
    """The rendered conversation and the character spans of the assistant turns to learn.

    A turn's span runs from the end of the history rendered with a generation prompt to
    the end of the history rendered with the turn, trailing whitespace excluded (the
    newline a template writes after the end-of-turn token is never generated).

    Args:
        tokenizer: a tokenizer with a chat template.
        messages: ``[{role, content}]`` ending with an assistant turn.
        train_on: 'all' assistant turns or the 'last' one.

    Returns:
        (rendered text, spans, turns skipped because the template does not render the
        history as a prefix of the whole conversation).
    """
    if train_on not in TRAIN_ON:
        raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
    text = render(tokenizer, messages, False)
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]
    if train_on == "last":
        turns = turns[-1:]
    spans, unaligned = [], 0
    for i in turns:
        start_text = render(tokenizer, messages[:i], True)
        end_text = render(tokenizer, messages[: i + 1], False).rstrip()
        if not (text.startswith(end_text) and end_text.startswith(start_text)):
            unaligned += 1  # e.g. a template that rewrites earlier turns once more follow
            continue
        if len(end_text) > len(start_text):
            spans.append((len(start_text), len(end_text)))
    return text, spans, unaligned


def tokenize_conversation(tokenizer: Any, messages: list[Message], train_on: str) -> Tokenized:
    """Token ids of the rendered conversation and the mask of its learned assistant turns.

    A token is learned when it starts inside a learned turn's span.

    Raises:
        ValueError: the tokenizer cannot report character offsets (a slow tokenizer).
    """
    text, spans, unaligned = assistant_spans(tokenizer, messages, train_on)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            "the base model's tokenizer is a slow (Python) tokenizer without character "
            "offsets; use a model with a fast tokenizer (tokenizer.json)"
        )
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for start, end in encoded["offset_mapping"]:
        inside = end > start and any(lo <= start < hi for lo, hi in spans)
        mask.append(1 if inside else 0)
    return Tokenized(list(encoded["input_ids"]), mask, unaligned)
