"""The batcher: batches cut when the engine is free, one group per batch (no Ray, no model)."""

from __future__ import annotations

import asyncio
import random
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


def test_a_running_batch_takes_its_group_but_never_past_an_older_group():
    async def main() -> list:
        batches = []

        async def run(group: str, batch: list[Pending]) -> None:
            rows = list(batch)
            for _ in range(3):  # decoding steps; queued requests may join between them
                await asyncio.sleep(0.02)
                rows += batcher.admit(group, room=8 - len(rows))
            batches.append((group, [p.payload for p in rows]))
            for p in rows:
                p.future.set_result(group)

        batcher = Batcher(run, max_batch_size=8, wait_s=0.0)
        first = batcher.submit(Pending("x0", "base"))
        await asyncio.sleep(0.01)  # the first batch is running
        order = [("x1", "base"), ("y1", "a"), ("x2", "base")]
        queued = [batcher.submit(Pending(payload, group)) for payload, group in order]
        await asyncio.gather(first.future, *(p.future for p in queued))
        return batches

    # x2 queued after y1: joining the running base batch would jump adapter a's queue.
    assert asyncio.run(main()) == [("base", ["x0", "x1"]), ("a", ["y1"]), ("base", ["x2"])]


def test_admit_takes_at_most_room():
    async def main() -> tuple[list, list, str]:
        batcher = Batcher(FakeEngine().run, max_batch_size=8, wait_s=0.0)
        queued = [batcher.submit(Pending(i, "")) for i in range(3)]  # the loop has not run yet
        two, none = batcher.admit("", room=2), batcher.admit("", room=0)
        return two, none, await queued[2].future

    two, none, rest = asyncio.run(main())
    assert [p.payload for p in two] == [0, 1] and none == []
    assert rest == ":2"  # the one left behind ran as a batch of its own


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


def test_the_refill_wait_ends_when_the_callers_are_back_or_go_quiet():
    async def main() -> tuple[list[float], float, list]:
        engine = FakeEngine(seconds=0.0)
        batcher = Batcher(engine.run, max_batch_size=8, wait_s=0.0, refill_s=2.0)
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
    assert 0.4 < late < 1.5  # waited a quiet gap (refill_s / 4) for the others, not refill_s
    assert [len(b) for _, b in batches] == [1, 1, 1, 3, 1]


def test_the_refill_wait_lasts_while_callers_keep_coming_back():
    async def caller(batcher: Batcher, delay: float) -> None:
        await asyncio.sleep(delay)
        await batcher.submit(Pending(delay, "")).future

    async def main() -> list[int]:
        engine = FakeEngine(seconds=0.0)
        batcher = Batcher(engine.run, max_batch_size=8, wait_s=0.0, refill_s=2.0)
        await asyncio.gather(*(batcher.submit(Pending(i, "")).future for i in range(4)))
        # 3 of the 4 callers come back 0.2 s apart (gap 0.5 s); the 4th never does.
        await asyncio.gather(*(caller(batcher, 0.2 * k) for k in (1, 2, 3)))
        return [len(b) for _, b in engine.batches]

    assert asyncio.run(main()) == [4, 3]


def test_callers_split_across_replicas_do_not_hold_every_batch_for_refill_s():
    """With 2 replicas the router sends some of a batch's callers to the other one; the
    refill wait must then end after a quiet gap, not wait the full refill_s each batch."""

    async def run(refill_s: float) -> float:
        engine = FakeEngine(seconds=0.4)
        replicas = [Batcher(engine.run, 8, wait_s=0.01, refill_s=refill_s) for _ in range(2)]
        route = random.Random(0)

        async def client() -> None:
            for i in range(5):
                await route.choice(replicas).submit(Pending(i, "")).future
                await asyncio.sleep(0.005)  # the caller's round trip before its next request

        start = time.monotonic()
        await asyncio.gather(*(client() for _ in range(8)))
        return time.monotonic() - start

    no_refill, refill = asyncio.run(run(0.0)), asyncio.run(run(0.5))
    # Measured ~1.2x (one 0.125 s gap per 0.4 s batch); waiting the full refill_s was ~2.1x.
    assert refill < 1.5 * no_refill


def test_a_failing_batch_ends_its_streams_with_the_exception():
    async def main() -> tuple[object, object]:
        async def run(group: str, batch: list[Pending]) -> None:
            raise RuntimeError("boom")

        batcher = Batcher(run, max_batch_size=2, wait_s=0.0)
        streamed = batcher.submit(Pending(0, "", deltas=asyncio.Queue()))
        whole = batcher.submit(Pending(1, ""))
        got = await asyncio.wait_for(streamed.deltas.get(), timeout=5.0)
        with pytest.raises(RuntimeError, match="boom"):
            await whole.future
        return got, whole.deltas

    got, no_queue = asyncio.run(main())
    assert isinstance(got, RuntimeError) and str(got) == "boom"
    assert no_queue is None


def test_a_generator_stream_turns_a_failed_batch_into_an_error_delta():
    """Generator.stream without Ray running: its batcher's run_batch raises."""
    from serving.generator import Generator
    from serving.sampling import GenParams

    async def main() -> list:
        async def run(group: str, batch: list[Pending]) -> None:
            raise RuntimeError("boom")

        generator = Generator.func_or_class.__new__(Generator.func_or_class)
        generator.batcher = Batcher(run, max_batch_size=2, wait_s=0.0)
        stream = generator.stream(GenParams(prompt_ids=(1, 2), max_tokens=4))
        return [d async for d in stream]

    deltas = asyncio.run(asyncio.wait_for(main(), timeout=5.0))  # hung forever before
    assert len(deltas) == 1
    assert deltas[0].error == "generation failed: RuntimeError: boom"
    assert deltas[0].code == "generation_failed" and deltas[0].status == 500


def test_a_failed_stream_leaves_no_unretrieved_exception_in_its_future():
    # Nobody awaits a streaming request's future; an exception set there is logged by
    # asyncio as "Future exception was never retrieved" when the future is collected.
    async def main() -> asyncio.Future:
        async def run(group: str, batch: list[Pending]) -> None:
            raise RuntimeError("boom")

        batcher = Batcher(run, max_batch_size=1, wait_s=0.0)
        streamed = batcher.submit(Pending(0, "", deltas=asyncio.Queue()))
        assert isinstance(await asyncio.wait_for(streamed.deltas.get(), timeout=5.0), RuntimeError)
        return streamed.future

    future = asyncio.run(main())
    assert future.cancelled()
