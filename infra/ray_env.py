"""Connecting to Ray: an existing cluster when RAY_ADDRESS is set, else an embedded local Ray."""

from __future__ import annotations

import logging
import os
import sys


def init_ray(num_cpus: int | None = None) -> None:
    """Start or join Ray once per process.

    Jobs connect to ``RAY_ADDRESS`` when it is set (a cluster, or ``auto`` inside a Ray
    job); otherwise they start a local Ray with no dashboard. A session that is already
    initialized (tests, notebooks) is reused.

    Args:
        num_cpus: CPUs for a new local Ray; None lets Ray count them.
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
            include_dashboard=False,
            logging_level=logging.WARNING,
            configure_logging=True,
        )


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
