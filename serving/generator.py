"""The generator deployment: one base model, adapters attached on demand, batched generation.

Adapters load through ``@serve.multiplexed`` (an LRU of ``max_adapters_per_replica`` per
replica), so Serve routes a request to a replica that already holds its adapter and
splits batches so each one uses a single adapter. Every batch runs ``generate`` in a
worker thread, so the replica's event loop keeps answering health checks and queueing
the next batch; a failed batch answers its callers with an error and the replica keeps
serving.
"""

import asyncio
import logging
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ray import serve

from serving.adapters import resolve_adapter
from serving.protocol import ApiError
from serving.sampling import GenParams, RowResult, StreamDelta

log = logging.getLogger("ray.serve")


def error_from(exc: BaseException) -> RowResult:
    """A failed generation as a result the ingress turns into a JSON error."""
    if isinstance(exc, ApiError):
        return RowResult(error=exc.message, status=exc.status, code=exc.code)
    from serving.engine import AdapterLoadError

    if isinstance(exc, AdapterLoadError):
        return RowResult(error=str(exc), status=500, code="adapter_load_failed")
    return RowResult(
        error=f"generation failed: {type(exc).__name__}: {exc}", code="generation_failed"
    )


class AdapterSlot:
    """What the multiplexed loader returns: an attached adapter, detached when evicted.

    Serve calls ``__del__`` when the LRU evicts it; detaching then waits for a moment
    when no batch is using the adapter (see ``GenerationEngine.retire``).
    """

    def __init__(self, engine: Any, name: str, path: Path) -> None:
        self.engine, self.name, self.path = engine, name, path
        self._retired = False

    def __del__(self) -> None:
        if not self._retired:  # Serve calls this on eviction, Python again on collection
            self._retired = True
            self.engine.retire(self.name)


@serve.deployment(name="Generator")
class Generator:
    """Holds the base model and its attached adapters; generates batches for one adapter.

    Args:
        model_dir: local base model directory.
        adapters_dir: directory of adapters (listed again on every miss).
        dtype: weights dtype name (see ServeConfig.dtype).
        num_cpus: CPUs reserved for this replica; torch uses this many threads on CPU.
        num_gpus: GPUs reserved for this replica.
        max_batch_size: most requests per batch.
        batch_wait_timeout_s: how long a batch waits to fill.
        max_adapters: adapters kept attached per replica (LRU).
    """

    def __init__(
        self,
        model_dir: str,
        adapters_dir: str,
        dtype: str,
        num_cpus: float,
        num_gpus: float,
        max_batch_size: int,
        batch_wait_timeout_s: float,
        max_adapters: int,
    ) -> None:
        import torch

        from serving.engine import GenerationEngine, pick_device

        device = pick_device(num_gpus)
        if device == "cpu":
            # Without this a Serve actor gets one thread (Ray sets OMP_NUM_THREADS=1).
            torch.set_num_threads(max(1, int(num_cpus)))
        self.engine = GenerationEngine(model_dir, dtype=dtype, device=device)
        self.adapters_dir = adapters_dir
        self.batch_sizes: Counter[int] = Counter()
        for method in (self.complete, self._stream_batch):
            method.set_max_batch_size(max_batch_size)
            method.set_batch_wait_timeout_s(batch_wait_timeout_s)

        async def load_adapter(model_id: str) -> AdapterSlot:
            return await self._load_adapter(model_id)

        self._load = serve.multiplexed(max_num_models_per_replica=max_adapters)(load_adapter)

    async def _load_adapter(self, name: str) -> AdapterSlot:
        """Attach adapter ``name`` from the adapters directory (validated by listing it)."""
        entry = resolve_adapter(name, self.adapters_dir)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.engine.attach, name, entry.path)
        return AdapterSlot(self.engine, name, entry.path)

    async def _adapter(self) -> tuple[str, Path] | None:
        """(name, path) of this batch's adapter, loaded if needed; None for the base model."""
        name = serve.get_multiplexed_model_id()
        if not name:
            return None
        slot = await self._load(name)
        return slot.name, slot.path

    async def info(self) -> dict[str, Any]:
        """Attached adapters, torch threads, batch sizes seen and memory, for checks and bench."""
        import psutil
        import torch

        return {
            "attached": self.engine.attached,
            "threads": torch.get_num_threads(),
            "batch_sizes": dict(self.batch_sizes),
            "pid": os.getpid(),
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
        }

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def complete(self, requests: list[GenParams]) -> list[RowResult]:
        """Generate a batch of whole answers (batch size and wait come from the config)."""
        self.batch_sizes[len(requests)] += 1
        try:
            adapter = await self._adapter()
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self.engine.generate, requests, adapter)
        except Exception as exc:  # the replica keeps serving; the callers get the error
            log.exception("generation failed")
            return [error_from(exc)] * len(requests)

    async def stream(self, params: GenParams) -> AsyncIterator[StreamDelta]:
        """Stream one request's answer as StreamDelta objects (batched with its neighbours)."""
        # Serve streams only from methods that are async generators themselves; the
        # @serve.batch wrapper of a generator is a plain function returning one.
        async for delta in self._stream_batch(params):
            yield delta

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.01)
    async def _stream_batch(self, requests: list[GenParams]) -> AsyncIterator[list[Any]]:
        """Generate a batch, yielding each row's new text after every decoding step.

        Yields one list per step with a StreamDelta per row; a row that has finished
        gets StopAsyncIteration, which ends that caller's stream.
        """
        n = len(requests)
        self.batch_sizes[n] += 1
        try:
            adapter = await self._adapter()
        except Exception as exc:
            err = error_from(exc)
            yield [StreamDelta(error=err.error, status=err.status, code=err.code)] * n
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[StreamDelta] | None] = asyncio.Queue()

        def on_step(states: list[Any]) -> None:
            deltas = [StreamDelta(s.take_delta(), s.finish_reason, s.generated) for s in states]
            loop.call_soon_threadsafe(queue.put_nowait, deltas)

        def run() -> list[RowResult]:
            try:
                return self.engine.generate(requests, adapter, on_step)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = loop.run_in_executor(None, run)
        finished = [False] * n
        while (deltas := await queue.get()) is not None:
            out: list[Any] = []
            for i, delta in enumerate(deltas):
                out.append(StopAsyncIteration if finished[i] else delta)
                finished[i] = finished[i] or delta.finish_reason is not None
            yield out
        try:
            await task
        except Exception as exc:
            log.exception("streaming generation failed")
            err = error_from(exc)
            failed = StreamDelta(error=err.error, status=err.status, code=err.code)
            yield [StopAsyncIteration if done else failed for done in finished]
