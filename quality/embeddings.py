"""Sentence embeddings behind a tiny ``Encoder`` protocol (SemHash style).

Anything with ``encode(sentences) -> float32 (n, d) array of L2-normalized rows`` is an
encoder; nothing inherits from anything. Production uses :class:`SentenceTransformerEncoder`
over the bundled all-MiniLM-L6-v2, or :class:`StaticEncoder` over a model2vec model
distilled from it (``embed.model=static``: no torch, tens of times faster on CPU); tests
and ``embed.model=hashing`` use :class:`HashingEncoder`, which needs no model and is
deterministic across processes.

Models are only ever loaded from disk: the bundled package, a local directory, or a Hub id
that is already in the local Hugging Face cache. Nothing here downloads.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from infra.errors import ModelNotFoundError
from infra.models import ENCODER_HELP, resolve_encoder_path

EMBED_MAX_CHARS = 4000
"""Characters of a prompt or a response that get embedded; the real encoder sees ~256 tokens
(about 1000 characters) anyway, so more only costs tokenizer time."""


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit vectors: cosine similarity is a dot product."""

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            sentences: Texts to embed.

        Returns:
            float32 array of shape (len(sentences), d) with L2-normalized rows.
        """
        ...


def embedding_text(prompt: str, response: str, *, max_chars: int = EMBED_MAX_CHARS) -> str:
    """The text embedded for a row: the prompt, a newline, the response, cut to max_chars.

    Args:
        prompt: The row's prompt (every turn before the final assistant turn).
        response: The final assistant turn.
        max_chars: Characters kept; the start of a row says most about what it is.

    Returns:
        The text to hand to an encoder.
    """
    return f"{prompt or ''}\n{response or ''}"[:max_chars]


def row_vectors(
    encoder: Encoder,
    prompts: Sequence[str | None],
    responses: Sequence[str | None],
    *,
    max_chars: int = EMBED_MAX_CHARS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's vector, with its instruction's and its response's, from one encoder pass.

    The prompt and the response are embedded apart, in a single ``encode`` call, and the
    row's vector is the normalized sum of the two. The relevance signal needs the parts
    anyway, and embedding them costs about what embedding the joined text costs (the same
    tokens), so a row is read by the encoder once rather than three times. In the sum the
    instruction and the response count the same whatever their lengths, so a long answer
    does not drown out the question it answers.

    Args:
        encoder: Any :class:`Encoder`.
        prompts: The rows' prompts (every turn before the final assistant turn).
        responses: The rows' final assistant turns, as many as ``prompts``.
        max_chars: Characters of each part handed to the encoder.

    Returns:
        float32 ``(row, instruction, response)`` arrays of shape (n, d), L2-normalized rows
        (a row whose parts cancel out exactly is all zeros).

    Raises:
        ValueError: ``prompts`` and ``responses`` differ in length.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    n = len(prompts)
    texts = [(t or "")[:max_chars] for t in [*prompts, *responses]]
    parts = np.asarray(encoder.encode(texts), dtype=np.float32)
    instruction, response = parts[:n], parts[n:]
    row = instruction + response
    norms = np.linalg.norm(row, axis=1, keepdims=True)
    return row / np.where(norms > 0, norms, 1.0), instruction, response


# --- hashing encoder -------------------------------------------------------------------------

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PRIME = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime, used as the polynomial base
_WORD_RE = re.compile(r"\w+")


def _normalize(text: str) -> str:
    """Casefold, NFKC and collapse whitespace, padded so n-grams see word boundaries."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " " + " ".join(text.split()) + " "


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads a polynomial hash over all 64 bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


class HashingEncoder:
    """Signed feature hashing of character n-grams and words; deterministic, no model.

    Texts are casefolded and whitespace-collapsed, then every UTF-8 byte n-gram with
    ``ngram[0] <= n <= ngram[1]`` and every word is hashed (a stable 64-bit hash, never
    Python's salted ``hash()``) to one of ``dim`` buckets with a +/-1 sign. Rows are
    L2-normalized, so texts sharing most n-grams get a cosine similarity near 1 and unrelated
    texts near 0. An empty text has no features and embeds to the zero vector.

    Args:
        dim: Output dimension; more buckets mean fewer collisions.
        ngram: Smallest and largest character n-gram size.
    """

    def __init__(self, dim: int = 256, ngram: tuple[int, int] = (3, 5)) -> None:
        if dim < 8:
            raise ValueError(f"HashingEncoder dim must be at least 8, got {dim}")
        lo, hi = ngram
        if not 1 <= lo <= hi:
            raise ValueError(
                f"HashingEncoder ngram must be (min, max) with 1 <= min <= max, got {ngram}"
            )
        self.dim = dim
        self.ngram = (lo, hi)

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """Embed texts; see the class docstring.

        Args:
            sentences: Texts to embed.

        Returns:
            float32 array of shape (len(sentences), dim) with L2-normalized (or zero) rows.
        """
        texts = [_normalize(s) for s in sentences]
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        if not texts:
            return out.astype(np.float32)
        rows, buckets, signs = self._char_ngrams(texts)
        w_rows, w_buckets, w_signs = self._words(texts)
        flat = np.concatenate([rows, w_rows]) * self.dim + np.concatenate([buckets, w_buckets])
        weights = np.concatenate([signs, w_signs])
        out += np.bincount(flat, weights=weights, minlength=out.size).reshape(out.shape)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def _char_ngrams(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, bucket, sign) of every byte n-gram of every text, hashed in one numpy pass."""
        encoded = [t.encode("utf-8") for t in texts]
        lengths = np.fromiter((len(b) for b in encoded), dtype=np.int64, count=len(encoded))
        buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
        doc = np.repeat(np.arange(len(encoded), dtype=np.int64), lengths)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        with np.errstate(over="ignore"):  # uint64 wrap-around is the hash
            for n in range(self.ngram[0], self.ngram[1] + 1):
                count = buf.size - n + 1
                if count <= 0:
                    continue
                h = np.full(count, np.uint64(n), dtype=np.uint64)  # seed by size
                for j in range(n):
                    h = h * _PRIME + buf[j : j + count]
                valid = doc[:count] == doc[n - 1 : n - 1 + count]  # n-gram inside one text
                parts.append((doc[:count][valid], _mix64(h[valid])))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        rows = np.concatenate([p[0] for p in parts])
        hashes = np.concatenate([p[1] for p in parts])
        return rows, *self._bucket_sign(hashes)

    def _words(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, bucket, sign) of every word; crc32 is stable across processes."""
        rows: list[int] = []
        hashes: list[int] = []
        for i, text in enumerate(texts):
            for word in _WORD_RE.findall(text):
                rows.append(i)
                hashes.append(zlib.crc32(b"w:" + word.encode("utf-8")))
        with np.errstate(over="ignore"):
            mixed = _mix64(np.asarray(hashes, dtype=np.uint64))
        return np.asarray(rows, dtype=np.int64), *self._bucket_sign(mixed)

    def _bucket_sign(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Low bits pick the bucket, the top bit the sign (independent for any dim)."""
        buckets = (hashes % np.uint64(self.dim)).astype(np.int64)
        signs = np.where((hashes >> np.uint64(63)) == 1, -1.0, 1.0)
        return buckets, signs


# --- sentence-transformers encoder -----------------------------------------------------------


class SentenceTransformerEncoder:
    """A sentence-transformers model loaded from disk, returning unit float32 vectors.

    Args:
        model_name_or_path: A model directory (see :func:`resolve_encoder_path`).
        device: Torch device, e.g. "cpu" or "cuda".
        batch_size: Texts per forward pass; memory grows linearly.
        max_length: Tokens per text; longer texts are truncated.
    """

    def __init__(
        self,
        model_name_or_path: str,
        *,
        device: str = "cpu",
        batch_size: int = 128,
        max_length: int = 256,
    ) -> None:
        from sentence_transformers import SentenceTransformer  # heavy; only when used

        if batch_size <= 0 or max_length <= 0:
            raise ValueError("embed.batch_size and embed.max_length must be positive")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self.model = SentenceTransformer(
                str(model_name_or_path),
                device=device,
                trust_remote_code=False,
                local_files_only=True,
            )
        except OSError as exc:
            raise ModelNotFoundError(
                f"Cannot load an embedding model from {model_name_or_path!r}: {exc}. "
                + ENCODER_HELP
            ) from exc
        self.model.max_seq_length = max_length
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            sentences: Texts to embed.

        Returns:
            float32 array of shape (len(sentences), dim) with L2-normalized rows.
        """
        if len(sentences) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(sentences),
            batch_size=self.batch_size,
            show_progress_bar=False,
            normalize_embeddings=True,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


# --- static (model2vec) encoder --------------------------------------------------------------


class StaticEncoder:
    """A model2vec static model: the mean of per-token vectors, no neural network at run time.

    ``embed.model=static`` is all-MiniLM-L6-v2 distilled once into such a model
    (:mod:`infra.static_distill`, cached by :mod:`infra.static_model`); any other directory
    in model2vec's format works too. Encoding needs numpy and a tokenizer only: no torch,
    no GPU. Vectors are float32 even when the model stores float16.

    Args:
        path: A model2vec model directory (``config.json``, ``tokenizer.json``,
            ``model.safetensors``).
        batch_size: Texts per tokenizer call.
        max_length: Tokens per text; longer texts are truncated (as MiniLM truncates them).
    """

    def __init__(self, path: str | Path, *, batch_size: int = 1024, max_length: int = 256) -> None:
        from model2vec import StaticModel  # numpy + tokenizers + safetensors only

        if batch_size <= 0 or max_length <= 0:
            raise ValueError("embed.batch_size and embed.max_length must be positive")
        # float32 at load: the lookup and mean then run in float32, not in float16.
        self.model = StaticModel.from_pretrained(
            str(path), quantize_to="float32", normalize=True, max_length=max_length
        )
        self.batch_size = batch_size
        self.dim = int(self.model.dim)

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """Embed texts.

        Args:
            sentences: Texts to embed.

        Returns:
            float32 array of shape (len(sentences), dim) with L2-normalized rows; a text
            with no known token (e.g. empty) is all zeros.
        """
        if len(sentences) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        # Ray actors are the parallelism; model2vec's own thread pool would oversubscribe.
        vectors = self.model.encode(
            list(sentences), batch_size=self.batch_size, use_multiprocessing=False
        )
        return np.asarray(vectors, dtype=np.float32)


def is_static_model(name: str) -> bool:
    """True when ``embed.model`` names a static (model2vec) model, which needs no GPU.

    Args:
        name: An ``embed.model`` value.
    """
    if name == "static":
        return True
    config = Path(name).expanduser() / "config.json"
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == "model2vec"
    except (OSError, ValueError, AttributeError):
        return False


# --- resolving and loading -------------------------------------------------------------------


def load_encoder(
    name: str = "default",
    *,
    device: str = "cpu",
    batch_size: int = 128,
    max_length: int = 256,
) -> Encoder:
    """Build the encoder ``embed.model`` names.

    Args:
        name: "hashing" for :class:`HashingEncoder`; "static" for :class:`StaticEncoder` over
            all-MiniLM-L6-v2 distilled once (on first use) into ``$FINESIFT_HOME``;
            otherwise anything :func:`resolve_encoder_path` accepts (a model2vec directory
            loads as a :class:`StaticEncoder`).
        device: Torch device for a sentence-transformers model (a static one runs on CPU).
        batch_size: Texts per forward pass (per tokenizer call for a static model).
        max_length: Tokens per text.

    Returns:
        An object satisfying :class:`Encoder`.

    Raises:
        ModelNotFoundError: The model cannot be found on this machine.
    """
    if name == "hashing":
        return HashingEncoder()
    if name == "static":
        # The cache lives with the other model caches (finesift_home); imported late
        # because distilling needs torch, and loading a built model does not.
        from infra.static_model import ensure_static_model

        return StaticEncoder(ensure_static_model(), batch_size=batch_size, max_length=max_length)
    path = resolve_encoder_path(name)
    if is_static_model(path):
        return StaticEncoder(path, batch_size=batch_size, max_length=max_length)
    return SentenceTransformerEncoder(
        path, device=device, batch_size=batch_size, max_length=max_length
    )
