"""Does a response answer its own instruction? Relevance from sentence embeddings.

The harmful row no surface rule sees is a fluent answer to the wrong question. Its
response is unremarkable on its own; what gives it away is that some *other*
instruction in the same dataset fits it better than its own does.

So relevance is a margin, calibrated against the dataset itself rather than a fixed
cosine threshold::

    margin(i) = cos(instruction_i, response_i) - mean of the top-k cos(instruction_j, response_i)

where ``j`` ranges over a sample of the dataset's other instructions. A clean row's own
instruction is its response's best match or close to it (margin >= about 0); a mislabeled
row's response sits among the instructions of the task it really answers, far above its
own (margin well below 0). Rows with ``margin < threshold`` are ``mismatched``.

Why this and not the alternatives (measured on 5,000 demo rows, seed 0, bundled MiniLM;
91 mislabeled among 4,399 rows that are not junk):

- raw cosine with a dataset-quantile threshold: the cosine of a good pair depends on the
  task (a French translation and its English instruction score low, an arithmetic
  answer that repeats the question scores high), so any single cut that catches every
  mislabeled row also drops hundreds of clean ones (precision 0.46 at recall 1.0 for
  median - 3 MAD);
- z-score against the response's similarity to random instructions (shuffled pairs):
  precision 0.88 / recall 0.92 at z < 1, 11 clean rows lost;
- rank of the own instruction among sampled instructions: coarse on templated data,
  where dozens of same-template instructions tie with the own one (0.64 / 0.93);
- top-k margin (k=10, threshold -0.2): precision 0.93 / recall 0.98, 7 clean rows lost.
  The competitors are other rows' instructions, so "how good is good" is set by the data.

With a static (model2vec-style) encoder that margin fails: static vectors share a large
common direction and compare an instruction with a response mostly by shared words, so
at its best threshold it reached 0.80 precision = recall on the planted rows and at -0.2
flagged 247 of 2,996 Dolly and 605 of 4,535 codegen rows (all human-written).
:func:`paired_margin` (``signals.relevance_method=paired``, the default with
``embed.model=static``) changes two things, measured on the same rows
(bench/static_relevance.py):

- whitening: instruction and response vectors are centred on the sample's mean and
  divided by its per-dimension spread (each space apart) before any cosine, which
  removes the common direction that makes every static cosine high;
- a like-with-like term added to the cross margin: a row's response against the
  *responses* of the sampled rows whose instructions are nearest its own, minus its
  top-k similarity to any sampled response. A mislabeled answer resembles the answers
  of another task, not those of its instruction's neighbours.

Static encoder, threshold -0.8: planted precision / recall 0.989 / 0.978 (MiniLM with the
cross margin at -0.2: 0.978 / 0.967 on the same rows); Dolly 21 and codegen 134 rows
flagged (247 and 605 before). It does not make the static encoder as good as MiniLM
on real answers to another task (bench/real_noise.py --engine sim --sim-model static:
mislabeled Dolly rows removed 0.78 against MiniLM's 0.98). MiniLM keeps the cross margin:
the paired one at -0.8 removed fewer of its real mislabeled Dolly rows (0.77).

Pure numpy; importable without Ray.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_TOP_K = 10
DEFAULT_THRESHOLD = -0.2
"""Cross margin (:func:`relevance_margin`) below which a row is mismatched."""
PAIRED_THRESHOLD = -0.8
"""Paired margin (:func:`paired_margin`) below which a row is mismatched: the sum of two
margins, each about 0 for a clean row."""
_CHUNK = 4096


def on_cross_scale(paired: np.ndarray) -> np.ndarray:
    """Paired margins rescaled so that their drop threshold lands on the cross margin's:
    the quality score's relevance term (:func:`quality.ranking.relevance_term`) is shaped
    on the cross scale, and with the static encoder the paired margin is the one that
    orders two answers to one instruction (planted conflicts whose wrong answer was
    dropped, static encoder: 231 of 290 ranked by the cross margin, 260 by the paired)."""
    return np.asarray(paired, dtype=np.float64) * (DEFAULT_THRESHOLD / PAIRED_THRESHOLD)


def relevance_margin(
    instructions: np.ndarray,
    responses: np.ndarray,
    sample: np.ndarray,
    *,
    top_k: int = DEFAULT_TOP_K,
    row_ids: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Own-instruction cosine minus the mean of the top-k cosines to sampled instructions.

    Args:
        instructions: (n, d) unit vectors of each row's instruction (prompt).
        responses: (n, d) unit vectors of each row's response.
        sample: (m, d) unit vectors of other rows' instructions from the same dataset.
        top_k: How many of the best-fitting sampled instructions a row competes with;
            clipped to the sample size.
        row_ids: Ids of the n rows; with ``sample_ids``, a row never competes with a sampled
            row of the same id. Pass instruction keys (quality.text.instruction_key) for
            both and a row never competes with its own instruction asked again (a
            duplicate or a conflicting answer elsewhere in the data).
        sample_ids: Ids of the m sampled rows (repeats allowed).

    Returns:
        float64 (n,) margins; 0.0 for every row when the sample is empty (nothing to
        compare with means nothing is mismatched).

    Raises:
        ValueError: Shapes disagree, or ``top_k`` < 1.
    """
    _check_shapes(instructions, responses, sample, top_k)
    n = len(responses)
    if n == 0 or len(sample) == 0:
        return np.zeros(n, dtype=np.float64)
    own = np.einsum("ij,ij->i", instructions, responses).astype(np.float64)
    k = min(top_k, len(sample))
    out = np.empty(n, dtype=np.float64)
    sample_pos = _positions(sample_ids)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        sims = _without_own(responses[start:stop] @ sample.T, row_ids, sample_pos, start)
        out[start:stop] = own[start:stop] - _top_mean(sims, k)
    return out


def paired_margin(
    instructions: np.ndarray,
    responses: np.ndarray,
    sample_instructions: np.ndarray,
    sample_responses: np.ndarray,
    *,
    top_k: int = DEFAULT_TOP_K,
    row_ids: Sequence[str] | None = None,
    sample_ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Cross margin plus like-with-like margin, in the sample's whitened space.

    Both spaces are whitened on the sample first (:func:`whitening`). Then, per row:

    - cross: cosine of its instruction and response minus the mean of the top-k cosines
      of its response with sampled instructions (:func:`relevance_margin`);
    - paired: mean cosine of its response with the responses of the k sampled rows whose
      instructions are nearest its own, minus the mean of its top-k cosines with any
      sampled response.

    A clean row scores near 0 on both; a fluent answer to another task is low on both.
    With the static encoder the sum separates the planted rows better than either term
    (whitened: 0.85 break-even for the cross term, 0.96 for the second, 0.98 for the
    sum; bench/static_relevance.py keeps the sum only). A clean
    row whose nearest instructions include a mislabeled row loses a little on the
    second term: with k of 10 that is a tenth of the gap.

    Args:
        instructions: (n, d) unit vectors of each row's instruction.
        responses: (n, d) unit vectors of each row's response.
        sample_instructions: (m, d) instruction vectors of rows sampled from the dataset.
        sample_responses: (m, d) response vectors of the same sampled rows.
        top_k: Competitors and instruction neighbours per row; clipped to the sample size.
        row_ids: Instruction keys of the n rows; with ``sample_ids``, a row never
            competes with, nor counts as a neighbour, a sampled row of the same key.
        sample_ids: Instruction keys of the m sampled rows.

    Returns:
        float64 (n,) margins; 0.0 for every row when the sample is empty.

    Raises:
        ValueError: Shapes disagree, or ``top_k`` < 1.
    """
    if sample_instructions.shape != sample_responses.shape:
        raise ValueError(
            f"sampled instruction and response vectors differ in shape: "
            f"{sample_instructions.shape} vs {sample_responses.shape}"
        )
    _check_shapes(instructions, responses, sample_instructions, top_k)
    n = len(responses)
    if n == 0 or len(sample_instructions) == 0:
        return np.zeros(n, dtype=np.float64)
    white_i = whitening(sample_instructions)
    white_r = whitening(sample_responses)
    s_ins, s_res = white_i(sample_instructions), white_r(sample_responses)
    k = min(top_k, len(s_ins))
    sample_pos = _positions(sample_ids)
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        ins, res = white_i(instructions[start:stop]), white_r(responses[start:stop])
        own = np.einsum("ij,ij->i", ins, res)
        cross = own - _top_mean(_without_own(res @ s_ins.T, row_ids, sample_pos, start), k)
        near_ins = _without_own(ins @ s_ins.T, row_ids, sample_pos, start)
        res_res = _without_own(res @ s_res.T, row_ids, sample_pos, start)
        neighbours = np.argpartition(-near_ins, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(res_res, neighbours, axis=1)
        # A neighbour slot can hold an excluded (own-key) row only when fewer than k others
        # exist; it then counts as missing.
        picked = np.where(np.isfinite(picked), picked, np.nan)
        with warnings.catch_warnings():  # an all-NaN row is handled just below
            warnings.simplefilter("ignore", RuntimeWarning)
            near = np.nanmean(picked, axis=1)
        paired = np.nan_to_num(near, nan=0.0) - _top_mean(res_res, k)
        out[start:stop] = cross + paired
    return out


def whitening(sample: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function centring vectors on the sample's mean, dividing each dimension by the
    sample's spread in it, and normalizing back to unit length.

    Static embeddings share a large common component (mean pairwise cosine 0.23 on Dolly
    against MiniLM's 0.05) and a few dimensions carry most of the variance; both make
    cosines reflect the dataset's common vocabulary more than the pair. Dimensions that
    do not vary in the sample (fewer rows than dimensions, a constant) are left unscaled.

    Args:
        sample: (m, d) vectors the statistics are taken from (m >= 1).

    Returns:
        Callable mapping (n, d) vectors to (n, d) float64 unit vectors.
    """
    ref = np.asarray(sample, dtype=np.float64)
    mean = ref.mean(axis=0)
    spread = ref.std(axis=0)
    typical = float(np.median(spread)) if spread.size else 0.0
    # Below a thousandth of the typical spread a dimension is noise or constant: scaling it
    # up would let rounding decide the cosines.
    scale = np.where(spread > 1e-3 * typical, spread, 1.0) if typical > 0 else np.ones_like(mean)

    def apply(vectors: np.ndarray) -> np.ndarray:
        x = (np.asarray(vectors, dtype=np.float64) - mean) / scale
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.where(norms > 0, norms, 1.0)

    return apply


def _positions(ids: Sequence[str] | None) -> dict[str, list[int]]:
    """Every sampled position of an id: with instruction keys as ids, rows sharing the
    row's own instruction text never compete with it."""
    pos: dict[str, list[int]] = {}
    for j, s in enumerate(ids or ()):
        pos.setdefault(s, []).append(j)
    return pos


def _without_own(
    sims: np.ndarray,
    row_ids: Sequence[str] | None,
    sample_pos: dict[str, list[int]],
    start: int,
) -> np.ndarray:
    """float64 similarities with -inf where a sampled row shares the row's id."""
    sims = sims.astype(np.float64)
    if row_ids is not None and sample_pos:
        for i in range(len(sims)):
            for j in sample_pos.get(row_ids[start + i], ()):
                sims[i, j] = -np.inf
    return sims


def _top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row's k largest finite values; -1.0 when none is finite."""
    top = -np.partition(-sims, k - 1, axis=1)[:, :k]
    top = np.where(np.isfinite(top), top, np.nan)
    with warnings.catch_warnings():  # an all-NaN row is handled just below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(top, axis=1)
    return np.nan_to_num(mean, nan=-1.0)


def _check_shapes(
    instructions: np.ndarray, responses: np.ndarray, sample: np.ndarray, top_k: int
) -> None:
    if top_k < 1:
        raise ValueError(f"signals.relevance_top_k must be at least 1, got {top_k}")
    if instructions.shape != responses.shape:
        raise ValueError(
            f"instruction and response vectors differ in shape: "
            f"{instructions.shape} vs {responses.shape}"
        )
    if len(responses) and len(sample) and sample.shape[1] != responses.shape[1]:
        raise ValueError(f"sample dimension {sample.shape[1]} != rows' {responses.shape[1]}")


def mismatched(margins: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Rows whose response fits other instructions (or their answers) better than its
    own by more than ``-threshold``: a fluent answer to another task.

    Args:
        margins: From :func:`relevance_margin` or :func:`paired_margin`.
        threshold: Margin below which a row is mismatched (negative; -0.2 by default,
            PAIRED_THRESHOLD for paired margins).

    Returns:
        bool (n,) mask.
    """
    return np.asarray(margins) < threshold
