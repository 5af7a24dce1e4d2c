"""``finesift demo-data``: a realistic, noisy instruction dataset with its ground truth.

Rows are alpaca-style (``instruction``, ``input``, ``output``) plus ``category`` (the task
type), ``timestamp`` (ISO date) and two ground-truth columns: ``truth``, the kind of row,
and ``truth_of``, for a duplicate or conflict the 0-based index (in the generated list) of
the clean row it copies, else None. There is no id column: finesift hashes content.

Kinds (see :data:`DEFAULT_MIX`): ``clean`` rows from the task templates of
:mod:`jobs.demo.tasks`; ``exact_duplicate`` (a copy, at most changed in case, spacing or
punctuation); ``near_duplicate`` (a few words inserted, deleted or replaced, 3-word-shingle
Jaccard about 0.7-0.9); ``conflict`` (the same instruction with a plausible wrong answer);
``junk:<rule>`` for every rule of :mod:`quality.heuristics`; ``stale`` (a clean, unique row
dated before 2023); ``mislabeled`` (an instruction answered with another task's answer).

Rows are built lazily (:func:`iter_generate`) from one seeded RNG: the same seed gives the
same rows, and a million rows need only a bounded pool of copy candidates in memory.
Importable without Ray.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from infra.errors import FinesiftError
from jobs.demo import defects
from jobs.demo.tasks import TASKS, Task, phrase
from quality.text import jaccard, shingles

DEFAULT_MIX: dict[str, float] = {
    "clean": 0.60,
    "exact_duplicate": 0.08,
    "near_duplicate": 0.08,
    "conflict": 0.06,
    "junk": 0.12,
    "stale": 0.04,
    "mislabeled": 0.02,
}
"""Share of each kind of row; ``junk`` is spread evenly over :data:`JUNK_RULES`."""

JUNK_RULES: tuple[str, ...] = (
    "empty_response",
    "short_response",
    "truncated_response",
    "unclear_instruction",
    "repeats_instruction",
    "ngram_repetition",
    "junk_characters",
    "markup_mojibake",
    "unvisitable_url",
    "language_mismatch",
)
"""Heuristic rule names; junk rows are labelled ``junk:<rule>`` for the rule they break."""

STALE_BEFORE = "2023-01-01"
"""Stale rows are dated before this day; every other row falls in the two years from
``start_date``."""

# Clean rows that may still be copied by a later duplicate or conflict; bounded so that a
# million rows stay cheap, each original is copied at most once.
_POOL_SIZE = 50_000
# Consecutive key collisions after which a task's key space counts as used up; large enough
# that a task whose subtypes are mostly used up still reaches the roomy ones.
_MAX_MISSES = 200
_PLACEHOLDERS = ("N/A", "<nooutput>", "None", "n/a", "", "No output.", "TODO", "I don't know.")
_NON_ANSWERS = ("Okay.", "Sure.", "Done.", "See above.", "Good idea.", "Thanks!", "Will do.")
_SHORT_TASKS = ("summarization", "lists", "definitions", "code", "rewriting")
_UNCLEAR = (
    "how u",
    "pls help",
    "?",
    "help pls",
    "plz",
    "idk",
    "do it",
    "hmm",
    "and?",
    "wat",
    "pls help me",
    "u know",
)
_NAMED_LANGUAGE = re.compile(
    r"translat|language|english|french|spanish|anglais|ingl", re.IGNORECASE
)


def iter_generate(
    rows: int,
    *,
    seed: int = 0,
    start_date: str = "2024-01-01",
    mix: Mapping[str, float] | None = None,
) -> Iterator[dict[str, Any]]:
    """A noisy instruction dataset, built row by row as it is consumed (see the module).

    Args:
        rows: Number of rows to yield.
        seed: Random seed; the same seed yields the same rows.
        start_date: ISO date; non-stale rows are dated in the two years from it.
        mix: Share of each kind, keys from :data:`DEFAULT_MIX` (missing kinds get 0);
            normalized to sum to 1. Defaults to :data:`DEFAULT_MIX`.

    Returns:
        A lazy iterator of dicts with instruction, input, output, category, timestamp, truth
        and truth_of.

    Raises:
        FinesiftError: rows is negative, start_date is not an ISO date, or mix is invalid
            (raised at once, before the first row).
    """
    if rows < 0:
        raise FinesiftError(f"rows must be >= 0, got {rows}")
    gen = _Generator(seed, start_date, _check_mix(DEFAULT_MIX if mix is None else mix))
    return (gen.row(index) for index in range(rows))


def generate(
    rows: int,
    *,
    seed: int = 0,
    start_date: str = "2024-01-01",
    mix: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The rows of :func:`iter_generate` as a list; see there for the arguments."""
    return list(iter_generate(rows, seed=seed, start_date=start_date, mix=mix))


def write_jsonl(records: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write records as UTF-8 JSON Lines, one object per line.

    Args:
        records: Rows, e.g. from :func:`generate` or :func:`iter_generate`.
        path: File to write (overwritten); its folder must exist.

    Returns:
        The number of rows written.
    """
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False))
            f.write("\n")
            n += 1
    return n


def shingle_jaccard(a: Mapping[str, Any], b: Mapping[str, Any], size: int = 3) -> float:
    """Jaccard similarity of the word shingles of two rows' instruction, input and output.

    Args:
        a: A row with instruction, input and output.
        b: Another row.
        size: Words per shingle.

    Returns:
        The similarity in [0, 1] after finesift's text normalization.
    """
    return jaccard(shingles(_text(a), size), shingles(_text(b), size))


def _text(row: Mapping[str, Any]) -> str:
    return f"{row['instruction']}\n{row['input']}\n{row['output']}"


def _check_mix(mix: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(mix) - set(DEFAULT_MIX))
    if unknown:
        raise FinesiftError(f"unknown kind(s) in mix: {unknown}; known: {list(DEFAULT_MIX)}")
    if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise FinesiftError(f"mix shares must be >= 0 and not all 0, got {dict(mix)}")
    total = sum(mix.values())
    return {k: mix.get(k, 0.0) / total for k in DEFAULT_MIX}


def _dates(first: dt.date, days: int) -> list[str]:
    return [(first + dt.timedelta(days=d)).isoformat() for d in range(days)]


class _Generator:
    """The state behind :func:`iter_generate`: the RNG, used content keys, copy candidates."""

    def __init__(self, seed: int, start_date: str, mix: dict[str, float]) -> None:
        try:
            start = dt.date.fromisoformat(start_date)
        except (TypeError, ValueError) as exc:
            raise FinesiftError(
                f"start_date must be an ISO date like 2024-01-01, got {start_date!r}"
            ) from exc
        self.rng = random.Random(seed)
        self.days = _dates(start, 731)
        self.stale_days = _dates(dt.date(2019, 1, 1), 1461)  # 2019-01-01 .. 2022-12-31
        self.kinds = list(mix)
        self.kind_cum = list(itertools.accumulate(mix.values()))
        self.categories = list(TASKS)
        self.open_cache: dict[tuple[str, ...] | None, tuple[list[str], list[float]]] = {}
        self.keys: set[bytes] = set()
        self.numeric: set[str] = set()  # tasks whose rows carry numbers (Task.detail)
        self.fine: set[str] = set()  # numeric tasks reopened with their numbers in the key
        self.exhausted: set[str] = set()
        self.pool: list[tuple[int, str, int]] = []  # (index, category, task seed)

    # --- fresh content ---------------------------------------------------------------------

    def fresh(self, among: tuple[str, ...] | None = None) -> tuple[str, int, Task]:
        """A task row whose content key was never used: (category, task seed, task)."""
        rng = self.rng
        while True:
            open_, cum = self.open_categories(among)
            category = open_[bisect.bisect(cum, rng.random() * cum[-1])]
            fn = TASKS[category][0]
            for _ in range(_MAX_MISSES):
                task_seed = rng.getrandbits(62)
                task = fn(random.Random(task_seed), False)
                key = (task.key, task.detail) if category in self.fine else task.key
                digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
                if digest not in self.keys:
                    self.keys.add(digest)
                    return category, task_seed, task
            if task.detail is not None:
                self.numeric.add(category)
            self.exhausted.add(category)
            self.open_cache.clear()
            self.reopen_numeric()

    def reopen_numeric(self) -> None:
        """Once the open tasks carry under half the weight, let numeric tasks whose content
        keys ran out go on with their numbers in the key (rows then differ in figures only:
        near-duplicates to an embedding model, but the generator can go on for millions)."""
        open_weight = sum(TASKS[c][1] for c in self.categories if c not in self.exhausted)
        if open_weight >= 0.5 * sum(w for _, w in TASKS.values()):
            return
        for category in self.numeric - self.fine:
            self.fine.add(category)
            self.exhausted.discard(category)

    def open_categories(self, among: tuple[str, ...] | None) -> tuple[list[str], list[float]]:
        """Tasks (of ``among``, else all) that still have unused keys, and cumulative weights."""
        if among not in self.open_cache:
            open_ = [c for c in (among or self.categories) if c not in self.exhausted]
            if not open_:
                open_ = [c for c in self.categories if c not in self.exhausted]
            if not open_:
                raise FinesiftError("every demo task ran out of distinct rows; generate fewer")
            cum = list(itertools.accumulate(TASKS[c][1] for c in open_))
            self.open_cache[among] = (open_, cum)
        return self.open_cache[among]

    def remember(self, index: int, category: str, task_seed: int) -> None:
        """Offer a clean row as the original of a later copy (bounded pool)."""
        if len(self.pool) < _POOL_SIZE:
            self.pool.append((index, category, task_seed))
        else:
            self.pool[self.rng.randrange(_POOL_SIZE)] = (index, category, task_seed)

    def original(self) -> tuple[int, str, int] | None:
        """Take a random clean row from the pool (each is copied at most once)."""
        if not self.pool:
            return None
        i = self.rng.randrange(len(self.pool))
        self.pool[i], self.pool[-1] = self.pool[-1], self.pool[i]
        return self.pool.pop()

    # --- rows ------------------------------------------------------------------------------

    def row(self, index: int) -> dict[str, Any]:
        """Row ``index``: draw its kind, then build it."""
        rng = self.rng
        kind = self.kinds[bisect.bisect(self.kind_cum, rng.random() * self.kind_cum[-1])]
        if kind in ("exact_duplicate", "near_duplicate", "conflict"):
            source = self.original()
            if source is not None:
                return self.copy(kind, *source)
            kind = "clean"  # nothing to copy yet
        if kind == "junk":
            return self.junk(rng.choice(JUNK_RULES))
        if kind == "mislabeled":
            return self.mislabeled()
        category, task_seed, task = self.fresh()
        if kind == "clean":
            self.remember(index, category, task_seed)
        return self.record(task, category, kind, stale=kind == "stale")

    def record(
        self,
        task: Task | tuple[str, str, str],
        category: str,
        truth: str,
        *,
        truth_of: int | None = None,
        stale: bool = False,
    ) -> dict[str, Any]:
        """The output row: the texts, a date (before 2023 when stale) and the truth."""
        days = self.stale_days if stale else self.days
        return {
            "instruction": task[0],
            "input": task[1],
            "output": task[2],
            "category": category,
            "timestamp": days[self.rng.randrange(len(days))],
            "truth": truth,
            "truth_of": truth_of,
        }

    def copy(self, kind: str, index: int, category: str, task_seed: int) -> dict[str, Any]:
        """A duplicate or conflict of the clean row ``index``, rebuilt from its seed."""
        fn = TASKS[category][0]
        task = fn(random.Random(task_seed), kind == "conflict")
        instruction, inp, out = task.instruction, task.input, task.output
        rng = self.rng
        if kind == "exact_duplicate":
            instruction, out = defects.surface_variant(rng, instruction, out)
        elif kind == "near_duplicate":
            instruction, inp, out = defects.near_variant(rng, instruction, inp, out)
        else:
            instruction, _ = defects.surface_variant(rng, instruction, "")
        return self.record((instruction, inp, out), category, kind, truth_of=index)

    def mislabeled(self) -> dict[str, Any]:
        """An instruction answered with a fluent answer to another task."""
        category, _, asked = self.fresh()
        others = tuple(c for c in self.categories if c != category)
        _, _, answered = self.fresh(others)
        return self.record(
            (asked.instruction, asked.input, answered.output), category, "mislabeled"
        )

    def junk(self, rule: str) -> dict[str, Any]:
        """A fresh row broken the way ``rule`` detects."""
        rng = self.rng
        among = _SHORT_TASKS if rule == "short_response" else None
        category, _, task = self.fresh(among)
        instruction, inp, out = task.instruction, task.input, task.output
        if rule == "empty_response":
            out = rng.choice(_PLACEHOLDERS)
        elif rule == "short_response":
            out = rng.choice(_NON_ANSWERS)
        elif rule == "truncated_response":
            out = defects.truncate(rng, out)
        elif rule == "unclear_instruction":
            instruction, inp = rng.choice(_UNCLEAR), ""
        elif rule == "repeats_instruction":
            while len(f"{instruction} {inp}".split()) < 6:
                category, _, task = self.fresh()
                instruction, inp = task.instruction, task.input
            n = len(instruction.split())
            out = rng.choice(
                [f"{instruction}\n{inp}".strip()]
                + [instruction] * (n >= 6)
                + [f"The question is: {instruction}"] * (n >= 12)
            )
        elif rule == "ngram_repetition":
            out = defects.loop(rng, out)
        elif rule == "junk_characters":
            out = defects.garble(rng, out)
        elif rule == "markup_mojibake":
            out = defects.mojibake(rng, out)
        elif rule == "unvisitable_url":
            out = defects.cite_url(rng, out)
        else:
            category, instruction, inp, out = self.mismatch(category, task)
        return self.record((instruction, inp, out), category, f"junk:{rule}")

    def mismatch(self, category: str, task: Task) -> tuple[str, str, str, str]:
        """A row answered in another language than it was asked in, no translation asked."""
        rng = self.rng
        if rng.random() < 0.3:  # a French or Spanish question answered in English
            lang = rng.choice(("fr", "es"))
            asked = phrase(rng, lang)
            while _NAMED_LANGUAGE.search(asked):
                asked = phrase(rng, lang)
            ask = "Qu'est-ce que cela veut dire ?" if lang == "fr" else "¿Qué significa esto?"
            return (
                "translation",
                f"{asked} {ask}",
                "",
                f"It is about everyday routines. {phrase(rng, 'en')}",
            )
        while _NAMED_LANGUAGE.search(f"{task.instruction} {task.input}"):
            category, _, task = self.fresh()
        lang = rng.choice(("fr", "es"))
        return category, task.instruction, task.input, f"{phrase(rng, lang)} {phrase(rng, lang)}"
