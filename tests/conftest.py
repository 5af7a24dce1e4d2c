"""Shared fixtures: tiny models built from config, and a session-scoped local Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests (hypothesis): a bounded profile by default (CI, `make test`) and a
# long one for `make test-all` (HYPOTHESIS_PROFILE=full). No deadline: a shared 2-core
# machine makes timings noisy. A failure prints its seed and a @reproduce_failure blob.
_FUZZ = {"deadline": None, "print_blob": True, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=40, **_FUZZ)
settings.register_profile("full", max_examples=1500, **_FUZZ)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer Llama with hidden size 32 and its chat tokenizer, saved once per session."""
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every ray-marked test of the session."""
    import ray

    for attempt in range(3):  # a loaded machine can miss Ray's node-startup deadline
        if ray.is_initialized():
            break
        try:
            # "local": a new Ray even when a `ray start` cluster (or the stale
            # /tmp/ray/ray_current_cluster it leaves) is on this machine.
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a clean skip when this checkout does not have it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent (real datasets are only beside the dev checkout)")
    return SHARED_DATA
