"""Model names both ways: NAME and BASE:NAME on either backend, and on the client."""

from __future__ import annotations

import pytest

from serving.errors import ApiError
from serving.model_names import adapter_of, qualified, served_name


def test_finesift_backend_reads_both_forms():
    assert adapter_of("base", "base") == ""
    assert adapter_of("smol-demo", "base") == "smol-demo"
    assert adapter_of("base:smol-demo", "base") == "smol-demo"


@pytest.mark.parametrize("model", ["base:", "base:../x", "base:a:b", "base:/etc/passwd"])
def test_what_follows_base_colon_must_be_an_adapter_name(model):
    with pytest.raises(ApiError) as caught:
        adapter_of(model, "base")
    assert caught.value.status == 400 and caught.value.code == "invalid_model_name"


def test_another_base_model_is_a_404_naming_this_servers_base():
    with pytest.raises(ApiError) as caught:
        adapter_of("llama:smol-demo", "base")
    assert caught.value.status == 404 and caught.value.code == "model_not_found"
    assert "'llama'" in caught.value.message and "base:ADAPTER" in caught.value.message


def test_ray_form_for_bare_adapter_names():
    assert qualified("smol-demo", ["base"]) == "base:smol-demo"
    assert qualified("base", ["base"]) == "base"
    assert qualified("base:smol-demo", ["base"]) == "base:smol-demo"
    assert qualified(None, ["base"]) is None
    assert qualified("smol-demo", ["a", "b"]) == "smol-demo"  # ambiguous: left to Ray


@pytest.mark.parametrize(
    ("name", "served", "expected"),
    [
        # finesift backend lists bare names
        ("smol-demo", ["base", "smol-demo"], "smol-demo"),
        ("base:smol-demo", ["base", "smol-demo"], "smol-demo"),
        # Ray Serve LLM lists base_model_id:lora_id
        ("smol-demo", ["base", "base:smol-demo"], "base:smol-demo"),
        ("base:smol-demo", ["base", "base:smol-demo"], "base:smol-demo"),
        ("base", ["base", "base:smol-demo"], "base"),
        # unknown or ambiguous: sent as given, the server answers
        ("nope", ["base", "base:smol-demo"], "nope"),
        ("x", ["a:x", "b:x"], "x"),
    ],
)
def test_client_maps_a_name_onto_what_the_server_lists(name, served, expected):
    assert served_name(name, served) == expected
