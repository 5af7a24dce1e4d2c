"""The verdict store: one SQLite file (WAL) in the run directory, ``review.sqlite``.

Every verdict is committed before the request that made it is answered (``synchronous =
FULL``), so a verdict survives a browser refresh, a server restart and a power cut. WAL
lets readers (the page, an export) run while a verdict is written. Two tables:

- ``items``: the review queue, one row per pick (the selection in selected.jsonl order,
  then refills): its current state, reason, reviewer, time, latest edit and a ``version``
  that every change increments.
- ``history``: every verdict ever recorded, append-only; an edit's conversation is kept
  here as a new version of the row, and the original stays untouched in the run's files.

Two browsers on the same run do not overwrite each other: a verdict names the version of
the row it was made on, and is refused (:class:`StaleVersion`, with the current state)
when the row changed since. The check and the write are one ``BEGIN IMMEDIATE``
transaction, so it also holds across processes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.errors import InputError

STORE_FILE = "review.sqlite"
STATES = ("unreviewed", "accepted", "rejected", "edited", "withdrawn")
"""``withdrawn``: a refill no longer needed (its rejected pick was restored unreviewed)."""
SELECTED, REFILL = "selected", "refill"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    row_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    cluster INTEGER NOT NULL,
    origin TEXT NOT NULL,
    replaces TEXT,
    replaced_by TEXT,
    note TEXT,
    state TEXT NOT NULL DEFAULT 'unreviewed',
    reason TEXT,
    reviewer TEXT,
    time TEXT,
    messages TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    row_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    reviewer TEXT,
    time TEXT NOT NULL,
    messages TEXT
);
CREATE INDEX IF NOT EXISTS history_row ON history (row_id, seq);
"""


@dataclass(frozen=True)
class Item:
    """One row of the review queue, as stored."""

    row_id: str
    position: int
    cluster: int
    origin: str
    """``selected`` (curation's pick) or ``refill`` (a replacement for a rejected pick)."""
    replaces: str | None
    replaced_by: str | None
    note: str | None
    """For a refill, how it was chosen; for a rejected pick without one, why."""
    state: str
    reason: str | None
    reviewer: str | None
    time: str | None
    messages: list[dict[str, str]] | None
    """The latest edit of the conversation (state ``edited``), else None."""
    version: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class StaleVersion(Exception):
    """A verdict made on an older version of the row; ``current`` is the row now."""

    def __init__(self, current: Item) -> None:
        by = f" ({current.state} by {current.reviewer} at {current.time})" if current.time else ""
        super().__init__(f"row {current.row_id} is at version {current.version}{by}")
        self.current = current


class UnknownRow(KeyError):
    """No such row in the review queue."""


def now() -> str:
    """UTC time in ISO 8601, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ReviewStore:
    """The verdicts of one run's review.

    Args:
        path: the SQLite file (created with its tables when missing).
        fingerprint: identifies the selection under review (sha256 of selected.jsonl); a
            store made for another selection is refused.
        picks: (row id, cluster) of the selection, seeded into the queue on first use.

    Raises:
        InputError: the store belongs to another selection, or is not a review store.
    """

    def __init__(self, path: str | Path, *, fingerprint: str, picks: list[tuple[str, int]]) -> None:
        self.path = Path(path)
        try:
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
                self._seed(con, fingerprint, picks)
        except sqlite3.DatabaseError as exc:
            raise InputError(
                f"{self.path} is not a review store ({exc}); move it away to start a new review"
            ) from exc

    def _seed(
        self, con: sqlite3.Connection, fingerprint: str, picks: list[tuple[str, int]]
    ) -> None:
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key = 'selection'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('selection', ?)", (fingerprint,))
                con.execute("INSERT INTO meta VALUES ('created', ?)", (now(),))
                con.executemany(
                    "INSERT INTO items (row_id, position, cluster, origin) VALUES (?, ?, ?, ?)",
                    [(rid, pos, cluster, SELECTED) for pos, (rid, cluster) in enumerate(picks)],
                )
            elif row[0] != fingerprint:
                raise InputError(
                    f"{self.path} holds the review of another selection (selected.jsonl "
                    "changed since the review began); move review.sqlite away to start a new "
                    "review, or restore the selected.jsonl it was made for"
                )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # A connection per operation: requests run on a thread pool, and SQLite's own
        # locking (not a Python lock) then also covers a second process on the same file.
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA synchronous=FULL")
            yield con
        finally:
            con.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    # --- reading ---------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Every row of the queue (withdrawn ones too), in queue position order."""
        with self._connect() as con:
            return [_item(r) for r in con.execute("SELECT * FROM items ORDER BY position")]

    def item(self, row_id: str) -> Item:
        """One row of the queue.

        Raises:
            UnknownRow: the row is not in the queue.
        """
        with self._connect() as con:
            return _get(con, row_id)

    def history(self, row_id: str) -> list[dict[str, Any]]:
        """Every verdict on a row, oldest first (edits with their conversation)."""
        with self._connect() as con:
            rows = con.execute(
                "SELECT version, state, reason, reviewer, time, messages FROM history "
                "WHERE row_id = ? ORDER BY seq",
                (row_id,),
            ).fetchall()
        return [
            {**dict(r), "messages": json.loads(r["messages"]) if r["messages"] else None}
            for r in rows
        ]

    # --- writing ---------------------------------------------------------------------------

    def record(
        self,
        row_id: str,
        *,
        seen_version: int,
        state: str,
        reviewer: str,
        reason: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> Item:
        """Record a verdict, if the row is still at the version the reviewer saw.

        Restoring a rejected pick (any verdict but reject) withdraws its refill while the
        refill is unreviewed, so the queue does not grow past the budget.

        Args:
            row_id: the row.
            seen_version: the version the verdict was made on.
            state: ``accepted``, ``rejected`` or ``edited``.
            reviewer: who decided.
            reason: why (rejections).
            messages: the edited conversation (state ``edited``).

        Returns:
            The row after the verdict.

        Raises:
            UnknownRow: the row is not in the queue.
            StaleVersion: the row changed since ``seen_version``, or left the queue.
        """
        if state not in ("accepted", "rejected", "edited"):
            raise ValueError(f"unknown verdict state {state!r}")
        stamp = now()
        edit = json.dumps(messages, ensure_ascii=False) if messages is not None else None
        with self._write() as con:
            current = _get(con, row_id)
            if current.version != seen_version or current.state == "withdrawn":
                raise StaleVersion(current)
            version = current.version + 1
            con.execute(
                "UPDATE items SET state = ?, reason = ?, reviewer = ?, time = ?, messages = ?, "
                "version = ? WHERE row_id = ?",
                (state, reason, reviewer, stamp, edit, version, row_id),
            )
            _log(con, row_id, version, state, reason, reviewer, stamp, edit)
            if current.state == "rejected" and state != "rejected" and current.replaced_by:
                _withdraw_if_unreviewed(con, current, reviewer, stamp)
            return _get(con, row_id)

    def add_refill(self, rejected_id: str, row_id: str, cluster: int, note: str) -> Item | None:
        """Put a replacement for a rejected pick at the end of the queue.

        A withdrawn refill chosen again comes back as a new version of its row.

        Returns:
            The new row, or None when the pick is no longer rejected or already has one,
            or ``row_id`` is in the queue already (another request got there first);
            nothing is written then.
        """
        with self._write() as con:
            pick = _get(con, rejected_id)
            if pick.state != "rejected" or pick.replaced_by is not None:
                return None
            position = con.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM items").fetchone()
            existing = con.execute("SELECT state FROM items WHERE row_id = ?", (row_id,)).fetchone()
            if existing is None:
                con.execute(
                    "INSERT INTO items (row_id, position, cluster, origin, replaces, note) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (row_id, position[0], cluster, REFILL, rejected_id, note),
                )
            elif existing["state"] == "withdrawn":
                con.execute(
                    "UPDATE items SET position = ?, replaces = ?, note = ?, state = 'unreviewed', "
                    "reason = NULL, reviewer = NULL, time = NULL, messages = NULL, "
                    "version = version + 1 WHERE row_id = ?",
                    (position[0], rejected_id, note, row_id),
                )
                version = _get(con, row_id).version
                reason = f"back in the queue as the refill for {rejected_id}"
                _log(con, row_id, version, "unreviewed", reason, None, now(), None)
            else:
                return None
            con.execute(
                "UPDATE items SET replaced_by = ?, note = NULL WHERE row_id = ?",
                (row_id, rejected_id),
            )
            return _get(con, row_id)

    def note(self, row_id: str, note: str) -> None:
        """Say why a rejected pick has no replacement (no candidate left, encoder failed)."""
        with self._write() as con:
            con.execute("UPDATE items SET note = ? WHERE row_id = ?", (note, row_id))


def _withdraw_if_unreviewed(con: sqlite3.Connection, pick: Item, reviewer: str, stamp: str) -> None:
    refill = _get(con, pick.replaced_by)
    if refill.state != "unreviewed":
        return  # a reviewed refill stays: someone already vouched for it
    reason = f"{pick.row_id} was restored"
    con.execute(
        "UPDATE items SET state = 'withdrawn', reason = ?, reviewer = ?, time = ?, "
        "version = version + 1 WHERE row_id = ?",
        (reason, reviewer, stamp, refill.row_id),
    )
    _log(con, refill.row_id, refill.version + 1, "withdrawn", reason, reviewer, stamp, None)
    con.execute("UPDATE items SET replaced_by = NULL WHERE row_id = ?", (pick.row_id,))


def _log(con: sqlite3.Connection, row_id: str, version: int, *values: Any) -> None:
    con.execute(
        "INSERT INTO history (row_id, version, state, reason, reviewer, time, messages) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (row_id, version, *values),
    )


def _get(con: sqlite3.Connection, row_id: str | None) -> Item:
    row = con.execute("SELECT * FROM items WHERE row_id = ?", (row_id,)).fetchone()
    if row is None:
        raise UnknownRow(row_id)
    return _item(row)


def _item(row: sqlite3.Row) -> Item:
    values = dict(row)
    values["messages"] = json.loads(values["messages"]) if values["messages"] else None
    return Item(**values)
