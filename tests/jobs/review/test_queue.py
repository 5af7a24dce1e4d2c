"""Queue order, filters, search and progress (pure functions)."""

from __future__ import annotations

import pytest

from jobs.review.errors import ReviewError
from jobs.review.queue import Entry, Filters, facets, ordered, progress, select


def entry(row_id: str, quality: float | None, relevance: float | None = None, **kw) -> Entry:
    signals = {"quality": quality, "relevance": relevance, "ifd": None}
    signals |= kw.pop("signals", {})
    defaults = dict(position=0, cluster=0, state="unreviewed", version=0, origin="selected")
    return Entry(row_id=row_id, signals=signals, **(defaults | kw))


def test_least_confident_first():
    rows = [
        entry("high", 0.9, 0.5),
        entry("low", 0.6, 0.5),
        entry("low-margin", 0.6, -0.1),
        entry("conflict-winner", 0.95, 0.8, flags=("conflict",)),
        entry("unknown", None),
    ]
    order = [e.row_id for e in ordered(rows)]
    # A conflict winner first, then quality ascending (unknown lowest), relevance ascending.
    assert order == ["conflict-winner", "unknown", "low-margin", "low", "high"]


def test_position_and_cluster_orders():
    rows = [
        entry("b", 0.5, position=2, cluster=1),
        entry("a", 0.9, position=1, cluster=1),
        entry("c", 0.7, position=0, cluster=0),
    ]
    assert [e.row_id for e in ordered(rows, "position")] == ["c", "a", "b"]
    assert [e.row_id for e in ordered(rows, "cluster")] == ["c", "a", "b"]
    with pytest.raises(ReviewError, match="order must be one of"):
        ordered(rows, "random")


def test_filters():
    rows = [
        entry("a", 0.9, cluster=0, state="accepted", reasons=("near_duplicate",)),
        entry("b", 0.4, cluster=1, state="edited", flags=("conflict",), text="water cycle rain"),
        entry("c", 0.7, cluster=1, state="rejected", reasons=("wrong_answer",)),
        entry("w", 0.7, cluster=1, state="withdrawn"),
    ]

    def ids(**kw) -> list[str]:
        return sorted(e.row_id for e in select(rows, Filters(**kw)))

    assert ids() == ["a", "b", "c"]  # withdrawn rows are out of the queue
    assert ids(cluster=1) == ["b", "c"]
    assert ids(state="verified") == ["a", "b"]
    assert ids(state="withdrawn") == ["w"]
    assert ids(reason="wrong_answer") == ["c"]
    assert ids(flag="conflict") == ["b"]
    assert ids(signal="quality", high=0.7) == ["b", "c"]
    assert ids(signal="quality", low=0.5, high=0.8) == ["c"]
    assert ids(signal="relevance", high=1.0) == []  # the signal did not run: no match
    assert ids(search="Rain  WATER") == ["b"]
    assert ids(search="rain snow") == []
    with pytest.raises(ReviewError, match="state must be one of"):
        Filters(state="maybe")


def test_progress_counts_verified_of_the_budget():
    rows = [
        entry("a", 0.9, state="accepted"),
        entry("b", 0.9, state="edited"),
        entry("c", 0.9, state="rejected"),
        entry("d", 0.9, origin="refill"),
        entry("e", 0.9),
        entry("w", 0.9, state="withdrawn", origin="refill"),
    ]
    p = progress(rows, budget=4)
    assert (p["verified"], p["in_budget"], p["rejected"], p["unreviewed"]) == (2, 4, 1, 2)
    assert p["refills"] == 1 and p["unfilled"] == 0
    short = progress([entry("a", 0.9, state="rejected")], budget=1)
    assert short["unfilled"] == 1


def test_facets_list_what_the_queue_holds():
    rows = [
        entry("a", 0.9, cluster=2, reasons=("conflict",), flags=("conflict",)),
        entry("b", 0.5, cluster=0, signals={"ifd": 0.7}),
    ]
    f = facets(rows)
    assert f["clusters"] == [0, 2]
    assert f["reasons"] == [{"reason": "conflict", "rows": 1}]
    assert f["flags"] == [{"flag": "conflict", "rows": 1}]
    assert f["signals"] == ["quality", "ifd"]
