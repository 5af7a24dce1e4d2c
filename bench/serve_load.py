"""Serving load benchmark: latency and throughput of `finesift serve` vs in-process generate.

Runs against the bundled SmolLM2-135M-Instruct (``infra.models.resolve_base_model()``):

1. Overhead: every prompt is answered by in-process ``model.generate`` (greedy, same
   max_new_tokens, same torch threads and OpenMP policy as a replica) and by the server
   (127.0.0.1, concurrency 1) back to back, order alternating, so both sides see the
   same load on a shared machine. Greedy answers are checked to be equal, so both sides
   generate the same tokens.
2. Throughput: closed-loop clients (raw HTTP keep-alive connections, a bounded number
   of requests) at concurrency 1 and 8 in alternating blocks, then 32.
3. ``--soak``: concurrency 32 for ``--soak-seconds`` (default 120): counts 5xx and
   samples the replicas' RSS to show memory does not grow.
4. ``--hostile``: a hostile client (bench/hostile.py: bad seeds, bodies over the limit
   with a Content-Length and chunked, nested JSON, wrong types, unknown and unsupported
   fields...) runs beside the honest clients of the concurrency-8 and -32 blocks and of
   the soak, at most ``--hostile-rate`` requests a second; its status codes are reported
   apart, by case, and checked against what each case should get. The honest figures
   must still show no 5xx (its throughput figures then include the hostile load, so do
   not compare them with a run without it). ``--soak-only`` skips phases 1-2.

Prints the figures and the two targets: overhead at concurrency 1 <= 15%, and
throughput at concurrency 8 >= 2.5x sequential. Only loopback traffic.

The deployment is the default config with the replica count pinned at
``scaling.max_replicas`` (2 replicas of 1 CPU each), so no phase measures a scale-up;
pass ``scaling.num_cpus=2 scaling.max_replicas=1`` to measure one two-thread replica.
``--versus "OVERRIDES"`` deploys a second app with those overrides beside the first and
runs the throughput blocks on both in turn (same prompts, same run), printing the ratio
of their throughputs at each concurrency.

    .venv/bin/python bench/serve_load.py [--soak] [--max-tokens 32] [--config FILE]
        [--versus "scaling.num_cpus=2 scaling.max_replicas=1"] [--hostile] [KEY=VALUE...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import math
import os
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

if TYPE_CHECKING:
    from serving.config import ServeConfig

PROMPTS = [
    "What is the capital of France?",
    "Give three tips for writing clear emails.",
    "Explain what a LoRA adapter is.",
    "Translate to French: Good morning, how are you?",
    "Write a haiku about the sea.",
    "List three primary colors.",
    "What is 12 times 7?",
    "Summarize why sleep matters in two sentences.",
    "Name a famous painting and its painter.",
    "How do I reverse a list in Python?",
    "What causes rain?",
    "Suggest a name for a grey cat.",
    "Why is the sky blue?",
    "Describe a sunrise in one sentence.",
    "What is photosynthesis?",
    "Give an example of a prime number greater than 50.",
]


@dataclass
class Level:
    """Results of one load level."""

    concurrency: int
    latencies: list[float] = field(default_factory=list)
    tokens: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    wall: float = 0.0
    answers: dict[str, str] = field(default_factory=dict)

    def add(self, status: int, latency: float, tokens: int, prompt: str, text: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency)
            self.tokens += tokens
            self.answers[prompt] = text

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class InProcess:
    """Greedy ``generate`` in this process, with the settings the server uses."""

    def __init__(self, model_dir: str, max_tokens: int, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        torch.set_num_threads(threads)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        # What the server runs: greedy, stop at EOS, nothing else (no repetition penalty...).
        eos = self.model.generation_config.eos_token_id or self.tok.eos_token_id
        self.config = GenerationConfig(
            do_sample=False,
            max_new_tokens=max_tokens,
            eos_token_id=eos,
            pad_token_id=self.tok.pad_token_id or self.tok.eos_token_id,
        )

    def ask(self, prompt: str) -> tuple[int, float, int, str]:
        """Same result tuple as Client.ask: (status, latency, tokens, text)."""
        t0 = time.perf_counter()
        text = self.tok.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        ids = self.tok(text, add_special_tokens=False, return_tensors="pt")
        with self.torch.inference_mode():
            out = self.model.generate(**ids, generation_config=self.config)
        new = out[0, ids["input_ids"].shape[1] :]
        answer = self.tok.decode(new, skip_special_tokens=True)
        return 200, time.perf_counter() - t0, len(new), answer


def paired(url: str, local: InProcess, rounds: int, max_tokens: int) -> tuple[Level, Level]:
    """Each prompt in-process and served back to back (order alternating), so both sides
    see the same machine load; returns (in-process, served) at concurrency 1."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    client = Client(parsed.hostname, parsed.port, parsed.path)
    base, served = Level(concurrency=1), Level(concurrency=1)
    for r in range(rounds):
        for i, prompt in enumerate(PROMPTS):
            order = [(base, local.ask), (served, lambda p: client.ask(p, max_tokens))]
            for level, ask in order if (i + r) % 2 == 0 else order[::-1]:
                status, latency, tokens, text = ask(prompt)
                level.add(status, latency, tokens, prompt, text)
                level.wall += latency
    return base, served


def engine_batch_ratio(model_dir: str, max_tokens: int, blocks: int = 2) -> float:
    """Tokens/s of the replica's own engine on 8 rows at once vs one row at a time,
    in alternating blocks: the batching gain the hardware allows, without Serve."""
    from serving.engine import GenerationEngine
    from serving.sampling import GenParams

    engine = GenerationEngine(model_dir)
    params = []
    for prompt in PROMPTS[:8]:
        ids = engine.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        tokens = engine.tokenizer(ids, add_special_tokens=False)["input_ids"]
        params.append(GenParams(tuple(tokens), max_tokens, temperature=0.0))
    engine.generate(params[:1])
    time_one = time_eight = 0.0
    tokens_one = tokens_eight = 0
    for _ in range(blocks):
        t0 = time.perf_counter()
        tokens_one += sum(engine.generate([p])[0].completion_tokens for p in params)
        time_one += time.perf_counter() - t0
        t0 = time.perf_counter()
        tokens_eight += sum(r.completion_tokens for r in engine.generate(params))
        time_eight += time.perf_counter() - t0
    return (tokens_eight / time_eight) / (tokens_one / time_one)


class Client:
    """One keep-alive HTTP connection to the server, posting chat completions."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=300)
        self.path = prefix + "/chat/completions"
        key = os.environ.get("FINESIFT_API_KEY")
        self.headers = {"Content-Type": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"

    def ask(self, prompt: str, max_tokens: int) -> tuple[int, float, int, str]:
        body = json.dumps(
            {
                "model": "base",
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
        )
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body, self.headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 599, time.perf_counter() - t0, 0, ""
        latency = time.perf_counter() - t0
        if resp.status != 200:
            return resp.status, latency, 0, ""
        out = json.loads(data)
        return (
            200,
            latency,
            out["usage"]["completion_tokens"],
            out["choices"][0]["message"]["content"],
        )


def load(
    url: str,
    concurrency: int,
    requests: int,
    max_tokens: int,
    deadline: float = 0,
    into: Level | None = None,
) -> Level:
    """Closed loop: ``concurrency`` clients share ``requests`` requests (or run to deadline);
    results are added to ``into`` when given (its wall time grows by this run's)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    level = into if into is not None else Level(concurrency=concurrency)
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(index: int) -> None:
        client = Client(parsed.hostname, parsed.port, parsed.path)
        while True:
            with lock:
                i = next(counter, None)
            if i is None or (deadline and time.monotonic() > deadline):
                return
            prompt = PROMPTS[(i + index) % len(PROMPTS)]
            status, latency, tokens, text = client.ask(prompt, max_tokens)
            with lock:
                level.add(status, latency, tokens, prompt, text)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(concurrency)))
    level.wall += time.perf_counter() - start
    return level


def replica_rss_mb(app_name: str) -> dict[str, float]:
    """RSS of this app's replicas by deployment, found by their process titles
    (``ray::ServeReplica:APP:DEPLOYMENT``); no Ray state API (it needs the dashboard)."""
    import psutil

    marker = f"ServeReplica:{app_name}:"
    rss: dict[str, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        title = " ".join(proc.info["cmdline"] or [])
        if marker in title:
            deployment = title.split(marker, 1)[1].split()[0].split(".")[0]
            with contextlib.suppress(psutil.Error):
                rss[deployment] = rss.get(deployment, 0.0) + proc.memory_info().rss / 2**20
    return rss


def soak(url: str, app_name: str, seconds: float, max_tokens: int) -> dict:
    """Concurrency 32 until the deadline; RSS sampled every 10 s in a side thread."""
    samples: list[tuple[float, dict[str, float]]] = []
    stop = threading.Event()
    start = time.monotonic()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - start, replica_rss_mb(app_name)))
            stop.wait(10)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    # Bounded: at most 100 requests a second for the whole run.
    level = load(url, 32, int(seconds * 100), max_tokens, deadline=time.monotonic() + seconds)
    stop.set()
    thread.join()
    samples.append((time.monotonic() - start, replica_rss_mb(app_name)))
    first, last = samples[1] if len(samples) > 2 else samples[0], samples[-1]
    growth = {k: last[1].get(k, 0) - v for k, v in first[1].items()}
    return {"level": level, "samples": samples, "growth_mb": growth}


def generator_stats(handle, replicas: int) -> dict:
    """Batch and step counters summed over the generator replicas (calls land on a random
    replica, so ask until every one has answered, by pid)."""
    from collections import Counter

    seen: dict[int, dict] = {}
    for _ in range(20 * replicas):
        info = handle.info.remote().result()
        seen[info["pid"]] = info
        if len(seen) == replicas:
            break
    total: dict = {"replicas": len(seen)}
    for key in ("batch_sizes", "step_rows", "step_seconds"):
        summed: Counter = Counter()
        for info in seen.values():
            summed.update({int(k): v for k, v in info[key].items()})
        total[key] = summed
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def show(name: str, level: Level) -> None:
    lat = level.latencies
    fivexx = sum(n for s, n in level.statuses.items() if s >= 500)
    print(
        f"{name:<22} n={len(lat):<4} p50={pct(lat, 0.5) * 1000:8.1f} ms  "
        f"p95={pct(lat, 0.95) * 1000:8.1f} ms  thr={level.throughput:6.2f} req/s  "
        f"{level.tokens / level.wall:7.1f} tok/s  statuses={level.statuses}  5xx={fivexx}"
    )


class HostileClient:
    """Sends bench/hostile.py's catalog in a loop from a side thread, while a phase runs.

    Bounded: at most ``rate`` requests a second, ``most`` in all, loopback only; a
    chunked body stops once the server answers (at most ``huge_bytes``).
    """

    def __init__(self, url: str, max_request_bytes: int, rate: float, most: int) -> None:
        from urllib.parse import urlparse

        from bench.hostile import hostile_requests

        parsed = urlparse(url)
        self.host, self.port, self.prefix = parsed.hostname, parsed.port, parsed.path
        self.catalog = hostile_requests(max_request_bytes, huge_bytes=16 * 2**20)
        self.rate, self.most = rate, most
        self.statuses: dict[str, Counter[int]] = {h.name: Counter() for h in self.catalog}
        self.sent = 0
        self._stop = threading.Event()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Attack while the ``with`` block runs."""
        self._stop.clear()
        thread = threading.Thread(target=self._loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()

    def _loop(self) -> None:
        from bench.hostile import send

        key = os.environ.get("FINESIFT_API_KEY")
        while not self._stop.is_set() and self.sent < self.most:
            hostile = self.catalog[self.sent % len(self.catalog)]
            status, _ = send(self.host, self.port, self.prefix, hostile, api_key=key)
            self.statuses[hostile.name][status] += 1
            self.sent += 1
            self._stop.wait(1.0 / self.rate)

    def report(self) -> None:
        """Print the hostile client's status codes, apart from the honest figures."""
        total: Counter[int] = Counter()
        for counts in self.statuses.values():
            total.update(counts)
        wrong = {
            h.name: dict(self.statuses[h.name])
            for h in self.catalog
            if set(self.statuses[h.name]) - set(h.expect)
        }
        fivexx = sum(n for s, n in total.items() if s >= 500)
        statuses = dict(sorted(total.items()))
        print(f"hostile client: {self.sent} requests, statuses={statuses}, 5xx={fivexx}")
        for h in self.catalog:
            print(f"  {h.name:<42} expect {h.expect}  got {dict(self.statuses[h.name])}")
        print("hostile statuses as expected: " + ("PASS" if not wrong else f"FAIL {wrong}"))


def pinned(cfg: ServeConfig) -> ServeConfig:
    """``cfg`` with its replica count pinned at max_replicas: no phase measures a scale-up."""
    scaling = dataclasses.replace(cfg.scaling, min_replicas=cfg.scaling.max_replicas)
    return dataclasses.replace(cfg, scaling=scaling)


def compare(
    cfg: ServeConfig,
    versus: ServeConfig,
    ours: dict[int, Level],
    theirs: dict[int, Level],
    label: str,
) -> None:
    """The two deployments' throughputs by concurrency, measured in turns in this run."""

    def shape(c: ServeConfig) -> str:
        return f"{c.scaling.max_replicas} replica(s) x {c.scaling.num_cpus:g} CPU"

    print(f"versus ({label}): {shape(cfg)} against {shape(versus)}, same run, blocks in turn")
    for c in sorted(ours):
        show(f"versus c={c}", theirs[c])
    for c in sorted(ours):
        ratio = ours[c].throughput / theirs[c].throughput if theirs[c].throughput else 0.0
        print(
            f"  c={c:<3} {ours[c].throughput:5.2f} vs {theirs[c].throughput:5.2f} req/s: "
            f"{ratio:.2f}x  (c/1 scaling {ours[c].throughput / ours[1].throughput:.2f}x vs "
            f"{theirs[c].throughput / theirs[1].throughput:.2f}x)"
        )


def throughput(
    args: argparse.Namespace,
    cfg: ServeConfig,
    versus: ServeConfig | None,
    url: str,
    versus_url: str | None,
    model_dir: str,
    threads: int,
    replicas: int,
    attack: Callable[[], contextlib.AbstractContextManager],
) -> None:
    """Phases 1 and 2: overhead at c=1 against in-process generate, throughput at c=1, 8
    and 32 (the hostile client, when given, beside c=8 and c=32)."""
    local = InProcess(model_dir, args.max_tokens, threads)
    for prompt in PROMPTS[:2]:  # warm-up both sides
        local.ask(prompt)
    load(url, 1, 4, args.max_tokens)
    base, served1 = paired(url, local, args.rounds, args.max_tokens)
    show("in-process generate", base)
    show("served c=1 (paired)", served1)
    same = sum(served1.answers.get(p) == base.answers.get(p) for p in base.answers)
    print(f"served greedy answers equal to in-process: {same}/{len(base.answers)}")
    batch_ratio = engine_batch_ratio(model_dir, args.max_tokens)
    print(
        f"in-process GenerationEngine ({threads} thread(s)), batch of 8 vs 1 row: "
        f"{batch_ratio:.2f}x tokens/s (what batching gives one replica on this machine now)"
    )
    # Throughput: c=1 and c=8 blocks alternate (and the two apps take turns), so slow
    # phases of a shared machine hit every figure.
    urls = [u for u in (url, versus_url) if u]
    runs = {u: {c: Level(concurrency=c) for c in (1, 8, 32)} for u in urls}
    if versus_url:
        load(versus_url, 1, 4, args.max_tokens)  # its warm-up
    for _ in range(3):
        for c, requests in ((1, 6), (8, 24)):
            for u in urls:
                # The hostile client, if any, beside the honest ones at c=8.
                with attack() if c > 1 else contextlib.nullcontext():
                    load(u, c, requests, args.max_tokens, into=runs[u][c])
    for u in urls:
        with attack():
            load(u, 32, 96, args.max_tokens, into=runs[u][32])
    levels = runs[url]
    from ray import serve

    info = generator_stats(serve.get_deployment_handle("Generator", cfg.app_name), replicas)
    sizes = sorted(info["batch_sizes"].items())
    print(
        f"generator batch sizes over {info['replicas']} replica(s) (size: batches): "
        + ", ".join(f"{k}: {v}" for k, v in sizes)
    )
    steps = sorted(info["step_rows"].items())
    print(
        "decoding steps by rows (rows: steps, mean ms a step, joins included): "
        + ", ".join(f"{k}: {n} @{1000 * info['step_seconds'][k] / n:.0f}" for k, n in steps)
    )
    for c, level in levels.items():
        show(f"served c={c}", level)
    overhead = pct(served1.latencies, 0.5) / pct(base.latencies, 0.5) - 1
    speedup = levels[8].throughput / levels[1].throughput
    print(
        f"overhead at c=1 (p50 served / p50 in-process - 1): {overhead * 100:.1f}%  "
        f"[target <= 15%: {'PASS' if overhead <= 0.15 else 'FAIL'}]"
    )
    print(
        f"throughput c=8 / c=1: {speedup:.2f}x  "
        f"[target >= 2.5x: {'PASS' if speedup >= 2.5 else 'FAIL'}]"
    )
    print(f"throughput c=32 / c=1: {levels[32].throughput / levels[1].throughput:.2f}x")
    if versus_url:
        compare(cfg, versus, runs[url], runs[versus_url], args.versus)
    print(f"load average now: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--config", type=Path, default=None, help="serve YAML (batching, cpus)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the 16 prompts at c=1")
    parser.add_argument("--soak", action="store_true", help="also run the concurrency-32 soak")
    parser.add_argument("--soak-seconds", type=float, default=120.0)
    parser.add_argument(
        "--hostile", action="store_true", help="mix a hostile client into c=8, c=32 and the soak"
    )
    parser.add_argument("--hostile-rate", type=float, default=10.0, help="its requests a second")
    parser.add_argument("--hostile-max", type=int, default=3000, help="its requests in all")
    parser.add_argument(
        "--soak-only", action="store_true", help="skip the overhead and throughput phases"
    )
    parser.add_argument(
        "--base-model", default=None, help="model directory (default: the bundled SmolLM2)"
    )
    parser.add_argument(
        "--versus",
        default="",
        help="overrides of a second deployment measured beside the first, in one string",
    )
    parser.add_argument("overrides", nargs="*", help="serve config key=value overrides")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)

    import ray

    from infra.config import load_config
    from infra.models import resolve_base_model
    from serving.config import ServeConfig
    from serving.launch import start_server, stop_server

    model_dir = resolve_base_model(args.base_model or "default")
    port = free_port()
    cfg = pinned(
        load_config(
            ServeConfig,
            args.config,
            ["app_name=finesift-bench", *args.overrides],
            base_model=model_dir,
            adapters_dir="/nonexistent-adapters",
            port=port,
        )
    )
    replicas = cfg.scaling.max_replicas
    versus = None
    if args.versus:
        versus = pinned(
            load_config(
                ServeConfig,
                args.config,
                [
                    *args.overrides,
                    "app_name=finesift-versus",
                    "route_prefix=/versus",
                    *args.versus.split(),
                ],
                base_model=model_dir,
                adapters_dir="/nonexistent-adapters",
                port=port,
            )
        )
    # The replicas get the same OpenMP policy through their runtime_env (read when torch loads).
    os.environ["OMP_WAIT_POLICY"] = cfg.scaling.omp_wait_policy
    threads = max(1, int(cfg.scaling.num_cpus))
    print(
        f"model {model_dir}\nmax_tokens={args.max_tokens} replicas={replicas} "
        f"torch threads per replica={threads} "
        f"batch={cfg.batching.max_batch_size} wait={cfg.batching.batch_wait_timeout_s}s "
        f"omp={cfg.scaling.omp_wait_policy} "
        f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
    )

    # Logical CPUs for every replica of both apps; they take turns on the real cores.
    cpus = sum(math.ceil(c.scaling.max_replicas * c.scaling.num_cpus) for c in (cfg, versus) if c)
    ray.init(address="local", num_cpus=max(2, cpus), include_dashboard=False, log_to_driver=False)
    url = start_server(cfg)
    versus_url = start_server(versus) if versus else None
    hostile = None
    if args.hostile:
        hostile = HostileClient(
            url, cfg.limits.max_request_bytes, args.hostile_rate, args.hostile_max
        )
    attack = hostile.running if hostile else contextlib.nullcontext
    try:
        if not args.soak_only:
            throughput(args, cfg, versus, url, versus_url, model_dir, threads, replicas, attack)
        else:
            load(url, 1, 4, args.max_tokens)  # warm-up
        if args.soak:
            with attack():
                result = soak(url, cfg.app_name, args.soak_seconds, args.max_tokens)
            level = result["level"]
            show(f"soak c=32 {args.soak_seconds:.0f}s", level)
            for t, rss in result["samples"]:
                print(f"  t={t:6.1f}s rss_mb=" + ", ".join(f"{k}={v:.0f}" for k, v in rss.items()))
            fivexx = sum(n for s, n in level.statuses.items() if s >= 500)
            growth = result["growth_mb"]
            print(
                f"soak: 5xx={fivexx}  rss growth after warm-up (MB): "
                + ", ".join(f"{k}={v:+.1f}" for k, v in growth.items())
            )
        if hostile:
            hostile.report()
    finally:
        stop_server()
        ray.shutdown()


if __name__ == "__main__":
    main()
