"""What a prompt says about its task, and how much of it an answer repeats.

Task cues (does the prompt ask for a label, a number, code, markup, a translation?) let
the rules judge an answer by what was asked: a one-word answer is fine for a sentiment
label, not for an essay. The containment and overlap measures tell an answer that only
restates its instruction. Cached per prompt: a prompt is asked about by several rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from quality import lang
from quality.textstats import CACHE_SIZE, trigrams, words

# Matched against the lower-cased start and end of the prompt (TaskCues.cue), where the
# instruction is; a long input in between says little about the task.

# Tasks that explicitly ask for a label, a word, a number or a yes/no. Deliberately broad:
# cues only exempt rows from short_response, so a false cue keeps a row, never drops one.
_SHORT_TASK_RE = re.compile(
    r"\b(?:classif|categori[sz]|label|sentiment|yes or no|yes/no|true or false|true/false|"
    r"whether|or not|choose|select|pick|identify|detect|determine|decide|verify|one word|"
    r"single word|a word|new word|a number|how many|how much|how old|calculat|compute|"
    r"solve|evaluate|simplif|convert|translat|spell|synonym|antonym|rhyme|abbreviat|"
    r"acronym|guess|predict|rate|rating|score|grade|fill in|odd one|opposite|"
    r"(?:how|what) (?:do|would|does) (?:you|i|one) say)"
)
# Questions that usually have a short factual answer ("Who wrote Hamlet?").
_FACTOID_RE = re.compile(
    r"\?|\b(?:which|what|who|whom|whose|when|where|name|title|word|find|extract|answer|"
    r"output|return|result|correct|is it|is this|is there|are there|capital|formula|date|"
    r"year)\b"
)
# Tasks that ask for prose, several items or an explanation.
_LONG_TASK_RE = re.compile(
    r"\b(?:write|explain|describe|summar\w*|discuss|elaborate|steps|tips|ideas|suggest|"
    r"generate|create|compose|draft|outline|compare|plan|brainstorm|why|list|some|several|"
    r"examples|reasons|ways|how (?:do|does|can|to|should|would|could|is|are|did))\b"
)
# A yes/no question: a sentence opening with an auxiliary verb and ending with "?".
_YES_NO_RE = re.compile(
    r"(?:^|[.!?:\n]\s*)(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|"
    r"may|might|must|have|has|had|(?:is|are|was|were|do|does|did|ca|could|wo|would|should|"
    r"have|has)n['’]t)\b[^.!?\n]{0,200}\?"
)
# Tasks whose answer is naturally dense in symbols.
_SYMBOLIC_TASK_RE = re.compile(
    r"regex|regular expression|ascii|emoji|emoticon|symbol|notation|formula|equation|latex"
)
# Tasks where markup in the answer is expected.
_MARKUP_TASK_RE = re.compile(
    r"html|xml|markup|\btags?\b|web ?page|website|jsx|react|vue|angular|svg|css|php|"
    r"\bdom\b|javascript|browser|template|xaml|rss|markdown|entit"
)


@dataclass(frozen=True, slots=True)
class TaskCues:
    """What a prompt asks for, as far as cheap cues tell; see :func:`task_cues`."""

    cue: str  # lower-cased start and end of the prompt, where the task is stated
    names_language: bool  # the task names a language or asks for a translation
    short_task: bool  # explicitly asks for a label, word, number or yes/no
    factoid: bool  # a question or factoid cue: a short answer is plausible
    long_task: bool  # asks for prose, several items or an explanation
    yes_no: bool  # asks a yes/no question ("Is the Earth round?", "Can you swim?")

    def asks_for_symbols(self) -> bool:
        """True for tasks whose answer is naturally dense in symbols (regex, emoji, LaTeX)."""
        return _SYMBOLIC_TASK_RE.search(self.cue) is not None

    def asks_for_markup(self) -> bool:
        """True for tasks where markup in the answer is expected (HTML, XML, a web page)."""
        return _MARKUP_TASK_RE.search(self.cue) is not None


@lru_cache(maxsize=CACHE_SIZE)
def task_cues(prompt: str) -> TaskCues:
    """The task cues of a prompt, read from its start and end (cached).

    Args:
        prompt: The prompt text (instruction, then any input).

    Returns:
        The prompt's :class:`TaskCues`.
    """
    cue = _cue(prompt)
    return TaskCues(
        cue=cue,
        names_language=names_language(prompt),
        short_task=names_language(prompt) or _SHORT_TASK_RE.search(cue) is not None,
        factoid=_FACTOID_RE.search(cue) is not None,
        long_task=_LONG_TASK_RE.search(cue) is not None,
        yes_no=_YES_NO_RE.search(cue) is not None,
    )


def _cue(prompt: str) -> str:
    """The lower-cased start and end of a prompt, where the task is stated."""
    return (prompt if len(prompt) <= 900 else prompt[:600] + "\n" + prompt[-300:]).lower()


@lru_cache(maxsize=CACHE_SIZE)
def names_language(prompt: str) -> bool:
    """True when the prompt's task names a language or asks for a translation (cached)."""
    short = len(prompt) <= 900
    return lang.mentions_language(_cue(prompt), prompt_words(prompt) if short else None)


@lru_cache(maxsize=CACHE_SIZE)
def prompt_words(prompt: str) -> tuple[str, ...]:
    """Lower-cased words of the prompt's first 4,000 characters (cached)."""
    return words(prompt if len(prompt) <= 4000 else prompt[:4000])


@dataclass(frozen=True, slots=True)
class Instruction:
    """The instruction of a prompt: its first paragraph, and the start of its first line."""

    trigrams: frozenset[tuple[str, str, str]]  # word trigrams of the first paragraph
    head: tuple[tuple[str, str, str], ...]  # trigrams of the first line's first 6 words
    head_words: frozenset[str]  # words of the first line


@lru_cache(maxsize=CACHE_SIZE)
def instruction(prompt: str) -> Instruction:
    """The :class:`Instruction` of a prompt, taken to be its first paragraph (cached)."""
    stripped = prompt.strip()
    if "\n" in stripped:
        first_line = words(stripped.split("\n", 1)[0])
        paragraph = words(stripped.split("\n\n", 1)[0][:2000])
    else:  # one line: the first line is the first paragraph
        first_line = paragraph = words(stripped[:2000])
    return Instruction(
        trigrams=frozenset(trigrams(paragraph)),
        head=tuple(trigrams(first_line[:6])),
        head_words=frozenset(first_line),
    )


@lru_cache(maxsize=CACHE_SIZE)
def instruction_containment(prompt: str, response: str) -> float:
    """Share of the response's word trigrams found in the instruction (the prompt's first
    paragraph); 0 for responses under 4 words."""
    grams = trigrams(words(response))
    if len(grams) < 2:
        return 0.0
    known = instruction(prompt).trigrams
    return sum(map(known.__contains__, grams)) / len(grams)


@lru_cache(maxsize=CACHE_SIZE)
def prompt_trigrams(prompt: str) -> frozenset[tuple[str, str, str]]:
    """Word trigrams of the prompt's first 4,000 characters (cached)."""
    return frozenset(trigrams(prompt_words(prompt)))


@lru_cache(maxsize=CACHE_SIZE)
def prompt_overlap(prompt: str, response: str) -> tuple[float, float]:
    """How much a response and the whole prompt (instruction and input) share, in word
    trigrams (cached).

    Returns:
        The share of the response's trigrams found in the prompt (containment), and the
        share of the prompt's distinct trigrams found in the response (coverage); both 0
        for responses under 4 words. The prompt is read to its first 4,000 characters.
    """
    grams = trigrams(words(response))
    known = prompt_trigrams(prompt)
    if len(grams) < 2 or not known:
        return 0.0, 0.0
    containment = sum(map(known.__contains__, grams)) / len(grams)
    return containment, len(known.intersection(grams)) / len(known)
