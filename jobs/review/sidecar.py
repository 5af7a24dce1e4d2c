"""The review sidecar: ``verified.review.json`` beside ``verified.jsonl``.

It says that a file was reviewed, by whom and with what outcome, and carries the file's
sha256, so ``finesift train`` can record in its manifest that its data was reviewed, and
only when the data is byte for byte what the review exported.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from infra import storage


def sidecar_path(data_path: str) -> str:
    """Where the review sidecar of a data file lives: ``NAME.review.json`` beside it."""
    name = PurePosixPath(storage.name_of(data_path).replace("\\", "/")).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return storage.join(storage.parent(data_path), f"{stem}.review.json")


def review_of(data_path: str, sha256: str) -> dict[str, Any] | None:
    """The review record of a data file, or None when it was not reviewed as it is now.

    Args:
        data_path: the training data file (local path or URI).
        sha256: its sha256; a sidecar for other bytes (the file changed after export)
            does not count.

    Returns:
        The sidecar's content, or None.
    """
    path = sidecar_path(data_path)
    try:
        if storage.kind_of(path) != "file":
            return None
        record = json.loads(storage.read_text(path))
    except (OSError, ValueError):
        return None  # an unreadable sidecar vouches for nothing
    if not isinstance(record, dict) or record.get("sha256") != sha256:
        return None
    return record
