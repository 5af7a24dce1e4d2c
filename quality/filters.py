"""Optional filters: staleness (``filters.since``) and distance from a trusted reference set.

Both are pure functions returning per-row arrays; the curate job turns them into
``status=dropped`` with reason ``stale`` or ``off_distribution``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

_SINCE_FORMAT = "an ISO date like 2024-01-31 or datetime like 2024-01-31T12:00:00Z"
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_CHUNK_ROWS = 16_384


def parse_since(value: str) -> datetime:
    """Parse ``filters.since``.

    Args:
        value: An ISO date ("2024-01-31") or datetime ("2024-01-31T12:00:00Z",
            "2024-01-31 12:00:00+02:00"). Naive values are taken as UTC.

    Returns:
        A timezone-aware datetime.

    Raises:
        ValueError: The value is not an ISO date or datetime.
    """
    parsed = _parse_iso(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(f"filters.since must be {_SINCE_FORMAT}, got {value!r}")
    return parsed


def is_stale(timestamps: Sequence[str | float | int | None], since: datetime) -> np.ndarray:
    """Which rows have a timestamp older than ``since``.

    Timestamps may be ISO dates, ISO datetimes (with "Z", an offset, or naive = UTC) or epoch
    seconds (as numbers or numeric strings; an 8-digit string such as "20240131" is read as
    a compact ISO date). A row whose timestamp is None, empty or
    unparseable is NOT stale: we only drop rows we know to be old.

    Args:
        timestamps: One timestamp per row.
        since: The cut-off, as returned by :func:`parse_since` (naive means UTC).

    Returns:
        Boolean array, True where the row is stale.
    """
    cutoff = _as_utc(since)
    cache: dict[object, datetime | None] = {}  # datasets repeat dates a lot
    out = np.zeros(len(timestamps), dtype=bool)
    for i, raw in enumerate(timestamps):
        if raw not in cache:
            cache[raw] = _parse_timestamp(raw)
        parsed = cache[raw]
        out[i] = parsed is not None and parsed < cutoff
    return out


def reference_similarity(vectors: np.ndarray, reference_vectors: np.ndarray) -> np.ndarray:
    """Best cosine similarity of each row to any row of a trusted reference set.

    Args:
        vectors: (n, d) unit vectors of the rows to check.
        reference_vectors: (m, d) unit vectors of the reference set, m >= 1.

    Returns:
        float32 array of n similarities in [-1, 1]; the job drops rows below
        ``filters.reference_min_similarity`` as ``off_distribution``.

    Raises:
        ValueError: Shapes do not match or the reference set is empty.
    """
    import faiss

    vectors = np.asarray(vectors, dtype=np.float32)
    reference = np.ascontiguousarray(reference_vectors, dtype=np.float32)
    if vectors.ndim != 2 or reference.ndim != 2:
        raise ValueError("vectors and reference_vectors must be 2-D (rows, dim) arrays")
    if reference.shape[0] == 0:
        raise ValueError("the reference set is empty; point filters.reference at a non-empty file")
    if vectors.shape[1] != reference.shape[1]:
        raise ValueError(
            f"rows have dim {vectors.shape[1]} but the reference set has dim "
            f"{reference.shape[1]}; embed both with the same embed.model"
        )
    index = faiss.IndexFlatIP(reference.shape[1])
    index.add(reference)
    out = np.empty(vectors.shape[0], dtype=np.float32)
    for start in range(0, vectors.shape[0], _CHUNK_ROWS):
        chunk = np.ascontiguousarray(vectors[start : start + _CHUNK_ROWS])
        sims, _ = index.search(chunk, 1)
        out[start : start + len(chunk)] = sims[:, 0]
    return np.clip(out, -1.0, 1.0)


def _as_utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _parse_iso(text: str) -> datetime | None:
    """ISO date or datetime (Python 3.11 accepts "Z" and offsets), else None."""
    try:
        return _as_utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        return None


def _parse_timestamp(raw: object) -> datetime | None:
    """A row's timestamp as an aware UTC datetime, or None when absent or unparseable."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, datetime):
        return _as_utc(raw)
    if isinstance(raw, int | float):
        return _from_epoch(float(raw))
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    parsed = _parse_iso(text)  # first, so a compact date like "20240131" stays a date
    if parsed is None and _NUMBER_RE.match(text):
        parsed = _from_epoch(float(text))
    return parsed


def _from_epoch(seconds: float) -> datetime | None:
    """Epoch seconds to UTC; out-of-range or non-finite values are unparseable."""
    if not math.isfinite(seconds):
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
