"""infra.ray_env: a job without RAY_ADDRESS starts its own Ray, whatever else is on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from infra.config import ConfigError
from infra.ray_env import object_store_bytes

ROOT = Path(__file__).resolve().parents[2]

START_AND_COUNT = """
import ray
from infra.ray_env import init_ray
init_ray(num_cpus=1)
print("cpus", int(ray.cluster_resources()["CPU"]))
ray.shutdown()
"""


@pytest.mark.ray
def test_a_stale_ray_current_cluster_file_does_not_capture_a_local_job():
    # `ray start` records its address in $RAY_TMPDIR/ray/ray_current_cluster and a killed
    # cluster leaves the file behind; plain ray.init() would try to join that address.
    # A short directory: Ray's unix socket paths under it must stay under 108 bytes.
    # Ray processes still exiting may write into it while it is removed.
    with tempfile.TemporaryDirectory(prefix="rt", dir="/tmp", ignore_cleanup_errors=True) as tmp:
        (Path(tmp) / "ray").mkdir()
        (Path(tmp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:9\n")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["RAY_TMPDIR"] = tmp
        proc = subprocess.run(
            [sys.executable, "-c", START_AND_COUNT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cpus 1" in proc.stdout


def test_a_local_ray_gets_a_tenth_of_memory_for_its_object_store():
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert object_store_bytes({}) == max(2**29, int(total * 0.1))


def test_the_object_store_size_can_be_set_or_left_to_ray():
    assert object_store_bytes({"FINESIFT_OBJECT_STORE_MEMORY": "4000000000"}) == 4_000_000_000
    assert object_store_bytes({"FINESIFT_OBJECT_STORE_MEMORY": "ray"}) is None
    assert object_store_bytes({"RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION": "0.3"}) is None


@pytest.mark.parametrize("value", ["4GB", "1000", "-5"])
def test_a_bad_object_store_size_names_the_setting_and_the_fix(value):
    with pytest.raises(ConfigError, match="FINESIFT_OBJECT_STORE_MEMORY=.*set e.g. 4000000000"):
        object_store_bytes({"FINESIFT_OBJECT_STORE_MEMORY": value})
