"""The curation CLI's own logic: telling inputs from overrides, and demo-data output."""

from __future__ import annotations

from pathlib import Path

from jobs.curate_cli import _split_overrides


def test_uris_with_equals_signs_are_inputs_not_overrides(tmp_path: Path) -> None:
    odd = tmp_path / "day=1.jsonl"
    odd.write_text("{}\n")
    paths, overrides = _split_overrides(
        [
            "s3://bucket/date=2024-01-01/",
            "data.jsonl",
            str(odd),
            "dedup.semantic_threshold=0.9",
            "filters.reference=s3://bucket/ref.jsonl",
        ]
    )
    assert paths == ["s3://bucket/date=2024-01-01/", "data.jsonl", str(odd)]
    assert overrides == ["dedup.semantic_threshold=0.9", "filters.reference=s3://bucket/ref.jsonl"]
