"""The config trees of ``finesift eval`` and ``finesift experiment``.

configs/eval.yaml and configs/experiment.yaml are commented copies. The experiment's tree
nests the curate, train and eval trees, so any of their knobs can be set for it
(``train.optim.epochs=2``, ``curate.dedup.semantic_threshold=0.9``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.config import check
from jobs.curation.config import CurateConfig
from jobs.training.config import TrainConfig

ARMS = ("curated", "random", "longest", "full")
"""Experiment arms: curate's selection; a random sample of the same size; the same number
of the longest answers among the rows curation kept up to selection (the "Long Is More
for Alignment" baseline, Zhao et al. 2024); every readable input row."""


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy generation for ROUGE-L and chrF against the reference answers."""

    enabled: bool = True
    """Generate answers; false computes NLL and perplexity only (a single forward pass)."""
    max_new_tokens: int = 128
    """Tokens generated per answer; generation time grows linearly (it dominates eval cost)."""
    max_rows: int = 100
    """Answers are generated for the first N evaluated rows only; 0 = every evaluated row."""

    def __post_init__(self) -> None:
        check(self.max_new_tokens >= 1, "generation.max_new_tokens must be at least 1")
        check(self.max_rows >= 0, "generation.max_rows must be >= 0 (0 = every row)")


@dataclass(frozen=True)
class InferenceSettings:
    """The Ray Data actor pool that holds the model."""

    num_actors: int = 1
    """Actors, each with its own copy of the model (one per GPU on a GPU cluster)."""
    num_gpus: float = 0.0
    """GPUs per actor; 0 runs on CPU in float32, > 0 on GPU in bfloat16 where supported."""
    num_cpus: int = 0
    """CPU threads per actor; 0 = all the cluster's CPUs divided among the actors."""
    batch_size: int = 8
    """Rows per forward pass; memory grows linearly (with the sequence length)."""
    max_length: int = 1024
    """Tokens per scored row (prompt + answer); longer rows keep their start, and answer
    tokens cut off are not scored."""

    def __post_init__(self) -> None:
        check(self.num_actors >= 1, "inference.num_actors must be at least 1")
        check(self.num_gpus >= 0, "inference.num_gpus must be >= 0 (0 = CPU)")
        check(self.num_cpus >= 0, "inference.num_cpus must be >= 0 (0 = automatic)")
        check(self.batch_size >= 1, "inference.batch_size must be at least 1")
        check(self.max_length >= 16, "inference.max_length must be at least 16 tokens")


@dataclass(frozen=True)
class ServerSettings:
    """Evaluating a running server (``--url``) instead of loading the models here."""

    url: str | None = None
    """A running OpenAI-compatible server (finesift serve, either backend): the answers
    scored by ROUGE-L and chrF come from it, and NLL too when it returns the prompt's
    logprobs (echo; vLLM does, finesift's backend does not: NLL is then reported as not
    available). models are names it serves (base, NAME or base:NAME); FINESIFT_API_KEY is
    sent when set."""
    concurrency: int = 8
    """Requests in flight at once."""
    timeout_s: float = 300.0
    """Seconds one request may take."""

    def __post_init__(self) -> None:
        check(
            self.url is None or self.url.startswith(("http://", "https://")),
            f"--url {self.url!r} must be an http:// or https:// URL, e.g. http://127.0.0.1:8000",
        )
        check(self.concurrency >= 1, "server.concurrency must be at least 1")
        check(self.timeout_s > 0, "server.timeout_s must be positive")


@dataclass(frozen=True)
class EvalConfig:
    """Everything ``finesift eval`` does; see configs/eval.yaml for a commented copy."""

    models: tuple[str, ...] = ("base",)
    """Models to compare: 'base' (the base model alone), adapter names under adapters_dir,
    or adapter directories; with --url, names the server serves (base, NAME, base:NAME)."""
    eval_data: str | None = None
    """Held-out rows (JSONL: messages, alpaca or prompt/response; a local path or an
    s3:// / gs:// URI); the last assistant turn of each row is the reference answer."""
    base_model: str = "default"
    """What 'base' means: 'default' (bundled SmolLM2-135M-Instruct), a directory or a Hub
    id. Adapters use the base model recorded in their finesift.json."""
    adapters_dir: str = "adapters"
    """Where adapter names are looked up."""
    out: str = "runs/eval"
    """Output directory for eval.json and eval_samples.jsonl."""
    max_rows: int = 200
    """Rows evaluated (the file's first N usable rows); 0 = all. NLL costs one forward pass
    per row."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    def __post_init__(self) -> None:
        check(bool(self.models), "no models to evaluate: pass --models base,NAME")
        check(
            all(isinstance(m, str) and m.strip() for m in self.models),
            "--models must be a comma-separated list of names, e.g. --models base,smol-demo",
        )
        check(len(set(self.models)) == len(self.models), "--models lists a model twice")
        check(self.max_rows >= 0, "max_rows must be >= 0 (0 = all rows)")

    def require_inputs(self) -> None:
        """Check the fields a run needs but a config file may leave unset."""
        check(self.eval_data is not None, "no eval data: pass --eval-data heldout.jsonl")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``finesift experiment`` does; see configs/experiment.yaml.

    Every arm is trained with the same ``train`` settings for the same number of epochs
    (not steps): that is how a user would train on each dataset, and it makes the curated,
    random and longest arms (same row count) cost the same steps while the full arm shows
    what training on everything costs. Each arm runs once per seed.
    """

    data: str | None = None
    """The noisy input: a file or directory curate can read."""
    eval_data: str | None = None
    """Held-out clean rows that no arm trains on (JSONL)."""
    out: str = "runs/experiment"
    """Output directory: curate's outputs, the arms' data, adapters/, eval.json,
    experiment.json, experiment.png and report.html."""
    budget: int = 500
    """Rows curate selects; the random and longest arms take as many rows as curate
    selected."""
    arms: tuple[str, ...] = ARMS
    """Which of curated, random, longest and full to train."""
    seeds: tuple[int, ...] = (0, 1)
    """One training run per seed and arm (train.seed); the random arm also draws its rows
    with it. Figures are the mean over seeds, with their min-max range."""
    full_seeds: int | None = None
    """Runs of the full arm: the first N of seeds; None = all. The full arm costs about
    input rows / budget times another arm's training, so one seed may be all it can
    afford."""
    resume: bool = False
    """Keep what an earlier run into the same ``out`` finished, each piece checked by
    content (:mod:`jobs.evaluation.resume`): the curation (same inputs and settings),
    every training run (same data and training settings) and every model's evaluation
    (same adapter files, eval settings and held-out rows). A long experiment stopped part
    way picks up where it stopped; an arm added later is the only one trained."""
    bootstrap_resamples: int = 1000
    """Paired bootstrap resamples of the held-out prompts behind the verdict (the share of
    resamples in which curated's chrF is ahead); 0 skips the bootstrap."""
    curate: CurateConfig = field(default_factory=CurateConfig)
    """Curation settings (inputs, out and selection.budget are set by the experiment)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training settings shared by every arm (data, name, eval_data, adapters_dir and
    scaling.storage_path are set per arm)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation settings (models, eval_data, adapters_dir and out are set by the
    experiment)."""

    def __post_init__(self) -> None:
        check(self.budget >= 1, "--budget must be a positive number of rows, e.g. 500")
        check(bool(self.arms), f"--arms must name at least one of {', '.join(ARMS)}")
        unknown = [a for a in self.arms if a not in ARMS]
        check(not unknown, f"unknown arm(s) {unknown}; --arms takes {','.join(ARMS)}")
        check(len(set(self.arms)) == len(self.arms), "--arms lists an arm twice")
        check(bool(self.seeds), "--seeds must name at least one seed, e.g. --seeds 0,1")
        check(len(set(self.seeds)) == len(self.seeds), "--seeds lists a seed twice")
        check(
            self.full_seeds is None or self.full_seeds >= 1,
            "full_seeds must be at least 1 (or null for every seed)",
        )
        check(self.bootstrap_resamples >= 0, "bootstrap_resamples must be >= 0 (0 = none)")

    def arm_seeds(self, arm: str) -> tuple[int, ...]:
        """The seeds ``arm`` is trained with (the full arm may run fewer)."""
        if arm == "full" and self.full_seeds is not None:
            return self.seeds[: self.full_seeds]
        return self.seeds

    def require_inputs(self) -> None:
        """Check the fields a run needs but a config file may leave unset."""
        check(self.data is not None, "no input data: pass --data noisy.jsonl")
        check(self.eval_data is not None, "no held-out data: pass --eval-data heldout.jsonl")
