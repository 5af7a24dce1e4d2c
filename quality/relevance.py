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

Pure numpy; importable without Ray.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_TOP_K = 10
DEFAULT_THRESHOLD = -0.2
_CHUNK = 4096


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
    if top_k < 1:
        raise ValueError(f"signals.relevance_top_k must be at least 1, got {top_k}")
    if instructions.shape != responses.shape:
        raise ValueError(
            f"instruction and response vectors differ in shape: "
            f"{instructions.shape} vs {responses.shape}"
        )
    n = len(responses)
    if n == 0 or len(sample) == 0:
        return np.zeros(n, dtype=np.float64)
    if sample.shape[1] != responses.shape[1]:
        raise ValueError(f"sample dimension {sample.shape[1]} != rows' {responses.shape[1]}")
    own = np.einsum("ij,ij->i", instructions, responses).astype(np.float64)
    k = min(top_k, len(sample))
    out = np.empty(n, dtype=np.float64)
    # Every sampled position of an id: with instruction keys as ids, rows sharing the
    # row's own instruction text never compete with it.
    sample_pos: dict[str, list[int]] = {}
    for j, s in enumerate(sample_ids or ()):
        sample_pos.setdefault(s, []).append(j)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        sims = (responses[start:stop] @ sample.T).astype(np.float64)
        if row_ids is not None and sample_pos:
            for i in range(start, stop):
                for j in sample_pos.get(row_ids[i], ()):
                    sims[i - start, j] = -np.inf
        top = -np.partition(-sims, k - 1, axis=1)[:, :k]
        top = np.where(np.isfinite(top), top, np.nan)
        competitor = np.nanmean(top, axis=1) if k > 0 else np.zeros(stop - start)
        out[start:stop] = own[start:stop] - np.nan_to_num(competitor, nan=-1.0)
    return out


def mismatched(margins: np.ndarray, *, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Rows whose response fits other instructions better than its own by more than
    ``-threshold`` in cosine: a fluent answer to another task.

    Args:
        margins: From :func:`relevance_margin`.
        threshold: Margin below which a row is mismatched (negative; -0.2 by default).

    Returns:
        bool (n,) mask.
    """
    return np.asarray(margins) < threshold
