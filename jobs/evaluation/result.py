"""What ``finesift eval`` and ``finesift experiment`` produced: eval.json and
experiment.json as dataclasses that callers read by attribute."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``data`` that ``cls`` declares (files from newer versions may hold more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


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
    """Corpus chrF (0-100) of greedy answers against the references."""
    tokens: int
    rows: int
    generated: int
    seconds: float
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
        data = _known(cls, data)
        models = [ModelScore(**_known(ModelScore, m)) for m in data.pop("models", [])]
        return cls(models=models, **data)


@dataclass(frozen=True)
class ArmResult:
    """One arm of the experiment (or the base model): its training cost and its figures."""

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


@dataclass(frozen=True)
class ExperimentResult:
    """experiment.json: curated vs random vs full, trained alike, on the same held-out rows."""

    data: str
    eval_data: str
    budget: int
    schedule: str
    note: str
    verdict: str | None
    arms: list[ArmResult]
    curation: dict[str, int] | None = None
    report: str | None = None

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
        data = _known(cls, data)
        arms = [ArmResult(**_known(ArmResult, a)) for a in data.pop("arms", [])]
        return cls(arms=arms, **data)
