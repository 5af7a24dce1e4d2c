"""Row, instruction and response vectors computed once per set of texts, cached on disk.

The research and simulation scripts of issue 15 iterate offline in numpy; encoding the
same 2,300 rows with MiniLM on every iteration would cost minutes each time. Vectors are
the curation job's own (``quality.embeddings.row_vectors`` with the encoder
``embed.model`` names), keyed by a hash of the model name and every text.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CACHE_DIR = Path(os.environ.get("FINESIFT_EMBED_CACHE", "/tmp/finesift-embed-cache"))


def cached_row_vectors(
    prompts: Sequence[str], responses: Sequence[str], *, model: str = "default"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``row_vectors`` of the texts with ``model``, from the cache when computed before.

    Args:
        prompts: Each row's prompt.
        responses: Each row's response.
        model: ``embed.model`` ("default" is the bundled all-MiniLM-L6-v2).

    Returns:
        (row, instruction, response) float32 arrays of shape (n, d).
    """
    digest = hashlib.blake2b(model.encode(), digest_size=16)
    for text in (*prompts, "\x00", *responses):
        digest.update(text.encode("utf-8") + b"\x00")
    path = CACHE_DIR / f"{digest.hexdigest()}.npz"
    if path.is_file():
        with np.load(path) as z:
            return z["row"], z["instruction"], z["response"]
    from quality.embeddings import load_encoder, row_vectors

    encoder = load_encoder(model)
    row, instruction, response = row_vectors(encoder, list(prompts), list(responses))
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, row=row, instruction=instruction, response=response)
    return row, instruction, response
