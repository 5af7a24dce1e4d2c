"""The batcher: batches cut when the engine is free, one group per batch (no Ray, no model)."""

from __future__ import annotations

import asyncio
import time

import pytest

from serving.batcher import Batcher, Pending


class FakeEngine:
    """Records batches; each one takes ``seconds`` and answers with the payloads."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.batches: list[tuple[str, list]] = []

    async def run(self, group: str, batch: list[Pending]) -> None:
        self.batches.append((group, [p.payload for p in batch]))
        await asyncio.sleep(self.seconds)
        for p in batch:
            p.future.set_result(f"{group}:{p.payload}")


def test_requests_queued_behind_a_running_batch_form_one_full_batch():
    async def main() -> list:
        engine = FakeEngine(seconds=0.2)
        batcher = Batcher(engine.run, max_batch_size=4, wait_s=0.0)
        first = batcher.submit(Pending(0, ""))
        await asyncio.sleep(0.05)  # the first batch is running now
        later = []
        for i in range(1, 7):  # arrive one by one while it runs
            later.append(batcher.submit(Pending(i, "")))
            await asyncio.sleep(0.01)
        await asyncio.gather(first.future, *(p.future for p in later))
        return engine.batches

    batches = asyncio.run(main())
    assert [b for _, b in batches] == [[0], [1, 2, 3, 4], [5, 6]]


def test_batches_never_mix_adapters_and_oldest_goes_first():
    async def main() -> tuple[list, list]:
        engine = FakeEngine(seconds=0.1)
        batcher = Batcher(engine.run, max_batch_size=8, wait_s=0.0)
        busy = batcher.submit(Pending("x", "base"))
        await asyncio.sleep(0.02)
        queued = [batcher.submit(Pending(i, g)) for i, g in enumerate("aabab")]
        answers = await asyncio.gather(busy.future, *(p.future for p in queued))
        return engine.batches, answers

    batches, answers = asyncio.run(main())
    assert batches == [("base", ["x"]), ("a", [0, 1, 3]), ("b", [2, 4])]
    assert answers[1:] == ["a:0", "a:1", "b:2", "a:3", "b:4"]


def test_a_lone_request_waits_for_company_at_most_wait_s():
    async def main() -> tuple[float, list]:
        engine = FakeEngine(seconds=0.0)
        batcher = Batcher(engine.run, max_batch_size=4, wait_s=0.1)
        start = time.monotonic()
        first = batcher.submit(Pending(0, ""))
        await asyncio.sleep(0.03)
        second = batcher.submit(Pending(1, ""))
        await asyncio.gather(first.future, second.future)
        return time.monotonic() - start, engine.batches

    elapsed, batches = asyncio.run(main())
    assert batches == [("", [0, 1])]  # the second arrived within the wait
    assert 0.09 <= elapsed < 1.0


def test_a_failing_batch_fails_its_requests_and_the_batcher_carries_on():
    async def main() -> str:
        calls = []

        async def run(group: str, batch: list[Pending]) -> None:
            calls.append(len(batch))
            if len(calls) == 1:
                raise RuntimeError("boom")
            for p in batch:
                p.future.set_result("ok")

        batcher = Batcher(run, max_batch_size=2, wait_s=0.0)
        bad = batcher.submit(Pending(0, ""))
        with pytest.raises(RuntimeError, match="boom"):
            await bad.future
        return await batcher.submit(Pending(1, "")).future

    assert asyncio.run(main()) == "ok"


def test_a_closed_loop_of_clients_settles_into_full_batches():
    """Staggered starts split the first requests into two batches; the refill wait after
    each batch lets its callers' next requests join the queued ones instead of alternating."""

    async def client(batcher: Batcher, start: float, rounds: int) -> None:
        await asyncio.sleep(start)
        for i in range(rounds):
            await batcher.submit(Pending(i, "")).future
            await asyncio.sleep(0.005)  # the caller's round trip before its next request

    async def main() -> list[int]:
        engine = FakeEngine(seconds=0.05)
        batcher = Batcher(engine.run, max_batch_size=8, wait_s=0.03, refill_s=0.5)
        await asyncio.gather(*(client(batcher, 0.01 * i, rounds=5) for i in range(8)))
        return [len(b) for _, b in engine.batches]

    sizes = asyncio.run(main())
    assert sum(sizes) == 40
    assert sizes[0] < 8  # the staggered start did split the first requests
    # Then full batches; only the last is short (the first starters finished a round ahead).
    assert sizes[2:-1] == [8] * (len(sizes) - 3) and len(sizes) <= 6


def test_the_refill_wait_ends_when_the_callers_are_back_and_is_capped():
    async def main() -> tuple[list[float], float, list]:
        engine = FakeEngine(seconds=0.0)
        batcher = Batcher(engine.run, max_batch_size=8, wait_s=0.0, refill_s=0.5)
        lone = []  # concurrency 1: each request's caller is the whole last batch
        for i in range(3):
            start = time.monotonic()
            await batcher.submit(Pending(i, "")).future
            lone.append(time.monotonic() - start)
        await asyncio.gather(*(batcher.submit(Pending(i, "")).future for i in range(3)))
        start = time.monotonic()  # only 1 of the last batch's 3 callers comes back
        await batcher.submit(Pending("late", "")).future
        return lone, time.monotonic() - start, engine.batches

    lone, late, batches = asyncio.run(main())
    assert max(lone) < 0.25  # far below refill_s: a lone caller never waits for it
    assert 0.3 < late < 2.0  # waited for the missing callers, then gave up
    assert [len(b) for _, b in batches] == [1, 1, 1, 3, 1]
