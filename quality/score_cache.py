"""Model scores cached by row content and model, so a rerun or a resumed run pays once.

A key is a hash of the signal's name, the model (and whatever else changes the score,
e.g. the length cap) and the row's prompt and response; the value is a small JSON
object. Storage is one SQLite file (default ``$FINESIFT_HOME/score_cache.sqlite``) in
WAL mode, so several actors on a node read and write it at once. On a multi-node
cluster each node keeps its own file unless the path is on shared storage.

Importable without Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def default_cache_path() -> Path:
    """``$FINESIFT_HOME/score_cache.sqlite`` (``~/.cache/finesift`` when unset)."""
    home = os.environ.get("FINESIFT_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".cache" / "finesift") / (
        "score_cache.sqlite"
    )


def score_key(signal: str, model: str, prompt: str, response: str) -> str:
    """The cache key of one row's score under one model and setting.

    Args:
        signal: What is scored, with every setting that changes it (e.g. "ifd:max_length=512").
        model: The model's identity (a resolved path or id).
        prompt: The row's prompt.
        response: The row's response.
    """
    h = hashlib.blake2b(digest_size=20)
    for part in (signal, model, prompt, response):
        data = (part or "").encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))  # length-prefixed: no ambiguous joins
        h.update(data)
    return h.hexdigest()


class ScoreCache:
    """A persistent key -> JSON value map.

    Args:
        path: SQLite file; its directory is created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present; counts hits and misses."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in self._db.execute(
                f"SELECT key, value FROM scores WHERE key IN ({marks})", chunk
            ):
                found[key] = json.loads(value)
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, values: Mapping[str, Any]) -> None:
        """Store values (JSON-serializable), replacing any under the same key."""
        if not values:
            return
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0])

    def close(self) -> None:
        self._db.close()
