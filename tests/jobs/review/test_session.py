"""A review session over a planted run: cards, verdicts, refills by the selection's rule."""

from __future__ import annotations

import json

import pytest

from infra.errors import InputError
from jobs.review.errors import ReviewError
from jobs.review.queue import Filters
from jobs.review.session import ReviewSession
from jobs.review.store import ReviewStore, StaleVersion, UnknownRow
from tests.jobs.review.runs import HTML_PROMPT, build_run


@pytest.fixture
def session(tmp_path) -> ReviewSession:
    return ReviewSession(build_run(tmp_path / "run"))


def reject(session: ReviewSession, row_id: str, reason: str = "wrong_answer"):
    version = session.store.item(row_id).version
    return session.verdict(row_id, verdict="reject", version=version, reviewer="ana", reason=reason)


def test_the_card_says_why_the_row_was_picked_and_what_it_displaced(session):
    card = session.card("c0-p0")
    assert card["state"] == "unreviewed" and card["version"] == 0
    assert card["original"][-1]["role"] == "assistant"
    assert card["selection"] | {"score": None} == {
        "cluster": 0,
        "rank": 1,
        "survivors": 10,
        "picks": 4,
        "score": None,
        "min_distance": 0.1,
    }
    displaced = {d["id"]: d for d in card["displaced"]}
    assert displaced["c0-dup"]["relation"] == "duplicate"
    assert displaced["c0-dup"]["reason"] == "near_duplicate"
    assert displaced["c0-conflict"]["relation"] == "conflict"
    assert displaced["c0-conflict"]["signals"]["quality"] == pytest.approx(0.7)
    assert card["extras"] == {"category": "topic0"}


def test_rows_keep_their_text_verbatim(session):
    card = session.card("c1-p0")
    assert card["original"][0]["content"] == HTML_PROMPT  # data, for the page to show as text


def test_queue_flags_the_conflict_winner_first_and_searches(session):
    rows = session.queue(Filters())["rows"]
    assert rows[0]["id"] == "c0-p0" and "conflict" in rows[0]["flags"]
    assert len(rows) == 8
    found = session.queue(Filters(search="onerror"))["rows"]
    assert [r["id"] for r in found] == ["c1-p0"]


def test_rejection_refills_with_the_next_row_not_near_the_picks(session):
    # c0-n0 is the best candidate but a near-copy of pick c0-p1: skipped by the rule.
    first = reject(session, "c0-p0")
    assert first.item.state == "rejected"
    assert first.refill.row_id == "c0-n1" and first.refill.cluster == 0
    assert first.refill.replaces == "c0-p0"
    assert "min_distance" in first.refill.note
    # With c0-p1 gone too, c0-n0 is no longer near a pick: it is next.
    second = reject(session, "c0-p1")
    assert second.refill.row_id == "c0-n0"
    progress = session.queue(Filters())["progress"]
    assert progress["in_budget"] == session.budget == 8
    assert progress["rejected"] == 2 and progress["refills"] == 2


def test_a_refill_keeps_its_exact_conversation(session):
    refill = reject(session, "c0-p0").refill
    card = session.card(refill.row_id)
    assert [m["role"] for m in card["original"]] == ["system", "user", "assistant"]
    assert card["rebuilt"] is False and card["origin"] == "refill"


def test_a_cluster_without_candidates_says_so(session):
    assert reject(session, "c1-p1").refill.row_id == "c1-n0"
    result = reject(session, "c1-p2")
    assert result.refill is None
    assert "no other survivor" in result.item.note
    assert session.queue(Filters())["progress"]["unfilled"] == 1


def test_restoring_a_pick_withdraws_its_refill(session):
    refill = reject(session, "c0-p0").refill
    session.verdict("c0-p0", verdict="accept", version=1, reviewer="bo")
    assert session.store.item(refill.row_id).state == "withdrawn"
    assert refill.row_id not in [r["id"] for r in session.queue(Filters())["rows"]]


def test_edits_keep_the_turns_and_the_original(session):
    original = session.card("c0-p2")["original"]
    edited = [dict(m) for m in original]
    edited[-1]["content"] = "A better answer."
    result = session.verdict("c0-p2", verdict="edit", version=0, reviewer="ana", messages=edited)
    assert result.item.state == "edited" and result.item.messages == edited
    card = session.card("c0-p2")
    assert card["original"] == original and card["messages"] == edited
    with pytest.raises(ReviewError, match="turns and roles"):
        session.verdict("c0-p3", verdict="edit", version=0, reviewer="a", messages=edited[:1])
    unchanged = session.card("c0-p3")["original"]
    with pytest.raises(ReviewError, match="changes nothing"):
        session.verdict("c0-p3", verdict="edit", version=0, reviewer="a", messages=unchanged)


def test_bad_verdicts_are_refused_with_the_fix(session):
    with pytest.raises(ReviewError, match="reviewer is required"):
        session.verdict("c0-p0", verdict="accept", version=0, reviewer="  ")
    with pytest.raises(ReviewError, match="reason is required"):
        session.verdict("c0-p0", verdict="reject", version=0, reviewer="ana")
    with pytest.raises(ReviewError, match="verdict must be one of"):
        session.verdict("c0-p0", verdict="maybe", version=0, reviewer="ana")
    with pytest.raises(UnknownRow):
        session.verdict("c0-n3", verdict="accept", version=0, reviewer="ana")
    session.verdict("c0-p0", verdict="accept", version=0, reviewer="ana")
    with pytest.raises(StaleVersion):
        session.verdict("c0-p0", verdict="accept", version=0, reviewer="bo")


def test_a_refill_interrupted_by_a_stop_is_made_on_restart(tmp_path):
    run = build_run(tmp_path / "run")
    first = ReviewSession(run)
    # The verdict was committed but the server stopped before the refill.
    first.store.record("c0-p0", seen_version=0, state="rejected", reviewer="ana", reason="x")
    again = ReviewSession(run)
    assert again.store.item("c0-p0").replaced_by == "c0-n1"


def test_an_old_ledger_without_messages_rebuilds_refills(tmp_path):
    session = ReviewSession(build_run(tmp_path / "run", with_messages=False))
    refill = reject(session, "c0-p0").refill
    card = session.card(refill.row_id)
    assert card["rebuilt"] is True
    assert [m["role"] for m in card["original"]] == ["user", "assistant"]
    assert session.card("c0-p1")["rebuilt"] is False  # picks come from selected.jsonl


def test_a_changed_selection_is_not_reviewed_with_old_verdicts(tmp_path):
    run = build_run(tmp_path / "run")
    ReviewSession(run)
    lines = (run / "selected.jsonl").read_text().splitlines()
    (run / "selected.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="another selection"):
        ReviewSession(run)


def test_missing_files_are_named(tmp_path):
    run = build_run(tmp_path / "run")
    (run / "summary.json").unlink()
    with pytest.raises(InputError, match="summary.json is missing"):
        ReviewSession(run)
    with pytest.raises(InputError, match="does not exist"):
        ReviewSession(tmp_path / "nowhere")


def test_selected_rows_missing_from_the_ledger_are_refused(tmp_path):
    run = build_run(tmp_path / "run")
    with (run / "selected.jsonl").open("a") as handle:
        handle.write(json.dumps({"id": "ghost", "messages": []}) + "\n")
    with pytest.raises(InputError, match="different runs"):
        ReviewSession(run)


def test_store_lives_in_the_run_directory(session):
    assert isinstance(session.store, ReviewStore)
    assert session.store.path == session.run.run_dir / "review.sqlite"


def test_warm_up_embeds_the_picks_ahead_of_a_refill(session):
    session.warm_up_in_background().join(timeout=60)
    assert set(session.run.selected_ids) <= set(session.refiller._vectors)
    assert reject(session, "c0-p0").refill.row_id == "c0-n1"  # same rule with cached vectors
