"""``finesift review --auto N``: a non-interactive review through the HTTP API, for the demo.

It does what a person does, through the same API: it takes the first N rows of the queue
(least confident first), rejects the first of them (so the demo shows a refill) and
accepts the others, then exports. The rule is a demonstration, not a quality judgement.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from infra.errors import FinesiftError

AUTO_REASON = "demo: --auto rejects the least confident pick to show a refill"


class ApiClient:
    """A tiny JSON client for the review API (standard library only)."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    def call(self, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """GET (no body) or POST a JSON body; returns (status, JSON answer)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def ok(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Like :meth:`call`, but a non-2xx answer is an error naming the server's message."""
        status, answer = self.call(path, body)
        if status >= 300:
            raise FinesiftError(f"review API {path} answered {status}: {answer.get('error')}")
        return answer


def auto_review(client: ApiClient, rows: int, reviewer: str) -> dict[str, Any]:
    """Review ``rows`` rows of the queue through the API, then export.

    Returns:
        {"verdicts": [(id, state, refill id or None)], "export": the export summary}.
    """
    queue = client.ok("/api/queue?state=unreviewed")["rows"][:rows]
    verdicts = []
    for i, row in enumerate(queue):
        body: dict[str, Any] = {"version": row["version"], "reviewer": reviewer}
        if i == 0 and rows > 1:
            body |= {"verdict": "reject", "reason": AUTO_REASON}
        else:
            body |= {"verdict": "accept"}
        answer = client.ok(f"/api/rows/{_quote(row['id'])}/verdict", body)
        refill = answer.get("refill")
        verdicts.append((row["id"], answer["item"]["state"], refill["row_id"] if refill else None))
    return {"verdicts": verdicts, "export": client.ok("/api/export", {})}


def _quote(row_id: str) -> str:
    from urllib.parse import quote

    return quote(row_id, safe="")
