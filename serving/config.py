"""The config tree of ``finesift serve``. Every field is a knob users may set in YAML."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.adapters import NAME_RULE, valid_name
from infra.config import check

BACKENDS = ("finesift", "vllm")
"""finesift: this package's engine (CPU or GPU, offline). vllm: Ray Serve LLM with vLLM."""
LORA_STORE_SCHEMES = ("s3://", "gs://", "abfss://", "azure://")
"""Where Ray Serve LLM loads adapters from (its dynamic_lora_loading_path)."""
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The max_lora_rank values vLLM accepts."""


@dataclass(frozen=True)
class LimitsConfig:
    """Per-request limits; a request over one gets a 400 or 413 JSON error, never a crash."""

    max_prompt_tokens: int = 2048
    """Longest prompt (after the chat template) in tokens; longer ones get 413."""
    max_tokens: int = 512
    """Largest ``max_tokens`` a request may ask for; more gets 400."""
    default_max_tokens: int = 128
    """``max_tokens`` of a request that does not set it (capped at max_tokens)."""
    max_request_bytes: int = 1_000_000
    """Largest request body; a larger one gets 413 as soon as the bytes read pass it (a
    Content-Length over it before anything is read), and is never parsed."""
    max_stop_sequences: int = 4
    """Most ``stop`` strings per request, as in OpenAI's API."""

    def __post_init__(self) -> None:
        check(self.max_prompt_tokens > 0, "limits.max_prompt_tokens must be positive")
        check(self.max_tokens > 0, "limits.max_tokens must be positive")
        check(self.default_max_tokens > 0, "limits.default_max_tokens must be positive")
        check(self.max_request_bytes >= 1024, "limits.max_request_bytes must be at least 1024")
        check(self.max_stop_sequences >= 0, "limits.max_stop_sequences must be >= 0")


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching of concurrent requests (serving/batcher.py), one adapter per batch;
    requests join a running batch between decoding steps (serving/decoding.py)."""

    max_batch_size: int = 8
    """Most rows decoded together; memory grows linearly, per-token latency slowly."""
    batch_wait_timeout_s: float = 0.01
    """How long a request that finds the generator idle waits for others to batch with
    (added to a lone request's latency)."""
    refill_timeout_s: float = 0.5
    """How long a generator whose batch has emptied waits for the callers it just answered
    to send their next request, so they start the next batch together. It ends early once
    they are back, so a lone caller never pays it, or after a quiet gap of a quarter of this
    with no new request (with several replicas some callers go to another one). Requests
    that arrive while a batch runs join it, so this applies only when a batch empties."""

    def __post_init__(self) -> None:
        check(self.max_batch_size >= 1, "batching.max_batch_size must be >= 1")
        check(
            0.0 <= self.batch_wait_timeout_s <= 10.0,
            "batching.batch_wait_timeout_s must be in [0, 10] seconds",
        )
        check(
            0.0 <= self.refill_timeout_s <= 10.0,
            "batching.refill_timeout_s must be in [0, 10] seconds",
        )


@dataclass(frozen=True)
class ScalingConfig:
    """Replicas of the generator deployment and what each one reserves."""

    min_replicas: int = 1
    """Replicas kept up when idle (0 would scale to zero and make the next request wait)."""
    max_replicas: int = 2
    """Most replicas the autoscaler starts; each holds a full copy of the base model."""
    target_ongoing_requests: float = 4.0
    """Ongoing requests per replica the autoscaler aims for (half a batch: on CPU a second
    replica adds more throughput than a fuller batch does)."""
    max_ongoing_requests: int = 32
    """Requests one generator replica accepts at once; more wait in the caller's queue."""
    num_cpus: float = 1.0
    """CPUs each generator replica reserves; on CPU torch uses this many threads. Decoding a
    small model gains little from a second thread (none on the 2-core bench machine), so
    cores serve more as replicas (``max_replicas``) than as threads."""
    num_gpus: float = 0.0
    """GPUs each generator replica reserves; > 0 puts the model on cuda."""
    omp_wait_policy: str = "PASSIVE"
    """OpenMP idle threads sleep (PASSIVE) or spin (ACTIVE). ACTIVE is a little faster on a
    dedicated node; on shared cores spinning threads starve each other (measured 20x slower)."""
    ingress_replicas: int = 1
    """Replicas of the light HTTP ingress (parsing, tokenizing, routing; 0 CPUs reserved)."""
    ingress_max_ongoing_requests: int = 256
    """Requests one ingress replica accepts at once (streams count until they finish)."""

    def __post_init__(self) -> None:
        check(self.min_replicas >= 0, "scaling.min_replicas must be >= 0")
        check(
            self.max_replicas >= max(1, self.min_replicas),
            "scaling.max_replicas must be >= max(1, scaling.min_replicas)",
        )
        check(self.target_ongoing_requests > 0, "scaling.target_ongoing_requests must be > 0")
        check(self.max_ongoing_requests >= 1, "scaling.max_ongoing_requests must be >= 1")
        check(self.num_cpus >= 0 and self.num_gpus >= 0, "scaling.num_cpus/num_gpus must be >= 0")
        check(
            self.omp_wait_policy in ("PASSIVE", "ACTIVE"),
            "scaling.omp_wait_policy must be PASSIVE or ACTIVE",
        )
        check(self.ingress_replicas >= 1, "scaling.ingress_replicas must be >= 1")
        check(
            self.ingress_max_ongoing_requests >= 1,
            "scaling.ingress_max_ongoing_requests must be >= 1",
        )


@dataclass(frozen=True)
class VllmConfig:
    """The vLLM backend (``backend: vllm``): Ray Serve LLM's LLMConfig, one base model with
    LoRA adapters loaded from a store. ``scaling`` gives its replicas (min, max, target and
    max ongoing requests); limits, batching and the CPU/GPU reservations apply to finesift's
    backend only (vLLM batches and schedules by itself)."""

    accelerator_type: str | None = None
    """GPU each replica needs, as Ray names it (A10G, L4, A100, H100...); null takes any GPU."""
    tensor_parallel_size: int = 1
    """GPUs per replica; the model is split across them (1 for models that fit one GPU)."""
    max_lora_rank: int = 0
    """Largest LoRA rank a replica can load (GPU memory is reserved for it); 0 = the largest
    rank of the adapters in adapters_dir when the app starts (16 if there are none), rounded
    up to a rank vLLM supports. Set it when larger adapters may be pushed later."""
    max_model_len: int = 0
    """Longest prompt + answer in tokens (KV cache per sequence); 0 = the model's context."""
    gpu_memory_utilization: float = 0.9
    """Share of each GPU vLLM takes for weights and KV cache."""
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    """Further vLLM engine arguments, passed as they are (e.g. {enable_prefix_caching: true})."""

    def __post_init__(self) -> None:
        check(
            self.accelerator_type is None or bool(self.accelerator_type),
            "vllm.accelerator_type must be a GPU type such as A10G, or null for any GPU",
        )
        check(self.tensor_parallel_size >= 1, "vllm.tensor_parallel_size must be >= 1")
        check(
            self.max_lora_rank == 0 or self.max_lora_rank in VLLM_LORA_RANKS,
            f"vllm.max_lora_rank must be 0 (from the adapters) or one of {VLLM_LORA_RANKS}",
        )
        check(self.max_model_len >= 0, "vllm.max_model_len must be >= 0 (0 = the model's)")
        check(
            0.0 < self.gpu_memory_utilization <= 1.0,
            "vllm.gpu_memory_utilization must be in (0, 1]",
        )


@dataclass(frozen=True)
class ServeConfig:
    """``finesift serve``: an OpenAI-compatible API for a base model and its LoRA adapters."""

    backend: str = "finesift"
    """finesift (this package's batching engine; CPU or GPU, offline) or vllm (Ray Serve LLM
    with vLLM on GPUs: pip install 'finesift[vllm]'; see the vllm section)."""
    base_model: str = "default"
    """'default' (bundled SmolLM2-135M-Instruct), a local model directory or a Hub id."""
    adapters_dir: str = "adapters"
    """Directory of adapters, one subdirectory each (``finesift train`` writes adapters/NAME),
    or the s3:// / gs:// URI they were pushed to (mirrored into $FINESIFT_HOME on each node;
    the vllm backend reads adapters from such a URI only)."""
    base_name: str = "base"
    """The ``model`` name that selects the base model without an adapter."""
    host: str = "127.0.0.1"
    """Address the HTTP proxy binds; 0.0.0.0 exposes the API to the network."""
    port: int = 8000
    """Port the HTTP proxy listens on."""
    app_name: str = "finesift"
    """Ray Serve application name (``serve status`` shows it)."""
    route_prefix: str = "/"
    """URL prefix of the API (no trailing slash unless '/'); the OpenAI base URL is
    http://HOST:PORT/v1 for '/', http://HOST:PORT/PREFIX/v1 otherwise."""
    dtype: str = "auto"
    """Weights dtype: auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16 or float16."""
    max_adapters_per_replica: int = 4
    """Adapters one replica keeps attached (LRU); each costs its LoRA weights in memory."""
    log_level: str = "INFO"
    """Log level of the app's replicas (and of Serve's controller and proxy when this app
    starts Serve) for ``finesift serve``, ``spot-check --serve`` and the pipeline's deploy;
    INFO logs every request (the access log), WARNING only problems. ``serve deploy`` and
    KubeRay take the ``logging_config`` of their own YAML instead."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    """Per-request limits."""
    batching: BatchingConfig = field(default_factory=BatchingConfig)
    """Dynamic batching."""
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    """Replicas and resources."""
    vllm: VllmConfig = field(default_factory=VllmConfig)
    """The vLLM backend's engine settings."""

    def __post_init__(self) -> None:
        check(self.backend in BACKENDS, f"backend must be one of {BACKENDS}")
        check(
            self.backend != "vllm" or self.adapters_dir.startswith(LORA_STORE_SCHEMES),
            f"backend vllm loads adapters through Ray Serve LLM, which reads them from "
            f"{', '.join(LORA_STORE_SCHEMES)} only: set adapters_dir to such a URI and push "
            "the adapters there (finesift train --push URI)",
        )
        check(bool(self.base_model), "base_model must not be empty; 'default' is the bundled one")
        check(bool(self.adapters_dir), "adapters_dir must not be empty")
        check(
            valid_name(self.base_name),
            f"base_name {self.base_name!r} must be {NAME_RULE} characters",
        )
        check(0 < self.port < 65536, f"port must be in 1..65535, got {self.port}")
        check(bool(self.host), "host must not be empty; 127.0.0.1 serves this machine only")
        check(
            self.route_prefix.startswith("/")
            and (self.route_prefix == "/" or not self.route_prefix.endswith("/")),
            "route_prefix must start with '/' and not end with one, e.g. / or /finesift",
        )
        dtypes = ("auto", "float32", "bfloat16", "float16")
        check(self.dtype in dtypes, f"dtype must be one of {dtypes}")
        check(self.max_adapters_per_replica >= 1, "max_adapters_per_replica must be >= 1")
        levels = ("DEBUG", "INFO", "WARNING", "ERROR")
        check(self.log_level in levels, f"log_level must be one of {levels}")
        check(
            self.scaling.max_ongoing_requests >= self.batching.max_batch_size,
            "scaling.max_ongoing_requests must be >= batching.max_batch_size, or batches "
            "never fill",
        )
