"""The config tree of ``finesift curate``. Every field is a knob users may set in YAML."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from infra.config import ConfigError, check
from jobs.curation.signals_config import JudgeConfig, SignalsConfig


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class ReadConfig:
    """How inputs are read and normalized."""

    format: str | None = None
    """Force one schema (alpaca, messages, sharegpt, prompt_completion); None detects per row."""
    field_map: dict[str, str] = field(default_factory=dict)
    """Rename input fields to the schema's names, e.g. {question: instruction, answer: output}."""
    id_field: str = "id"
    """Column holding a row id; rows without it get a stable content hash."""
    timestamp_field: str = "timestamp"
    """Column holding the row's date, used by filters.since."""
    max_record_bytes: int = 200_000
    """Rows larger than this are quarantined as too_large."""
    chunk_bytes: int = 16_000_000
    """JSONL files are split into byte ranges of this size, read in parallel."""

    def __post_init__(self) -> None:
        formats = (None, "alpaca", "messages", "sharegpt", "prompt_completion")
        check(self.format in formats, f"read.format must be one of {formats[1:]} or unset")
        check(self.max_record_bytes > 0, "read.max_record_bytes must be positive")
        check(self.chunk_bytes >= 1024, "read.chunk_bytes must be at least 1024")
        for name in ("id_field", "timestamp_field"):
            value = getattr(self, name)
            check(isinstance(value, str) and value.strip() != "", f"read.{name} must be a name")
        self._check_field_map()

    def _check_field_map(self) -> None:
        """Every target a field some schema reads (a typo would quarantine every row as
        unknown_schema), and no two inputs renamed to the same field."""
        from quality.records import FIELD_NAMES

        allowed = sorted(FIELD_NAMES | {self.id_field, self.timestamp_field})
        check(
            isinstance(self.field_map, dict),
            "read.field_map must be a mapping {input_name: schema_name}, "
            "e.g. {question: instruction, answer: output}",
        )
        for source, target in self.field_map.items():
            check(
                isinstance(source, str) and source != "" and isinstance(target, str),
                f"read.field_map entry {source!r}: {target!r} must map a field name to a "
                "field name, e.g. {question: instruction}",
            )
            check(
                target in allowed,
                f"read.field_map.{source} renames it to {target!r}, which no schema reads: "
                f"use one of {', '.join(allowed)}",
            )
        targets = list(self.field_map.values())
        shared = sorted({t for t in targets if targets.count(t) > 1})
        check(
            not shared,
            f"read.field_map renames several fields to {', '.join(shared)}: keep one, since a "
            "row can hold only one value for it",
        )


@dataclass(frozen=True)
class HeuristicsConfig:
    """Rule-based quality scoring (quality/heuristics.py)."""

    min_score: float = 0.5
    """Rows scoring below this are dropped, with their worst failed rule as the reason."""
    thresholds: dict[str, float] = field(default_factory=dict)
    """Per-rule threshold overrides by rule name; see `finesift rules`."""
    weights: dict[str, float] = field(default_factory=dict)
    """Per-rule penalty overrides by rule name (0 disables a rule)."""

    def __post_init__(self) -> None:
        check(0.0 <= self.min_score <= 1.0, "heuristics.min_score must be in [0, 1]")
        from quality.heuristics import RULES

        for label, given in (("thresholds", self.thresholds), ("weights", self.weights)):
            check(
                isinstance(given, dict),
                f"heuristics.{label} must be a mapping {{rule_name: number}}",
            )
            unknown = sorted(str(name) for name in set(given) - RULES.keys())
            check(
                not unknown,
                f"heuristics.{label} names unknown rule(s) {', '.join(unknown)}: use the "
                f"names `finesift rules` lists ({', '.join(RULES)})",
            )
        for name, weight in self.weights.items():
            check(
                _is_number(weight) and 0.0 <= weight <= 1.0,
                f"heuristics.weights.{name} must be a number in [0, 1] (the penalty of "
                f"failing the rule; 0 disables it), got {weight!r}",
            )
        for name, threshold in self.thresholds.items():
            check(
                _is_number(threshold) and math.isfinite(threshold) and threshold >= 0,
                f"heuristics.thresholds.{name} must be a finite number >= 0 (default "
                f"{RULES[name].threshold:g}), got {threshold!r}",
            )


@dataclass(frozen=True)
class EmbedConfig:
    """Sentence embeddings for semantic dedup, clustering and selection."""

    model: str = "default"
    """'default' (bundled all-MiniLM-L6-v2), 'static' (it distilled once into a model2vec
    static model: no torch, no GPU, tens of times faster on CPU), 'hashing' (fast, no
    model), a Hub id or a directory (a model2vec directory loads as a static model)."""
    batch_size: int = 128
    """Rows per encoder call; memory grows linearly."""
    num_actors: int = 0
    """Embedding actors in the Ray Data actor pool; 0 sizes it to the cluster: one actor
    per GPU with num_gpus, else one per ``num_cpus`` CPUs (one torch thread each by
    default: on CPU, actors side by side embed faster than threads in one actor)."""
    num_gpus: float = 0.0
    """GPUs per embedding actor; 0 runs on CPU. A static model never reserves one."""
    num_cpus: float = 0.0
    """CPUs (torch threads) per embedding actor; 0 means 1 when num_actors is 0, else all
    cores of a node divided by num_actors."""
    max_length: int = 256
    """Tokens per text the encoder sees; longer texts are truncated."""

    def __post_init__(self) -> None:
        check(self.batch_size > 0, "embed.batch_size must be positive")
        check(self.num_actors >= 0, "embed.num_actors must be >= 0 (0 sizes the pool)")
        check(self.num_gpus >= 0 and self.num_cpus >= 0, "embed.num_gpus/num_cpus must be >= 0")


SEMANTIC_THRESHOLD = 0.95
STATIC_SEMANTIC_THRESHOLD = 0.97
"""Planted duplicates at 0.95 with the static model: precision 0.963 (MiniLM 0.995); at
0.97: 0.998 / 0.993, and the semantic drops MiniLM makes at 0.95 on toolformer and Dolly
(BENCHMARKS.md, static embedder)."""


@dataclass(frozen=True)
class DedupConfig:
    """Exact, fuzzy (MinHash LSH) and semantic (SemDeDup) duplicate removal."""

    exact: bool = True
    """Drop rows equal after normalizing case, whitespace and punctuation."""
    fuzzy: bool = True
    """Drop near-duplicates by MinHash LSH over word shingles."""
    fuzzy_threshold: float = 0.7
    """Estimated Jaccard similarity above which two rows are near-duplicates."""
    num_perm: int = 128
    """MinHash permutations; cost grows linearly, estimates get tighter."""
    shingle_size: int = 3
    """Words per shingle."""
    semantic: bool = True
    """Drop semantic duplicates by embedding cosine similarity within k-means clusters."""
    semantic_threshold: float | None = None
    """Cosine similarity above which two rows are semantic duplicates; None: 0.95, or 0.97
    with embed.model=static, whose cosines run higher (the same duplicates found)."""

    def __post_init__(self) -> None:
        check(0.0 < self.fuzzy_threshold <= 1.0, "dedup.fuzzy_threshold must be in (0, 1]")
        check(
            self.semantic_threshold is None or 0.0 < self.semantic_threshold <= 1.0,
            "dedup.semantic_threshold must be in (0, 1]",
        )
        check(self.num_perm >= 16, "dedup.num_perm must be at least 16")
        check(self.shingle_size >= 1, "dedup.shingle_size must be at least 1")


@dataclass(frozen=True)
class ConflictConfig:
    """Same instruction, different answers."""

    enabled: bool = True
    """Look for conflicting answers."""
    agree_threshold: float = 0.6
    """Answers whose word-shingle Jaccard similarity is at least this agree (near-duplicates);
    below it they conflict."""
    indistinguishable_tolerance: float = 0.01
    """A conflict whose answers' quality scores are within this is decided by the tie-break
    (the smaller id), and its detail says "indistinguishable ... check by hand"."""

    def __post_init__(self) -> None:
        check(0.0 < self.agree_threshold <= 1.0, "conflicts.agree_threshold must be in (0, 1]")
        check(
            0.0 <= self.indistinguishable_tolerance < 1.0,
            "conflicts.indistinguishable_tolerance must be in [0, 1)",
        )


@dataclass(frozen=True)
class ClusterConfig:
    """k-means over embeddings: the unit of per-cluster work and of diversity."""

    rows_per_cluster: int = 400
    """k is the number of embedded rows divided by this; pairwise work grows with its square."""
    max_clusters: int = 4096
    """Upper bound on k."""
    sample_size: int = 50_000
    """k-means trains on a sample of at most this many rows."""
    iterations: int = 20
    """k-means iterations."""

    def __post_init__(self) -> None:
        check(self.rows_per_cluster >= 2, "clusters.rows_per_cluster must be at least 2")
        check(self.sample_size >= 1, "clusters.sample_size must be positive")


@dataclass(frozen=True)
class FilterConfig:
    """Optional filters: staleness, distance from a trusted reference set, evaluation sets."""

    since: str | None = None
    """ISO date; rows with an older timestamp are dropped as stale. Rows without one are kept."""
    reference: str | None = None
    """A small trusted dataset (any supported format); rows far from it are off_distribution."""
    reference_min_similarity: float = 0.3
    """Rows whose best cosine similarity to the reference set is below this are dropped."""
    decontaminate: tuple[str, ...] = ()
    """Evaluation sets (FILE[,FILE]): rows that duplicate one of their rows (the same text or
    instruction, or near/semantic duplicates at the dedup thresholds) are dropped as
    contaminated, so held-out scores measure generalization, not memory."""

    def __post_init__(self) -> None:
        if isinstance(self.decontaminate, str):  # filters.decontaminate=a.jsonl,b.jsonl
            files = tuple(f.strip() for f in self.decontaminate.split(",") if f.strip())
            object.__setattr__(self, "decontaminate", files)
        check(
            all(isinstance(f, str) and f for f in self.decontaminate),
            "filters.decontaminate must be evaluation file paths, e.g. heldout.jsonl,test.jsonl",
        )
        if self.since is not None:
            from quality.filters import parse_since

            try:
                parse_since(str(self.since))
            except ValueError as exc:
                raise ConfigError(str(exc)) from exc
        check(
            -1.0 <= self.reference_min_similarity <= 1.0,
            "filters.reference_min_similarity must be in [-1, 1]",
        )


@dataclass(frozen=True)
class SelectConfig:
    """Diverse, high-quality selection under a budget."""

    budget: int = 500
    """Rows to select."""
    method: str = "facility"
    """'facility': greedy quality-weighted facility location, which picks the rows that best
    cover the survivors (mean distance to the nearest pick), preferring better rows;
    'diverse': the DEITA-style threshold (picks by quality, each at least min_distance from
    earlier picks)."""
    quota: str = "gain"
    """How the budget is split across clusters: 'gain' (to the largest coverage gains: the
    greedy over the whole dataset), 'sqrt' (by the square root of cluster size) or
    'proportional' (by size)."""
    quality_power: float = 1.5
    """facility: a pick covers its neighbours in proportion to (quality / best) ** this;
    0 ignores quality (coverage alone), higher favours quality over coverage."""
    min_distance: float = 0.1
    """diverse: a pick's cosine distance to every earlier pick of its cluster."""
    informative_weight: float = 0.0
    """Prefer informative rows: picks are ordered by quality + this x IFD for rows with
    IFD below 1 (harder but still aligned). Needs signals.ifd; 0 orders by quality only."""

    def __post_init__(self) -> None:
        check(self.budget > 0, "selection.budget must be positive (--budget N)")
        check(0.0 <= self.min_distance < 2.0, "selection.min_distance must be in [0, 2)")
        check(
            self.method in ("facility", "diverse"), "selection.method must be facility or diverse"
        )
        check(
            self.quota in ("gain", "sqrt", "proportional"),
            "selection.quota must be gain, sqrt or proportional",
        )
        check(
            self.quota != "gain" or self.method == "facility",
            "selection.quota=gain needs selection.method=facility (gains are coverage gains); "
            "use quota=sqrt with method=diverse",
        )
        check(self.quality_power >= 0, "selection.quality_power must be >= 0")
        check(self.informative_weight >= 0, "selection.informative_weight must be >= 0")


@dataclass(frozen=True)
class CurateConfig:
    """Everything ``finesift curate`` does; see configs/curate.yaml for a commented copy."""

    inputs: tuple[str, ...] = ()
    """Files or directories to read."""
    out: str = "runs/curate"
    """Output directory (created)."""
    seed: int = 0
    """Seed for sampling, k-means and the random baseline."""
    read: ReadConfig = field(default_factory=ReadConfig)
    heuristics: HeuristicsConfig = field(default_factory=HeuristicsConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    conflicts: ConflictConfig = field(default_factory=ConflictConfig)
    clusters: ClusterConfig = field(default_factory=ClusterConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    selection: SelectConfig = field(default_factory=SelectConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    report: bool = True
    """Write report.html next to the outputs."""

    @property
    def semantic_threshold(self) -> float:
        """dedup.semantic_threshold, where None means the encoder's default."""
        if self.dedup.semantic_threshold is not None:
            return self.dedup.semantic_threshold
        return STATIC_SEMANTIC_THRESHOLD if self.embed.model == "static" else SEMANTIC_THRESHOLD

    @property
    def relevance_method(self) -> str:
        """signals.relevance_method, where None means paired for the static encoder."""
        if self.signals.relevance_method is None:
            return "paired" if self.embed.model == "static" else "cross"
        return self.signals.relevance_method

    @property
    def relevance_threshold(self) -> float:
        """signals.relevance_threshold, where None means the method's default."""
        from quality.relevance import DEFAULT_THRESHOLD, PAIRED_THRESHOLD

        if self.signals.relevance_threshold is not None:
            return self.signals.relevance_threshold
        return PAIRED_THRESHOLD if self.relevance_method == "paired" else DEFAULT_THRESHOLD

    @property
    def relevance_runs(self) -> bool:
        """signals.relevance, where None means on unless the encoder is the hashing one."""
        if self.signals.relevance is None:
            return self.embed.model != "hashing"
        return bool(self.signals.relevance)

    def __post_init__(self) -> None:
        s = self.signals
        check(
            s.ifd or self.selection.informative_weight == 0,
            "selection.informative_weight ranks picks by IFD, which only runs with "
            "signals.ifd; set signals.ifd=true (or selection.informative_weight=0)",
        )
        check(
            s.weight_heuristics > 0
            or s.weight_length > 0
            or s.weight_completeness > 0
            or s.weight_surface > 0
            or (s.weight_relevance > 0 and self.relevance_runs)
            or (s.ifd and (s.weight_ifd > 0 or s.weight_perplexity > 0))
            or (s.weight_judge > 0 and self.judge.enabled),
            "no signal with a positive weight runs, so the quality score would be empty: "
            "set signals.weight_heuristics > 0, or turn on a weighted signal "
            "(signals.relevance=true for signals.weight_relevance, signals.ifd=true for "
            "signals.weight_ifd/weight_perplexity, judge.enabled=true for signals.weight_judge)",
        )
