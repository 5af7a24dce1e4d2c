"""Export: verified.jsonl, the ledger's review column, the sidecar, the manifest, the report."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jobs.review.export import export_review
from jobs.review.session import ReviewSession
from jobs.review.sidecar import review_of, sidecar_path
from tests.jobs.review.runs import build_run


@pytest.fixture
def reviewed(tmp_path) -> ReviewSession:
    """c0-p0 rejected (refilled by c0-n1, then accepted), c0-p1 accepted, c0-p2 edited."""
    session = ReviewSession(build_run(tmp_path / "run"))
    refill = session.verdict(
        "c0-p0", verdict="reject", version=0, reviewer="bo", reason="wrong_answer"
    ).refill
    assert refill.row_id == "c0-n1"  # planted: carries a system turn
    session.verdict(refill.row_id, verdict="accept", version=0, reviewer="ana")
    session.verdict("c0-p1", verdict="accept", version=0, reviewer="ana")
    edited = session.card("c0-p2")["original"]
    edited[-1] = {"role": "assistant", "content": "An edited answer."}
    session.verdict("c0-p2", verdict="edit", version=0, reviewer="ana", messages=edited)
    return session


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_verified_holds_accepted_and_edited_rows_shaped_like_selected(reviewed):
    summary = export_review(reviewed, report=False)
    run_dir = reviewed.run.run_dir
    verified = read_jsonl(run_dir / "verified.jsonl")
    # Selection order, refills last.
    assert [r["id"] for r in verified] == ["c0-p1", "c0-p2", "c0-n1"]
    selected_keys = set(read_jsonl(run_dir / "selected.jsonl")[0])
    assert all(set(r) == selected_keys for r in verified)
    by_id = {r["id"]: r for r in verified}
    assert by_id["c0-p2"]["messages"][-1]["content"] == "An edited answer."
    assert "c0-p0" not in by_id  # rejected
    assert summary["rows"] == 3
    assert summary["counts"] == {"accepted": 2, "edited": 1, "rejected": 1, "unreviewed": 5}
    assert summary["reviewers"] == ["ana", "bo"]
    assert summary["rejection_reasons"] == {"wrong_answer": 1}


def test_train_reads_verified_unchanged(reviewed):
    from jobs.training.data import load_examples

    export_review(reviewed, report=False)
    examples, report = load_examples(reviewed.run.run_dir / "verified.jsonl")
    assert len(examples) == 3 and not report.skipped
    by_id = {e["id"]: e for e in examples}
    # The refill carries a system turn: it reaches training exactly as curated.
    assert by_id["c0-n1"]["prompt"][0]["role"] == "system"


def test_ledger_gains_a_review_column_and_keeps_everything_else(reviewed):
    path = reviewed.run.ledger_path
    before = pq.read_table(path)
    export_review(reviewed, report=False)
    export_review(reviewed, report=False)  # twice: the column is replaced, not duplicated
    after = pq.read_table(path)
    assert after.column_names == before.column_names + ["review"]
    assert after.drop_columns(["review"]).equals(before)
    review = {r["id"]: r["review"] for r in after.to_pylist()}
    assert review["c0-p1"]["verdict"] == "accepted" and review["c0-p1"]["reviewer"] == "ana"
    assert review["c0-p0"] | {"time": None} == {
        "verdict": "rejected",
        "reason": "wrong_answer",
        "reviewer": "bo",
        "time": None,
        "replaces": None,
    }
    assert review["c0-n1"]["verdict"] == "accepted" and review["c0-n1"]["replaces"] == "c0-p0"
    assert review["c0-p2"]["verdict"] == "edited"
    assert review["c0-p3"] == {
        "verdict": "unreviewed",
        "reason": None,
        "reviewer": None,
        "time": None,
        "replaces": None,
    }
    assert review["c0-dup"] is None and review["bad"] is None  # never up for review


def test_sidecar_vouches_only_for_the_exported_bytes(reviewed):
    from jobs.training.data import file_sha256

    export_review(reviewed, report=False)
    data = reviewed.run.run_dir / "verified.jsonl"
    assert sidecar_path(str(data)) == str(data.parent / "verified.review.json")
    record = review_of(str(data), file_sha256(data))
    assert record["reviewed"] is True and record["rows"] == 3
    with data.open("a") as handle:
        handle.write(json.dumps({"id": "x", "messages": []}) + "\n")
    assert review_of(str(data), file_sha256(data)) is None
    assert review_of(str(reviewed.run.run_dir / "selected.jsonl"), "0" * 64) is None


def test_train_manifest_records_the_review(reviewed, tmp_path):
    from jobs.training.adapters import build_meta, run_identity
    from jobs.training.data import file_sha256

    export_review(reviewed, report=False)
    data = reviewed.run.run_dir / "verified.jsonl"
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    state = {"global_step": 1, "max_steps": 1, "log_history": []}
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))

    def meta_for(path) -> dict:
        identity = run_identity("base", str(path), file_sha256(path), 3, {"r": 8})
        return build_meta(
            checkpoint,
            identity,
            name="x",
            eval_data=None,
            train_rows=3,
            eval_rows=0,
            runtime_s=1.0,
            config={},
        )

    assert meta_for(data)["review"]["counts"]["edited"] == 1
    assert meta_for(reviewed.run.run_dir / "selected.jsonl")["review"] is None


def test_report_shows_review_counts_and_reasons(reviewed):
    summary = export_review(reviewed)
    page = (reviewed.run.run_dir / "report.html").read_text(encoding="utf-8")
    assert summary["paths"]["report"].endswith("report.html")
    assert '<section id="review">' in page
    assert "wrong_answer" in page and "rejection reason" in page
