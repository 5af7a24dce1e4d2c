"""infra.ray_env: a job without RAY_ADDRESS starts its own Ray, whatever else is on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

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
