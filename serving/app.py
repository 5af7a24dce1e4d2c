"""The Ray Serve application: an OpenAI-compatible HTTP ingress in front of a batched generator.

Two deployments (see serving/ingress.py and serving/generator.py):

* ``OpenAIIngress`` (FastAPI, no CPU reserved) authenticates, parses and validates
  requests, resolves ``model`` against the adapters directory, applies the chat template,
  enforces the limits, and calls the generator with the adapter name as Ray Serve's
  multiplexed model id.
* ``Generator`` (the CPUs/GPUs of the config, autoscaled) holds one base model, attaches
  adapters on demand (``@serve.multiplexed``) and generates batches, one adapter each
  (serving/batcher.py).

Ray's CLI can run it too: ``serve run serving.app:build_app base_model=default
adapters_dir=adapters`` or ``serve deploy configs/serve_deploy.yaml``.

With ``backend: vllm`` the same entry points build Ray Serve LLM's app instead
(serving/llm_app.py; ``serve deploy configs/serve_vllm.yaml``).
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

from ray import serve

from infra.storage import is_uri
from serving.auth import key_hash_from
from serving.config import ServeConfig
from serving.generator import Generator
from serving.ingress import OpenAIIngress


def build_application(cfg: ServeConfig, api_key: str | None = None) -> serve.Application:
    """Bind both deployments with the resources, batching and limits of ``cfg`` (or, with
    ``backend: vllm``, build the Ray Serve LLM app of :mod:`serving.llm_app`).

    Args:
        cfg: the serve config; its base model is resolved here (converted once if needed).
        api_key: the bearer token requests must send; None reads ``FINESIFT_API_KEY``
            (unset or empty means no authentication).

    Returns:
        The Serve application, ready for ``serve.run``.
    """
    if cfg.backend == "vllm":
        from serving.llm_app import build_llm_application

        return build_llm_application(cfg, api_key=api_key)
    from infra.models import resolve_base_model

    model_dir = resolve_base_model(cfg.base_model)
    if not is_uri(cfg.adapters_dir):
        adapters_dir = str(Path(cfg.adapters_dir).expanduser().resolve())
        cfg = dataclasses.replace(cfg, adapters_dir=adapters_dir)
    s, b = cfg.scaling, cfg.batching
    generator = Generator.options(
        autoscaling_config={
            "min_replicas": s.min_replicas,
            "initial_replicas": max(1, s.min_replicas),
            "max_replicas": s.max_replicas,
            "target_ongoing_requests": s.target_ongoing_requests,
        },
        max_ongoing_requests=s.max_ongoing_requests,
        ray_actor_options={
            "num_cpus": s.num_cpus,
            "num_gpus": s.num_gpus,
            # Read by OpenMP when torch loads, so it must be in the worker's environment.
            "runtime_env": {"env_vars": {"OMP_WAIT_POLICY": s.omp_wait_policy}},
        },
    ).bind(
        model_dir,
        cfg.adapters_dir,
        cfg.dtype,
        s.num_cpus,
        s.num_gpus,
        b.max_batch_size,
        b.batch_wait_timeout_s,
        b.refill_timeout_s,
        cfg.max_adapters_per_replica,
    )
    return OpenAIIngress.options(
        num_replicas=s.ingress_replicas,
        max_ongoing_requests=s.ingress_max_ongoing_requests,
        ray_actor_options={"num_cpus": 0},
    ).bind(generator, cfg, model_dir, key_hash_from(api_key))


def build_app(args: dict[str, Any]) -> serve.Application:
    """Application builder for Ray's CLI: ``serve run serving.app:build_app key=value ...``.

    Args:
        args: ``config`` (a YAML file in configs/serve.yaml's format) and any dotted
            ServeConfig keys, e.g. ``base_model=default limits.max_tokens=256``.
    """
    from infra.config import load_config

    args = dict(args)
    path = args.pop("config", None)
    overrides = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in args.items()]
    return build_application(load_config(ServeConfig, path, overrides))
