"""The LLM judge against a local OpenAI-compatible stub: parsed, unparseable, retried, cached."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from quality.judge import (
    FAILED,
    OK,
    UNPARSEABLE,
    Judge,
    estimate_cost,
    parse_score,
)
from quality.score_cache import ScoreCache

# What the stub answers, by a marker in the row's response.
ANSWERS = {
    "GOOD": "Score: 5\nAccurate and complete.",
    "BAD": "Score: 1\nIt answers a different question.",
    "RAMBLE": "This response is quite nice overall, though it could be longer.",
}


class Stub(BaseHTTPRequestHandler):
    """POST /v1/chat/completions in the OpenAI format; FLAKY fails once with a 503."""

    seen: Counter = Counter()

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        message = body["messages"][-1]["content"]
        marker = next(m for m in (*ANSWERS, "FLAKY") if m in message.split("### Response:")[1])
        Stub.seen[marker] += 1
        if self.path != "/v1/chat/completions" or (marker == "FLAKY" and Stub.seen[marker] == 1):
            return self._send(503 if marker == "FLAKY" else 404, {"error": {"message": "busy"}})
        text = ANSWERS.get(marker, "4/5 - fine.")
        reply = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        self._send(200, reply)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    Stub.seen = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


ROWS = [
    ("Name a primary color.", "GOOD: red."),
    ("What is 2 + 2?", "BAD: Paris is the capital of France."),
    ("Explain rain.", "RAMBLE: clouds and stuff."),
    ("Explain snow.", "FLAKY: frozen rain."),
]


def test_judge_through_a_local_server_parses_and_records_unparseable(server, tmp_path):
    cache = ScoreCache(tmp_path / "scores.sqlite")
    judge = Judge(server, "stub-model", "no-key", concurrency=2, backoff=0.01, cache=cache)
    results = judge.rate(*zip(*ROWS, strict=True))

    assert [r.score for r in results] == [5.0, 1.0, None, 4.0]
    assert [r.status for r in results] == [OK, OK, UNPARSEABLE, OK]
    assert results[2].raw == ANSWERS["RAMBLE"]  # kept as answered, not guessed
    assert Stub.seen["FLAKY"] == 2  # the 503 was retried

    again = judge.rate(*zip(*ROWS, strict=True))  # a rerun asks the server nothing
    assert [r.score for r in again] == [5.0, 1.0, None, 4.0]
    assert all(r.cached for r in again) and sum(Stub.seen.values()) == 5
    assert judge.uncached(*zip(*ROWS, strict=True)) == []


def test_a_dead_server_is_a_failure_not_a_score(tmp_path):
    judge = Judge("http://127.0.0.1:9", "m", "k", retries=1, backoff=0.01, timeout=2)
    (result,) = judge.rate(["Explain rain."], ["Water falls."])
    assert result.status == FAILED and result.score is None and "attempts" in result.raw


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("Score: 4\nGood.", 4.0),
        ("**Score:** 3.5", 3.5),
        ("5", 5.0),
        ("4/5 because it is right", 4.0),
        ("I would give it 3 out of 5.", 3.0),
        ("Rating is 2. The answer is partly wrong.", 2.0),
        ("Score: 7", None),  # outside the scale
        ("It is between 2 and 4.", None),  # two numbers: not guessed
        ("A helpful answer.", None),
        ("", None),
    ],
)
def test_parse_score(answer, score):
    assert parse_score(answer) == score


def test_cost_estimate_counts_tokens_and_prices_them():
    est = estimate_cost(
        ["x" * 400] * 10,
        ["y" * 400] * 10,
        max_tokens=50,
        usd_per_1k_input=1.0,
        usd_per_1k_output=2.0,
    )
    assert est.requests == 10 and est.output_tokens == 500
    assert est.input_tokens > 2000  # 800 characters of row text each, plus the template
    assert est.usd == pytest.approx(est.input_tokens / 1000 + 1.0, abs=1e-3)
