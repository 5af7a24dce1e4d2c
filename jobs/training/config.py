"""The config tree of ``finesift train``. Every field is a knob users may set in YAML.

configs/train.yaml is a commented copy with the defaults, which suit the bundled
SmolLM2-135M-Instruct on 2 CPU cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.adapters import NAME_RULE, valid_name
from infra.config import check
from infra.storage import is_uri

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts")
TRACKERS = ("tensorboard", "mlflow", "wandb", "trackio")


@dataclass(frozen=True)
class LoraSettings:
    """The LoRA adapter (peft LoraConfig)."""

    r: int = 16
    """Rank of the update matrices; adapter size and optimizer memory grow linearly."""
    alpha: int = 32
    """Scaling numerator: updates are scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter's input during training."""
    target_modules: str | tuple[str, ...] = "all-linear"
    """'all-linear' (every linear layer but the output head) or a list of module names,
    e.g. [q_proj, v_proj]."""

    def __post_init__(self) -> None:
        if isinstance(self.target_modules, list):  # YAML and key=value give a list
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        check(self.r > 0, "lora.r must be a positive integer, e.g. 16")
        check(self.alpha > 0, "lora.alpha must be positive, e.g. 2 * lora.r")
        check(0.0 <= self.dropout < 1.0, "lora.dropout must be in [0, 1)")
        modules = self.target_modules
        check(
            isinstance(modules, str)
            and bool(modules)
            or isinstance(modules, tuple)
            and bool(modules)
            and all(isinstance(m, str) for m in modules),
            "lora.target_modules must be 'all-linear' or a non-empty list of module names",
        )


@dataclass(frozen=True)
class TextSettings:
    """How conversations become token sequences."""

    max_length: int = 512
    """Tokens per training sequence; activation memory and step time grow linearly."""
    too_long: str = "truncate"
    """Rows longer than max_length: 'truncate' (keep the start) or 'skip'. Both print a count."""
    packing: bool = False
    """Pack several short rows into each max_length sequence: fewer padding tokens, faster
    epochs; the row count per step then varies."""
    group_by_length: bool = False
    """Batch rows of similar length together (transformers' ``group_by_length`` sampling):
    the batch order stays random, but each batch pads far less. On 500 Dolly rows in
    batches of 4, random batches hold 1.9 times the real tokens; grouped ones 1.03."""
    train_on: str = "all"
    """Assistant turns the loss covers in a multi-turn conversation: 'all' of them, or the
    'last' one only (earlier turns are then context). System and user turns never count."""

    def __post_init__(self) -> None:
        check(self.max_length >= 16, "text.max_length must be at least 16 tokens")
        check(self.too_long in ("truncate", "skip"), "text.too_long must be truncate or skip")
        check(self.train_on in ("all", "last"), "text.train_on must be all or last")


@dataclass(frozen=True)
class OptimSettings:
    """Optimizer, schedule and batch shape."""

    learning_rate: float = 2e-4
    """Peak learning rate of AdamW (LoRA tolerates ~10x a full fine-tune's rate)."""
    lr_scheduler: str = "cosine"
    """Schedule after warmup: linear, cosine, constant, constant_with_warmup or
    cosine_with_restarts."""
    warmup_ratio: float = 0.03
    """Fraction of the steps spent warming the learning rate up from 0."""
    weight_decay: float = 0.0
    """AdamW weight decay on the adapter weights."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this norm; 0 disables clipping."""
    epochs: float = 1.0
    """Passes over the training rows; ignored when max_steps > 0."""
    max_steps: int = 0
    """Optimizer steps to run; 0 derives them from epochs."""
    batch_size: int = 4
    """Rows per worker per forward pass; memory grows linearly."""
    eval_batch_size: int = 8
    """Rows per worker per evaluation forward pass."""
    gradient_accumulation: int = 1
    """Forward passes per optimizer step: effective batch = batch_size * this * workers."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~30% slower steps."""

    def __post_init__(self) -> None:
        check(self.learning_rate > 0, "optim.learning_rate must be positive, e.g. 2e-4")
        check(self.lr_scheduler in SCHEDULERS, f"optim.lr_scheduler must be one of {SCHEDULERS}")
        check(0.0 <= self.warmup_ratio < 1.0, "optim.warmup_ratio must be in [0, 1)")
        check(
            self.weight_decay >= 0 and self.max_grad_norm >= 0,
            "optim.weight_decay and optim.max_grad_norm must be >= 0",
        )
        check(self.epochs > 0, "optim.epochs must be positive (or set optim.max_steps)")
        check(self.max_steps >= 0, "optim.max_steps must be >= 0 (0 means: use optim.epochs)")
        check(
            self.batch_size > 0 and self.eval_batch_size > 0,
            "optim.batch_size and optim.eval_batch_size must be positive",
        )
        check(self.gradient_accumulation > 0, "optim.gradient_accumulation must be positive")


@dataclass(frozen=True)
class EvalSettings:
    """Held-out evaluation during training."""

    fraction: float = 0.05
    """Without --eval-data, this fraction of the rows is held out (chosen by a seeded hash
    of each row's id, so the split is the same on every run). 0 disables evaluation."""
    max_rows: int = 200
    """At most this many rows are held out; each evaluation costs a forward pass over them."""
    every_steps: int = 50
    """Evaluate every N optimizer steps, and at the end."""
    base_loss: bool = True
    """Evaluate once before the first step: the base model's loss, for comparison."""

    def __post_init__(self) -> None:
        check(0.0 <= self.fraction < 1.0, "eval.fraction must be in [0, 1)")
        check(self.max_rows >= 1, "eval.max_rows must be at least 1")
        check(self.every_steps >= 1, "eval.every_steps must be at least 1")


@dataclass(frozen=True)
class EarlyStopSettings:
    """Stop a run whose held-out loss has turned (needs held-out rows)."""

    patience: int = 3
    """Evaluations in a row without an improvement of min_delta before the run stops; 0 never
    stops early. At eval.every_steps=50, 3 means 150 steps without progress: one noisy
    evaluation does not stop a run, a trend does."""
    min_delta: float = 0.0
    """A held-out loss must beat the best so far by more than this to count as progress;
    raise it (e.g. 0.01) to also stop on a plateau."""

    def __post_init__(self) -> None:
        check(self.patience >= 0, "early_stop.patience must be >= 0 (0 turns early stop off)")
        check(self.min_delta >= 0, "early_stop.min_delta must be >= 0")


@dataclass(frozen=True)
class CheckpointSettings:
    """Checkpoints (adapter, optimizer, scheduler, step), persisted by Ray Train."""

    every_steps: int = 50
    """Checkpoint every N optimizer steps, at the end and whenever the held-out loss reaches a
    new best; each costs a copy of the adapter and its optimizer state (~3x the adapter size)
    to storage. Every checkpoint is evaluated on the held-out rows."""
    keep: int = 2
    """Checkpoints kept in storage: those with the lowest held-out loss (the latest is kept
    too, to resume from); without held-out rows, the most recent."""
    logging_steps: int = 5
    """Print step, loss, tokens/s and time left every N steps."""

    def __post_init__(self) -> None:
        check(self.every_steps >= 1, "checkpoint.every_steps must be at least 1")
        check(self.keep >= 1, "checkpoint.keep must be at least 1")
        check(self.logging_steps >= 1, "checkpoint.logging_steps must be at least 1")


@dataclass(frozen=True)
class ScalingSettings:
    """Where and on how many workers training runs (Ray Train)."""

    num_workers: int = 0
    """Training workers (DDP ranks); 0 = one per GPU with use_gpu, else one."""
    use_gpu: bool = False
    """One GPU per worker, bf16 where the GPU supports it; else CPU in float32."""
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    """Ray resources per worker, e.g. {CPU: 8, GPU: 1}; empty = the CPUs of the biggest node
    divided among the workers (and 1 GPU each with use_gpu)."""
    storage_path: str = "runs/train"
    """Where Ray Train keeps checkpoints: a local directory (shared by all nodes on a
    cluster) or s3:// / gs:// URI. A rerun with the same --name resumes from here."""
    max_failures: int = 2
    """Failures (a lost worker, an error in training) retried from the last checkpoint before
    the run fails; -1 = forever. Out-of-memory errors do not count: they are retried with
    half the batch and twice the gradient accumulation, down to batch 1."""

    def __post_init__(self) -> None:
        check(self.num_workers >= 0, "scaling.num_workers must be >= 0 (0 = automatic)")
        check(self.max_failures >= -1, "scaling.max_failures must be >= -1")
        check(
            all(v >= 0 for v in self.resources_per_worker.values()),
            "scaling.resources_per_worker values must be >= 0",
        )
        check(bool(self.storage_path), "scaling.storage_path must not be empty")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``finesift train`` does; see configs/train.yaml for a commented copy."""

    data: str | None = None
    """Training rows: JSONL with an OpenAI-style `messages` list per line (curate's
    selected.jsonl); alpaca (instruction/output) and prompt/response rows work too. A local
    path or an s3:// / gs:// URI."""
    name: str | None = None
    """Adapter name: the output is adapters_dir/NAME and the Ray Train run is NAME."""
    eval_data: str | None = None
    """Held-out rows in the same formats; without it eval.fraction of data is held out."""
    base_model: str = "default"
    """'default' (bundled SmolLM2-135M-Instruct), a local model directory or a Hub id."""
    adapters_dir: str = "adapters"
    """Directory holding one subdirectory per trained adapter, or an s3:// / gs:// URI: the
    adapter is then assembled in a local staging folder and uploaded to URI/NAME."""
    push: str | None = None
    """Also upload the adapter (with finesift.json) to this s3:// / gs:// URI, as URI/NAME,
    where both serving backends can load it (serving adapters_dir: URI)."""
    seed: int = 0
    """Seed for the held-out split, adapter initialization and data order."""
    merge: bool = False
    """Also write adapters_dir/NAME/merged: the base model with the adapter folded in
    (a full model copy on disk, loadable without peft)."""
    tracking: str = "none"
    """Where metrics go, as transformers' report_to: none, or one or more (comma-separated) of
    tensorboard, mlflow, wandb, trackio; each needs its package (`pip install tensorboard`...).
    Rank 0 reports."""
    tracking_uri: str = "mlruns"
    """MLflow tracking URI or local directory (relative to the working directory)."""
    tracking_dir: str | None = None
    """TensorBoard event files; default scaling.storage_path/NAME/tensorboard, beside the
    checkpoints (`tensorboard --logdir runs/train` shows every run). Needed when the storage
    path is an s3:// / gs:// URI."""
    strict: bool = False
    """Refuse to train when the data audit (run on data that did not come from `finesift
    curate`) finds exact duplicates, empty or placeholder answers or conflicting answers."""
    lora: LoraSettings = field(default_factory=LoraSettings)
    text: TextSettings = field(default_factory=TextSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    early_stop: EarlyStopSettings = field(default_factory=EarlyStopSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)

    def __post_init__(self) -> None:
        check(
            self.name is None or valid_name(self.name),
            f"--name {self.name!r} must be {NAME_RULE} characters, e.g. smol-demo",
        )
        check(
            self.tracking == "none"
            or bool(self.trackers)
            and all(t in TRACKERS for t in self.trackers),
            f"tracking must be none or a comma-separated list of {', '.join(TRACKERS)}",
        )
        check(
            self.push is None or is_uri(self.push),
            f"push {self.push!r} must be a storage URI, e.g. s3://bucket/adapters",
        )
        check(bool(self.base_model), "base_model must not be empty; use 'default'")

    @property
    def trackers(self) -> tuple[str, ...]:
        """The tracking integrations asked for, in order; () for none."""
        names = [t.strip() for t in self.tracking.split(",") if t.strip()]
        return () if names == ["none"] else tuple(names)

    def require_inputs(self) -> None:
        """Check the fields a training run needs but a config file may leave unset."""
        check(self.data is not None, "no training data: pass --data selected.jsonl")
        check(self.name is not None, "no adapter name: pass --name NAME, e.g. --name smol-demo")
