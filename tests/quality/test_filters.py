"""Staleness and reference-set filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from quality.filters import is_stale, parse_since, reference_similarity


def test_parse_since_accepts_dates_and_datetimes_as_utc() -> None:
    assert parse_since("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
    assert parse_since("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert parse_since("2024-03-01T12:00:00+02:00") == datetime(2024, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["last tuesday", "2024-13-01", "", "01/03/2024"])
def test_parse_since_names_the_expected_format(bad: str) -> None:
    with pytest.raises(ValueError, match=r"filters\.since must be an ISO date like 2024-01-31"):
        parse_since(bad)


def test_is_stale_with_mixed_timestamp_formats() -> None:
    since = parse_since("2024-01-01")
    epoch_2023 = datetime(2023, 6, 1, tzinfo=UTC).timestamp()
    epoch_2025 = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    rows = [
        "2023-12-31",  # 0 stale: plain date
        "2024-01-01",  # 1 fresh: exactly the cut-off is not older
        "2023-12-31T23:59:59Z",  # 2 stale: Z suffix
        "2024-01-01T01:00:00+02:00",  # 3 stale: 23:00 UTC the day before
        "2024-01-01T00:30:00-01:00",  # 4 fresh: 01:30 UTC
        str(int(epoch_2023)),  # 5 stale: epoch seconds as a string
        epoch_2025,  # 6 fresh: epoch seconds as a number
        "20231231",  # 7 stale: compact ISO date, not epoch seconds
        "2024-06-01 08:00:00",  # 8 fresh: naive datetime is UTC
        f"{epoch_2023:.3f}",  # 9 stale: fractional epoch seconds
    ]
    expected = [True, False, True, True, False, True, False, True, False, True]
    assert is_stale(rows, since).tolist() == expected


def test_missing_or_unparseable_timestamps_are_not_stale() -> None:
    since = parse_since("2030-01-01")  # everything parseable is stale
    rows = [None, "", "   ", "yesterday", "1999-02-30", "nan", "2020-01-01"]
    assert is_stale(rows, since).tolist() == [False] * 6 + [True]


def test_is_stale_accepts_an_aware_or_naive_since() -> None:
    rows = ["2024-01-01T00:00:00Z"]
    tz_plus_3 = timezone(timedelta(hours=3))
    assert is_stale(rows, datetime(2024, 1, 1, 2, tzinfo=tz_plus_3)).tolist() == [False]
    assert is_stale(rows, datetime(2024, 1, 1, 4, tzinfo=tz_plus_3)).tolist() == [True]
    assert is_stale(rows, datetime(2024, 1, 1)).tolist() == [False]
    assert is_stale([], datetime(2024, 1, 1)).shape == (0,)


def test_reference_similarity_is_the_best_match_per_row() -> None:
    reference = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float32)
    rows = np.array(
        [
            [1, 0, 0],  # identical to reference 0
            [0.6, 0.8, 0],  # closest to reference 1
            [0, 0, 1],  # off-distribution: orthogonal to both
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(reference_similarity(rows, reference), [1.0, 0.8, 0.0], atol=1e-6)


def test_reference_similarity_in_chunks_matches_brute_force(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import quality.filters as filters

    monkeypatch.setattr(filters, "_CHUNK_ROWS", 10)
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(45, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    reference = rows[:5]
    got = reference_similarity(rows, reference)
    np.testing.assert_allclose(got, (rows @ reference.T).max(axis=1), atol=1e-5)


def test_reference_similarity_rejects_empty_reference_and_dim_mismatch() -> None:
    rows = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match="reference set is empty"):
        reference_similarity(rows, np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="same embed.model"):
        reference_similarity(rows, np.eye(4, dtype=np.float32))
