"""Dynamic batching for generation: requests that arrive while a batch runs form the next one.

Why not ``@serve.batch``: it cuts a new batch ``batch_wait_timeout_s`` after the first
queued request even while the previous batch is still generating, so under load the
queue is sliced into many small batches that then wait for each other (measured on
SmolLM2: mostly batches of 1-2 at concurrency 8 and 32). Generation takes seconds, so
the right moment to cut a batch is when the engine becomes free: everything queued by
then (up to ``max_batch_size``, one adapter per batch) goes together.

Two waits fill a short batch. A request that finds the engine idle waits ``wait_s`` for
company (as ``@serve.batch`` does). And a freed engine waits up to ``refill_s`` for the
callers of the batch that just ended: they are usually about to send their next request,
and without this pause a closed loop of 8 clients settles into alternating batches of,
say, 5 and 3 forever (measured: 0.61 vs 0.89 requests/s at concurrency 8). The refill
wait ends as soon as the queue holds as many requests as were waiting when the batch
ended plus as many as it answered on its last step, so a lone caller (concurrency 1)
never pays it. It also ends after a quiet gap of ``refill_s / 4`` with no new request of
the batch's group (counted from when the engine freed or from the latest such arrival,
whichever is later): with several replicas Serve's router sends some of the callers
elsewhere, and waiting for them held every batch for the full ``refill_s``. So the wait
lasts while callers keep coming back, never more than ``refill_s``, and callers split
across replicas cost one gap per batch, small next to generation, which takes seconds.
(Simulated, 2 replicas, 8 closed-loop clients, 0.2 s batches: 37 requests/s without the
refill wait, 13 waiting the full 0.5 s, 23 with the gap.)

A running batch also takes queued requests of its group between decoding steps
(:meth:`Batcher.admit`), so the waits above matter only when a batch starts: at the start
of a load, for another adapter, or after every row of a batch ended on the same step.

Pure asyncio, no Ray: the generator deployment plugs in the function that runs a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """One queued request.

    Attributes:
        payload: what the batch function needs (GenParams in the generator).
        group: requests batch only with their own group (the adapter name; "" is base).
        future: resolved with the request's result (whole answers).
        deltas: receives streamed pieces (streamed answers), or the exception if
            ``run_batch`` raised; None when not streaming.
        arrived: monotonic arrival time.
    """

    payload: Any
    group: str
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    deltas: asyncio.Queue | None = None
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    """Runs queued requests in batches, one batch at a time, oldest group first.

    Args:
        run_batch: ``await run_batch(group, batch)`` generates a batch and resolves each
            request's future (and feeds its deltas); it may take more requests of its
            group with :meth:`admit` while it runs. It returns how many requests it
            answered at its very end (their callers may be about to send the next one),
            or None for all of ``batch``. It must not raise; if it does, its unanswered
            requests get the exception (in their future and, when streaming, in their
            deltas queue) and the batcher carries on.
        max_batch_size: most requests per batch.
        wait_s: how long a request that finds the engine idle waits for company.
        refill_s: how long a freed engine waits for the callers of its last batch; the
            wait also ends after ``refill_s / 4`` without a new request of that group.
    """

    def __init__(
        self,
        run_batch: Callable[[str, list[Pending]], Awaitable[None]],
        max_batch_size: int,
        wait_s: float,
        refill_s: float = 0.0,
    ) -> None:
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.refill_s = refill_s
        self.sizes: Counter[int] = Counter()
        self._queue: list[Pending] = []
        self._arrival = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._freed = 0.0  # monotonic time the last batch ended
        self._expected = 0  # queued when the last batch ended, plus its callers coming back
        self._last_group = ""
        self._running: list[Pending] = []  # the running batch's requests, admitted ones too

    def submit(self, pending: Pending) -> Pending:
        """Queue a request (starting the batching loop on first use)."""
        self._queue.append(pending)
        self._arrival.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return pending

    async def _loop(self) -> None:
        while True:
            while not self._queue:
                self._arrival.clear()
                await self._arrival.wait()
            group = self._queue[0].group
            while (deadline := self._deadline(group)) is not None:
                self._arrival.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrival.wait(), deadline - time.monotonic())
            batch = self._take(group, self.max_batch_size)
            self.sizes[len(batch)] += 1
            self._last_group = group
            self._running = list(batch)
            answered_last: int | None = len(batch)
            try:
                answered_last = await self.run_batch(group, batch)
            except Exception as exc:  # the loop must survive any batch
                log.exception("batch failed")
                for pending in self._running:
                    if pending.future.done():
                        continue
                    if pending.deltas is None:
                        pending.future.set_exception(exc)
                    else:  # a streaming caller reads only its queue; nobody awaits the future
                        pending.deltas.put_nowait(exc)
                        pending.future.cancel()  # (an exception set there would be logged
                        # as "never retrieved" when the future is collected)
            self._running = []
            self._freed = time.monotonic()
            callers = len(batch) if answered_last is None else answered_last
            self._expected = callers + self._count(group)

    def admit(self, group: str, room: int) -> list[Pending]:
        """Queued requests that may join ``group``'s running batch now, oldest first.

        At most ``room``, and only those queued before any request of another group: once
        another group's request is the oldest, the running batch gets no more and drains,
        so a busy adapter cannot starve the others.
        """
        if room <= 0 or not self._queue or self._queue[0].group != group:
            return []
        ahead = next((i for i, p in enumerate(self._queue) if p.group != group), len(self._queue))
        batch = self._take(group, min(room, ahead))
        self._running += batch
        return batch

    def _deadline(self, group: str) -> float | None:
        """When to stop waiting for more requests of ``group``; None to cut the batch now."""
        queued = self._count(group)
        if queued >= self.max_batch_size:
            return None
        deadline = self._queue[0].arrived + self.wait_s
        if group == self._last_group and queued < self._expected:
            # The callers of the last batch (same adapter) may not be back yet; wait while
            # they keep coming, since after a quiet gap the rest went to another replica.
            quiet_since = max(self._freed, self._latest_arrival(group))
            refill_end = min(self._freed + self.refill_s, quiet_since + self.refill_s / 4)
            deadline = max(deadline, refill_end)
        return deadline if time.monotonic() < deadline else None

    def _count(self, group: str) -> int:
        return sum(1 for p in self._queue if p.group == group)

    def _latest_arrival(self, group: str) -> float:
        return max(p.arrived for p in self._queue if p.group == group)

    def _take(self, group: str, most: int) -> list[Pending]:
        """Remove and return up to ``most`` queued requests of ``group``, oldest first."""
        batch, rest = [], []
        for pending in self._queue:
            if pending.group == group and len(batch) < most:
                batch.append(pending)
            else:
                rest.append(pending)
        self._queue = rest
        return batch
