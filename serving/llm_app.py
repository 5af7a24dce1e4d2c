"""The vLLM backend (``backend: vllm``): a Ray Serve LLM app built from a ServeConfig.

One ``LLMConfig`` (Ray 2.60's ``ray.serve.llm``) serves the resolved base model under the
config's ``base_name`` with LoRA enabled: adapters are loaded on demand from the store
``adapters_dir`` (Ray's ``dynamic_lora_loading_path``, one folder per adapter, the layout
``finesift train --push`` writes), ``max_lora_rank`` comes from the adapters' configs,
the GPU type and Serve autoscaling from the config. ``build_openai_app`` puts Ray's
OpenAI ingress in front, in finesift's variant (:mod:`serving.llm_ingress`), which adds
the ``FINESIFT_API_KEY`` check and bare adapter names.

Ray Serve LLM names adapters ``base_model_id:lora_id``, so with the default
``base_name: base`` an adapter is ``base:smol-demo`` (and, through finesift's ingress,
``smol-demo`` too). vLLM is an optional extra: ``pip install 'finesift[vllm]'``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from infra.adapters import CONFIG_FILE, MANIFEST_FILE
from infra.config import ConfigError
from serving.auth import key_hash_from
from serving.config import VLLM_LORA_RANKS, ServeConfig

VLLM_INSTALL = "pip install 'finesift[vllm]'"
"""How to get the backend: ray[llm] at the Ray pin, which pins its vLLM."""
INGRESS_CLASS = "serving.llm_ingress:FinesiftLLMIngress"
"""Ray Serve LLM's OpenAI ingress with finesift's API key and adapter names."""
DEFAULT_LORA_RANK = 16
"""max_lora_rank when the store holds no adapter yet: finesift train's default lora.r."""
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""The base model and its tokenizer load from the model directory, never from a hub."""


def require_vllm() -> None:
    """Fail at once, in one line, when the vLLM backend is asked for without vLLM.

    Raises:
        ConfigError: vLLM is not installed in this environment.
    """
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError(
            f"backend vllm needs vLLM, which is not installed here: {VLLM_INSTALL} (on the "
            "GPU nodes too; the Dockerfile's vllm target has it), or use backend finesift"
        )


def llm_config(cfg: ServeConfig, model_dir: str, max_lora_rank: int) -> dict[str, Any]:
    """The ``LLMConfig`` of ``cfg``, as the dict Ray validates it from.

    Args:
        cfg: a config with ``backend: vllm`` (``adapters_dir`` is a store URI).
        model_dir: the resolved base model directory (present on every GPU node).
        max_lora_rank: a rank vLLM supports (:func:`lora_rank`).
    """
    s, v = cfg.scaling, cfg.vllm
    engine_kwargs: dict[str, Any] = {
        "enable_lora": True,
        "max_lora_rank": max_lora_rank,
        "max_loras": cfg.max_adapters_per_replica,  # every adapter a replica holds can batch
        "dtype": cfg.dtype,
        "tensor_parallel_size": v.tensor_parallel_size,
        "gpu_memory_utilization": v.gpu_memory_utilization,
        "trust_remote_code": False,
    }
    if v.max_model_len:
        engine_kwargs["max_model_len"] = v.max_model_len
    config: dict[str, Any] = {
        "model_loading_config": {"model_id": cfg.base_name, "model_source": model_dir},
        "lora_config": {
            "dynamic_lora_loading_path": cfg.adapters_dir,
            "max_num_adapters_per_replica": cfg.max_adapters_per_replica,
        },
        "engine_kwargs": {**engine_kwargs, **v.engine_kwargs},
        "deployment_config": {
            "autoscaling_config": {
                "min_replicas": s.min_replicas,
                "initial_replicas": max(1, s.min_replicas),
                "max_replicas": s.max_replicas,
                "target_ongoing_requests": s.target_ongoing_requests,
            },
            "max_ongoing_requests": s.max_ongoing_requests,
        },
        "runtime_env": {"env_vars": dict(OFFLINE_ENV)},
    }
    if v.accelerator_type:
        config["accelerator_type"] = v.accelerator_type
    return config


def serving_args(
    cfg: ServeConfig, model_dir: str, max_lora_rank: int, key_hash: str | None
) -> dict[str, Any]:
    """The ``LLMServingArgs`` ``build_openai_app`` takes, as a dict.

    Args:
        cfg: a config with ``backend: vllm``.
        model_dir: the resolved base model directory.
        max_lora_rank: a rank vLLM supports.
        key_hash: the API key's hash the ingress checks, or None for no authentication.
    """
    return {
        "llm_configs": [llm_config(cfg, model_dir, max_lora_rank)],
        "ingress_cls_config": {
            "ingress_cls": INGRESS_CLASS,
            "ingress_extra_kwargs": {"key_hash": key_hash},
        },
    }


def adapter_rank(config: dict[str, Any], manifest: dict[str, Any] | None = None) -> int:
    """The largest LoRA rank of one adapter: its config's ``r`` and ``rank_pattern``, and
    the ``lora.r`` its finesift.json records; 0 when none says."""
    lora = ((manifest or {}).get("config") or {}).get("lora") or {}
    candidates = [config.get("r"), lora.get("r"), *(config.get("rank_pattern") or {}).values()]
    ranks = [r for r in candidates if isinstance(r, int) and not isinstance(r, bool)]
    return max(ranks, default=0)


def supported_rank(rank: int) -> int:
    """The smallest rank vLLM supports that holds ``rank``.

    Raises:
        ConfigError: ``rank`` is above vLLM's largest.
    """
    for supported in VLLM_LORA_RANKS:
        if supported >= rank:
            return supported
    raise ConfigError(
        f"LoRA rank {rank} is above vLLM's largest max_lora_rank ({VLLM_LORA_RANKS[-1]}); "
        "retrain with a smaller lora.r or serve it with backend finesift"
    )


def lora_rank(adapters_dir: str, configured: int) -> int:
    """``max_lora_rank`` for the adapters in the store: ``configured`` when set (checked
    against every adapter), else the largest adapter rank rounded up to a supported one.

    Raises:
        ConfigError: an adapter's rank exceeds ``configured`` or anything vLLM supports.
        InputError: the store cannot be read.
    """
    from infra.adapter_store import read_stored_json, stored_adapters

    ranks = {
        name: adapter_rank(
            read_stored_json(adapters_dir, name, CONFIG_FILE) or {},
            read_stored_json(adapters_dir, name, MANIFEST_FILE),
        )
        for name in stored_adapters(adapters_dir)
    }
    if not configured:
        return supported_rank(max(ranks.values(), default=0) or DEFAULT_LORA_RANK)
    too_large = {name: r for name, r in sorted(ranks.items()) if r > configured}
    if too_large:
        raise ConfigError(
            f"vllm.max_lora_rank={configured} is below the rank of adapter(s) "
            + ", ".join(f"{name} (r={r})" for name, r in too_large.items())
            + "; raise it, or set it to 0 to take the largest rank in adapters_dir"
        )
    return configured


def check_with_ray(args: dict[str, Any]) -> None:
    """Validate every LLMConfig of ``args`` with Ray's own class, so a bad value is one
    line here rather than a traceback in Serve's controller.

    Raises:
        ConfigError: Ray refuses a value (an unknown accelerator type, say).
    """
    from pydantic import ValidationError
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    for config in args["llm_configs"]:
        try:
            LLMConfig.model_validate(config)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise ConfigError(
                f"backend vllm: Ray Serve LLM refuses {where}: {error['msg']}"
            ) from None


def build_llm_application(cfg: ServeConfig, api_key: str | None = None) -> Any:
    """The Ray Serve LLM application of ``cfg`` (``backend: vllm``), ready for serve.run.

    Args:
        cfg: the serve config; its base model is resolved here (converted once if needed).
        api_key: the bearer token requests must send; None reads ``FINESIFT_API_KEY``.

    Raises:
        ConfigError: vLLM is missing, or the config or the adapters' ranks do not fit.
    """
    require_vllm()
    from infra.models import resolve_base_model

    model_dir = resolve_base_model(cfg.base_model)
    rank = lora_rank(cfg.adapters_dir, cfg.vllm.max_lora_rank)
    args = serving_args(cfg, model_dir, rank, key_hash_from(api_key))
    check_with_ray(args)
    from ray.serve.llm import build_openai_app

    return build_openai_app(args)
