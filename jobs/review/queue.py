"""The review queue: which rows a reviewer sees, in which order, and how far the review is.

Pure Python over :class:`Entry` values (no I/O), so ordering, filters, search and progress
are tested without a server.

Order ("confidence", the default): the picks a person most needs to look at come first:
rows that won a conflict (another answer to the same instruction was dropped for them),
then by quality ascending (unknown first), then by relevance margin ascending (unknown
last), then by id. "position" is the order of selected.jsonl, refills at the end;
"cluster" groups by cluster, best quality first within one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from jobs.review.errors import ReviewError
from jobs.review.run import SIGNALS

ORDERS = ("confidence", "position", "cluster")
STATE_FILTERS = ("unreviewed", "accepted", "rejected", "edited", "verified", "withdrawn")
"""``verified``: accepted or edited."""
FLAGS = ("conflict", "duplicates", "failed_rules", "judge_problem", "refill")


@dataclass(frozen=True)
class Entry:
    """One row of the queue, with what ordering, filtering and search look at."""

    row_id: str
    position: int
    cluster: int
    state: str
    version: int
    origin: str
    signals: dict[str, float | None]
    """quality, relevance, ifd, perplexity, judge_score."""
    flags: tuple[str, ...] = ()
    """From :data:`FLAGS`: why a row may deserve a closer look."""
    reasons: tuple[str, ...] = ()
    """Reason codes attached to the row: rules it failed, reasons of the rows it displaced,
    its review reason."""
    text: str = ""
    """Everything search looks in (id, source, the conversation, an edit), casefolded."""
    title: str = ""
    replaces: str | None = None
    replaced_by: str | None = None


@dataclass(frozen=True)
class Filters:
    """What the reviewer narrowed the queue to; None (or empty) means no filter."""

    cluster: int | None = None
    state: str | None = None
    reason: str | None = None
    flag: str | None = None
    signal: str | None = None
    """A signal name; with ``low``/``high``, only rows whose value lies in [low, high]."""
    low: float | None = None
    high: float | None = None
    search: str | None = None
    """Words that must all appear in the row (case-insensitive)."""

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in STATE_FILTERS:
            raise ReviewError(f"state must be one of {', '.join(STATE_FILTERS)}")
        if self.flag is not None and self.flag not in FLAGS:
            raise ReviewError(f"flag must be one of {', '.join(FLAGS)}")
        if self.signal is not None and self.signal not in SIGNALS:
            raise ReviewError(f"signal must be one of {', '.join(SIGNALS)}")

    def matches(self, entry: Entry) -> bool:
        """Whether the row passes every filter."""
        if self.state is None and entry.state == "withdrawn":
            return False  # a withdrawn refill is out of the queue unless asked for
        if self.cluster is not None and entry.cluster != self.cluster:
            return False
        if self.state is not None and not _state_matches(self.state, entry.state):
            return False
        if self.reason and self.reason not in entry.reasons:
            return False
        if self.flag and self.flag not in entry.flags:
            return False
        if self.signal and not self._signal_matches(entry.signals.get(self.signal)):
            return False
        return not self.search or all(w in entry.text for w in self.search.casefold().split())

    def _signal_matches(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False  # a signal that did not run says nothing either way
        if self.low is not None and value < self.low:
            return False
        return self.high is None or value <= self.high


def _state_matches(wanted: str, state: str) -> bool:
    return state in ("accepted", "edited") if wanted == "verified" else state == wanted


def confidence_key(entry: Entry) -> tuple:
    """Sort key: least confident first (conflict winners, low quality, low relevance)."""
    quality = _num(entry.signals.get("quality"), -math.inf)
    relevance = _num(entry.signals.get("relevance"), math.inf)
    return ("conflict" not in entry.flags, quality, relevance, entry.row_id)


def ordered(entries: Iterable[Entry], order: str = "confidence") -> list[Entry]:
    """The entries in one of :data:`ORDERS`.

    Raises:
        ReviewError: an unknown order.
    """
    if order == "confidence":
        return sorted(entries, key=confidence_key)
    if order == "position":
        return sorted(entries, key=lambda e: e.position)
    if order == "cluster":
        return sorted(
            entries,
            key=lambda e: (e.cluster, -_num(e.signals.get("quality"), -math.inf), e.row_id),
        )
    raise ReviewError(f"order must be one of {', '.join(ORDERS)}")


def select(entries: Iterable[Entry], filters: Filters, order: str = "confidence") -> list[Entry]:
    """The entries that pass ``filters``, in ``order``."""
    return ordered((e for e in entries if filters.matches(e)), order)


def progress(entries: Iterable[Entry], budget: int) -> dict[str, int]:
    """How far the review is.

    ``verified`` (accepted + edited) of ``in_budget`` (every queued row not rejected: the
    picks that would be trained on once verified); ``unfilled`` is the budget the refills
    could not make up (a cluster ran out of candidates).
    """
    counts = Counter(e.state for e in entries)
    in_budget = counts["unreviewed"] + counts["accepted"] + counts["edited"]
    return {
        "verified": counts["accepted"] + counts["edited"],
        "in_budget": in_budget,
        "budget": budget,
        "accepted": counts["accepted"],
        "edited": counts["edited"],
        "rejected": counts["rejected"],
        "unreviewed": counts["unreviewed"],
        "refills": sum(1 for e in entries if e.origin == "refill" and e.state != "withdrawn"),
        "unfilled": max(0, budget - in_budget),
    }


def facets(entries: Iterable[Entry]) -> dict[str, list]:
    """The values the filters can take on this queue: clusters, reasons, flags, signals."""
    entries = [e for e in entries if e.state != "withdrawn"]
    reasons = Counter(r for e in entries for r in e.reasons)
    flags = Counter(f for e in entries for f in e.flags)
    return {
        "clusters": sorted({e.cluster for e in entries}),
        "reasons": [{"reason": r, "rows": n} for r, n in sorted(reasons.items())],
        "flags": [{"flag": f, "rows": flags[f]} for f in FLAGS if flags[f]],
        "signals": [
            s
            for s in SIGNALS
            if any(e.signals.get(s) is not None and not math.isnan(e.signals[s]) for e in entries)
        ],
    }


def _num(value: float | None, missing: float) -> float:
    return missing if value is None or math.isnan(value) else float(value)
