"""The score cache: keyed by content and model, persistent across instances."""

from __future__ import annotations

from quality.score_cache import ScoreCache, default_cache_path, score_key


def test_key_depends_on_every_part():
    base = score_key("ifd:max_length=512", "model-a", "prompt", "response")
    assert base == score_key("ifd:max_length=512", "model-a", "prompt", "response")
    others = {
        score_key("ifd:max_length=256", "model-a", "prompt", "response"),
        score_key("ifd:max_length=512", "model-b", "prompt", "response"),
        score_key("ifd:max_length=512", "model-a", "prompt!", "response"),
        score_key("ifd:max_length=512", "model-a", "prompt", "response!"),
        score_key("ifd:max_length=512", "model-a", "promptr", "esponse"),  # no ambiguous join
    }
    assert base not in others and len(others) == 5


def test_values_survive_a_new_instance(tmp_path):
    path = tmp_path / "cache" / "scores.sqlite"
    cache = ScoreCache(path)
    cache.put_many({"a": {"ifd": 0.5}, "b": {"ifd": 1.2, "perplexity": 30.0}})
    cache.close()

    again = ScoreCache(path)
    found = again.get_many(["a", "b", "c"])
    assert found == {"a": {"ifd": 0.5}, "b": {"ifd": 1.2, "perplexity": 30.0}}
    assert (again.hits, again.misses) == (2, 1)
    assert len(again) == 2


def test_default_path_is_under_finesift_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FINESIFT_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "score_cache.sqlite"
