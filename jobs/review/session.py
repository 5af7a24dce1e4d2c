"""The operations of a review, with no HTTP in them: the app, ``--export`` and the tests
call these.

A :class:`ReviewSession` joins the run (:mod:`jobs.review.run`), the verdict store
(:mod:`jobs.review.store`) and the refill rule (:mod:`jobs.review.refill`): it builds the
queue and a row's card, records verdicts and fills a rejected pick's slot.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.review import queue as q
from jobs.review.errors import ReviewError
from jobs.review.refill import Refiller
from jobs.review.run import SIGNALS, Run
from jobs.review.store import STORE_FILE, Item, ReviewStore
from quality.conflicts import lost_as_mismatched

REJECT_REASONS = {
    "wrong_answer": "the answer is wrong or incomplete",
    "unclear_instruction": "the instruction is unclear or unanswerable",
    "unsafe": "harmful, unsafe or private content",
    "poor_writing": "badly written, off-format or truncated",
    "duplicate": "repeats another pick",
    "off_topic": "not what the model should learn",
}
"""The short list of rejection reasons (free text is accepted too)."""
VERDICTS = {"accept": "accepted", "reject": "rejected", "edit": "edited"}
MAX_REVIEWER = 100
MAX_REASON = 500
TITLE_CHARS = 120


@dataclass(frozen=True)
class VerdictResult:
    """A recorded verdict: the row after it, and the refill it caused (if any)."""

    item: Item
    refill: Item | None = None


class ReviewSession:
    """One run directory under review.

    Args:
        run_dir: the curate run directory; the store is ``RUN_DIR/review.sqlite``.
        encoder: the encoder for refills; None loads the run's own on the first one.
    """

    def __init__(self, run_dir: str | Path, *, encoder=None) -> None:
        self.run = Run(run_dir)
        self.store = ReviewStore(
            self.run.run_dir / STORE_FILE,
            fingerprint=self.run.fingerprint,
            picks=[(i, int(self.run.rows[i]["cluster"])) for i in self.run.selected_ids],
        )
        self.refiller = Refiller(self.run, encoder)
        self._refill_lock = threading.Lock()
        self.run.text(self.run.selected_ids)  # the whole pick is searched: read it once
        self.repair()

    @property
    def budget(self) -> int:
        """Rows curation picked: the size the review keeps the selection at."""
        return len(self.run.selected_ids)

    # --- the queue -------------------------------------------------------------------------

    def entries(self) -> list[q.Entry]:
        """Every row of the queue as a :class:`jobs.review.queue.Entry`."""
        items = self.store.items()
        texts = self.run.text([i.row_id for i in items])
        return [self._entry(item, texts.get(item.row_id)) for item in items]

    def _entry(self, item: Item, text: dict[str, Any] | None) -> q.Entry:
        row = self.run.rows[item.row_id]
        displaced = [self.run.rows[d] for d in self.run.displaced_by.get(item.row_id, [])]
        flags = []
        # A conflict won over an answer to another task is no doubt worth a look.
        if any(
            d["kept_instead"] == item.row_id and not lost_as_mismatched(d["detail"])
            for d in displaced
        ):
            flags.append("conflict")
        if any(d["duplicate_of"] == item.row_id for d in displaced):
            flags.append("duplicates")
        if row["failed_rules"]:
            flags.append("failed_rules")
        if row["judge_status"] and not row["judge_status"].startswith("ok"):
            flags.append("judge_problem")
        if item.origin == "refill":
            flags.append("refill")
        reasons = {*(row["failed_rules"] or []), *(d["reason"] for d in displaced if d["reason"])}
        if item.reason and item.state == "rejected":
            reasons.add(item.reason)
        text = text or {"prompt": "", "response": "", "messages": []}
        searchable = [item.row_id, row["source"] or "", text["prompt"], text["response"]]
        searchable += [m.get("content", "") for m in item.messages or []]
        return q.Entry(
            row_id=item.row_id,
            position=item.position,
            cluster=item.cluster,
            state=item.state,
            version=item.version,
            origin=item.origin,
            signals={s: row[s] for s in SIGNALS},
            flags=tuple(flags),
            reasons=tuple(sorted(reasons)),
            text="\n".join(searchable).casefold(),
            title=_title(text["prompt"]),
            replaces=item.replaces,
            replaced_by=item.replaced_by,
        )

    def queue(self, filters: q.Filters, order: str = "confidence") -> dict[str, Any]:
        """The filtered, ordered queue with the review's progress."""
        entries = self.entries()
        shown = q.select(entries, filters, order)
        return {
            "rows": [_summary(e) for e in shown],
            "progress": q.progress(entries, self.budget),
            "facets": q.facets(entries),
        }

    # --- a row -----------------------------------------------------------------------------

    def card(self, row_id: str) -> dict[str, Any]:
        """Everything the page shows about one row of the queue.

        Raises:
            jobs.review.store.UnknownRow: the row is not in the queue.
        """
        item = self.store.item(row_id)
        row = self.run.rows[row_id]
        displaced_ids = self.run.displaced_by.get(row_id, [])
        texts = self.run.text([row_id, *displaced_ids])
        text = texts[row_id]
        order = self.run.cluster_order(item.cluster)
        picks = [
            i.row_id
            for i in self.store.items()
            if i.cluster == item.cluster and i.state not in ("rejected", "withdrawn")
        ]
        return {
            **item.to_dict(),
            "source": row["source"],
            "original": copy.deepcopy(text["messages"]),  # the cache stays the run's
            "rebuilt": text["rebuilt"],
            "extras": text["extras"],
            "signals": {s: row[s] for s in SIGNALS}
            | {"judge_status": row["judge_status"], "failed_rules": row["failed_rules"] or []},
            "selection": {
                "cluster": item.cluster,
                "rank": order.index(row_id) + 1 if row_id in order else None,
                "survivors": len(order),
                "picks": len(picks),
                "score": self.run.selection_score(row_id),
                "min_distance": self.run.settings.min_distance,
            },
            "displaced": [self._displaced(d, texts.get(d)) for d in displaced_ids],
            "history": self.store.history(row_id),
        }

    def _displaced(self, row_id: str, text: dict[str, Any] | None) -> dict[str, Any]:
        row = self.run.rows[row_id]
        return {
            "id": row_id,
            "relation": "conflict" if row["kept_instead"] else "duplicate",
            "reason": row["reason"],
            "detail": row["detail"],
            "source": row["source"],
            "signals": {s: row[s] for s in SIGNALS},
            "prompt": (text or {}).get("prompt", ""),
            "response": (text or {}).get("response", ""),
        }

    # --- verdicts --------------------------------------------------------------------------

    def verdict(
        self,
        row_id: str,
        *,
        verdict: str,
        version: int,
        reviewer: str,
        reason: str | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> VerdictResult:
        """Record accept / reject / edit on a row; a rejection refills the row's slot.

        Args:
            row_id: the row.
            verdict: ``accept``, ``reject`` or ``edit``.
            version: the row version the reviewer saw.
            reviewer: who decides (recorded with the time).
            reason: for a rejection: a code of :data:`REJECT_REASONS` or free text.
            messages: for an edit: the conversation with the same turns, new text.

        Returns:
            The row after the verdict, and its refill when a rejection caused one.

        Raises:
            ReviewError: a bad verdict, reviewer, reason or edit (the message says which).
            jobs.review.store.UnknownRow: the row is not in the queue.
            jobs.review.store.StaleVersion: the row changed since ``version``.
        """
        if verdict not in VERDICTS:
            raise ReviewError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        reviewer = _clean(reviewer, "reviewer", MAX_REVIEWER, required=True)
        reason = _clean(reason, "reason", MAX_REASON, required=verdict == "reject")
        if verdict == "edit":
            original = self.run.text([row_id]).get(row_id, {}).get("messages", [])
            messages = check_edit(original, messages)
        else:
            messages = None
        item = self.store.record(
            row_id,
            seen_version=version,
            state=VERDICTS[verdict],
            reviewer=reviewer,
            reason=reason if verdict == "reject" else None,
            messages=messages,
        )
        refill = self.refill(item) if item.state == "rejected" else None
        return VerdictResult(item=self.store.item(row_id), refill=refill)

    def refill(self, pick: Item) -> Item | None:
        """Fill a rejected pick's slot by the selection's rule (see :mod:`.refill`).

        When no row is left, or the encoder fails, the pick keeps a note saying why, and
        the verdict stands.
        """
        with self._refill_lock:
            items = self.store.items()
            current = next(i for i in items if i.row_id == pick.row_id)
            if current.state != "rejected" or current.replaced_by is not None:
                return None
            picks = [
                i.row_id
                for i in items
                if i.cluster == pick.cluster and i.state not in ("rejected", "withdrawn")
            ]
            taken = {i.row_id for i in items if i.state != "withdrawn"}
            try:
                choice = self.refiller.replacement(pick.cluster, picks, taken)
            except Exception as exc:  # noqa: BLE001 - the verdict is recorded; say why not refilled
                self.store.note(pick.row_id, f"not refilled: {type(exc).__name__}: {exc}")
                return None
            if choice is None:
                self.store.note(
                    pick.row_id,
                    f"not refilled: cluster {pick.cluster} has no other survivor left",
                )
                return None
            self.run.text([choice.row_id])
            return self.store.add_refill(pick.row_id, choice.row_id, pick.cluster, choice.note)

    def repair(self) -> int:
        """Refill rejected picks whose refill never happened (a server stopped between the
        verdict and its refill). Returns how many were refilled."""
        done = 0
        for item in self.store.items():
            if item.state == "rejected" and item.replaced_by is None and not item.note:
                done += self.refill(item) is not None
        return done

    def warm_up_in_background(self) -> threading.Thread:
        """Load the run's encoder and embed the picks in a thread, so a reviewer's first
        rejection does not wait for them; a failure is left for the refill to report."""
        clusters: dict[int, list[str]] = {}
        for item in self.store.items():
            if item.state not in ("rejected", "withdrawn"):
                clusters.setdefault(item.cluster, []).append(item.row_id)

        if self.run.settings.method == "facility":
            # A coverage refill compares every survivor of the cluster, not just the picks.
            clusters = {c: self.run.cluster_order(c) for c in clusters}

        def load() -> None:
            # A failure (a missing model) is reported by the refill, on the rejected row.
            with contextlib.suppress(Exception):
                self.refiller.warm_up(list(clusters.values()))

        thread = threading.Thread(target=load, name="review-encoder", daemon=True)
        thread.start()
        return thread

    def info(self) -> dict[str, Any]:
        """The run and the vocabulary of the page."""
        return {
            "run_dir": str(self.run.run_dir.resolve()),
            "name": self.run.run_dir.resolve().name,
            "budget": self.budget,
            "reject_reasons": REJECT_REASONS,
            "signals": list(SIGNALS),
            "orders": list(q.ORDERS),
            "states": list(q.STATE_FILTERS),
            "flags": list(q.FLAGS),
            "settings": {
                "embed_model": self.run.settings.embed_model,
                "min_distance": self.run.settings.min_distance,
            },
        }


def check_edit(
    original: list[dict[str, str]], messages: list[dict[str, str]] | None
) -> list[dict[str, str]]:
    """An edited conversation: the original's turns and roles, each with non-empty text.

    Raises:
        ReviewError: the edit is missing, or changes the turns or roles, or empties a turn.
    """
    if not messages:
        raise ReviewError("an edit needs `messages`: the conversation with the edited text")
    if [m.get("role") for m in messages] != [m["role"] for m in original]:
        raise ReviewError(
            "an edit keeps the conversation's turns and roles "
            f"({', '.join(m['role'] for m in original)}); change only their text"
        )
    edited = []
    for turn in messages:
        content = turn.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ReviewError(f"the edited {turn['role']} turn is empty; write its text")
        edited.append({"role": turn["role"], "content": content.strip()})
    if edited == original:
        raise ReviewError("the edit changes nothing; accept the row instead")
    return edited


def _clean(value: str | None, name: str, limit: int, *, required: bool) -> str | None:
    value = (value or "").strip()
    if required and not value:
        raise ReviewError(f"{name} is required")
    if len(value) > limit:
        raise ReviewError(f"{name} is longer than {limit} characters")
    return value or None


def _title(prompt: str) -> str:
    first = " ".join((prompt or "").split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1] + "…"


def _summary(entry: q.Entry) -> dict[str, Any]:
    return {
        "id": entry.row_id,
        "cluster": entry.cluster,
        "state": entry.state,
        "version": entry.version,
        "origin": entry.origin,
        "replaces": entry.replaces,
        "replaced_by": entry.replaced_by,
        "quality": entry.signals.get("quality"),
        "relevance": entry.signals.get("relevance"),
        "flags": list(entry.flags),
        "title": entry.title,
    }
