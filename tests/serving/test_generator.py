"""The generator's batches on the tiny Llama, without Ray: rows answered as they finish,
requests joining a running batch, streams and failures."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from serving.batcher import Batcher, Pending
from serving.engine import GenerationEngine
from serving.generator import Generator
from serving.sampling import GenParams, RowResult


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> GenerationEngine:
    return GenerationEngine(tiny_model_dir)


def make_generator(engine: Any, max_batch_size: int = 4, refill_s: float = 0.0) -> Any:
    """A Generator around ``engine`` built without Ray (its __init__ loads a model)."""
    generator = Generator.func_or_class.__new__(Generator.func_or_class)
    generator.engine = engine
    generator.step_rows = Counter()
    generator.step_seconds = Counter()
    generator.batcher = Batcher(generator._run_batch, max_batch_size, 0.0, refill_s)
    return generator


def greedy(engine: GenerationEngine, text: str, max_tokens: int) -> GenParams:
    return GenParams(tuple(engine.tokenizer(text)["input_ids"]), max_tokens, temperature=0.0)


def test_a_row_that_finishes_early_is_answered_before_the_batch_ends(engine):
    short = greedy(engine, "Add 2 and 3.", 2)
    long = greedy(engine, "What is the capital of France?", 24)

    async def main() -> tuple[RowResult, bool, RowResult]:
        generator = make_generator(engine)
        first = generator.batcher.submit(Pending(short, ""))
        second = generator.batcher.submit(Pending(long, ""))
        early = await first.future
        long_running = not second.future.done()
        return early, long_running, await second.future

    early, long_running, late = asyncio.run(main())
    assert long_running  # the short answer did not wait for the batch's longest row
    assert early == engine.generate([short])[0]
    assert late == engine.generate([long])[0]


def test_a_request_arriving_mid_batch_joins_it(engine):
    long = greedy(engine, "What is the capital of France?", 24)
    late = greedy(engine, "List three primary colors.", 4)

    async def main() -> tuple[Any, RowResult, bool, RowResult]:
        generator = make_generator(engine)
        first = generator.batcher.submit(Pending(long, ""))

        async def running() -> None:
            while sum(generator.step_rows.values()) < 3:
                await asyncio.sleep(0.001)

        await asyncio.wait_for(running(), timeout=30)
        joined = await generator.batcher.submit(Pending(late, "")).future
        long_running = not first.future.done()
        return generator, joined, long_running, await first.future

    generator, joined, long_running, first = asyncio.run(main())
    assert generator.batcher.sizes == {1: 1}  # one batch: the late request did not wait for it
    assert generator.step_rows[2] > 0 and long_running
    assert generator.step_seconds[2] > 0 and set(generator.step_seconds) == set(generator.step_rows)
    assert joined == engine.generate([late])[0]
    assert first == engine.generate([long])[0]


def test_streams_end_as_their_rows_finish_and_match_whole_answers(engine):
    params = [greedy(engine, "Add 2 and 3.", 3), greedy(engine, "Write a haiku about the sea.", 12)]

    async def collect(generator: Any, p: GenParams, ends: list) -> str:
        deltas = [d async for d in generator.stream(p)]
        ends.append(p.max_tokens)
        assert deltas[-1].finish_reason == "length"
        assert deltas[-1].completion_tokens == p.max_tokens
        return "".join(d.text for d in deltas)

    async def main() -> tuple[list[str], list[int]]:
        generator = make_generator(engine)
        ends: list[int] = []
        texts = await asyncio.gather(*(collect(generator, p, ends) for p in params))
        return list(texts), ends

    texts, ends = asyncio.run(main())
    assert texts == [r.text for r in engine.generate(params)]
    assert ends == [3, 12]  # the short stream ended first


def test_sequential_requests_never_pay_the_refill_wait(engine):
    async def main() -> float:
        generator = make_generator(engine, refill_s=2.0)
        start = time.monotonic()
        for text in ("Add 2 and 3.", "List three primary colors.", "Add 2 and 3."):
            await generator.batcher.submit(Pending(greedy(engine, text, 4), "")).future
        return time.monotonic() - start

    assert asyncio.run(main()) < 1.5  # each wait would be refill_s / 4 = 0.5 s


class FailingEngine:
    """The engine, except that the first batch's third step raises."""

    def __init__(self, engine: GenerationEngine) -> None:
        self.engine = engine
        self.batches = 0

    def row(self, params: GenParams) -> Any:
        return self.engine.row(params)

    def open(self, adapter: Any = None) -> Any:
        decoding = self.engine.open(adapter)
        self.batches += 1
        if self.batches == 1:
            steps = iter(range(100))
            advance = decoding.advance

            def failing(joining: Any = ()) -> Any:
                if next(steps) == 2:
                    raise RuntimeError("boom")
                return advance(joining)

            decoding.advance = failing
        return decoding


def test_a_failing_step_fails_the_rows_it_holds_and_the_generator_carries_on(engine):
    short, long = greedy(engine, "Add 2 and 3.", 2), greedy(engine, "Add 2 and 3.", 12)

    async def main() -> tuple[RowResult, RowResult, RowResult]:
        generator = make_generator(FailingEngine(engine))
        done = generator.batcher.submit(Pending(short, ""))
        failed = generator.batcher.submit(Pending(long, ""))
        results = await asyncio.gather(done.future, failed.future)
        after = await generator.batcher.submit(Pending(long, "")).future
        return results[0], results[1], after

    done, failed, after = asyncio.run(main())
    assert done == engine.generate([short])[0]  # answered before the failing step
    assert failed.error == "generation failed: RuntimeError: boom"
    assert failed.code == "generation_failed" and failed.status == 500
    assert after == engine.generate([long])[0]


def run_together(generator: Any, params: list[GenParams], streamed: set[int]) -> list[Any]:
    """Submit every request at once (one batch); whole results, or lists of stream deltas."""

    async def collect(p: GenParams) -> list:
        return [d async for d in generator.stream(p)]

    async def main() -> list[Any]:
        calls = [
            collect(p) if i in streamed else generator.complete_base(p)
            for i, p in enumerate(params)
        ]
        return list(await asyncio.gather(*calls))

    return asyncio.run(main())


def attach_submit(generator: Any) -> Any:
    """``complete`` for the base model, without Serve's multiplexed model id."""

    async def complete_base(p: GenParams) -> RowResult:
        return await generator.batcher.submit(Pending(p, "")).future

    generator.complete_base = complete_base
    return generator


def stream_text(deltas: list) -> str:
    return "".join(d.text for d in deltas)


def test_a_seed_out_of_range_fails_only_its_own_request(engine):
    """Used to raise inside the shared batch and fail every request decoding beside it."""
    good = [greedy(engine, "Add 2 and 3.", 6), greedy(engine, "List three primary colors.", 8)]
    bad = GenParams(good[0].prompt_ids, 6, temperature=1.0, seed=2**64)
    params = [good[0], bad, good[1], bad]
    generator = attach_submit(make_generator(engine, max_batch_size=4))
    whole, refused, streamed, refused_stream = run_together(generator, params, streamed={2, 3})
    assert whole == engine.generate([good[0]])[0]
    assert stream_text(streamed) == engine.generate([good[1]])[0].text
    assert streamed[-1].finish_reason == "length" and streamed[-1].error is None
    assert (refused.status, refused.code) == (400, "invalid_value") and "seed" in refused.error
    assert len(refused_stream) == 1 and refused_stream[0].status == 400
    assert generator.batcher.sizes == {4: 1}  # they really shared one batch


def test_a_temperature_near_zero_decodes_greedily_instead_of_failing(engine):
    """1e-300 is inside [0, 2] but overflowed the softmax to NaN, failing the whole batch."""
    prompt = greedy(engine, "Add 2 and 3.", 6)
    tiny = GenParams(prompt.prompt_ids, 6, temperature=1e-300, seed=1)
    other = greedy(engine, "Write a haiku about the sea.", 6)
    assert engine.generate([tiny, other]) == engine.generate([prompt, other])


def test_a_sampling_error_mid_answer_fails_only_its_row(engine, monkeypatch):
    import serving.sampling as sampling

    real = sampling.sample_token
    draws = Counter()

    def flaky(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
        if temperature == 0.7:  # the marked request's third draw fails
            draws["marked"] += 1
            if draws["marked"] == 3:
                raise RuntimeError("probability tensor contains either inf, nan or element < 0")
        return real(logits, temperature, top_p, generator)

    monkeypatch.setattr(sampling, "sample_token", flaky)
    good = [greedy(engine, "Add 2 and 3.", 8), greedy(engine, "List three primary colors.", 8)]
    marked = GenParams(good[0].prompt_ids, 8, temperature=0.7, seed=5)
    generator = attach_submit(make_generator(engine))
    first, failed, streamed = run_together(generator, [good[0], marked, good[1]], streamed={1, 2})
    assert first == engine.generate([good[0]])[0]
    assert stream_text(streamed) == engine.generate([good[1]])[0].text
    end = failed[-1]
    assert (end.status, end.code) == (500, "generation_failed") and "sampling" in end.error
    assert not any(d.finish_reason for d in failed)  # it never pretended to finish


class DecodeFailsFor:
    """The engine, except that rows of one prompt fail to decode their text."""

    def __init__(self, engine: GenerationEngine, prompt_ids: tuple[int, ...]) -> None:
        self.engine, self.prompt_ids = engine, prompt_ids

    def open(self, adapter: Any = None) -> Any:
        return self.engine.open(adapter)

    def row(self, params: GenParams) -> Any:
        row = self.engine.row(params)
        if params.prompt_ids == self.prompt_ids:

            def broken(tokens: list[int]) -> str:
                raise ValueError("invalid token id in /srv/secret/tokenizer.json")

            row._decode = broken
        return row


def test_a_decoding_error_on_one_prompt_fails_only_its_request(engine):
    good = greedy(engine, "Add 2 and 3.", 6)
    marked = greedy(engine, "Write a haiku about the sea.", 6)
    generator = attach_submit(make_generator(DecodeFailsFor(engine, marked.prompt_ids)))
    ok, failed = run_together(generator, [good, marked], streamed=set())
    assert ok == engine.generate([good])[0]
    assert failed.status == 500 and "decoding" in failed.error
    assert "/srv/secret" not in failed.error  # no server paths in what the client sees


def test_a_prompt_that_fails_its_prefill_fails_alone_and_the_others_join(engine):
    good = [greedy(engine, "Add 2 and 3.", 6), greedy(engine, "List three primary colors.", 6)]
    out_of_vocab = GenParams((1, 10**6, 2), 6, temperature=0.0)  # no such token id
    generator = attach_submit(make_generator(engine))
    first, failed, second = run_together(generator, [good[0], out_of_vocab, good[1]], set())
    assert failed.status == 500 and "prefill" in failed.error
    assert [first, second] == [engine.generate([p])[0] for p in good]
