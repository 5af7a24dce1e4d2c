"""Decontamination: training rows that duplicate a row of an evaluation set.

An evaluation row leaks into training when a training row is the same text (exact: equal
after normalization, or the same instruction), a near-duplicate (MinHash Jaccard at the
dedup threshold) or a semantic duplicate (embedding cosine at the dedup threshold). The
evaluation sets are small, so they are indexed once (:func:`build_index`) and every
training row is looked up against the index (:func:`find_contaminated`): exact keys in a
dict, MinHash signatures through LSH bands, vectors by one matrix product per block.

Pure numpy; no Ray, no model (vectors come from the caller's encoder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from quality.dedup import band_values, estimated_jaccard, lsh_bands, minhash_signatures
from quality.text import exact_key, instruction_key

# Similarities held at once when comparing a block of rows with the evaluation vectors.
_SIMILARITIES_PER_BLOCK = 4_000_000
_COSINE_TOLERANCE = 1e-6  # float32 dot products of equal unit vectors can land under 1.0


@dataclass(frozen=True)
class Match:
    """The evaluation row a training row duplicates, and how."""

    eval_row: str
    """The evaluation row's label (see :func:`build_index`)."""
    kind: str
    """'exact' (same text), 'instruction' (same instruction), 'fuzzy' or 'semantic'."""
    similarity: float
    """1.0 for exact kinds; the estimated Jaccard or the cosine otherwise."""

    def describe(self, fuzzy_threshold: float, semantic_threshold: float) -> str:
        """The ledger's ``detail`` for a row dropped for this match."""
        if self.kind == "exact":
            return f"same text as evaluation row {self.eval_row}"
        if self.kind == "instruction":
            return f"same instruction as evaluation row {self.eval_row}"
        if self.kind == "fuzzy":
            return (
                f"MinHash Jaccard {self.similarity:.2f} >= dedup.fuzzy_threshold "
                f"{fuzzy_threshold} with evaluation row {self.eval_row}"
            )
        return (
            f"cosine similarity {self.similarity:.3f} >= dedup.semantic_threshold "
            f"{semantic_threshold} with evaluation row {self.eval_row}"
        )


@dataclass(frozen=True)
class EvalIndex:
    """The evaluation rows, indexed for lookups."""

    labels: list[str]
    exact: dict[str, int]
    instructions: dict[str, int]
    signatures: np.ndarray | None = None
    """MinHash signatures (n, num_perm), or None when fuzzy matching is off."""
    band_tables: list[dict[bytes, list[int]]] = field(default_factory=list)
    bands: tuple[int, int] = (0, 0)
    """(bands, rows per band) of the LSH that finds fuzzy candidates."""
    num_perm: int = 128
    shingle_size: int = 3
    vectors: np.ndarray | None = None
    """Unit row vectors (n, d), or None when semantic matching is off."""

    def __len__(self) -> int:
        return len(self.labels)


def build_index(
    labels: Sequence[str],
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    vectors: np.ndarray | None = None,
    fuzzy_threshold: float | None = None,
    num_perm: int = 128,
    shingle_size: int = 3,
) -> EvalIndex:
    """Index evaluation rows for :func:`find_contaminated`.

    Args:
        labels: how each evaluation row is named in a match (e.g. ``heldout.jsonl#42``).
        prompts: the rows' prompts (every turn before the final answer).
        responses: the rows' final answers.
        vectors: the rows' embeddings from the same encoder as the training rows', or
            None to skip semantic matching.
        fuzzy_threshold: the MinHash Jaccard threshold, or None to skip fuzzy matching.
        num_perm: MinHash permutations (as dedup uses them).
        shingle_size: words per shingle (as dedup uses them).

    Returns:
        The index; the first of several equal evaluation rows names the matches.
    """
    if not len(labels) == len(prompts) == len(responses):
        raise ValueError("labels, prompts and responses must have the same length")
    exact: dict[str, int] = {}
    instructions: dict[str, int] = {}
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        exact.setdefault(exact_key(prompt, response), i)
        instructions.setdefault(instruction_key(prompt), i)
    signatures, tables, bands = None, [], (0, 0)
    if fuzzy_threshold is not None and len(labels):
        texts = [f"{p}\n{r}" for p, r in zip(prompts, responses, strict=True)]
        signatures = minhash_signatures(texts, num_perm=num_perm, shingle_size=shingle_size)
        bands = lsh_bands(fuzzy_threshold, num_perm)
        for values in band_values(signatures, *bands):
            table: dict[bytes, list[int]] = {}
            for i, value in enumerate(values):
                table.setdefault(value.tobytes(), []).append(i)
            tables.append(table)
    unit = None
    if vectors is not None:
        unit = np.asarray(vectors, dtype=np.float32)
        if unit.shape[0] != len(labels):
            raise ValueError(f"got {unit.shape[0]} vectors for {len(labels)} evaluation rows")
        norms = np.linalg.norm(unit, axis=1, keepdims=True)
        unit = unit / np.where(norms > 0, norms, 1.0)
    return EvalIndex(
        labels=list(labels),
        exact=exact,
        instructions=instructions,
        signatures=signatures,
        band_tables=tables,
        bands=bands,
        num_perm=num_perm,
        shingle_size=shingle_size,
        vectors=unit,
    )


def find_contaminated(
    index: EvalIndex,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    vectors: np.ndarray | None = None,
    fuzzy_threshold: float | None = None,
    semantic_threshold: float | None = None,
) -> list[Match | None]:
    """For each training row, the evaluation row it duplicates, or None.

    Checks run cheapest first and the first hit wins: the same text, the same
    instruction, a near-duplicate (estimated Jaccard >= ``fuzzy_threshold`` among LSH
    candidates), a semantic duplicate (cosine >= ``semantic_threshold``).

    Args:
        index: from :func:`build_index`.
        prompts: the training rows' prompts.
        responses: the training rows' final answers.
        vectors: the training rows' embeddings, for semantic matching.
        fuzzy_threshold: None skips fuzzy matching (also skipped without signatures).
        semantic_threshold: None skips semantic matching (also skipped without vectors).

    Returns:
        One entry per training row.
    """
    n = len(prompts)
    found: list[Match | None] = [None] * n
    if not len(index):
        return found
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        hit = index.exact.get(exact_key(prompt, response))
        if hit is not None:
            found[i] = Match(index.labels[hit], "exact", 1.0)
            continue
        hit = index.instructions.get(instruction_key(prompt))
        if hit is not None:
            found[i] = Match(index.labels[hit], "instruction", 1.0)
    todo = [i for i in range(n) if found[i] is None]
    if fuzzy_threshold is not None and index.signatures is not None and todo:
        matches = _fuzzy(index, prompts, responses, todo, fuzzy_threshold)
        for i, match in zip(todo, matches, strict=True):
            found[i] = match
        todo = [i for i in todo if found[i] is None]
    if semantic_threshold is not None and index.vectors is not None and vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        matches = _semantic(index, vectors[todo], semantic_threshold)
        for i, match in zip(todo, matches, strict=True):
            found[i] = match
    return found


def _fuzzy(
    index: EvalIndex,
    prompts: Sequence[str],
    responses: Sequence[str],
    rows: list[int],
    threshold: float,
) -> list[Match | None]:
    """LSH candidates among the evaluation rows, verified by estimated Jaccard."""
    assert index.signatures is not None
    texts = [f"{prompts[i]}\n{responses[i]}" for i in rows]
    signatures = minhash_signatures(texts, num_perm=index.num_perm, shingle_size=index.shingle_size)
    values = band_values(signatures, *index.bands)
    out: list[Match | None] = []
    for j in range(len(rows)):
        candidates = {
            c
            for b, table in enumerate(index.band_tables)
            for c in table.get(values[b][j].tobytes(), ())
        }
        best, best_sim = None, -1.0
        for c in sorted(candidates):
            sim = float(estimated_jaccard(signatures[j], index.signatures[c]))
            if sim > best_sim:
                best, best_sim = c, sim
        ok = best is not None and best_sim >= threshold
        out.append(Match(index.labels[best], "fuzzy", best_sim) if ok else None)
    return out


def _semantic(index: EvalIndex, vectors: np.ndarray, threshold: float) -> list[Match | None]:
    """The most similar evaluation row of each training row, when close enough."""
    assert index.vectors is not None
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    out: list[Match | None] = []
    block = max(1, _SIMILARITIES_PER_BLOCK // max(1, len(index)))
    for lo in range(0, len(unit), block):
        sims = unit[lo : lo + block] @ index.vectors.T
        best = np.argmax(sims, axis=1)
        for row, col in enumerate(best):
            sim = float(sims[row, col])
            ok = sim >= threshold - _COSINE_TOLERANCE
            out.append(Match(index.labels[int(col)], "semantic", sim) if ok else None)
    return out


def overlap_counts(
    train: Sequence[tuple[str, str]], held_out: Sequence[tuple[str, str]]
) -> tuple[int, int]:
    """Held-out rows that also appear in the training rows, without a model.

    Args:
        train: (prompt, response) of each training row.
        held_out: (prompt, response) of each held-out row.

    Returns:
        (held-out rows identical to a training row after normalization, held-out rows
        that only share their instruction with one).
    """
    exact = {exact_key(p, r) for p, r in train}
    instructions = {instruction_key(p) for p, _ in train}
    same = sum(exact_key(p, r) in exact for p, r in held_out)
    same_instruction = sum(
        exact_key(p, r) not in exact and instruction_key(p) in instructions for p, r in held_out
    )
    return same, same_instruction
