"""Connecting to Ray: an existing cluster when RAY_ADDRESS is set, else an embedded local Ray."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

OBJECT_STORE_SHARE = 0.1
"""A local Ray's object store, as a share of the machine's memory (Ray's own default is
0.3 of the memory free at start). Every stage of curate materializes its output, and Ray
Data keeps as many blocks in flight as the store allows: curating a million rows on a
24 GiB machine, the processes held 11.4 GB with Ray's default and 6.6 GB at 0.1, the rest
spilled to disk (BENCHMARKS.md)."""


def init_ray(num_cpus: int | None = None) -> None:
    """Start or join Ray once per process.

    Jobs connect to ``RAY_ADDRESS`` when it is set (a cluster, or ``auto`` inside a Ray
    job); otherwise they start a local Ray with no dashboard. A session that is already
    initialized (tests, notebooks) is reused.

    Args:
        num_cpus: CPUs for a new local Ray; None lets Ray count them.

    A new local Ray gets an object store of :func:`object_store_bytes`.
    """
    import ray

    _quiet_ray_data()
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        # "local" rather than None: with no address Ray joins whatever cluster
        # /tmp/ray/ray_current_cluster names (a `ray start` left running, or a stale file),
        # and RAY_ADDRESS is how a user asks for that.
        ray.init(
            address="local",
            num_cpus=num_cpus,
            object_store_memory=object_store_bytes(),
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )


def object_store_bytes(environ: Mapping[str, str] | None = None) -> int | None:
    """Object store size for a new local Ray, in bytes.

    ``FINESIFT_OBJECT_STORE_MEMORY`` sets it in bytes; set to ``ray``, or with Ray's own
    ``RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION`` set, Ray sizes it (None). Otherwise
    :data:`OBJECT_STORE_SHARE` of the machine's memory (a container's limit when it has
    one), at least 512 MiB, and no more than /dev/shm holds (Ray's own cap: past 10 GB a
    store larger than /dev/shm is an error, below it Ray falls back to a slower disk).
    """
    from infra.config import ConfigError

    env = os.environ if environ is None else environ
    value = env.get("FINESIFT_OBJECT_STORE_MEMORY", "").strip()
    ray_sizes = not value and "RAY_DEFAULT_OBJECT_STORE_MEMORY_PROPORTION" in env
    if value.lower() == "ray" or ray_sizes:
        return None
    if value:
        try:
            size = int(float(value))
        except (ValueError, OverflowError):
            size = 0
        if size < 2**26:
            raise ConfigError(
                f"FINESIFT_OBJECT_STORE_MEMORY={value!r} is not a size in bytes of at least "
                "64 MiB: set e.g. 4000000000, or `ray` for Ray's own default"
            )
        return size
    size = max(2**29, int(memory_bytes() * OBJECT_STORE_SHARE))
    shm = shared_memory_bytes()
    if shm is not None:
        size = min(size, max(10**10, int(shm * 0.95)))
    return size


def memory_bytes() -> int:
    """The machine's memory, or the cgroup's limit (v2 or v1) when a container has a
    lower one."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            limit = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if limit.isdigit():
            total = min(total, int(limit))
    return total


def shared_memory_bytes() -> int | None:
    """Free bytes in /dev/shm, where Ray's object store lives on Linux; None without it."""
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return None
    return stats.f_bsize * stats.f_bavail


def _quiet_ray_data() -> None:
    """Progress bars on a terminal; in logs and CI, only finesift's own stage lines."""
    from ray.data import DataContext

    interactive = sys.stderr.isatty()
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = interactive
    ctx.print_on_execution_start = False
    if not interactive:
        logging.getLogger("ray.data").setLevel(logging.WARNING)


def largest_node_cpus() -> int:
    """CPUs of the biggest alive node: an actor or worker can never use more than that."""
    import ray

    cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    return max(1, int(max(cpus, default=1)))


def assigned_cpus() -> int:
    """CPUs Ray reserved for the calling task or actor, or 0 outside a Ray worker (the
    driver, or no Ray at all).

    Actors use it to size their thread pools to what the runner reserved for them.
    """
    import ray

    if not ray.is_initialized():
        return 0
    try:
        assigned = ray.get_runtime_context().get_assigned_resources()
    except AssertionError:  # Ray's answer on a driver: only workers have assignments
        return 0
    return int(assigned.get("CPU", 0))
