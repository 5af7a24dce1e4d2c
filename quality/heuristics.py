"""Rule-based quality scoring of (prompt, response) rows, datatrove style.

Each rule is a plain function ``(prompt, response, threshold) -> failed?`` registered in
:data:`RULES` under its name, which is also the reason code a dropped row carries. A row's
score blends cheap quality signals (length adequacy, lexical diversity, repetition,
completeness, novelty) into a base in [0.55, 1] and multiplies it by ``1 - weight`` for
every failed rule; severe rules weigh more than 0.5, so failing one drops the row at the
default ``min_score`` of 0.5 on its own, while rows failing nothing always pass it.

Importable without Ray; pure Python on strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from quality import lang, textstats
from quality.textstats import words

_ANSWER_LIKE_RE = re.compile(
    r"^\W*(?:yes|no|true|false|correct|incorrect|[-+]?[$€£]?\d[\d,.:/%]*\s*\w{0,12})\W*$",
    re.IGNORECASE,
)
# Pictographs (>= U+2190, emoji included) count as content: "answer with emojis" tasks.
_CONTENT_RE = re.compile(r"[^\W_]|[\u2190-\U0010ffff]")


def _wordset(text: str, sep: str | None = None) -> frozenset[str]:
    return frozenset(text.split(sep))


# Compared with the response's words joined by spaces ("I don't know." -> "i don t know").
_PLACEHOLDERS = _wordset(
    "n a|na|none|null|nil|nan|todo|tbd|tba|nooutput|no output|noinput|no input|no response|"
    "no answer|i don t know|i do not know|idk|not applicable|not available|deleted|removed|"
    "lorem ipsum|answer|response|output|insert answer here|your answer here",
    "|",
)
# Words that add nothing to a restated instruction ("Sure! Here is the answer: ...").
_FILLER = lang.stopwords("en") | _wordset(
    "sure okay ok certainly here answer output response input following below task "
    "instruction question please yes"
)
_TEXTSPEAK = _wordset("u ur r pls plz thx ty k ok lol wat wut y hi hey hello help hmm")
# Words a finished sentence hardly ever ends on: a response ending on one was cut off.
# (Words ending phrasal verbs or clauses, "log in", "hold her", "I know that", are left out.)
_DANGLING = _wordset(
    "and or but nor because whereas the a an of to from into than with for if although "
    "though my your our their its such very is are was were whose including"
)
_ENOUGH_WORDS = 60  # a response this long is long enough for any task (base_score)
_LANGUAGE_SAMPLE = 300  # words of each text that language identification looks at
_CLEAN_END = frozenset(".!?…\"'”’)]}>`*|;")


# --- rules ---------------------------------------------------------------------------------


def empty_response(prompt: str, response: str, threshold: float = 1) -> bool:
    """Fails a response with fewer than ``threshold`` letters, digits or emoji, or a
    placeholder such as "N/A", "<nooutput>", "none", "TODO" or "I don't know"."""
    content = 0
    for _ in _CONTENT_RE.finditer(response):
        content += 1
        if content >= threshold:
            break
    if content < threshold:
        return True
    return len(response) < 40 and " ".join(words(response)) in _PLACEHOLDERS


def short_response(prompt: str, response: str, threshold: float = 3) -> bool:
    """Fails a response of fewer than ``threshold`` words, unless the task asks for a short
    answer (a number, yes/no, a label, a name) judging by cheap cues in the prompt."""
    n = len(words(response))
    if n == 0 or n >= threshold:
        return False  # nothing at all is empty_response's business
    p = textstats.task_cues(prompt)
    if p.short_task or (p.factoid and _ANSWER_LIKE_RE.match(response)):
        return False
    return p.long_task or not p.factoid


def truncated_response(prompt: str, response: str, threshold: float = 5) -> bool:
    """Fails a response of at least ``threshold`` words that was cut off: an unclosed bracket
    or code fence, a trailing comma/colon, or prose ending on a word like "and" or "the".
    Lists and code may end without punctuation."""
    if len(words(response)) < threshold:  # (trailing blanks change no word)
        return False
    text = response.rstrip()
    if textstats.unbalanced_brackets(text):
        return True
    if text[-1] in ",:([{":
        # ...except a letter's sign-off on its own line ("Best regards,").
        return not (text[-1] == "," and "\n" in text and len(words(text.rsplit("\n", 1)[-1])) <= 3)
    last_line = text.rsplit("\n", 1)[-1]
    if not text[-1].isalnum() or textstats.is_list_item(last_line):
        return False
    if textstats.looks_like_code(text):
        return False
    last_words = words(last_line)
    # The last token must be a bare word: "$a" in shell code is no dangling article.
    return (
        len(last_words) >= 3
        and last_words[-1] in _DANGLING
        and last_line.rsplit(None, 1)[-1].isalpha()
    )


def unclear_instruction(prompt: str, response: str, threshold: float = 2) -> bool:
    """Fails a prompt of fewer than ``threshold`` words or 8 letters/digits ("pls", "?",
    "how u"), or a short one made of chat filler and text-speak."""
    tokens = textstats.prompt_words(prompt)
    if len(tokens) < threshold or sum(map(len, tokens)) < 8:
        return True
    return len(tokens) <= 5 and sum(t in _TEXTSPEAK for t in tokens) * 2 >= len(tokens)


def repeats_instruction(prompt: str, response: str, threshold: float = 0.8) -> bool:
    """Fails a response that mostly restates the instruction: at least ``threshold`` of its
    word trigrams occur in the instruction (the prompt's first paragraph), it echoes the
    start of the instruction and adds next to no content word of its own. Answers that
    restate a question around their answer ("... is Alaska.") or copy the input (rewrites,
    extraction) pass."""
    if textstats.instruction_containment(prompt, response) < threshold:
        return False
    p = textstats.instruction(prompt)
    tokens = words(response)
    grams = set(textstats.trigrams(tokens))
    if not p.head or sum(g in grams for g in p.head) * 2 < len(p.head):
        return False
    novel = sum(t not in p.head_words and t not in _FILLER for t in tokens)
    return novel <= 0.05 * len(tokens)


def ngram_repetition(prompt: str, response: str, threshold: float = 0.4) -> bool:
    """Fails a response whose duplicated 8-grams, duplicated lines or character runs
    ("!!!!!!!!!!", "hahahahaha...") cover more than ``threshold`` of it (Gopher's repetition
    filters, with a higher bar than Gopher's for web pages: lists and tables repeat phrases)."""
    return textstats.repetition(response) > threshold


def junk_characters(prompt: str, response: str, threshold: float = 0.6) -> bool:
    """Fails a response with control characters, U+FFFD or private-use characters, or whose
    non-blank characters are more than ``threshold`` symbols (code stays well below)."""
    if textstats.has_bad_chars(response):
        return True
    if len(response) < 20 or textstats.symbol_fraction(response) <= threshold:
        return False
    return not textstats.task_cues(prompt).asks_for_symbols()


def markup_mojibake(prompt: str, response: str, threshold: float = 1) -> bool:
    """Fails a response with at least ``threshold`` mojibake sequences ("Ã©", "â€™") or
    leftover HTML tags/entities/wiki markup; markup counts only when the task is not about
    markup or code."""
    hits = textstats.mojibake_count(response)
    if hits >= threshold:
        return True
    markup = textstats.markup_count(response)
    if not markup or textstats.looks_like_code(response):
        return False
    if textstats.task_cues(prompt).asks_for_markup() or textstats.markup_count(prompt):
        return False
    return hits + markup >= threshold


def unvisitable_url(prompt: str, response: str, threshold: float = 1) -> bool:
    """Fails a response citing at least ``threshold`` URLs whose site the prompt never
    mentions (the author cannot have visited them); localhost/example.com are ignored."""
    found = textstats.urls(response)
    if not found:
        return False
    lower = prompt.lower()
    unknown = 0
    for url in found:
        host = textstats.url_host(url)
        # The site counts as given when the prompt names it ("the OpenWeatherMap API").
        site = host.rsplit(".", 2)[-2] if host.count(".") else host
        if site not in lower and not textstats.is_placeholder_host(host):
            unknown += 1
    return unknown >= threshold


def language_mismatch(prompt: str, response: str, threshold: float = 8) -> bool:
    """Fails a response in another language or script than its prompt, when both have at
    least ``threshold`` words and the prompt names no language (no translation asked)."""
    r_words = words(response)
    if len(r_words) < threshold and response.isascii():
        return False
    if textstats.names_language(prompt) or textstats.looks_like_code(response):
        return False
    if "http" in response or "www." in response:
        response = textstats.strip_urls(response)
        r_words = words(response)
    p_scripts, p_counts, p_lang = _prompt_language(prompt)
    if response.isascii() and p_scripts.keys() <= {"latin"}:
        # Both texts are Latin script (the common case): only stopwords can tell.
        if min(len(r_words), len(textstats.prompt_words(prompt))) < threshold:
            return False
    else:
        r_scripts = lang.script_counts(response)
        # CJK and Thai write no spaces: enough letters also make a text long enough to judge.
        if min(len(r_words), len(textstats.prompt_words(prompt))) < threshold and (
            min(sum(r_scripts.values()), sum(p_scripts.values())) < 3 * threshold
        ):
            return False
        r_script, p_script = lang.dominant_script(r_scripts), lang.dominant_script(p_scripts)
        if r_script is None or p_script is None:
            return False
        if r_script != "latin" or p_script != "latin":
            # The response's script is (almost) absent from the prompt.
            return p_scripts.get(r_script, 0) < 0.1 * sum(p_scripts.values())
    r_lang = lang.guess_language(r_words[:_LANGUAGE_SAMPLE])
    if r_lang is None or p_lang is None or r_lang == p_lang:
        return False
    # The prompt may mix languages (an English question about a French passage): only a
    # response language with (almost) no trace in the prompt is a mismatch.
    return p_counts[lang.LANGUAGES.index(r_lang)] < 0.2 * max(p_counts)


@lru_cache(maxsize=256)
def _prompt_language(prompt: str) -> tuple[dict[str, int], tuple[int, ...], str | None]:
    """Script counts, stopword counts and language guess of a prompt's first 4,000 chars."""
    tokens = textstats.prompt_words(prompt)[:_LANGUAGE_SAMPLE]
    counts = lang.stopword_counts(tokens)
    scripts = lang.script_counts(prompt if len(prompt) <= 4000 else prompt[:4000])
    return scripts, counts, lang.guess_language(tokens, counts=counts)


# --- registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One named rule; its name is the reason code of the rows it drops."""

    name: str
    description: str
    threshold: float
    weight: float
    """Penalty in [0, 1]: a failing row's score is multiplied by 1 - weight; 0 disables."""
    check: Callable[[str, str, float], bool]


def _rule(check: Callable[..., bool], weight: float) -> Rule:
    doc = " ".join((check.__doc__ or "").replace("``", "").split())
    default = check.__defaults__[0]  # type: ignore[index]
    return Rule(check.__name__, doc, float(default), weight, check)


# Severe rules weigh > 0.5 so that failing one drops the row at min_score 0.5.
RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        _rule(empty_response, 0.9),
        _rule(unclear_instruction, 0.6),
        _rule(short_response, 0.5),
        _rule(truncated_response, 0.6),
        _rule(repeats_instruction, 0.7),
        _rule(ngram_repetition, 0.7),
        _rule(junk_characters, 0.8),
        _rule(markup_mojibake, 0.6),
        _rule(unvisitable_url, 0.6),  # an invented source is a hallucination: drop
        _rule(language_mismatch, 0.6),
    )
}


@dataclass(frozen=True)
class RuleResult:
    """The verdict on one row."""

    score: float
    """Quality in [0, 1]."""
    failed: tuple[str, ...]
    """Names of the failed rules, in registry order."""
    reason: str | None
    """The failed rule with the highest weight; None when no rule failed."""


def describe_rules() -> list[dict]:
    """Every rule's name, description, default threshold and weight, in registry order."""
    return [
        {"name": r.name, "description": r.description, "threshold": r.threshold, "weight": r.weight}
        for r in RULES.values()
    ]


def _resolve(
    thresholds: Mapping[str, float] | None, weights: Mapping[str, float] | None
) -> list[tuple[Rule, float, float]]:
    """Active rules with their effective (threshold, weight); rejects unknown names."""
    for label, given in (("thresholds", thresholds), ("weights", weights)):
        unknown = sorted(set(given or {}) - RULES.keys())
        if unknown:
            raise ValueError(
                f"unknown heuristic rule(s) in {label}: {', '.join(unknown)}; "
                f"known rules: {', '.join(RULES)}"
            )
    active = []
    for name, rule in RULES.items():
        weight = float((weights or {}).get(name, rule.weight))
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"weight of rule {name} must be in [0, 1], got {weight}")
        if weight > 0.0:
            active.append((rule, float((thresholds or {}).get(name, rule.threshold)), weight))
    return active


def base_score(prompt: str, response: str) -> float:
    """The continuous quality signal of a row before rule penalties, in [0.55, 1].

    Blends length adequacy for the task (saturating log length; a short-answer task is
    satisfied by one word), lexical diversity, absence of repetition, a clean ending and
    novelty with respect to the prompt.
    """
    tokens = words(response)
    n = len(tokens)
    if n >= _ENOUGH_WORDS:  # adequate for any task: no need to read the task's cues
        length = 1.0
    else:
        p = textstats.task_cues(prompt)
        target = 1 if p.short_task and not p.long_task else _ENOUGH_WORDS
        length = min(1.0, math.log1p(n) / math.log1p(target))
    diversity = min(1.0, max(0.0, (textstats.lexical_diversity(tokens) - 0.6) / 0.3))
    repeat = 1.0 - min(1.0, textstats.repetition(response) / 0.4)
    novelty = 1.0 - textstats.instruction_containment(prompt, response)
    signal = (
        0.35 * length
        + 0.2 * diversity
        + 0.2 * repeat
        + 0.15 * _completeness(response)
        + 0.1 * novelty
    )
    return 0.55 + 0.45 * signal


def _completeness(response: str) -> float:
    """1 when the response ends cleanly (punctuation, a list item, code, a short answer)."""
    text = response.rstrip()
    if not text or text[-1] in _CLEAN_END or len(words(response)) < 5:
        return 1.0
    if textstats.is_list_item(text.rsplit("\n", 1)[-1]) or textstats.looks_like_code(text):
        return 1.0
    return 0.5


def _evaluate(
    prompt: str, response: str, active: list[tuple[Rule, float, float]]
) -> tuple[float, list[str], str | None]:
    score = base_score(prompt, response)
    failed: list[str] = []
    reason, worst = None, -1.0
    for rule, threshold, weight in active:
        if rule.check(prompt, response, threshold):
            failed.append(rule.name)
            score *= 1.0 - weight
            if weight > worst:
                reason, worst = rule.name, weight
    return min(1.0, max(0.0, score)), failed, reason


def evaluate(
    prompt: str,
    response: str,
    *,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> RuleResult:
    """Score one row and name the rules it fails.

    Args:
        prompt: Everything before the final assistant turn, as plain text.
        response: The final assistant turn.
        thresholds: Per-rule threshold overrides by rule name.
        weights: Per-rule penalty overrides in [0, 1] by rule name; 0 disables a rule.

    Returns:
        The score in [0, 1], the failed rules and the reason (the heaviest failed rule).

    Raises:
        ValueError: A name in ``thresholds``/``weights`` is not a rule, or a weight is
            outside [0, 1].
    """
    score, failed, reason = _evaluate(prompt, response, _resolve(thresholds, weights))
    return RuleResult(score, tuple(failed), reason)


def evaluate_batch(
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    thresholds: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, list[list[str]], list[str | None]]:
    """Score many rows; see :func:`evaluate`.

    Args:
        prompts: One prompt per row.
        responses: One response per row, aligned with ``prompts``.
        thresholds: Per-rule threshold overrides by rule name.
        weights: Per-rule penalty overrides in [0, 1] by rule name; 0 disables a rule.

    Returns:
        Scores (float64 array), failed rule names per row and the reason per row.

    Raises:
        ValueError: Unknown rule names, a weight outside [0, 1], or unaligned inputs.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"got {len(prompts)} prompts but {len(responses)} responses")
    active = _resolve(thresholds, weights)
    scores = np.empty(len(prompts), dtype=np.float64)
    failed: list[list[str]] = []
    reasons: list[str | None] = []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        scores[i], row_failed, reason = _evaluate(prompt or "", response or "", active)
        failed.append(row_failed)
        reasons.append(reason)
    return scores, failed, reasons
