"""Exact, fuzzy (MinHash LSH) and semantic (SemDeDup) dedup of one group of rows.

Every function here works on one group (rows sharing an exact key, a fuzzy-dedup
partition, a k-means cluster) and returns ``dup_of``: an int64 array of length n where -1
keeps the row and any other value is the index, within the group, of the KEPT row it
duplicates. Survivors are the best-quality rows, ties going to the smaller id, so the
result never depends on input order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from quality.text import normalize_text

# Hashed shingles per numpy chunk of minhash_signatures: chunk x num_perm x 4 bytes
# (16 MB at 128 permutations).
_SHINGLES_PER_CHUNK = 32_768
# Cosine similarities held at once by semantic_dedup (4 bytes each): ~32 MB.
_SIMILARITIES_PER_CHUNK = 8_000_000
# float32 dot products of equal unit vectors can land just under 1.0.
_COSINE_TOLERANCE = 1e-6


def quality_order(scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Row indices from best to worst: higher score first, ties by smaller id, NaN last.

    Args:
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.

    Returns:
        A permutation of range(n), int64.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(ids) != len(scores):
        raise ValueError(f"got {len(scores)} scores for {len(ids)} ids")
    # A NaN score sorts after every real score; lexsort's last key is the primary one.
    neg = np.where(np.isnan(scores), np.inf, -scores)
    return np.lexsort((np.asarray(ids, dtype=str), neg)).astype(np.int64)


def pick_best(scores: np.ndarray, ids: Sequence[str]) -> int:
    """Index of the best-quality row: highest score, ties broken by the smaller id.

    Args:
        scores: Quality scores in [0, 1], shape (n,), n >= 1.
        ids: Row ids, length n.

    Returns:
        The index of the row a group of duplicates keeps.
    """
    if len(ids) == 0:
        raise ValueError("pick_best needs at least one row")
    return int(quality_order(scores, ids)[0])


def dedup_groups(labels: np.ndarray, scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Keep the best row of each group of equal labels and point the others at it.

    Args:
        labels: Group label of every row, shape (n,); rows with equal labels are duplicates.
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.

    Returns:
        dup_of, int64 of shape (n,): -1 for each group's survivor, else the survivor's index.
    """
    n = len(ids)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    _, labels = np.unique(np.asarray(labels), return_inverse=True)
    labels = labels.reshape(-1)
    order = quality_order(scores, ids)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    best_rank = np.full(labels.max() + 1, n, dtype=np.int64)
    np.minimum.at(best_rank, labels, rank)
    survivor = order[best_rank[labels]]
    return np.where(survivor == np.arange(n), -1, survivor).astype(np.int64)


def exact_dedup(keys: Sequence[str], scores: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Exact dedup: rows sharing a key (see :func:`quality.text.exact_key`) are duplicates.

    Args:
        keys: One key per row, e.g. ``exact_key(prompt, response)``.
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.

    Returns:
        dup_of, int64 of shape (n,).
    """
    if len(keys) != len(ids):
        raise ValueError(f"got {len(keys)} keys for {len(ids)} ids")
    return dedup_groups(np.asarray(keys, dtype=str), scores, ids)


@cache
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutations (a odd, b) as (num_perm, 1) uint32 columns."""
    from datasketch import MinHash  # its import pulls in scipy.integrate: only when needed

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32)[:, None], b.astype(np.uint32)[:, None]


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch applies before permuting."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: every input bit affects every output bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hash of every normalized word of every text (flat), and words per text.

    Words repeat a lot across a batch, so each distinct word is hashed (SHA-1) once.
    """
    words_per_text = [normalize_text(text).split() for text in texts]
    flat = [w for words in words_per_text for w in words]
    distinct = dict.fromkeys(flat)
    position = {w: i for i, w in enumerate(distinct)}
    digests = b"".join(hashlib.sha1(w.encode("utf-8")).digest()[:8] for w in distinct)
    hashes = np.frombuffer(digests, dtype="<u8").astype(np.uint64)
    index = np.fromiter(map(position.__getitem__, flat), np.int64, len(flat))
    counts = np.fromiter(map(len, words_per_text), np.int64, len(texts))
    return hashes[index], counts


def _shingle_hashes(texts: Sequence[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hash of every word shingle of every text (flat), and shingles per text.

    The shingles are those of :func:`quality.text.shingles` (a text of at most ``size``
    words is one shingle); a shingle's hash is a polynomial of its word hashes, so equal
    word sequences hash alike in every text, computed for the whole batch at once.
    """
    words, n_words = _word_hashes(texts)
    n_shingles = np.where(n_words <= size, np.minimum(n_words, 1), n_words - size + 1)
    total = int(n_shingles.sum())
    first_word = np.cumsum(n_words) - n_words
    first_shingle = np.cumsum(n_shingles) - n_shingles
    start = np.repeat(first_word, n_shingles) + (
        np.arange(total) - np.repeat(first_shingle, n_shingles)
    )
    length = np.repeat(np.minimum(n_words, size), n_shingles)
    acc = length.astype(np.uint64)
    last = max(len(words) - 1, 0)
    for j in range(size):
        # uint64 arithmetic wraps: the polynomial is taken mod 2**64.
        step = acc * np.uint64(0x9E3779B97F4A7C15) + words[np.minimum(start + j, last)]
        acc = np.where(j < length, step, acc)
    return (_fmix64(acc) >> np.uint64(32)).astype(np.uint32), n_shingles


def minhash_signatures(
    texts: Sequence[str], *, num_perm: int = 128, shingle_size: int = 3, seed: int = 1
) -> np.ndarray:
    """MinHash signatures of the word shingles of each text, vectorized over the batch.

    The shingles are :func:`quality.text.shingles`; the permutations are datasketch's
    (``MinHash(num_perm, seed)``, affine32 scheme) applied with numpy to the whole batch,
    since one datasketch sketch per row is several times slower.

    Args:
        texts: The texts, e.g. prompt and response joined.
        num_perm: Permutations; the cost and the accuracy of Jaccard estimates grow with it.
        shingle_size: Words per shingle.
        seed: Seed of the permutations; only signatures with equal seeds compare.

    Returns:
        uint64 array of shape (len(texts), num_perm) holding 32-bit values. A text with
        no words gets the all-max signature (it matches only other empty texts).
    """
    if shingle_size < 1:
        raise ValueError(f"shingle_size must be at least 1, got {shingle_size}")
    a, b = _permutations(num_perm, seed)
    out = np.full((len(texts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint64)
    hashes, counts = _shingle_hashes(texts, shingle_size)
    hashes = _fmix32(hashes)
    ends = np.cumsum(counts)
    firsts = ends - counts
    lo_row = 0
    while lo_row < len(texts):
        # Rows whose shingles fit one chunk (at least one row, however long).
        fit = int(np.searchsorted(ends, firsts[lo_row] + _SHINGLES_PER_CHUNK, "right"))
        hi_row = max(lo_row + 1, fit)
        rows = np.arange(lo_row, hi_row)
        rows = rows[counts[rows] > 0]
        if rows.size:
            lo, hi = firsts[lo_row], ends[hi_row - 1]
            # (num_perm, shingles): the min runs along contiguous memory.
            permuted = a * hashes[lo:hi] + b
            starts = firsts[rows] - lo
            out[rows] = np.minimum.reduceat(permuted, starts, axis=1).T
        lo_row = hi_row
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray | float:
    """Jaccard similarity estimated by MinHash: the fraction of equal signature entries.

    Args:
        sig_a: One signature (num_perm,) or many (n, num_perm).
        sig_b: Same shape as sig_a (or broadcastable to it).

    Returns:
        The estimate per row (a float for single signatures), e.g.
        ``estimated_jaccard(sigs, sigs[dup_of])`` for the ledger.
    """
    sim = np.mean(np.asarray(sig_a) == np.asarray(sig_b), axis=-1)
    return float(sim) if np.ndim(sim) == 0 else sim


@cache
def lsh_bands(
    threshold: float, num_perm: int, *, false_positive_weight: float = 0.1
) -> tuple[int, int]:
    """LSH banding (bands, rows per band) for a Jaccard threshold.

    Minimizes the weighted false-positive and false-negative areas under the S-curve
    ``1 - (1 - s**rows)**bands``, as datasketch's MinHashLSH does, but weighs misses more:
    every candidate pair is verified, so a false positive costs one signature comparison
    while a false negative is a duplicate left in the data.

    Args:
        threshold: Jaccard similarity at which pairs should become candidates.
        num_perm: Signature length; bands * rows <= num_perm.
        false_positive_weight: Weight of false positives in [0, 1]; misses get the rest.

    Returns:
        (bands, rows). At threshold 0.7 and 128 permutations: (20, 6), which makes a pair
        at Jaccard 0.7 a candidate with probability 0.92 and one at 0.8 with 0.998.
    """
    s = np.linspace(0.0, 1.0, 1001)
    below, above = s <= threshold, s >= threshold
    best, best_err = (1, num_perm), np.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            p = 1.0 - (1.0 - s**rows) ** bands
            false_pos = np.trapezoid(p[below], s[below])
            false_neg = np.trapezoid(1.0 - p[above], s[above])
            err = false_positive_weight * false_pos + (1.0 - false_positive_weight) * false_neg
            if err < best_err:
                best, best_err = (bands, rows), err
    return best


def _same_value_pairs(values: np.ndarray) -> np.ndarray:
    """All pairs (i, j), i < j, of rows with equal values, as int64 codes i * n + j."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    codes = []
    # Pairs at distance d in sorted order; stops at the longest run of equal values.
    for d in range(1, n):
        same = np.flatnonzero(sorted_values[d:] == sorted_values[:-d])
        if same.size == 0:
            break
        i, j = order[same], order[same + d]
        codes.append(np.minimum(i, j) * n + np.maximum(i, j))
    return np.concatenate(codes) if codes else np.empty(0, dtype=np.int64)


def band_values(signatures: np.ndarray, bands: int, rows: int) -> list[np.ndarray]:
    """One hashable value per row per band: the band's signature slice as bytes."""
    sig = np.ascontiguousarray(signatures)
    out = []
    for band in range(bands):
        part = np.ascontiguousarray(sig[:, band * rows : (band + 1) * rows])
        out.append(part.view(np.dtype((np.void, part.dtype.itemsize * rows))).reshape(-1))
    return out


def fuzzy_dedup(
    signatures: np.ndarray,
    scores: np.ndarray,
    ids: Sequence[str],
    *,
    threshold: float,
    num_perm: int,
) -> np.ndarray:
    """Near-duplicate removal by MinHash LSH, verified by the estimated Jaccard.

    Candidate pairs share a band of the signature (bands from :func:`lsh_bands`); a pair is
    a near-duplicate when its estimated Jaccard is >= threshold. Near-duplicates form
    connected components (a~b and b~c put a, b, c together) and each component keeps its
    best-quality row.

    Args:
        signatures: From :func:`minhash_signatures`, shape (n, num_perm).
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.
        threshold: Estimated Jaccard similarity at or above which rows are near-duplicates.
        num_perm: Signature length the signatures were built with.

    Returns:
        dup_of, int64 of shape (n,); use :func:`estimated_jaccard` to explain a drop.
    """
    signatures = np.asarray(signatures)
    n = len(ids)
    if signatures.shape != (n, num_perm):
        raise ValueError(f"signatures have shape {signatures.shape}, expected ({n}, {num_perm})")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"fuzzy threshold must be in (0, 1], got {threshold}")
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    bands, rows = lsh_bands(threshold, num_perm)
    codes = np.unique(
        np.concatenate([_same_value_pairs(v) for v in band_values(signatures, bands, rows)])
    )
    i, j = codes // n, codes % n
    keep = np.zeros(len(codes), dtype=bool)
    step = max(1, _SHINGLES_PER_CHUNK * 32 // num_perm)
    for lo in range(0, len(codes), step):
        sl = slice(lo, lo + step)
        keep[sl] = estimated_jaccard(signatures[i[sl]], signatures[j[sl]]) >= threshold
    graph = coo_matrix((np.ones(keep.sum(), dtype=np.int8), (i[keep], j[keep])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return dedup_groups(labels, scores, ids)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 copy with rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def semantic_dedup(
    vectors: np.ndarray, scores: np.ndarray, ids: Sequence[str], *, threshold: float
) -> np.ndarray:
    """SemDeDup within one cluster: drop rows too close to a better row that was kept.

    Rows are visited best quality first; a row whose cosine similarity to an already kept
    row is >= threshold is dropped and points to the most similar kept row. Similarities
    are computed block by block, so memory stays near 32 MB + 4 * block_rows**2 bytes
    whatever the group size (~42 MB for 5,000 rows).

    Args:
        vectors: Embeddings, shape (n, d); rows are L2-normalized here if they are not.
        scores: Quality scores, shape (n,).
        ids: Row ids, length n.
        threshold: Cosine similarity at or above which rows are semantic duplicates.

    Returns:
        dup_of, int64 of shape (n,).
    """
    vectors = np.asarray(vectors)
    n = len(ids)
    if vectors.ndim != 2 or len(vectors) != n:
        raise ValueError(f"vectors have shape {vectors.shape}, expected ({n}, d)")
    order = quality_order(scores, ids)
    unit = _unit_rows(vectors)[order]
    dup_sorted = np.full(n, -1, dtype=np.int64)  # in quality-order positions
    kept = np.zeros(n, dtype=bool)
    block = max(1, min(n, _SIMILARITIES_PER_CHUNK // max(n, 1)))
    limit = threshold - _COSINE_TOLERANCE
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        earlier = np.flatnonzero(kept[:lo])
        sims_earlier = unit[lo:hi] @ unit[earlier].T  # (block, kept so far)
        sims_block = unit[lo:hi] @ unit[lo:hi].T
        kept_here: list[int] = []
        for r in range(hi - lo):
            best, best_sim = -1, -np.inf
            if earlier.size:
                k = int(np.argmax(sims_earlier[r]))
                best, best_sim = int(earlier[k]), sims_earlier[r, k]
            if kept_here:
                k = int(np.argmax(sims_block[r, kept_here]))
                if sims_block[r, kept_here[k]] > best_sim:
                    best, best_sim = lo + kept_here[k], sims_block[r, kept_here[k]]
            if best_sim >= limit:
                dup_sorted[lo + r] = best
            else:
                kept_here.append(r)
        kept[lo + np.asarray(kept_here, dtype=np.int64)] = True
    dup_of = np.full(n, -1, dtype=np.int64)
    dropped = dup_sorted >= 0
    dup_of[order[dropped]] = order[dup_sorted[dropped]]
    return dup_of
