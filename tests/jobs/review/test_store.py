"""The verdict store: versions, optimistic concurrency, history, durability, refills."""

from __future__ import annotations

import threading

import pytest

from infra.errors import InputError
from jobs.review.store import ReviewStore, StaleVersion, UnknownRow

PICKS = [("a", 0), ("b", 0), ("c", 1)]


def open_store(tmp_path, fingerprint: str = "sel-1") -> ReviewStore:
    return ReviewStore(tmp_path / "review.sqlite", fingerprint=fingerprint, picks=PICKS)


def test_seeds_the_queue_once_in_selection_order(tmp_path):
    store = open_store(tmp_path)
    store.record("a", seen_version=0, state="accepted", reviewer="ana")
    again = open_store(tmp_path)  # reopening does not reseed or reset
    assert [i.row_id for i in again.items()] == ["a", "b", "c"]
    assert again.item("a").state == "accepted" and again.item("a").version == 1
    assert {i.origin for i in again.items()} == {"selected"}


def test_a_verdict_on_an_old_version_is_refused_with_the_current_row(tmp_path):
    store = open_store(tmp_path)
    store.record("a", seen_version=0, state="accepted", reviewer="ana")
    with pytest.raises(StaleVersion) as err:
        store.record("a", seen_version=0, state="rejected", reviewer="bo", reason="wrong_answer")
    current = err.value.current
    assert (current.state, current.version, current.reviewer) == ("accepted", 1, "ana")
    assert store.item("a").state == "accepted"  # nothing was overwritten


def test_concurrent_verdicts_on_one_version_one_wins(tmp_path):
    store = open_store(tmp_path)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def decide(name: str) -> None:
        barrier.wait()
        try:
            store.record("b", seen_version=0, state="accepted", reviewer=name)
            outcomes.append("ok")
        except StaleVersion as exc:
            outcomes.append(f"stale:{exc.current.version}")

    threads = [threading.Thread(target=decide, args=(f"r{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["stale:1"] * 5
    assert len(store.history("b")) == 1


def test_edits_are_new_versions_and_history_keeps_every_verdict(tmp_path):
    store = open_store(tmp_path)
    first = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A1"}]
    second = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A2"}]
    store.record("c", seen_version=0, state="edited", reviewer="ana", messages=first)
    store.record("c", seen_version=1, state="edited", reviewer="bo", messages=second)
    item = store.item("c")
    assert item.version == 2 and item.messages == second
    history = store.history("c")
    assert [h["messages"] for h in history] == [first, second]
    assert [h["reviewer"] for h in history] == ["ana", "bo"]
    assert all(h["time"].endswith("Z") for h in history)


def test_another_selection_is_refused(tmp_path):
    open_store(tmp_path)
    with pytest.raises(InputError, match="another selection"):
        open_store(tmp_path, fingerprint="sel-2")


def test_a_foreign_file_is_refused(tmp_path):
    (tmp_path / "review.sqlite").write_text("not a database at all" * 100)
    with pytest.raises(InputError, match="not a review store"):
        open_store(tmp_path)


def test_unknown_row(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(UnknownRow):
        store.record("zz", seen_version=0, state="accepted", reviewer="ana")


def test_refill_joins_the_queue_once(tmp_path):
    store = open_store(tmp_path)
    assert store.add_refill("a", "x", 0, "note") is None  # "a" is not rejected
    store.record("a", seen_version=0, state="rejected", reviewer="ana", reason="wrong_answer")
    refill = store.add_refill("a", "x", 0, "next best")
    assert (refill.row_id, refill.origin, refill.replaces, refill.position) == (
        "x",
        "refill",
        "a",
        3,
    )
    assert store.item("a").replaced_by == "x"
    assert store.add_refill("a", "y", 0, "late") is None  # a second request lost the race
    assert [i.row_id for i in store.items()] == ["a", "b", "c", "x"]


def test_restoring_a_rejected_pick_withdraws_its_unreviewed_refill(tmp_path):
    store = open_store(tmp_path)
    store.record("a", seen_version=0, state="rejected", reviewer="ana", reason="wrong_answer")
    store.add_refill("a", "x", 0, "next best")
    store.record("a", seen_version=1, state="accepted", reviewer="bo")
    assert store.item("x").state == "withdrawn"
    assert store.item("a").replaced_by is None
    # Rejected again: the withdrawn row may come back as the refill, as a new version.
    store.record("a", seen_version=2, state="rejected", reviewer="bo", reason="unsafe")
    back = store.add_refill("a", "x", 0, "next best again")
    assert back.state == "unreviewed" and back.version == 2 and back.replaces == "a"


def test_a_reviewed_refill_stays_when_its_pick_is_restored(tmp_path):
    store = open_store(tmp_path)
    store.record("a", seen_version=0, state="rejected", reviewer="ana", reason="wrong_answer")
    store.add_refill("a", "x", 0, "next best")
    store.record("x", seen_version=0, state="accepted", reviewer="ana")
    store.record("a", seen_version=1, state="accepted", reviewer="bo")
    assert store.item("x").state == "accepted"
