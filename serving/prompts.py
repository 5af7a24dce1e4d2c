"""From an OpenAI request to what the generator runs: the chat template, token ids, limits.

A prompt the tokenizer or the chat template refuses is the request's fault (a 400 for that
request alone); nothing here can fail a batch, which only ever sees checked GenParams.
"""

from __future__ import annotations

from typing import Any

from serving.config import LimitsConfig
from serving.errors import ApiError
from serving.protocol import ChatCompletionRequest, CompletionRequest
from serving.sampling import GenParams


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
    from jinja2 import TemplateError

    messages = [
        {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
        for m in request.messages
    ]
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except TemplateError as exc:  # templates raise on what they refuse (roles out of order)
        raise ApiError(
            400,
            f"the model's chat template refused these messages: {exc}",
            param="messages",
            code="invalid_messages",
        ) from exc


def encode_request(tokenizer: Any, request: ChatCompletionRequest | CompletionRequest) -> list[int]:
    """Prompt token ids of a chat or text completions request.

    The chat template already writes its special tokens, so none are added to it; a
    plain prompt gets the tokenizer's usual special tokens (e.g. a BOS token).

    Raises:
        ApiError: 400 when the chat template refuses the messages or the text is not
            valid Unicode (a lone surrogate, which the tokenizer cannot encode).
    """
    chat = isinstance(request, ChatCompletionRequest)
    text = chat_prompt(tokenizer, request) if chat else request.prompt_text()
    try:
        text.encode("utf-8")  # the fast tokenizer's TypeError for this would not say why
    except UnicodeError as exc:
        raise ApiError(
            400,
            f"the prompt is not valid Unicode ({exc.reason} at character {exc.start}); send "
            "UTF-8 text",
            param="messages" if chat else "prompt",
            code="invalid_prompt",
        ) from exc
    return list(tokenizer(text, add_special_tokens=not chat)["input_ids"])


def generation_params(
    tokenizer: Any,
    request: ChatCompletionRequest | CompletionRequest,
    limits: LimitsConfig,
    context_length: int,
) -> GenParams:
    """What the generator runs for a validated request: prompt ids and sampling settings.

    Raises:
        ApiError: 400 or 413 for a prompt that cannot be tokenized, too many stop
            strings, or a prompt or ``max_tokens`` over the limits.
    """
    stops = request.stop_list()
    if len(stops) > limits.max_stop_sequences:
        raise ApiError(
            400,
            f"at most {limits.max_stop_sequences} stop sequences",
            param="stop",
            code="invalid_value",
        )
    prompt_ids = encode_request(tokenizer, request)
    max_tokens = request.wanted_tokens(min(limits.default_max_tokens, limits.max_tokens))
    check_limits(
        len(prompt_ids),
        max_tokens,
        max_prompt_tokens=limits.max_prompt_tokens,
        max_tokens_limit=limits.max_tokens,
        context_length=context_length,
    )
    return GenParams(
        prompt_ids=tuple(prompt_ids),
        max_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=tuple(stops),
        seed=request.seed,
    )


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
