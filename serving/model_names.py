"""Model names both ways: an adapter is ``NAME`` or ``BASE:NAME`` on either backend.

finesift's own backend lists adapters by their name (``smol-demo``); Ray Serve LLM (the
vLLM backend) lists them as ``base_model_id:lora_id`` (``base:smol-demo``). Both backends
take both forms, and clients map a name onto the form the server lists, so the same
``--models base,smol-demo`` (or ``base,base:smol-demo``) works against either.
"""

from __future__ import annotations

from collections.abc import Sequence

from serving.errors import ApiError, shown


def adapter_of(model: str, base_name: str) -> str:
    """The adapter a request's ``model`` names on finesift's backend; "" for the base model.

    ``NAME`` and ``BASE:NAME`` (BASE being this server's base model name) name the same
    adapter. A bare name is checked later, against the adapters directory.

    Raises:
        ApiError: 404 when ``BASE`` is another base model than this server's; 400 when
            the part after ``BASE:`` is not an adapter name (empty, a path).
    """
    if model == base_name:
        return ""
    if ":" not in model:
        return model
    base, _, adapter = model.partition(":")
    if base != base_name:
        raise ApiError(
            404,
            f"model {shown(model)!r} names the base model {shown(base)!r}, but this server's "
            f"base model is {base_name!r}; use {base_name}:ADAPTER or just ADAPTER "
            "(GET /v1/models lists them)",
            type="not_found_error",
            param="model",
            code="model_not_found",
        )
    from serving.adapters import check_model_name

    check_model_name(adapter)  # "base:" must not fall back to the base model
    return adapter


def qualified(model: str | None, bases: Sequence[str]) -> str | None:
    """The ``base_model_id:lora_id`` form Ray Serve LLM routes on, for a bare adapter name.

    A base model id, a name that already has a ``:`` and None stay as they are; a bare
    adapter name gets the base model's id in front when the server has exactly one base.
    """
    if model is None or ":" in model or model in bases or len(bases) != 1:
        return model
    return f"{bases[0]}:{model}"


def served_name(name: str, served: Sequence[str]) -> str:
    """The id a server lists for the model a user named, so a client's names fit either
    backend: ``base:NAME`` where the server lists ``NAME``, and ``NAME`` where it lists
    ``base:NAME``. A name the listing does not explain is sent as it is (the server then
    answers with its own error)."""
    if name in served:
        return name
    if ":" in name:
        adapter = name.partition(":")[2]
        return adapter if adapter in served else name
    matches = [s for s in served if s.partition(":")[2] == name]
    return matches[0] if len(matches) == 1 else name
