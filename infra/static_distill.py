"""Distil a static (model2vec) embedding model from a sentence-transformers model, offline.

A static model is one vector per token of the source model's vocabulary; a text's
embedding is the mean of its tokens' vectors, so encoding is a tokenizer pass and a
lookup, with no neural network. The method is model2vec's (Tulkens and van Dongen,
MinishLab, 2024), with the defaults of the model2vec version pinned in pyproject.toml
(0.10.0) and no training data:

1. every token of the source tokenizer (less ``[unusedN]`` placeholders and special tokens
   other than the unknown and padding ones) goes through the source model on its own,
   framed the way the tokenizer frames a text (``[CLS] token [SEP]`` for BERT), and its
   vector is the mean of the model's last hidden states over those positions;
2. the vectors are centred and reduced by PCA to ``pca_dims`` dimensions (256);
3. each vector is scaled by a SIF weight ``a / (a + p)`` with ``a`` = 1e-4, where ``p`` is
   the token's probability under Zipf's law, taking its rank from its position in the
   vocabulary (tokenizers number frequent tokens first), so frequent tokens count less;
4. the matrix is stored as float16 in model2vec's directory format (``model.safetensors``
   with an ``embeddings`` tensor, ``tokenizer.json`` without the post-processor,
   ``config.json``), which ``model2vec.StaticModel.from_pretrained(dir)`` loads.

Why this module exists rather than ``model2vec.distill``: the ``distill`` extra of model2vec
0.10.0 pins transformers < 5.4 and huggingface-hub < 2, which cannot sit beside the
project's transformers 5.23.0 (pinned). The steps above need only torch, transformers and
tokenizers, which the project already has, so finesift runs them itself with model2vec's
published settings and uses the light ``model2vec`` package (numpy, tokenizers,
safetensors) for inference only. Nothing is downloaded: the source is a local directory.

Importable without Ray; torch and transformers are imported only by :func:`distill`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "finesift_static.json"
"""The manifest file written beside the model: source, settings, libraries, file hashes."""
MANIFEST_VERSION = 1
"""Bumped when the distillation changes in a way that makes older caches stale."""
MODEL_FILES = ("model.safetensors", "tokenizer.json", "config.json")
"""The files model2vec loads; the manifest records their sha256."""


@dataclass(frozen=True)
class DistillSettings:
    """How a static model is distilled; the defaults are model2vec 0.10.0's ``distill``."""

    pca_dims: int = 256
    """Output dimensions after PCA; capped at the source model's hidden size."""
    sif_coefficient: float = 1e-4
    """``a`` of the SIF weight ``a / (a + p)`` on Zipf token probabilities; smaller
    down-weights frequent tokens more."""
    token_remove_pattern: str = r"\[unused\d+\]"
    """Tokens matching this regex are left out of the vocabulary (BERT's placeholders)."""
    dtype: str = "float16"
    """Stored precision of the vectors (model2vec's default); float16 halves the file."""
    batch_size: int = 256
    """Tokens per forward pass of the source model; memory grows linearly."""

    def __post_init__(self) -> None:
        if self.pca_dims < 1:
            raise ValueError(f"pca_dims must be positive, got {self.pca_dims}")
        if not 0.0 < self.sif_coefficient < 1.0:
            raise ValueError(f"sif_coefficient must be in (0, 1), got {self.sif_coefficient}")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        re.compile(self.token_remove_pattern)  # a bad pattern fails here, not mid-run

    def recorded(self) -> dict[str, Any]:
        """The settings that change the vectors (batch size does not), as the manifest
        records them and as a cache is compared against."""
        out = asdict(self)
        out.pop("batch_size")
        out.update(vocabulary="source tokenizer", pooling="mean", weighting="zipf-sif")
        return out


def distill(
    source_dir: str | Path,
    out_dir: str | Path,
    settings: DistillSettings = DistillSettings(),
    *,
    source: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Distil the model in ``source_dir`` into a static model in ``out_dir``.

    Args:
        source_dir: A local transformers / sentence-transformers model directory with a
            fast tokenizer (``tokenizer.json``, or files transformers converts into one).
        out_dir: An existing, empty directory to write the static model into.
        settings: Distillation settings.
        source: What to record about the source model in the manifest besides its path and
            the hash of its weights (e.g. ``{"name": ..., "package": ..., "version": ...}``).
        progress: Called with a short line now and then (e.g. ``print``); None is silent.

    Returns:
        The manifest, also written to ``out_dir / MANIFEST``.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    say = progress or (lambda _: None)
    start = time.perf_counter()
    source_dir = Path(source_dir)
    out_dir = Path(out_dir)
    hf_tokenizer = AutoTokenizer.from_pretrained(str(source_dir), use_fast=True)
    if not getattr(hf_tokenizer, "is_fast", False):
        raise ValueError(f"{source_dir} has no fast tokenizer; a static model needs one")
    tok_json = json.loads(hf_tokenizer.backend_tokenizer.to_str())
    prefix, suffix = _framing(hf_tokenizer.backend_tokenizer)
    keep_ids, keep_tokens = _kept_vocabulary(hf_tokenizer, tok_json, settings)

    model = AutoModel.from_pretrained(str(source_dir), dtype=torch.float32).eval()
    say(f"embedding {len(keep_ids)} tokens with {source_dir.name}")
    vectors = _token_vectors(model, keep_ids, prefix, suffix, settings.batch_size, say)
    reduced, explained = pca(vectors, settings.pca_dims)
    weighted = reduced * zipf_sif_weights(len(keep_ids), settings.sif_coefficient)[:, None]
    embeddings = weighted.astype(settings.dtype)

    _save_model2vec(out_dir, embeddings, _static_tokenizer(tok_json, keep_tokens), settings)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "method": "model2vec distillation (finesift quality/static_distill.py)",
        "source": {"path": str(source_dir), **(source or {}), **_weights_hash(source_dir)},
        "settings": settings.recorded(),
        "result": {
            "vocabulary_size": len(keep_ids),
            "removed_tokens": len(_vocab_ids(tok_json)) - len(keep_ids),
            "dims": int(embeddings.shape[1]),
            "pca_explained_variance": round(float(explained), 4),
            "framing": {"prefix": prefix, "suffix": suffix},
            "seconds": round(time.perf_counter() - start, 1),
        },
        "libraries": _versions("model2vec", "torch", "transformers", "tokenizers", "numpy"),
        "files": {name: file_sha256(out_dir / name) for name in MODEL_FILES},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    say(f"distilled {len(keep_ids)} tokens in {manifest['result']['seconds']} s")
    return manifest


# --- the vocabulary --------------------------------------------------------------------------


def _framing(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text (``[CLS]`` / ``[SEP]`` for BERT).

    Found by encoding one word with and without special tokens, so any post-processor
    (BERT's, RoBERTa's, a BOS-only one) is read the same way.
    """
    tokenizer.no_padding()
    tokenizer.no_truncation()
    plain = tokenizer.encode("hello", add_special_tokens=False).ids
    framed = tokenizer.encode("hello", add_special_tokens=True).ids
    for at in range(len(framed) - len(plain) + 1):
        if framed[at : at + len(plain)] == plain:
            return framed[:at], framed[at + len(plain) :]
    return [], []


def _vocab_ids(tok_json: dict[str, Any]) -> dict[str, int]:
    """token -> id of a serialized tokenizer's model vocabulary plus its added tokens.

    Raises:
        ValueError: The tokenizer's vocabulary is not a token -> id map (a Unigram model
            such as SentencePiece's), which this distillation does not handle.
    """
    vocab = tok_json["model"].get("vocab")
    if not isinstance(vocab, dict):
        raise ValueError(
            f"a {tok_json['model'].get('type')} tokenizer is not supported for distillation; "
            "use a model with a WordPiece, WordLevel or BPE tokenizer (BERT, MiniLM, RoBERTa)"
        )
    ids = dict(vocab)
    ids.update({t["content"]: t["id"] for t in tok_json.get("added_tokens", [])})
    return ids


def _kept_vocabulary(
    hf_tokenizer: Any, tok_json: dict[str, Any], settings: DistillSettings
) -> tuple[list[int], list[str]]:
    """Ids and tokens that get a vector, in id order (the order Zipf ranks them by).

    Left out, as model2vec 0.10.0 leaves them out: tokens matching
    ``token_remove_pattern``, and added (special) tokens other than the unknown and padding
    tokens. ``[CLS]`` and ``[SEP]`` go too: a static model never frames a text with them.
    """
    pattern = re.compile(settings.token_remove_pattern)
    ids = _vocab_ids(tok_json)
    wanted_special = {
        i for i in (hf_tokenizer.unk_token_id, hf_tokenizer.pad_token_id) if i is not None
    }
    added = {t["id"] for t in tok_json.get("added_tokens", [])}
    kept = sorted(
        (i, token)
        for token, i in ids.items()
        if not pattern.fullmatch(token) and (i not in added or i in wanted_special)
    )
    if not kept:
        raise ValueError(
            f"no token is left after removing {settings.token_remove_pattern!r}; "
            "loosen token_remove_pattern"
        )
    return [i for i, _ in kept], [t for _, t in kept]


def _static_tokenizer(tok_json: dict[str, Any], keep: list[str]) -> dict[str, Any]:
    """The source tokenizer with the vocabulary cut to ``keep`` (renumbered 0..n-1 in
    order), no post-processor (a static model adds no ``[CLS]``/``[SEP]``), no padding
    and no truncation (the encoder sets its own)."""
    out = json.loads(json.dumps(tok_json))  # deep copy
    new_id = {token: i for i, token in enumerate(keep)}
    model = out["model"]
    model["vocab"] = {t: new_id[t] for t in keep if t in model["vocab"]}
    for left, right in _merge_pairs(model.get("merges", [])):
        # A BPE merge naming a removed token would make the tokenizer unloadable.
        if left not in new_id or right not in new_id or left + right not in new_id:
            raise ValueError(f"BPE merge ({left!r}, {right!r}) uses a removed token")
    out["added_tokens"] = [
        {**t, "id": new_id[t["content"]]}
        for t in out.get("added_tokens", [])
        if t["content"] in new_id
    ]
    out["post_processor"] = None
    out["padding"] = None
    out["truncation"] = None
    return out


def _merge_pairs(merges: list[Any]) -> list[tuple[str, str]]:
    """BPE merges as pairs, whichever of the two serializations a tokenizer.json uses."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]


# --- the vectors -----------------------------------------------------------------------------


def _token_vectors(
    model: Any,
    ids: list[int],
    prefix: list[int],
    suffix: list[int],
    batch_size: int,
    say: Callable[[str], None],
) -> np.ndarray:
    """Mean last hidden state of each token, framed like a one-token text.

    Every input is ``prefix + [id] + suffix``, so all have the same length: no padding, and
    the mean over positions is a plain mean.
    """
    import torch

    framed = torch.tensor([[*prefix, i, *suffix] for i in ids], dtype=torch.long)
    out = np.empty((len(ids), model.config.hidden_size), dtype=np.float32)
    next_report = len(ids) // 4
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            batch = framed[start : start + batch_size]
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch))
            out[start : start + len(batch)] = hidden.last_hidden_state.mean(dim=1).numpy()
            if start + len(batch) >= next_report > 0 and start + len(batch) < len(ids):
                say(f"  {start + len(batch)} of {len(ids)} tokens")
                next_report += len(ids) // 4
    return np.nan_to_num(out)


def pca(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, float]:
    """Centre ``vectors`` and project them on their top principal components.

    Computed from the eigenvectors of the covariance in float64. Each component's sign is
    fixed so that its largest projection is positive, which makes the result the same
    whatever sign the linear algebra library returns.

    Args:
        vectors: (n, d) array.
        dims: Components kept; capped at ``d`` and at ``n - 1``.

    Returns:
        The (n, k) projections and the share of the variance the k components explain.
    """
    x = vectors.astype(np.float64)
    x -= x.mean(axis=0)
    k = max(1, min(dims, x.shape[1], x.shape[0] - 1))
    eigvals, eigvecs = np.linalg.eigh(x.T @ x / max(1, len(x) - 1))
    order = np.argsort(eigvals)[::-1][:k]
    scores = x @ eigvecs[:, order]
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(k)])
    explained = np.clip(eigvals, 0, None)
    return scores * np.where(signs == 0, 1.0, signs), float(
        explained[order].sum() / max(explained.sum(), 1e-12)
    )


def zipf_sif_weights(n: int, a: float) -> np.ndarray:
    """SIF weights ``a / (a + p_r)`` for ranks r = 0..n-1 under Zipf's law.

    Zipf's law gives the token of rank r a probability proportional to ``1 / (r + 2)``
    (ranks counted from 0, model2vec's convention), normalized over the vocabulary.
    """
    inverse_rank = 1.0 / np.arange(2, n + 2, dtype=np.float64)
    return a / (a + inverse_rank / inverse_rank.sum())


# --- files -----------------------------------------------------------------------------------


def _save_model2vec(
    out_dir: Path, embeddings: np.ndarray, tokenizer_json: dict[str, Any], settings: DistillSettings
) -> None:
    """Write the three files of model2vec's directory layout."""
    from safetensors.numpy import save_file

    save_file({"embeddings": np.ascontiguousarray(embeddings)}, str(out_dir / "model.safetensors"))
    (out_dir / "tokenizer.json").write_text(json.dumps(tokenizer_json), encoding="utf-8")
    config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "apply_pca": settings.pca_dims,
        "sif_coefficient": settings.sif_coefficient,
        "hidden_dim": int(embeddings.shape[1]),
        "seq_length": 1_000_000,  # a static model has no sequence limit of its own
        "normalize": True,
        "pooling": "mean",
        "embedding_dtype": settings.dtype,
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _weights_hash(source_dir: Path) -> dict[str, Any]:
    """sha256 of the source model's weight file(s), the part of its identity that matters."""
    files = sorted(source_dir.glob("*.safetensors")) or sorted(source_dir.glob("*.bin"))
    return {"weights": {f.name: file_sha256(f) for f in files}}


def _versions(*packages: str) -> dict[str, str | None]:
    """Installed versions of ``packages`` (None for one that is not installed)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
