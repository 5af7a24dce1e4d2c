"""The OpenAI ingress of the vLLM backend: Ray Serve LLM's own, plus finesift's API key
and bare adapter names.

Ray Serve LLM (``build_openai_app``) takes its ingress class from
``LLMServingArgs.ingress_cls_config``; :mod:`serving.llm_app` names
``serving.llm_ingress:FinesiftLLMIngress``, a subclass of Ray's ``OpenAiIngress`` that

* checks ``Authorization: Bearer <FINESIFT_API_KEY>`` on every route Ray serves (Ray's
  ingress has no key of its own), with the same hash and message as finesift's backend;
* lets a request name an adapter ``NAME`` as well as ``base:NAME`` (Ray routes LoRA
  requests on ``base_model_id:lora_id`` only);
* holds adapter names to finesift's one name rule (:mod:`infra.adapters`): Ray joins the
  name onto the store's URI to fetch it, so ``base:../x`` is refused with a 400 and never
  looked up, and store folders named otherwise are not listed.

Everything else (request models, streaming, LoRA-aware routing, errors) is Ray's. Ray's
ingress module needs vLLM, so the class is built on first access
(:func:`build_ingress_class` does the work and is tested against a stand-in base class).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException, Request

from infra.adapters import valid_name
from serving.auth import check_bearer
from serving.errors import ApiError
from serving.model_names import qualified

_EXTRA_REQUEST = "finesift_request"
"""The parameter added to routes whose handler takes no Request, so the key can be read."""


def build_ingress_class(base: type, routes: Iterable[str]) -> type:
    """A subclass of Ray's ingress class ``base`` that checks the API key on ``routes``
    (method names) and qualifies bare adapter names.

    The class takes Ray's constructor arguments plus ``key_hash`` (the SHA-256 of the key,
    or None for no authentication), passed through ``ingress_extra_kwargs``.
    """

    def __init__(self: Any, *args: Any, key_hash: str | None = None, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        self._finesift_key_hash = key_hash

    def _get_response(self: Any, *, body: Any, **kwargs: Any) -> Any:
        named = getattr(body, "model", None)
        model = qualified(named, list(self._model_cards))
        if model is not None and not _valid_model(model):
            raise HTTPException(
                400,
                detail=f"model {model[:80]!r} is not a valid model name: use the base model's "
                "name or an adapter name from GET /v1/models (letters, digits, '.', '_', '-'; "
                "no path)",
            )
        if model != named:
            body = body.model_copy(update={"model": model})
        return base._get_response(self, body=body, **kwargs)

    async def model(self: Any, model_id: str) -> Any:
        # Ray's card lookup, used by /v1/models and /v1/models/{model}: an adapter whose
        # name breaks the rule is neither fetched nor listed.
        return await base.model(self, model_id) if _valid_model(model_id) else None

    namespace: dict[str, Any] = {
        "__init__": __init__,
        "_get_response": _get_response,
        "model": model,
        "__doc__": "Ray Serve LLM's OpenAI ingress with finesift's API key and adapter names.",
        "__module__": __name__,
    }
    for name in routes:
        namespace[name] = _authorized(getattr(base, name))
    cls = type("FinesiftLLMIngress", (base,), namespace)
    cls.__qualname__ = "FinesiftLLMIngress"
    return cls


def _valid_model(model: str) -> bool:
    """A base model id, or ``BASE:ADAPTER`` whose adapter follows the adapter-name rule."""
    return ":" not in model or valid_name(model.partition(":")[2])


def _authorized(handler: Any) -> Any:
    """``handler`` behind the API key, with the signature FastAPI reads from it kept
    (plus a Request parameter when it had none).

    The wrapper keeps the handler's ``__qualname__`` (``OpenAiIngress.chat``): Serve binds
    a route to its replica only when the name starts with a class of the deployment's MRO.
    """
    signature = inspect.signature(handler, eval_str=True)  # string annotations too
    request_param = next(
        (p.name for p in signature.parameters.values() if p.annotation is Request), None
    )
    parameters = list(signature.parameters.values())
    if request_param is None:
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters.append(inspect.Parameter(_EXTRA_REQUEST, keyword, annotation=Request))

    @functools.wraps(handler)
    async def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        # FastAPI (and Serve's class-based view) pass every argument by keyword.
        request = kwargs.pop(_EXTRA_REQUEST) if request_param is None else kwargs[request_param]
        try:
            check_bearer(request.headers.get("authorization"), self._finesift_key_hash)
        except ApiError as exc:
            raise HTTPException(
                exc.status, detail=exc.message, headers={"WWW-Authenticate": "Bearer"}
            ) from None
        return await handler(self, *args, **kwargs)

    guarded.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return guarded


def __getattr__(name: str) -> Any:
    """``FinesiftLLMIngress``, built from Ray's ingress when first asked for (needs vLLM)."""
    if name != "FinesiftLLMIngress":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from ray.llm._internal.serve.core.ingress.ingress import DEFAULT_ENDPOINTS, OpenAiIngress

    cls = build_ingress_class(OpenAiIngress, DEFAULT_ENDPOINTS)
    globals()[name] = cls
    return cls
