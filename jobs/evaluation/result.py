"""What ``finesift eval`` and ``finesift experiment`` produced: eval.json and
experiment.json as dataclasses that callers read by attribute."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

FORMAT = 2
"""The format of eval.json and experiment.json (their ``format`` key). 2: ``chrf`` is the
mean over answers of each answer's chrF, and ``corpus_chrf`` the corpus figure. 1 (files
without the key): ``chrf`` was corpus chrF."""


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` declares (files from newer versions may hold more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def is_format_1(data: dict[str, Any]) -> bool:
    """Whether eval.json's or experiment.json's content predates ``corpus_chrf``.

    Raises:
        ValueError: ``format`` is not a whole number (the file was edited or is not
            finesift's).
    """
    value = data.get("format", 1)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"format must be a whole number such as {FORMAT}, not {value!r}")
    return value < 2


def _from_format_1(data: dict[str, Any]) -> dict[str, Any]:
    """A model's, run's or arm's figures from a format 1 file: its corpus chrF (``chrf``,
    ``chrf_min``, ``chrf_max``) moves to ``corpus_chrf*``; the mean over answers is unknown."""
    moved = {f"corpus_{k}": v for k, v in data.items() if k.startswith("chrf")}
    return {k: v for k, v in data.items() if not k.startswith("chrf")} | moved | {"chrf": None}


@dataclass(frozen=True)
class ModelScore:
    """One model's figures on the held-out rows."""

    name: str
    base_model: str
    adapter: str | None
    nll: float | None
    """Mean negative log-likelihood per reference answer token (nats)."""
    perplexity: float | None
    rouge_l: float | None
    """Mean ROUGE-L F1 (0-1) of greedy answers against the references."""
    chrf: float | None
    """chrF (0-100) of each greedy answer against its reference, mean over the answers."""
    tokens: int
    rows: int
    generated: int
    seconds: float
    corpus_chrf: float | None = None
    """chrF of the character n-gram counts pooled over all answers; rises with answer
    length (see :func:`jobs.evaluation.evaluate.answer_figures`)."""
    length_ratio: float | None = None
    """Characters of the answers over characters of the references."""
    served_as: str | None = None
    """With --url: the id the server lists for this model, when it differs from ``name``."""
    note: str | None = None
    """What could not be measured and why (NLL without prompt logprobs, failed answers)."""


@dataclass(frozen=True)
class EvalResult:
    """eval.json: every model on the same held-out rows."""

    eval_data: str
    rows: int
    generated_rows: int
    models: list[ModelScore]
    config: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    """The server evaluated (--url), or None when the models ran here."""
    format: int = FORMAT

    def model(self, name: str) -> ModelScore:
        """The figures of the model called ``name``.

        Raises:
            KeyError: no model of that name was evaluated.
        """
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(f"{name} was not evaluated; models: {[m.name for m in self.models]}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        old = is_format_1(data)
        data = _known(cls, data) | {"format": FORMAT}
        models = [_from_format_1(m) if old else m for m in data.pop("models", [])]
        return cls(models=[ModelScore(**_known(ModelScore, m)) for m in models], **data)


@dataclass(frozen=True)
class SeedRun:
    """One training run of an arm (one seed): its cost and its held-out figures."""

    seed: int
    """train.seed of the run (and the random arm's draw)."""
    model: str
    """The adapter's name in eval.json and OUT/adapters (``ARM-seedN``)."""
    nll: float | None
    perplexity: float | None
    rouge_l: float | None
    chrf: float | None
    rows: int | None = None
    steps: int | None = None
    epochs: float | None = None
    tokens_seen: int | None = None
    """Training tokens, padding excluded (prompt and answer)."""
    train_seconds: float | None = None
    """Wall time of the training run, Ray Train worker start included."""
    final_eval_loss: float | None = None
    corpus_chrf: float | None = None
    length_ratio: float | None = None


@dataclass(frozen=True)
class ArmResult:
    """One arm of the experiment (or the base model): its figures and training cost.

    The figures are the mean over the arm's runs (one per seed), the cost columns the mean
    per run; ``*_min`` / ``*_max`` are the range over runs (equal with one run).
    """

    arm: str
    nll: float | None
    perplexity: float | None
    rouge_l: float | None
    chrf: float | None
    rows: int | None = None
    steps: int | None = None
    epochs: float | None = None
    tokens_seen: int | None = None
    train_seconds: float | None = None
    final_eval_loss: float | None = None
    chrf_min: float | None = None
    chrf_max: float | None = None
    rouge_l_min: float | None = None
    rouge_l_max: float | None = None
    nll_min: float | None = None
    nll_max: float | None = None
    train_seconds_total: float | None = None
    """Training wall time of all the arm's runs together."""
    corpus_chrf: float | None = None
    corpus_chrf_min: float | None = None
    corpus_chrf_max: float | None = None
    length_ratio: float | None = None
    """Characters of the answers over those of the references, mean over runs."""
    runs: list[SeedRun] = field(default_factory=list)
    """One entry per seed; empty for the base model."""

    @property
    def seeds(self) -> list[int]:
        """The seeds the arm ran with."""
        return [r.seed for r in self.runs]


@dataclass(frozen=True)
class Comparison:
    """One arm against another on chrF, with a paired bootstrap over the prompts: on the
    headline (chrF per answer, mean over answers) and on corpus chrF."""

    arm: str
    versus: str
    resamples: int
    prompts: int
    chrf: float | None = None
    """``arm``'s chrF per answer, mean over its seeds."""
    versus_chrf: float | None = None
    difference: float | None = None
    """chrf - versus_chrf (points)."""
    ahead_share: float | None = None
    """Share of paired bootstrap resamples of the held-out prompts in which ``arm``'s
    figure (mean over its seeds) is above ``versus``'s (ties count half); None when the
    bootstrap was skipped."""
    corpus_chrf: float | None = None
    versus_corpus_chrf: float | None = None
    corpus_difference: float | None = None
    corpus_ahead_share: float | None = None
    """As ``ahead_share``, on corpus chrF."""

    def sentence(self) -> str:
        """The comparison in words, as the verdict states it: each figure with its own
        verb, since the two can disagree."""
        parts = []
        if self.difference is not None:
            verb = "beats" if self.difference > 0 else "does not beat"
            parts.append(
                f"{self.arm} {verb} {self.versus} on chrF: {self.chrf:.2f} vs "
                f"{self.versus_chrf:.2f} ({self.difference:+.2f}"
                + self._share(self.ahead_share)
                + ")"
            )
        if self.corpus_difference is not None:
            where = "ahead of" if self.corpus_difference > 0 else "not ahead of"
            subject = "and is" if parts else f"{self.arm} is"
            parts.append(
                f"{subject} {where} {self.versus} on corpus chrF: {self.corpus_chrf:.2f} vs "
                f"{self.versus_corpus_chrf:.2f} ({self.corpus_difference:+.2f}"
                + self._share(self.corpus_ahead_share)
                + ")"
            )
        return ", ".join(parts)

    def _share(self, share: float | None) -> str:
        if share is None:
            return ""
        return f", ahead in {share:.0%} of {self.resamples:,} resamples of {self.prompts} prompts"

    @classmethod
    def from_dict(cls, data: dict[str, Any], format_1: bool = False) -> Comparison:
        """A comparison of experiment.json; a format 1 file compared on corpus chrF only,
        under the names the headline has now."""
        if format_1:
            old = ("chrf", "versus_chrf", "difference", "ahead_share")
            data = {k: v for k, v in data.items() if k not in old} | {
                ("versus_corpus_chrf" if k == "versus_chrf" else f"corpus_{k}"): data[k]
                for k in old
                if k in data
            }
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class ExperimentResult:
    """experiment.json: the arms trained alike, on the same held-out rows."""

    data: str
    eval_data: str
    budget: int
    schedule: str
    note: str
    verdict: str | None
    arms: list[ArmResult]
    curation: dict[str, int] | None = None
    report: str | None = None
    seeds: list[int] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    """curated against each other arm trained (random, longest, full), on chrF."""
    prompts: int | None = None
    """Held-out prompts answered (chrF and ROUGE-L are over these)."""
    format: int = FORMAT

    def arm(self, name: str) -> ArmResult:
        """The row of arm ``name`` (``base`` for the base model).

        Raises:
            KeyError: no such arm.
        """
        for a in self.arms:
            if a.arm == name:
                return a
        raise KeyError(f"no arm {name}; arms: {[a.arm for a in self.arms]}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentResult:
        """experiment.json as written; a format 1 file's verdict is restated from its
        comparisons, which were on corpus chrF, the figure its ``chrf`` named."""
        old = is_format_1(data)
        data = _known(cls, data) | {"format": FORMAT}
        arms = [_arm(_from_format_1(a) if old else a, old) for a in data.pop("arms", [])]
        comparisons = [Comparison.from_dict(c, old) for c in data.pop("comparisons", [])]
        if old and comparisons:
            data["verdict"] = "; ".join(c.sentence() for c in comparisons)
        return cls(arms=arms, comparisons=comparisons, **data)


def _arm(data: dict[str, Any], old: bool) -> ArmResult:
    data = _known(ArmResult, data)
    runs = [_from_format_1(r) if old else r for r in data.pop("runs", [])]
    return ArmResult(runs=[SeedRun(**_known(SeedRun, r)) for r in runs], **data)
