"""Distilling a static (model2vec) encoder, on a tiny BERT built here (nothing downloaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from infra.static_distill import (
    MANIFEST,
    DistillSettings,
    distill,
    pca,
    zipf_sif_weights,
)
from quality.embeddings import Encoder, StaticEncoder, is_static_model, load_encoder

ROOT = Path(__file__).resolve().parents[2]
TEXTS = [
    "How do I reverse a list in Python? Use slicing to get a reversed copy.",
    "how do I REVERSE a list in python?? use slicing to get a reversed copy",
    # ^ near-duplicate of 0: same tokens after the BERT normalizer
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    # ^ unrelated to 0: no word in common
]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    from tests.tiny_encoders import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def static_dir(tiny_bert, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny-static")
    distill(tiny_bert, out, source={"name": "tiny-bert"})
    return out


def test_the_distilled_model_loads_as_an_encoder_with_the_expected_dims(static_dir, tiny_bert):
    encoder = load_encoder(str(static_dir))
    assert isinstance(encoder, StaticEncoder) and isinstance(encoder, Encoder)
    vectors = encoder.encode(TEXTS + [""])
    # PCA keeps min(pca_dims=256, hidden size 32) dimensions.
    assert vectors.shape == (4, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no token, no vector
    assert encoder.encode([]).shape == (0, 32)
    config = json.loads((static_dir / "config.json").read_text())
    assert config["model_type"] == "model2vec" and config["hidden_dim"] == 32
    assert is_static_model(str(static_dir)) and not is_static_model(str(tiny_bert))


def test_the_model2vec_package_loads_it_on_its_own(static_dir):
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(static_dir))
    assert model.encode(TEXTS).shape == (3, 32)
    # No [CLS]/[SEP] at inference: a static model has no post-processor.
    assert model.tokenize(["reverse"])[0] == [model.tokenizer.token_to_id("reverse")]


def test_similar_texts_are_closer_than_unrelated_ones(static_dir):
    vectors = load_encoder(str(static_dir)).encode(TEXTS)
    sims = vectors @ vectors[0]
    assert sims[1] > 0.95  # the same tokens in another case and punctuation
    assert sims[1] > sims[2] + 0.3


def test_distilling_is_deterministic_and_encoding_independent_of_the_batch(
    static_dir, tiny_bert, tmp_path
):
    again = tmp_path / "again"
    again.mkdir()
    distill(tiny_bert, again, source={"name": "tiny-bert"})
    first = json.loads((static_dir / MANIFEST).read_text())["files"]
    assert json.loads((again / MANIFEST).read_text())["files"] == first  # same bytes
    encoder = load_encoder(str(static_dir))
    together = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-6)


def test_the_manifest_records_source_settings_and_vocabulary(static_dir, tiny_bert):
    manifest = json.loads((static_dir / MANIFEST).read_text())
    assert manifest["source"]["name"] == "tiny-bert"
    assert manifest["source"]["path"] == str(tiny_bert)
    assert len(manifest["source"]["weights"]["model.safetensors"]) == 64  # a sha256
    assert manifest["settings"] == DistillSettings().recorded()
    assert (
        manifest["settings"]["pca_dims"] == 256 and manifest["settings"]["sif_coefficient"] == 1e-4
    )
    assert manifest["libraries"]["model2vec"] and manifest["libraries"]["transformers"]
    # [unused0..3], [MASK], [CLS] and [SEP] are left out; [PAD] and [UNK] keep a vector.
    assert manifest["result"]["removed_tokens"] == 7
    tokenizer = json.loads((static_dir / "tokenizer.json").read_text())
    vocab = tokenizer["model"]["vocab"]
    assert manifest["result"]["vocabulary_size"] == len(vocab)
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert not any(t.startswith("[unused") for t in vocab)
    assert not {"[MASK]", "[CLS]", "[SEP]"} & set(vocab) and {"[PAD]", "[UNK]"} <= set(vocab)
    assert tokenizer["post_processor"] is None


def test_frequent_tokens_weigh_less_and_pca_is_sign_stable():
    w = zipf_sif_weights(1000, 1e-4)
    assert np.all(np.diff(w) > 0) and 0 < w[0] < w[-1] < 1
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)) * np.arange(8, 0, -1)  # variance falls along the axes
    scores, explained = pca(x, 3)
    flipped, _ = pca(-x, 3)
    assert scores.shape == (200, 3) and 0 < explained < 1
    np.testing.assert_allclose(scores, flipped, atol=1e-9)  # the sign rule, not chance
    assert np.var(scores[:, 0]) > np.var(scores[:, 1]) > np.var(scores[:, 2])


def test_bad_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="sif_coefficient"):
        DistillSettings(sif_coefficient=1.5)
    with pytest.raises(ValueError, match="pca_dims"):
        DistillSettings(pca_dims=0)


def test_loading_a_static_model_does_not_import_torch(static_dir):
    code = (
        "import sys; from quality.embeddings import load_encoder; "
        f"load_encoder({str(static_dir)!r}).encode(['hello world']); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.split() == ["False", "False"]
