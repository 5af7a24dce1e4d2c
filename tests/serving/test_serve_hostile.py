"""End to end under attack: hostile requests sent while honest ones decode in the same batch.

The hostile catalog is bench/hostile.py's (the cases of issue 20), sent on raw sockets.
Honest requests (whole and streamed, chat and text) must complete with the answers they
get when sent alone, and no request may get a 5xx.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import pytest

from bench.hostile import Hostile, hostile_requests, send
from tests.serving.conftest import tiny_server
from tests.serving.test_serve_e2e import KEY, http

pytestmark = pytest.mark.ray

LIMIT = 4096
HONEST = [
    ("/chat/completions", {"messages": [{"role": "user", "content": "Add 2 and 3."}]}),
    ("/chat/completions", {"messages": [{"role": "user", "content": "Write a haiku."}]}),
    ("/chat/completions", {"messages": [{"role": "user", "content": "List colors."}]}),
    ("/completions", {"prompt": "What is the capital of France?"}),
]


@pytest.fixture(scope="module")
def server(ray_session, tiny_model_dir, adapters_template, tmp_path_factory):
    """One generator replica with room for honest and hostile rows in one batch."""
    settings = [
        "limits.max_prompt_tokens=64",
        "limits.max_tokens=32",
        f"limits.max_request_bytes={LIMIT}",
        "batching.max_batch_size=8",
        "batching.batch_wait_timeout_s=0.2",  # honest and hostile rows meet in a batch
        "scaling.num_cpus=1",
        "scaling.max_replicas=1",
        "app_name=finesift-hostile",
        "log_level=WARNING",
    ]
    workdir = tmp_path_factory.mktemp("hostile")
    with tiny_server(tiny_model_dir, adapters_template, workdir, settings, KEY) as (url, _, _):
        yield url


def honest(url: str, index: int, stream: bool = False) -> str:
    """One honest greedy request; its answer text (a stream's deltas joined)."""
    path, fields = HONEST[index]
    body = {"model": "base", "max_tokens": 12, "temperature": 0, "stream": stream, **fields}
    status, out = http("POST", url + path, body)
    assert status == 200, out
    if not stream:
        choice = out["choices"][0]
        return choice["message"]["content"] if "message" in choice else choice["text"]
    events = [json.loads(e[6:]) for e in out.split("\n\n") if e and e != "data: [DONE]"]
    assert not any("error" in e for e in events), events
    pieces = [e["choices"][0] for e in events if e.get("choices")]
    return "".join((p.get("delta") or {}).get("content") or p.get("text") or "" for p in pieces)


def batches(url: str) -> dict[int, int]:
    from ray import serve

    handle = serve.get_deployment_handle("Generator", app_name="finesift-hostile")
    return {int(k): v for k, v in handle.info.remote().result(timeout_s=30)["step_rows"].items()}


def attack(url: str, catalog: list[Hostile]) -> dict[str, int]:
    """Send the catalog concurrently; the status each case got."""
    parsed = urlparse(url)

    def one(h: Hostile) -> tuple[str, int]:
        return h.name, send(parsed.hostname, parsed.port, parsed.path, h, api_key=KEY)[0]

    with ThreadPoolExecutor(6) as pool:
        return dict(pool.map(one, catalog))


def test_honest_requests_keep_their_answers_while_hostile_ones_are_refused(server):
    catalog = hostile_requests(LIMIT, huge_bytes=8 * 2**20)
    alone = [honest(server, i, stream=i == 1) for i in range(len(HONEST))]
    steps_before = batches(server)
    with ThreadPoolExecutor(len(HONEST) + 1) as pool:
        honest_runs = [pool.submit(honest, server, i, i == 1) for i in range(len(HONEST))]
        statuses = pool.submit(attack, server, catalog).result()
        together = [run.result() for run in honest_runs]
    assert together == alone
    unexpected = {h.name: statuses[h.name] for h in catalog if statuses[h.name] not in h.expect}
    assert not unexpected, unexpected
    assert not [s for s in statuses.values() if s >= 500]
    # Honest rows shared decoding steps with others (the valid hostile ones among them).
    steps_after = batches(server)
    shared = sum(n - steps_before.get(rows, 0) for rows, n in steps_after.items() if rows > 1)
    assert shared > 0, steps_after
    assert [honest(server, i) for i in (0, 3)] == [alone[0], alone[3]]  # nothing left broken


def test_a_chunked_body_is_answered_413_long_before_it_ends(server):
    parsed = urlparse(server)
    huge = Hostile("chunked 100 MB", "/chat/completions", chunked_bytes=100 * 2**20)
    status, sent = send(parsed.hostname, parsed.port, parsed.path, huge, api_key=KEY)
    assert status == 413
    assert sent < 50 * 2**20, f"the 413 came after {sent / 2**20:.0f} MB"  # it read all before


def test_hostile_clients_never_stall_an_honest_stream(server):
    """An honest stream decodes while a hostile client keeps sending bad seeds."""
    stop = threading.Event()
    bad = [h for h in hostile_requests(LIMIT) if h.name.startswith("seed")]
    parsed = urlparse(server)
    statuses: list[int] = []

    def hostile_loop() -> None:
        while not stop.is_set():
            for h in bad:
                statuses.append(send(parsed.hostname, parsed.port, parsed.path, h, KEY)[0])

    alone = honest(server, 2, stream=True)
    thread = threading.Thread(target=hostile_loop)
    thread.start()
    try:
        answers = [honest(server, 2, stream=True) for _ in range(3)]
    finally:
        stop.set()
        thread.join()
    assert answers == [alone] * 3
    assert statuses and set(statuses) == {400}
