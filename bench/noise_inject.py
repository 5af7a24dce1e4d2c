"""Realistic noise injected into real instruction rows, with a ground-truth column.

Used by ``bench/real_noise.py``. Clean rows come from a real dataset in
``../shared/data`` (rows that fail no heuristic rule and whose instruction is not repeated
in the file); noisy rows are made from other rows of the same file and added beside them.
Every output row carries ``truth`` (``clean`` or a noise kind) and ``truth_of`` (for a
noisy row made from a clean row that is also in the data, that clean row's 0-based index in
the output; else None).

Noise kinds (share of the noisy rows, :data:`NOISE_MIX`):

- ``sloppy`` (30%): a near-copy of a clean row with typos in about 8% of its words (swapped,
  dropped, doubled or replaced letters) and lost casing (all lower case); half keep the
  instruction as is (same instruction group), half get the same treatment there too.
- ``truncated`` (15%): an answer cut off mid-sentence, between 30% and 70% of its words;
  half beside their complete clean row (same instruction), half alone.
- ``conflict`` (15%): a clean row's instruction with a contradicting answer: the answer of
  the most similar other instruction of the file (TF-IDF cosine, same category where the
  file has one) that is still another task (cosine below 0.5: codegen asks the same task in
  other words often), fluent and on topic but wrong for this instruction.
- ``mislabeled`` (12%): an instruction with the answer of an unrelated task (random row of
  another category where the file has categories); half share a clean row's instruction.
- ``placeholder`` (13%): "TODO", "N/A", "[answer here]"... as the answer; half share a
  clean row's instruction.
- ``repeat`` (15%): one clean example repeated many times (one example per 500 clean rows),
  as exact copies or copies differing only in case, spacing and final punctuation.

The mix is our choice, not a measured census: copies and cut-offs are the commonest
defects of scraped and crowd-sourced sets, and wrong answers the most harmful. About a third
of all rows are noisy by default (``noise_share``). Rows not used at all are returned as a
held-out set (for training experiments that must never see them).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

NOISE_MIX: dict[str, float] = {
    "sloppy": 0.30,
    "truncated": 0.15,
    "conflict": 0.15,
    "mislabeled": 0.12,
    "placeholder": 0.13,
    "repeat": 0.15,
}
"""Share of each noise kind among the noisy rows."""

PLACEHOLDERS = (
    "TODO",
    "N/A",
    "[answer here]",
    "<insert answer>",
    "TBD",
    "...",
    "Answer goes here.",
    "See above.",
    "lorem ipsum dolor sit amet",
    "[Your answer]",
    "todo: write the answer",
    "n/a",
)
SOURCES = {
    "dolly": "dolly/dolly_3k.json",
    "codegen": "gpteacher/codegen-instruct.json",
    "toolformer": "gpteacher/toolformer-dedupe-only-dataset.json",
}
SAME_TASK = 0.5  # TF-IDF cosine of instructions at and above which two rows ask one task
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"
_SENTENCE_END = re.compile(r"[.!?:;]$")


@dataclass
class NoisyData:
    """An injected dataset: ``rows`` (with truth and truth_of) and unused ``heldout`` rows."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    heldout: list[dict[str, Any]] = field(default_factory=list)

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write ``NAME.jsonl`` (noisy rows) and ``NAME-heldout.jsonl``; return both paths."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = directory / f"{self.name}.jsonl", directory / f"{self.name}-heldout.jsonl"
        for path, rows in zip(paths, (self.rows, self.heldout), strict=True):
            with open(path, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return paths


def load_source(data_dir: Path, name: str) -> list[dict[str, str]]:
    """Rows of a shared dataset as {instruction, input, output, category}."""
    raw = json.loads((data_dir / SOURCES[name]).read_text(encoding="utf-8"))
    return [
        {
            "instruction": r["instruction"].strip(),
            "input": (r.get("input") or "").strip(),
            "output": (r.get("output") or r.get("response") or "").strip(),
            "category": r.get("category") or "",
        }
        for r in raw
    ]


def clean_pool(rows: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Rows fit to be "clean": no failed heuristic rule, an instruction seen once."""
    from quality.heuristics import evaluate_batch
    from quality.text import normalize_text

    prompts = [_prompt(r) for r in rows]
    _, failed, _ = evaluate_batch(prompts, [r["output"] for r in rows])
    seen: dict[str, int] = {}
    for r in rows:
        key = normalize_text(r["instruction"])
        seen[key] = seen.get(key, 0) + 1
    return [
        r
        for r, f in zip(rows, failed, strict=True)
        if not f and r["output"] and seen[normalize_text(r["instruction"])] == 1
    ]


def _prompt(r: dict[str, str]) -> str:
    return f"{r['instruction']}\n\n{r['input']}" if r["input"] else r["instruction"]


def inject(
    source: Sequence[dict[str, str]],
    name: str,
    *,
    n_clean: int = 1500,
    noise_share: float = 0.35,
    seed: int = 0,
) -> NoisyData:
    """Clean rows from ``source`` plus injected noise (see the module docstring).

    Args:
        source: Rows of one real dataset ({instruction, input, output, category}).
        name: Dataset name, used for file names.
        n_clean: Clean rows in the output.
        noise_share: Share of noisy rows in the output, in [0, 0.9].
        seed: Seed of every random choice.

    Returns:
        The rows, shuffled, and the held-out rows used for nothing.

    Raises:
        ValueError: Too few usable rows for ``n_clean`` and the noise.
    """
    if not 0.0 <= noise_share <= 0.9:
        raise ValueError(f"noise_share must be in [0, 0.9], got {noise_share}")
    rng = random.Random(seed)
    pool = clean_pool(source)
    rng.shuffle(pool)
    n_noise = round(noise_share / (1.0 - noise_share) * n_clean)
    counts = {k: round(v * n_noise) for k, v in NOISE_MIX.items()}
    alone_needed = sum(counts[k] // 2 for k in ("truncated", "mislabeled", "placeholder"))
    if len(pool) < n_clean + alone_needed + 50:
        raise ValueError(f"{name}: {len(pool)} usable rows, need {n_clean + alone_needed + 50}")
    clean, spare = pool[:n_clean], pool[n_clean:]
    rows: list[dict[str, Any]] = [_row(r, "clean") for r in clean]
    spare_iter = iter(spare)
    maker = _Maker(rng, clean, pool)
    for kind, count in counts.items():
        rows.extend(maker.make(kind, count, spare_iter))
    heldout = [_row(r, "clean") for r in spare_iter]
    return NoisyData(name, _shuffle(rows, rng), heldout)


def _row(r: dict[str, str], truth: str, truth_of: int | None = None, **changes: str) -> dict:
    out: dict[str, Any] = {**r, **changes}
    out["truth"], out["truth_of"] = truth, truth_of
    return out


def _shuffle(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Shuffle, renumbering truth_of (an index among the clean rows) to output positions."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    out = []
    for old in order:
        row = dict(rows[old])
        if row["truth_of"] is not None:
            row["truth_of"] = position[row["truth_of"]]
        out.append(row)
    return out


class _Maker:
    """Noisy rows of each kind; ``truth_of`` holds an index into the clean rows."""

    def __init__(
        self, rng: random.Random, clean: list[dict[str, str]], pool: list[dict[str, str]]
    ) -> None:
        self.rng, self.clean, self.pool = rng, clean, pool
        self._neighbours: list[int] | None = None

    def make(self, kind: str, count: int, spare) -> list[dict[str, Any]]:
        return getattr(self, kind)(count, spare)

    def _clean_index(self, min_words: int = 0) -> int:
        while True:
            i = self.rng.randrange(len(self.clean))
            if len(self.clean[i]["output"].split()) >= min_words:
                return i

    def sloppy(self, count: int, spare) -> list[dict[str, Any]]:
        out = []
        for k in range(count):
            i = self._clean_index(min_words=8)
            r = self.clean[i]
            changes = {"output": sloppy_text(r["output"], self.rng)}
            if k % 2:
                changes["instruction"] = sloppy_text(r["instruction"], self.rng)
            out.append(_row(r, "sloppy", i, **changes))
        return out

    def truncated(self, count: int, spare) -> list[dict[str, Any]]:
        out = []
        for k in range(count):
            if k % 2:
                r = _next_long(spare, 20)
                out.append(_row(r, "truncated", None, output=truncate(r["output"], self.rng)))
            else:
                i = self._clean_index(min_words=20)
                r = self.clean[i]
                out.append(_row(r, "truncated", i, output=truncate(r["output"], self.rng)))
        return out

    def conflict(self, count: int, spare) -> list[dict[str, Any]]:
        neighbours = self._nearest()
        out = []
        for _ in range(count):
            i = self._clean_index()
            answer = self.pool[neighbours[i]]["output"]
            out.append(_row(self.clean[i], "conflict", i, output=answer))
        return out

    def mislabeled(self, count: int, spare) -> list[dict[str, Any]]:
        out = []
        for k in range(count):
            if k % 2:
                r, i = next(spare), None
            else:
                i = self._clean_index()
                r = self.clean[i]
            out.append(_row(r, "mislabeled", i, output=self._unrelated(r)["output"]))
        return out

    def placeholder(self, count: int, spare) -> list[dict[str, Any]]:
        out = []
        for k in range(count):
            text = self.rng.choice(PLACEHOLDERS)
            if k % 2:
                out.append(_row(next(spare), "placeholder", None, output=text))
            else:
                i = self._clean_index()
                out.append(_row(self.clean[i], "placeholder", i, output=text))
        return out

    def repeat(self, count: int, spare) -> list[dict[str, Any]]:
        examples = max(1, len(self.clean) // 500)
        out = []
        chosen = [self._clean_index(min_words=5) for _ in range(examples)]
        for k in range(count):
            i = chosen[k % examples]
            r = self.clean[i]
            instruction, output = _surface_variant(r["instruction"], r["output"], self.rng)
            out.append(_row(r, "repeat", i, instruction=instruction, output=output))
        return out

    def _unrelated(self, r: dict[str, str]) -> dict[str, str]:
        for _ in range(100):
            other = self.rng.choice(self.pool)
            if other is not r and (not r["category"] or other["category"] != r["category"]):
                return other
        return self.rng.choice(self.pool)

    def _nearest(self) -> list[int]:
        """For each clean row, the pool row with the most similar instruction (TF-IDF
        cosine; same category when the file has categories), never itself."""
        if self._neighbours is not None:
            return self._neighbours
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [_prompt(r) for r in self.pool]
        matrix = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(texts)
        position = {id(r): j for j, r in enumerate(self.pool)}
        categories = np.array([r["category"] for r in self.pool])
        neighbours = []
        for r in self.clean:
            j = position[id(r)]
            sims = (matrix @ matrix[j].T).toarray().ravel()
            sims[j] = -1.0
            # A paraphrase of the same task has a right answer, not a contradicting one.
            sims[sims >= SAME_TASK] = -1.0
            if r["category"]:
                sims = np.where(categories == r["category"], sims, sims - 2.0)
            neighbours.append(int(np.argmax(sims)))
        self._neighbours = neighbours
        return neighbours


def _next_long(spare, min_words: int) -> dict[str, str]:
    for r in spare:
        if len(r["output"].split()) >= min_words:
            return r
    raise ValueError("not enough spare rows with long answers")


def sloppy_text(text: str, rng: random.Random, typo_rate: float = 0.08) -> str:
    """Lower-cased text with typos in about ``typo_rate`` of its longer words."""
    words = text.split(" ")
    out = []
    for w in words:
        letters = sum(c.isalpha() for c in w)
        out.append(_typo(w, rng) if letters >= 4 and rng.random() < typo_rate else w)
    return " ".join(out).lower()


def _typo(word: str, rng: random.Random) -> str:
    positions = [i for i, c in enumerate(word) if c.isalpha()]
    i = rng.choice(positions[1:-1] or positions)
    kind = rng.randrange(4)
    if kind == 0 and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(_KEYBOARD) + word[i + 1 :]


def truncate(text: str, rng: random.Random) -> str:
    """The text cut after 30-70% of its words, never right after a sentence's end."""
    words = text.split(" ")
    for _ in range(20):
        cut = rng.randint(max(1, int(0.3 * len(words))), max(1, int(0.7 * len(words))))
        head = " ".join(words[:cut]).rstrip(",")
        if not _SENTENCE_END.search(head):
            return head
    return " ".join(words[: max(1, len(words) // 2)]).rstrip(".!?:;,")


def _surface_variant(instruction: str, output: str, rng: random.Random) -> tuple[str, str]:
    """The same texts, differing at most in case, spacing and final punctuation."""
    kind = rng.randrange(4)
    if kind == 1:
        return instruction + " ", output + "  "
    if kind == 2:
        return instruction[:1].lower() + instruction[1:], output
    if kind == 3:
        return instruction.rstrip("?.!") + "?", output.rstrip(".") + "."
    return instruction, output
