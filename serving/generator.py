"""The generator deployment: one base model, adapters attached on demand, batched generation.

Adapters load through ``@serve.multiplexed`` (an LRU of ``max_adapters_per_replica`` per
replica), so Serve routes a request to a replica that already holds its adapter. Requests
are batched per adapter by :class:`serving.batcher.Batcher` (see there why not
``@serve.batch``). A batch is decoded a step at a time, each step in a worker thread so
the replica's event loop keeps answering health checks and queueing requests. Between
steps, finished rows are answered at once (their callers need not wait for the batch's
longest row) and queued requests of the same adapter join the batch, so a closed loop of
clients keeps the batch full instead of waiting for each other (serving/decoding.py). A
failed batch answers its callers with an error and the replica keeps serving, and a
request that fails on its own (a bad seed, a sampling or decoding error) is answered with
its error alone while the rest of its batch decodes on.
"""

import asyncio
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from ray import serve

from serving.adapters import resolve_adapter
from serving.batcher import Batcher, Pending
from serving.errors import ApiError, redact_paths
from serving.sampling import GenParams, RowResult, RowState, StreamDelta

log = logging.getLogger("ray.serve")


def error_from(exc: BaseException) -> RowResult:
    """A failed generation as a result the ingress turns into a JSON error."""
    if isinstance(exc, ApiError):
        return RowResult(error=exc.message, status=exc.status, code=exc.code)
    from serving.engine import AdapterLoadError

    if isinstance(exc, AdapterLoadError):
        return RowResult(error=redact_paths(str(exc)), status=500, code="adapter_load_failed")
    return RowResult(
        error=redact_paths(f"generation failed: {type(exc).__name__}: {exc}"),
        code="generation_failed",
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
        batch_wait_timeout_s: how long a request that finds the engine idle waits for company.
        refill_timeout_s: how long a freed engine waits for the callers of its last batch.
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
        refill_timeout_s: float,
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
        self.batcher = Batcher(
            self._run_batch, max_batch_size, batch_wait_timeout_s, refill_timeout_s
        )
        self.step_rows: Counter[int] = Counter()  # decoding steps by rows in the batch
        self.step_seconds: Counter[int] = Counter()  # their wall time, by rows in the batch

        async def load_adapter(model_id: str) -> AdapterSlot:
            return await self._load_adapter(model_id)

        self._load = serve.multiplexed(max_num_models_per_replica=max_adapters)(load_adapter)

    async def _load_adapter(self, name: str) -> AdapterSlot:
        """Attach adapter ``name`` from the adapters directory (validated by listing it;
        fetched first, off the event loop, when the directory is a store URI)."""
        loop = asyncio.get_running_loop()
        entry = await loop.run_in_executor(None, resolve_adapter, name, self.adapters_dir)
        await loop.run_in_executor(None, self.engine.attach, name, entry.path)
        return AdapterSlot(self.engine, name, entry.path)

    async def info(self) -> dict[str, Any]:
        """Attached adapters, torch threads, batch sizes seen and memory, for checks and bench."""
        import psutil
        import torch

        return {
            "attached": self.engine.attached,
            "threads": torch.get_num_threads(),
            "batch_sizes": dict(self.batcher.sizes),
            "step_rows": dict(self.step_rows),
            "step_seconds": dict(self.step_seconds),
            "pid": os.getpid(),
            "rss_mb": psutil.Process().memory_info().rss / 2**20,
        }

    async def complete(self, params: GenParams) -> RowResult:
        """Generate one whole answer, batched with the requests around it."""
        pending = self.batcher.submit(Pending(params, serve.get_multiplexed_model_id()))
        return await pending.future

    async def stream(self, params: GenParams) -> AsyncIterator[StreamDelta]:
        """Stream one answer as StreamDelta objects, batched with the requests around it."""
        deltas: asyncio.Queue[StreamDelta | BaseException] = asyncio.Queue()
        self.batcher.submit(Pending(params, serve.get_multiplexed_model_id(), deltas=deltas))
        while True:
            delta = await deltas.get()
            if isinstance(delta, BaseException):  # the batch failed outside _run_batch's care
                yield _error_delta(error_from(delta))
                return
            yield delta
            if delta.finish_reason or delta.error:
                return

    async def _run_batch(self, adapter_name: str, batch: list[Pending]) -> int:
        """Decode one adapter's batch ("" is the base model) until it is empty.

        Each request is answered on the step its row finishes; between steps queued
        requests of the adapter join (up to ``max_batch_size`` rows). Never raises: a
        failure (adapter load, a step) is answered as an error result to every request it
        affects, so the replica keeps serving.

        Returns:
            How many requests the last step answered (see ``Batcher``'s refill wait).
        """
        loop = asyncio.get_running_loop()
        try:
            adapter = None
            if adapter_name:
                slot = await self._load(adapter_name)
                adapter = (slot.name, slot.path)
            decoding = await loop.run_in_executor(None, self.engine.open, adapter)
        except Exception as exc:
            log.exception("generation failed")
            for pending in batch:
                _answer(pending, error_from(exc))
            return len(batch)
        live: dict[RowState, Pending] = {}
        joining, finished = batch, []
        try:
            while joining or live:
                joined = self._rows(joining)
                live.update(joined)
                started = time.perf_counter()
                finished = await loop.run_in_executor(None, decoding.advance, list(joined))
                self.step_seconds[len(live)] += time.perf_counter() - started
                self.step_rows[len(live)] += 1
                for row, pending in live.items():
                    _stream(pending, row)
                for row in finished:
                    _answer(live.pop(row), row.result())
                room = self.batcher.max_batch_size - len(live)
                joining = self.batcher.admit(adapter_name, room) if decoding.can_join else []
        except Exception as exc:  # joining requests are in live by now
            log.exception("generation failed")
            for pending in live.values():
                _answer(pending, error_from(exc))
            return len(live)
        finally:
            await loop.run_in_executor(None, decoding.close)
        return len(finished)

    def _rows(self, joining: list[Pending]) -> dict[RowState, Pending]:
        """A row for each joining request; one that cannot have a row is answered with
        the error alone (the others still join)."""
        rows: dict[RowState, Pending] = {}
        for pending in joining:
            try:
                rows[self.engine.row(pending.payload)] = pending
            except Exception as exc:
                log.exception("a request could not join the batch")
                _answer(pending, error_from(exc))
        return rows


def _stream(pending: Pending, row: RowState) -> None:
    """Send a streaming request the text its row can no longer take back, and its end."""
    if pending.deltas is None or row.failure is not None:  # a failure ends it in _answer
        return
    delta = StreamDelta(row.take_delta(), row.finish_reason, row.generated)
    if delta.text or delta.finish_reason:
        pending.deltas.put_nowait(delta)


def _answer(pending: Pending, result: RowResult) -> None:
    """Resolve a request; a stream already got its normal end from :func:`_stream`."""
    if not pending.future.done():
        pending.future.set_result(result)
    if pending.deltas is not None and result.error:
        pending.deltas.put_nowait(_error_delta(result))


def _error_delta(result: RowResult) -> StreamDelta:
    """The delta that ends a stream with the error of a failed generation."""
    return StreamDelta(error=result.error, status=result.status, code=result.code)
