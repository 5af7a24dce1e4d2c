"""From an OpenAI request to prompt token ids: the chat template, then the limits."""

from __future__ import annotations

from typing import Any

from serving.protocol import ApiError, ChatCompletionRequest, CompletionRequest


def chat_prompt(tokenizer: Any, request: ChatCompletionRequest) -> str:
    """The prompt text of a chat request: the tokenizer's chat template plus the assistant turn.

    ``developer`` messages (OpenAI's newer name for system) are sent as ``system``.

    Raises:
        ApiError: 400 when the model has no chat template (use /v1/completions instead).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ApiError(
            400,
            "this model has no chat template; send a plain prompt to /v1/completions",
            param="messages",
            code="no_chat_template",
        )
    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in request.messages
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def encode_request(tokenizer: Any, request: ChatCompletionRequest | CompletionRequest) -> list[int]:
    """Prompt token ids of a chat or text completions request.

    The chat template already writes its special tokens, so none are added to it; a
    plain prompt gets the tokenizer's usual special tokens (e.g. a BOS token).
    """
    if isinstance(request, ChatCompletionRequest):
        text = chat_prompt(tokenizer, request)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(request.prompt_text(), add_special_tokens=True)["input_ids"])


def check_limits(
    prompt_tokens: int,
    max_tokens: int,
    *,
    max_prompt_tokens: int,
    max_tokens_limit: int,
    context_length: int,
) -> None:
    """Refuse a request that is too long before it reaches the model.

    Args:
        prompt_tokens: tokens in the prompt.
        max_tokens: tokens the request may generate.
        max_prompt_tokens: configured prompt limit (413 beyond it).
        max_tokens_limit: configured ``max_tokens`` limit (400 beyond it).
        context_length: the model's context window; prompt plus answer must fit (400).

    Raises:
        ApiError: 413 or 400 with a message saying which limit and by how much.
    """
    if prompt_tokens == 0:
        raise ApiError(400, "the prompt is empty; send some text", param="prompt")
    if prompt_tokens > max_prompt_tokens:
        raise ApiError(
            413,
            f"the prompt has {prompt_tokens} tokens, over the limit of {max_prompt_tokens}; "
            "shorten it",
            param="messages",
            code="context_length_exceeded",
        )
    if max_tokens > max_tokens_limit:
        raise ApiError(
            400,
            f"max_tokens is {max_tokens}, over this server's limit of {max_tokens_limit}; ask "
            "for fewer",
            param="max_tokens",
            code="max_tokens_too_large",
        )
    if prompt_tokens + max_tokens > context_length:
        raise ApiError(
            400,
            f"prompt ({prompt_tokens} tokens) plus max_tokens ({max_tokens}) exceeds the "
            f"model's context of {context_length} tokens; shorten the prompt or lower max_tokens",
            param="max_tokens",
            code="context_length_exceeded",
        )
