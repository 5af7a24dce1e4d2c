"""How the demo generator damages a clean row: surface and near variants, cut-off, looping,
garbled, mojibake and link-citing answers. Each takes the generator's seeded RNG."""

from __future__ import annotations

import random
import re

from quality.text import jaccard

# Near-duplicates: 3-word-shingle Jaccard with the original lands in this range.
NEAR_RANGE = (0.72, 0.9)

WORD = re.compile(r"\w+")
FILLERS = ("really", "also", "just", "actually", "simply", "certainly", "clearly", "now")
SYNONYMS = {
    "big": "large",
    "small": "little",
    "buy": "purchase",
    "buys": "purchases",
    "gets": "receives",
    "help": "assist",
    "start": "begin",
    "starts": "begins",
    "short": "brief",
    "whole": "entire",
    "about": "around",
    "mainly": "mostly",
    "every": "each",
    "makes": "creates",
    "said": "stated",
    "plans": "intends",
    "shows": "demonstrates",
    "uses": "relies on",
    "near": "close to",
    "new": "brand-new",
    "following": "next",
    "most": "nearly all",
    "because": "since",
    "more": "extra",
}
HOSTS = (
    "www.studyhelp-online.com",
    "answers.learnhub.net",
    "docs.quickfacts.org",
    "www.homeworkmate.co.uk",
    "blog.tipsandtricks.io",
    "wiki.knowhow-base.com",
)


def surface_variant(rng: random.Random, instruction: str, out: str) -> tuple[str, str]:
    """The same text up to case, spacing or punctuation (what exact dedup normalizes away)."""
    v = rng.randrange(5)
    if v == 1:
        instruction = instruction.lower()
    elif v == 2:
        instruction = "  ".join(instruction.split(" ")) + " "
    elif v == 3:
        instruction = instruction.rstrip(".?!")
    elif v == 4:
        out = out.replace(". ", ".  ").replace(", ", " , ")
    return instruction, out


def near_variant(rng: random.Random, instruction: str, inp: str, out: str) -> tuple[str, str, str]:
    """A few words inserted, deleted or replaced across the row until the 3-word-shingle
    Jaccard with the original falls in :data:`NEAR_RANGE`. Code blocks are left alone."""
    code_end = out.rfind("```")
    head, tail = (out[: code_end + 3], out[code_end + 3 :]) if code_end >= 0 else ("", out)
    fields = [instruction.split(" "), inp.split(" ") if inp else [], tail.split(" ")]

    def text(parts: list[list[str]]) -> str:
        return f"{' '.join(parts[0])}\n{' '.join(parts[1])}\n{head}{' '.join(parts[2])}"

    original = shingles(text(fields))
    target = rng.uniform(*NEAR_RANGE)
    # One edit changes about 2.5 shingles: start with the number of edits a random target in
    # the range needs, then add single edits until the similarity is in range.
    n_edits = max(1, int(len(original) * (1 - target) / (2.5 * (1 + target))))
    similarity = 1.0
    for _ in range(40):
        trial = [list(f) for f in fields]
        for _ in range(n_edits):
            # Edits land in each field in proportion to its length, so the answer alone
            # stays about as similar as the whole row (and agrees with the original answer).
            edit(rng, trial[rng.choices(range(3), [len(f) for f in trial])[0]])
        new = jaccard(original, shingles(text(trial)))
        if new < NEAR_RANGE[0]:
            n_edits = max(1, n_edits - 1)  # too big a step for a short text
            continue
        fields, similarity, n_edits = trial, new, 1
        if similarity <= NEAR_RANGE[1]:
            break
    return " ".join(fields[0]), " ".join(fields[1]), head + " ".join(fields[2])


def shingles(text: str) -> set[tuple[str, ...]]:
    """Word 3-grams of lower-cased text; a cheap stand-in for quality.text.shingles."""
    words = WORD.findall(text.lower())
    return set(zip(words, words[1:], words[2:], strict=False))


def edit(rng: random.Random, words: list[str]) -> None:
    """Insert a filler word, delete a word or swap in a synonym, in place."""
    for _ in range(8):
        i = rng.randrange(len(words)) if words else 0
        if words and words[i].isalpha() and words[i].islower():
            break
    else:  # no plain lower-case word found: insert anywhere
        words.insert(rng.randrange(len(words) + 1), rng.choice(FILLERS))
        return
    op = rng.random()
    if op < 0.4 and words[i] in SYNONYMS:
        words[i] = SYNONYMS[words[i]]
    elif op < 0.75 or len(words) < 8:
        words.insert(i, rng.choice(FILLERS))
    else:
        del words[i]


def truncate(rng: random.Random, out: str) -> str:
    """Cut the answer mid-sentence, as a generation limit would."""
    words = out.split(" ")
    cuts = [i for i in range(4, len(words)) if words[i - 1][-1:] not in ".!?:\n\"'`"]
    if not cuts:
        return " ".join(words[: max(1, len(words) // 2)]).rstrip(".!?")
    low = [i for i in cuts if 0.3 * len(words) <= i <= 0.8 * len(words)] or cuts
    return " ".join(words[: rng.choice(low)])


def loop(rng: random.Random, out: str) -> str:
    """A degenerate generation loop: a sentence or a phrase repeated over and over."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", out) if s.strip()]
    if rng.random() < 0.5 and sentences:
        return " ".join([sentences[0]] * rng.randint(4, 7))
    words = out.split()
    phrase_ = " ".join(words[: rng.randint(4, 8)]).rstrip(".,:")
    return ", ".join([phrase_] * rng.randint(5, 9)) + "."


def garble(rng: random.Random, out: str) -> str:
    """Encoding damage or symbol noise."""
    v = rng.randrange(3)
    if v == 0:  # bytes lost in decoding
        return "".join("\ufffd" if rng.random() < 0.15 else ch for ch in out)
    if v == 1:  # terminal escape codes and control characters
        return f"\x1b[0m{out[: len(out) // 2]}\x00\x07\x1b[31m"
    noise = "#$%&*@!^~|\\/<>{}[]+=_"
    return "".join(rng.choice(noise) if ch.isalnum() and rng.random() < 0.9 else ch for ch in out)


def mojibake(rng: random.Random, out: str) -> str:
    """UTF-8 read as cp1252 ("â€™", "Ã©"), or leftover HTML."""
    if rng.random() < 0.5:
        fancy = out.replace("'", "\u2019").replace(", ", " \u2014 ", 1)
        if fancy.isascii():
            fancy += " \u2026"
        return fancy.encode("utf-8").decode("cp1252", errors="replace")
    sentences = re.split(r"(?<=[.!?])\s+", out)
    return f'<div class="answer"><p>{"</p>&nbsp;<p>".join(sentences)}</p><br/></div>'


def cite_url(rng: random.Random, out: str) -> str:
    """An answer that points at a page the writer cannot have visited."""
    slug = "-".join(re.findall(r"[a-z]+", out.lower())[:4]) or "answer"
    url = f"https://{rng.choice(HOSTS)}/{slug}-{rng.randint(100, 9999)}"
    if rng.random() < 0.5:
        return f"You can find the full answer at {url}."
    return f"As described at {url}, {out[:1].lower()}{out[1:]}"
