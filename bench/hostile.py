"""Hostile requests for `finesift serve`: the cases of issue 20, and a client that sends them.

Shared by ``bench/serve_load.py --hostile`` (a hostile client mixed into the load) and the
end-to-end test tests/serving/test_serve_hostile.py. Every request is sent to loopback
only, and every one is bounded: a "huge" body is at most ``huge_bytes`` and a chunked one
stops as soon as the server answers.

Each case names the statuses a hardened server answers: a 4xx for what the client got
wrong, and 200 for requests that are odd but valid (the largest seed, a temperature of
1e-300), which must decode beside honest requests without disturbing them.
"""

from __future__ import annotations

import json
import select
import socket
import time
from dataclasses import dataclass, field

HELLO = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True)
class Hostile:
    """One hostile request.

    Attributes:
        name: what it tries.
        path: ``/chat/completions`` or ``/completions`` (under the API prefix).
        body: the whole body, sent with a Content-Length.
        chunked_bytes: when > 0, the body is instead this many bytes of an endless JSON
            string sent with Transfer-Encoding: chunked.
        expect: statuses a hardened server answers.
    """

    name: str
    path: str
    body: bytes = b""
    chunked_bytes: int = 0
    expect: tuple[int, ...] = (400,)
    headers: dict[str, str] = field(default_factory=dict)


def _chat(**fields: object) -> bytes:
    return json.dumps({"model": "base", "messages": HELLO, "max_tokens": 4, **fields}).encode()


def hostile_requests(max_request_bytes: int, huge_bytes: int = 16 * 2**20) -> list[Hostile]:
    """The catalog, sized for a server whose body limit is ``max_request_bytes``."""
    chat, text = "/chat/completions", "/completions"
    deep = min(100_000, (max_request_bytes - 64) // 2)  # as deep as fits under the limit
    nested = b'{"model": "base", "messages": ' + b"[" * deep + b"]" * deep + b"}"
    padding = "x" * (4 * max_request_bytes)
    return [
        Hostile("seed 2**64 with temperature 1", chat, _chat(seed=2**64, temperature=1.0)),
        Hostile("seed below -2**63", chat, _chat(seed=-(2**63) - 1, temperature=0.5)),
        Hostile(
            "largest seed, temperature 2, top_p 1e-9",
            chat,
            _chat(seed=2**64 - 1, temperature=2.0, top_p=1e-9),
            expect=(200,),
        ),
        Hostile("temperature 1e-300", chat, _chat(temperature=1e-300, seed=3), expect=(200,)),
        Hostile(
            "body over the limit (Content-Length)",
            chat,
            _chat(messages=[{"role": "user", "content": padding}]),
            expect=(413,),
        ),
        Hostile("chunked body over the limit", chat, chunked_bytes=huge_bytes, expect=(413,)),
        Hostile(f"JSON nested {deep} deep", chat, nested),
        Hostile("JSON nested 20 deep", chat, _chat(metadata=json.loads("[" * 20 + "]" * 20))),
        Hostile("max_tokens as a string", chat, _chat(max_tokens="16")),
        Hostile("stream as a string", chat, _chat(stream="yes")),
        Hostile("messages as a string", chat, _chat(messages="hello")),
        Hostile(
            "NaN temperature", chat, _chat().replace(b'"max_tokens": 4', b'"temperature": NaN')
        ),
        Hostile("lone surrogate", chat, _chat().replace(b"France?", b"France?\\ud800")),
        Hostile("unknown field top_k", chat, _chat(top_k=5)),
        Hostile(
            "response_format json_object", chat, _chat(response_format={"type": "json_object"})
        ),
        Hostile("functions", chat, _chat(functions=[{"name": "f", "parameters": {}}])),
        Hostile(
            "best_of 3", text, json.dumps({"model": "base", "prompt": "x", "best_of": 3}).encode()
        ),
        Hostile("model ../base", chat, _chat(model="../base")),
        Hostile("max_tokens over the limit", chat, _chat(max_tokens=10**6)),
        Hostile("invalid JSON", chat, b'{"model": "base", "messages": ['),
        Hostile("JSON that is not an object", chat, b"[1, 2, 3]"),
        Hostile("not UTF-8", chat, b'{"model": "\xff\xfe"}'),
    ]


def send(
    host: str,
    port: int,
    prefix: str,
    hostile: Hostile,
    api_key: str | None = None,
    timeout: float = 60.0,
) -> tuple[int, int]:
    """Send one hostile request on a fresh connection.

    Returns:
        ``(status, body bytes sent)``; status 599 when the connection failed before an
        answer was read.
    """
    headers = {"Host": f"{host}:{port}", "Content-Type": "application/json", **hostile.headers}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if hostile.chunked_bytes:
        headers["Transfer-Encoding"] = "chunked"
    else:
        headers["Content-Length"] = str(len(hostile.body))
    head = f"POST {prefix}{hostile.path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    sent = 0
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(head.encode() + b"\r\n")
            if not hostile.chunked_bytes:
                sock.sendall(hostile.body)
                return _status(sock), len(hostile.body)
            sent = _send_chunks(sock, hostile.chunked_bytes)
            return _status(sock), sent
    except OSError:
        return 599, sent


def _send_chunks(
    sock: socket.socket, total: int, chunk: int = 64 * 2**10, pace_s: float = 0.001
) -> int:
    """Send up to ``total`` bytes of a JSON body in chunks, stopping early once the server
    answers (a hardened server answers 413 long before the end). Paced (by default at
    about 64 MB/s) so that when the answer came is visible from here."""
    piece = b"x" * chunk
    frame = f"{chunk:x}\r\n".encode() + piece + b"\r\n"
    sock.sendall(b'1d\r\n{"model": "base", "prompt": "\r\n')
    sent = 29
    while sent < total:
        if select.select([sock], [], [], 0)[0]:
            return sent  # the answer is in: stop sending
        sock.sendall(frame)
        sent += chunk
        if pace_s:
            time.sleep(pace_s)
    sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')
    return sent + 2


def _status(sock: socket.socket) -> int:
    """The status code of the response on ``sock`` (reads until the status line)."""
    data = b""
    while b"\r\n" not in data:
        more = sock.recv(4096)
        if not more:
            return 599
        data += more
    return int(data.split(b" ", 2)[1])


def is_expected(hostile: Hostile, status: int) -> bool:
    """Whether ``status`` is what a hardened server answers to ``hostile``."""
    return status in hostile.expect
