"""What a curation run produced: :class:`CurateResult`, also written as summary.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from quality import schema

OUTPUT_FILES = ("selected.jsonl", "ledger.parquet", "quarantine.jsonl", "summary.json")


@dataclass(frozen=True)
class ReasonCount:
    """Rows that ended with one status for one reason."""

    status: str
    reason: str
    rows: int


@dataclass(frozen=True)
class Coverage:
    """How well the picks cover the survivors: mean cosine distance from each survivor to
    its nearest pick (lower is better), beside a random pick of the same size."""

    selected: float
    random: float
    picks: int
    random_picks: int
    survivors: int


@dataclass(frozen=True)
class CurateResult:
    """Counts, timings and paths of one ``finesift curate`` run (summary.json)."""

    input_files: list[str]
    """The files read, in order."""
    input_rows: int
    """Every input row, whatever happened to it: the ledger's length."""
    by_status: dict[str, int]
    """Rows per final status (selected, dropped, quarantined)."""
    by_reason: list[ReasonCount]
    """Rows per (status, reason), most first."""
    coverage: Coverage | None
    """The selection's coverage figure; None when nothing survived to be selected."""
    judge: dict[str, int]
    """Rows per judge outcome (ok, unparseable, failed) when the judge ran."""
    seconds: dict[str, float]
    """Wall time per stage, and for writing the outputs."""
    rows_in: dict[str, int]
    """Rows each stage took in (still active after the stages before it)."""
    outputs: dict[str, str]
    """Output file name -> path or URI."""
    renamed_ids: int = 0
    """Rows whose input id other rows held too; each got ``id@source`` as its id (the
    ledger's ``input_id`` keeps the original)."""
    report: str | None = None
    """report.html, when written."""
    config: dict[str, Any] = field(default_factory=dict)
    """The config the run used."""

    @property
    def selected(self) -> int:
        """Rows selected."""
        return self.by_status.get(schema.SELECTED, 0)

    def path(self, name: str) -> str:
        """An output's path or URI by file name, e.g. ``path("selected.jsonl")``."""
        return self.outputs[name]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, as summary.json holds it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CurateResult:
        """Read summary.json's data back (unknown keys from newer versions are ignored)."""
        coverage = data.get("coverage") or None
        return cls(
            input_files=list(data.get("input_files", [])),
            input_rows=int(data.get("input_rows", 0)),
            by_status=dict(data.get("by_status", {})),
            by_reason=[ReasonCount(**r) for r in data.get("by_reason", [])],
            coverage=Coverage(**coverage) if coverage else None,
            judge=dict(data.get("judge", {})),
            seconds=dict(data.get("seconds", {})),
            rows_in=dict(data.get("rows_in", {})),
            outputs=dict(data.get("outputs", {})),
            renamed_ids=int(data.get("renamed_ids", 0)),
            report=data.get("report"),
            config=dict(data.get("config", {})),
        )
