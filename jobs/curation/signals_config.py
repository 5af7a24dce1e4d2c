"""The config of curate's model-based signals: relevance, IFD and perplexity, the LLM
judge, and the weights that compose them into the quality score (part of ``CurateConfig``)."""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import check


@dataclass(frozen=True)
class SignalsConfig:
    """Model-based quality signals (quality/relevance.py, quality/ifd.py) and score weights."""

    relevance: bool | None = None
    """Drop rows whose response fits other instructions of the dataset better than its own
    (reason mismatched; a conflict, when the instruction also has a fitting answer). Costs
    no extra encoding: the embed stage encodes instruction and response apart anyway (the
    row vector is their normalized sum); it keeps the two part vectors as columns and
    compares them with a sample of instructions. None: on, except
    with embed.model=hashing, whose character n-grams measure shared wording rather than
    meaning."""
    relevance_method: str | None = None
    """How a mismatched row is found. 'cross': own cosine minus the mean of the top-k
    cosines to sampled instructions. 'paired': in the sample's whitened space, that plus
    the response's similarity to the answers of its k nearest instructions minus its top-k
    similarity to any sampled answer (quality/relevance.py; bench/static_relevance.py). None:
    paired with embed.model=static, whose raw cosines mostly measure shared words, cross
    otherwise. The relevance column (the ranking term) holds the cross margin either way."""
    relevance_threshold: float | None = None
    """Margin below which a row is mismatched; lower drops fewer. None: -0.2 for the cross
    margin, -0.8 for the paired one (a sum of two margins, each about 0 for a clean row)."""
    relevance_top_k: int = 10
    """Competing instructions (and nearest instructions whose answers are compared) per
    row."""
    relevance_sample: int = 2000
    """Instructions sampled from the dataset to compete with; more is slower and stricter."""
    ifd: bool = False
    """Score instruction-following difficulty and perplexity with a causal LM (two forward
    passes per row: 0.5 rows/s for the bundled 135M model on 2 loaded CPU cores)."""
    ifd_model: str = "default"
    """'default' (the bundled base model that training fine-tunes), a directory or a Hub id."""
    ifd_max_length: int = 512
    """Tokens per scored sequence; time and memory grow with it."""
    ifd_batch_size: int = 8
    """Sequences per forward pass (each row makes two)."""
    ifd_num_actors: int = 1
    """Scoring actors in the Ray Data actor pool."""
    ifd_num_gpus: float = 0.0
    """GPUs per scoring actor; 0 runs on CPU."""
    ifd_num_cpus: float = 0.0
    """CPU threads per scoring actor; 0 means all cores of a node divided by ifd_num_actors."""
    max_ifd: float = 0.0
    """Drop rows with IFD at or above this as misaligned (1.0: the instruction does not
    help); 0 drops none. Needs signals.ifd."""
    max_perplexity: float = 0.0
    """Drop rows whose response perplexity is above this as high_perplexity; 0 drops none.
    Needs signals.ifd."""
    cache: str | None = None
    """SQLite file caching model scores by content and model; None uses
    $FINESIFT_HOME/score_cache.sqlite."""
    weight_heuristics: float = 1.0
    """Weight of the rule-based score in the quality score."""
    weight_relevance: float = 4.0
    """Weight of the relevance term (when relevance runs): what decides between two fluent
    answers to one instruction (quality.ranking; calibrated on real data, BENCHMARKS.md)."""
    weight_length: float = 0.25
    """Weight of the answer-length term (log words, saturating at 250)."""
    weight_completeness: float = 0.25
    """Weight of the completeness term (the answer ends as a finished answer does)."""
    weight_surface: float = 0.5
    """Weight of the surface term (casing kept, words spelled)."""
    weight_ifd: float = 1.0
    """Weight of the alignment term (1 up to IFD 0.9, 0 at IFD >= 1; when IFD runs)."""
    weight_perplexity: float = 0.5
    """Weight of the fluency term (1 for perplexity 3-100, 0 at 1 and at 1000; when IFD runs)."""
    weight_judge: float = 1.0
    """Weight of the judge's rating (when the judge runs)."""

    def __post_init__(self) -> None:
        check(
            self.relevance_method in (None, "cross", "paired"),
            f"signals.relevance_method must be cross or paired, got {self.relevance_method!r}",
        )
        check(
            self.relevance_threshold is None or -4.0 <= self.relevance_threshold <= 2.0,
            "signals.relevance_threshold in [-4, 2]",
        )
        check(self.relevance_top_k >= 1, "signals.relevance_top_k must be at least 1")
        check(self.relevance_sample >= 1, "signals.relevance_sample must be positive")
        check(self.ifd_max_length >= 16, "signals.ifd_max_length must be at least 16")
        check(self.ifd_batch_size > 0, "signals.ifd_batch_size must be positive")
        check(self.ifd_num_actors > 0, "signals.ifd_num_actors must be positive")
        check(
            self.ifd_num_gpus >= 0 and self.ifd_num_cpus >= 0,
            "signals.ifd_num_gpus/ifd_num_cpus must be >= 0",
        )
        check(self.max_ifd >= 0 and self.max_perplexity >= 0, "signals.max_* must be >= 0")
        check(
            self.ifd or (self.max_ifd == 0 and self.max_perplexity == 0),
            "signals.max_ifd/max_perplexity drop rows only when IFD runs; set signals.ifd=true "
            "(or set them to 0)",
        )
        weights = (
            self.weight_heuristics,
            self.weight_relevance,
            self.weight_length,
            self.weight_completeness,
            self.weight_surface,
            self.weight_ifd,
            self.weight_perplexity,
            self.weight_judge,
        )
        check(min(weights) >= 0 and sum(weights) > 0, "signals.weight_* must be >= 0, not all 0")


@dataclass(frozen=True)
class JudgeConfig:
    """An LLM judge through an OpenAI-compatible endpoint (quality/judge.py)."""

    enabled: bool = False
    """Rate every row that reaches the judge 1-5; one request per row."""
    url: str = "http://127.0.0.1:8000"
    """Server URL (finesift serve, vLLM, a hosted API), with or without /v1."""
    model: str = "default"
    """Model name the server knows."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key, read on the driver and handed to the
    rating actors; unset is an error unless judge.url is localhost or 127.0.0.1."""
    concurrency: int = 8
    """Requests in flight at once."""
    retries: int = 3
    """Extra attempts after a connection error, timeout, 429 or 5xx, with backoff."""
    timeout: float = 60.0
    """Seconds per request."""
    max_tokens: int = 64
    """Answer cap; the score is on the first line."""
    usd_per_1k_input: float = 0.0
    """Price per 1,000 prompt tokens, for the estimate printed before the run (no
    estimate when both prices and max_usd are 0)."""
    usd_per_1k_output: float = 0.0
    """Price per 1,000 completion tokens."""
    max_usd: float = 0.0
    """Refuse to start when the estimate is above this; 0 means no limit."""
    min_score: float = 0.0
    """Drop rows the judge rates below this as judge_low (AlpaGasus keeps >= 4.5 of 5);
    0 drops none; needs judge.enabled. Unparseable and failed verdicts never drop a row."""

    def __post_init__(self) -> None:
        check(self.concurrency >= 1, "judge.concurrency must be at least 1")
        check(self.retries >= 0, "judge.retries must be >= 0")
        check(self.timeout > 0 and self.max_tokens > 0, "judge.timeout/max_tokens must be > 0")
        check(self.max_usd >= 0, "judge.max_usd must be >= 0")
        check(0.0 <= self.min_score <= 5.0, "judge.min_score must be in [0, 5]")
        check(
            self.enabled or self.min_score == 0,
            "judge.min_score drops rows only when the judge runs; set judge.enabled=true "
            "(or judge.min_score=0)",
        )
        check(
            self.usd_per_1k_input >= 0 and self.usd_per_1k_output >= 0,
            "judge prices must be >= 0",
        )
