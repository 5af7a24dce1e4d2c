"""The replacement for a rejected pick: the selection's own rule, extended by one row.

A rejected pick leaves its cluster one row short. The replacement is the row the run's
selection rule would take next, given the picks that remain (accepted, edited, unreviewed
and earlier replacements; not the rejected rows), among the cluster's survivors not yet in
the queue (rows dropped as ``not_selected``). Reviewed picks are kept as they are; only
the empty slot is filled.

- ``selection.method=facility`` (the default): the candidate with the largest marginal
  coverage gain, as the greedy quality-weighted facility location would take it
  (:func:`quality.covering.facility_location`): every survivor of the cluster (rejected
  rows included: they are still data to cover) counts, each covered by the pick that
  covers it best, weighted by (score / best score) ** ``selection.quality_power``.
- ``selection.method=diverse``: rows in descending selection score (quality, plus the IFD
  bonus when ``selection.informative_weight`` is set; ties by id), the first whose cosine
  distance to every remaining pick is at least ``selection.min_distance``, or, when none
  is, the farthest (:func:`quality.selection.select_diverse`).

The ledger holds no embeddings, so vectors are recomputed with the run's own encoder
(summary.json's ``embed.model``), exactly as curation computes them
(:func:`quality.embeddings.row_vectors`), lazily: the cluster's remaining picks, then the
candidates a chunk at a time in score order until one passes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CANDIDATE_CHUNK = 8
"""Candidates embedded at a time; the first chunk almost always holds the replacement (the
best candidate is usually far enough from the picks), and a real encoder pays per row."""


@dataclass(frozen=True)
class Choice:
    """The row the rule takes next, and why."""

    index: int
    """Index into the candidates, as given (best first)."""
    distance: float
    """Cosine distance to the nearest remaining pick (inf when the cluster has none)."""
    fallback: bool
    """True when no candidate kept ``min_distance`` and the farthest one was taken."""


def nearest_distance(vectors: np.ndarray, pick_vectors: np.ndarray) -> np.ndarray:
    """Cosine distance (1 - cos) from each row to its nearest pick, in [0, 2].

    Args:
        vectors: (n, d) unit rows.
        pick_vectors: (k, d) unit rows; k may be 0 (every distance is then inf).
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(pick_vectors) == 0:
        return np.full(len(vectors), np.inf)
    similarity = vectors @ np.asarray(pick_vectors, dtype=np.float32).T
    # Clip as the selection does: rounding can make an exact duplicate slightly negative.
    return np.clip(1.0 - similarity.max(axis=1), 0.0, 2.0).astype(np.float64)


def choose_next(
    scores: Sequence[float],
    vectors_of: Callable[[list[int]], np.ndarray],
    pick_vectors: np.ndarray,
    *,
    min_distance: float,
    chunk: int = CANDIDATE_CHUNK,
) -> Choice | None:
    """The candidate the selection would pick next, given the picks that remain.

    Args:
        scores: the candidates' selection scores, already in the selection's order (score
            descending, ties by id); NaN counts as lowest, as in the selection.
        vectors_of: unit vectors of the candidates at the given indices (called lazily,
            a chunk at a time, so an expensive encoder embeds only what is needed).
        pick_vectors: (k, d) unit vectors of the cluster's remaining picks.
        min_distance: ``selection.min_distance``.
        chunk: candidates embedded per call of ``vectors_of``.

    Returns:
        The choice, or None when there is no candidate.
    """
    n = len(scores)
    if n == 0:
        return None
    distances = np.empty(n)
    for start in range(0, n, chunk):
        indices = list(range(start, min(start + chunk, n)))
        distances[start : indices[-1] + 1] = nearest_distance(vectors_of(indices), pick_vectors)
        passing = np.flatnonzero(distances[start : indices[-1] + 1] >= min_distance)
        if passing.size:
            i = start + int(passing[0])
            return Choice(index=i, distance=float(distances[i]), fallback=False)
    # Nothing keeps its distance: farthest first; ties go to the higher score, then the
    # earlier row, which is the first of the tied in this (score, id) order.
    i = int(np.flatnonzero(distances == distances.max())[0])
    return Choice(index=i, distance=float(distances[i]), fallback=True)


def choose_covering(
    scores: np.ndarray,
    vectors: np.ndarray,
    picks: np.ndarray,
    candidates: np.ndarray,
    *,
    quality_power: float,
) -> tuple[int, float] | None:
    """The candidate the greedy facility location would add next to ``picks``.

    Args:
        scores: (n,) selection scores of every survivor of the cluster (NaN counts 0).
        vectors: (n, d) unit vectors of the same rows: the points to cover.
        picks: indices of the remaining picks.
        candidates: indices of the rows that may be taken.
        quality_power: ``selection.quality_power``.

    Returns:
        (index into the rows, its marginal gain), or None without candidates. Ties go to
        the higher score, then the lower index, as in the selection.
    """
    if len(candidates) == 0:
        return None
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    top = float(scores.max()) if len(scores) else 0.0
    weight = (
        np.ones(len(scores))
        if quality_power == 0 or top <= 0
        else np.clip(scores / top, 0.0, 1.0) ** quality_power
    )
    similarity = np.clip(vectors @ vectors.T, 0.0, None)
    covered = similarity * weight[None, :]
    current = covered[:, picks].max(axis=1) if len(picks) else np.zeros(len(scores))
    gains = np.maximum(covered[:, candidates] - current[:, None], 0.0).sum(axis=0)
    order = np.lexsort((candidates, -scores[candidates], -np.round(gains, 9)))
    best = int(order[0])
    return int(candidates[best]), float(gains[best])


@dataclass(frozen=True)
class Replacement:
    """A refill: the row, and a sentence saying how it was chosen."""

    row_id: str
    note: str


class Refiller:
    """Finds replacements for rejected picks of one run, with the run's encoder.

    Args:
        run: the :class:`jobs.review.run.Run`.
        encoder: an :class:`quality.embeddings.Encoder`; None loads the run's own
            (``embed.model`` from summary.json) on the first refill.
    """

    def __init__(self, run, encoder=None) -> None:
        self.run = run
        self._encoder = encoder
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()  # one refill at a time: the encoder is not thread-safe

    def replacement(self, cluster: int, picks: list[str], taken: set[str]) -> Replacement | None:
        """The next row of ``cluster`` by the selection's rule, or None when none is left.

        Args:
            cluster: the rejected pick's cluster.
            picks: ids of the cluster's remaining picks.
            taken: ids that may not come back (every row already in the review queue).
        """
        settings = self.run.settings
        candidates = [i for i in self.run.cluster_order(cluster) if i not in taken]
        if not candidates:
            return None
        if settings.method == "facility":
            return self._covering(cluster, picks, set(candidates))
        with self._lock:
            pick_vectors = self._embed(picks)
            choice = choose_next(
                [self.run.selection_score(i) for i in candidates],
                lambda indices: self._embed([candidates[i] for i in indices]),
                pick_vectors,
                min_distance=settings.min_distance,
            )
        if choice is None:
            return None
        row_id = candidates[choice.index]
        score = self.run.selection_score(row_id)
        if not picks:
            how = "the cluster has no other pick left"
        elif choice.fallback:
            how = (
                f"no survivor keeps selection.min_distance {settings.min_distance} from the "
                f"remaining picks, so the farthest was taken ({choice.distance:.3f})"
            )
        else:
            how = (
                f"cosine distance {choice.distance:.3f} to the nearest remaining pick >= "
                f"selection.min_distance {settings.min_distance}"
            )
        note = (
            f"next best of cluster {cluster} by the selection's rule: score {score:.3f}, {how}; "
            f"{len(candidates) - 1} other candidates left"
        )
        return Replacement(row_id=row_id, note=note)

    def _covering(self, cluster: int, picks: list[str], candidates: set[str]) -> Replacement:
        """The replacement by the greedy facility location (``selection.method=facility``)."""
        rows = self.run.cluster_order(cluster)  # every survivor: the points to cover
        with self._lock:
            vectors = self._embed(rows)
        index = {row_id: i for i, row_id in enumerate(rows)}
        scores = np.array([self.run.selection_score(i) for i in rows])
        chosen = choose_covering(
            scores,
            vectors,
            np.array([index[p] for p in picks if p in index], dtype=np.int64),
            np.array([index[c] for c in rows if c in candidates], dtype=np.int64),
            quality_power=self.run.settings.quality_power,
        )
        assert chosen is not None  # candidates is not empty
        i, gain = chosen
        note = (
            f"next of cluster {cluster} by the selection's rule (quality-weighted coverage): "
            f"score {scores[i]:.3f}, coverage gain {gain:.3f} over the {len(picks)} remaining "
            f"pick(s); {len(candidates) - 1} other candidates left"
        )
        return Replacement(row_id=rows[i], note=note)

    def warm_up(self, groups: list[list[str]] = ()) -> None:
        """Load the encoder and embed rows ahead of need (the picks, a cluster at a time).

        A real model takes seconds to load and a cluster's picks seconds to embed; done
        before the first rejection, a refill only embeds a few candidates. The lock is
        released between groups, so a refill never waits for more than one.
        """
        with self._lock:
            self._get_encoder()
        for ids in groups:
            with self._lock:
                self._embed(ids)

    def _embed(self, ids: list[str]) -> np.ndarray:
        """Unit row vectors of ledger rows, as curation computes them (cached by id)."""
        from quality.embeddings import row_vectors

        missing = [i for i in dict.fromkeys(ids) if i not in self._vectors]
        if missing:
            texts = self.run.text(missing)
            rows, _, _ = row_vectors(
                self._get_encoder(),
                [texts[i]["prompt"] for i in missing],
                [texts[i]["response"] for i in missing],
            )
            self._vectors.update(zip(missing, rows, strict=True))
        if not ids:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._vectors[i] for i in ids])

    def _get_encoder(self):
        if self._encoder is None:
            from quality.embeddings import load_encoder

            s = self.run.settings
            self._encoder = load_encoder(
                s.embed_model, batch_size=s.embed_batch_size, max_length=s.embed_max_length
            )
        return self._encoder
