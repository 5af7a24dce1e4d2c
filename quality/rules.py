"""The heuristic rules: each a plain function ``(prompt, response, threshold) -> failed?``
whose name is the reason code of the rows it drops, datatrove style. The registry, weights
and scoring live in :mod:`quality.heuristics`.

Importable without Ray; pure Python on strings.
"""

from __future__ import annotations

import re
from functools import lru_cache

from quality import lang, prompts, textstats, urls
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
# Replies that only acknowledge a request; compared like _PLACEHOLDERS, clause by clause.
_ACKNOWLEDGEMENTS = _wordset(
    "sure|sure thing|okay|ok|okey|alright|all right|done|thanks|thank you|thanks a lot|"
    "thank you very much|many thanks|will do|i will|i can|of course|certainly|absolutely|"
    "got it|noted|understood|no problem|no worries|you re welcome|good idea|great idea|"
    "sounds good|good question|great question|see above|see below|as above|as below|"
    "here you go|here it is|here you are|happy to help|glad to help|my pleasure|i see|hmm",
    "|",
)
# Words of chat messages that an acknowledgement answers ("Thanks, that helped!").
_SMALL_TALK = _wordset(
    "thanks thank thx ty hi hello hey bye goodbye goodnight cheers sorry congrats "
    "congratulations welcome appreciate appreciated great awesome cool perfect nice"
)
_ACK_WORDS = 8  # no acknowledgement above is longer than this in words, even combined
_CLAUSE_SPLIT_RE = re.compile(r"[,.!?;:…\n—–]+")
_TEXTSPEAK = _wordset("u ur r pls plz thx ty k ok lol wat wut y hi hey hello help hmm")
# Words a finished sentence hardly ever ends on: a response ending on one was cut off.
# (Words ending phrasal verbs or clauses, "log in", "hold her", "I know that", are left out.)
_DANGLING = _wordset(
    "and or but nor because whereas the a an of to from into than with for if although "
    "though my your our their its such very is are was were whose including which whom "
    "whether unless every via by at as among amongst toward towards onto upon despite "
    "during per"
)
# An operator or dash ending a text after a word or number: "360 ÷ 12 =", "141 -". (Not
# after a bracket: `find . -exec rm {} +` is a complete shell command.)
_TRAILING_OPERATOR_RE = re.compile(r"[\w%]\s+[-+=×÷*/−–—]$")
_LANGUAGE_SAMPLE = 300  # words of each text that language identification looks at
_NON_ALNUM_RE = re.compile(r"[\W_]+")


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
    """Fails a bare acknowledgement ("Sure.", "Thanks!", "Of course, will do."), which answers
    no task, unless the prompt is a yes/no question or small talk; and a response of fewer
    than ``threshold`` words, unless the task asks for a short answer (a number, yes/no, a
    label, a name) judging by cheap cues in the prompt."""
    n = len(words(response))
    if n == 0:
        return False  # nothing at all is empty_response's business
    p = prompts.task_cues(prompt)
    if n <= _ACK_WORDS and _acknowledges_only(response):
        return not _takes_acknowledgement(prompt, response, p)
    if n >= threshold:
        return False
    if p.short_task or (p.factoid and _ANSWER_LIKE_RE.match(response)):
        return False
    return p.long_task or not p.factoid


def _acknowledges_only(response: str) -> bool:
    """True when every clause of the response is an acknowledgement ("Sure, will do!")."""
    clauses = [" ".join(words(c)) for c in _CLAUSE_SPLIT_RE.split(response)]
    clauses = [c for c in clauses if c]
    return bool(clauses) and all(c in _ACKNOWLEDGEMENTS for c in clauses)


def _takes_acknowledgement(prompt: str, response: str, p: prompts.TaskCues) -> bool:
    """True for prompts an acknowledgement fairly answers: a yes/no question that is not a
    request in disguise ("Can you swim?" but not "Can you write a poem?"), small talk
    ("Thanks for your help!"), or a prompt that asks for those very words ("Reply OK")."""
    if p.yes_no and not p.long_task:
        return True
    tokens = prompts.prompt_words(prompt)
    if len(tokens) <= 8 and not p.long_task and any(t in _SMALL_TALK for t in tokens):
        return True
    return f" {' '.join(words(response))} " in f" {' '.join(tokens)} "


def truncated_response(prompt: str, response: str, threshold: float = 5) -> bool:
    """Fails a response of at least ``threshold`` words that was cut off: an unclosed bracket,
    code fence or quotation, a trailing comma, colon or operator ("12 ÷ 4 ="), or prose
    ending on a word no sentence ends on, like "and", "the" or "which". Lists and code may
    end without punctuation."""
    if len(words(response)) < threshold:  # (trailing blanks change no word)
        return False
    text = response.rstrip()
    if textstats.unbalanced_brackets(text):
        return True
    if text[-1] in ",:([{":
        # ...except a letter's sign-off on its own line ("Best regards,").
        return not (text[-1] == "," and "\n" in text and len(words(text.rsplit("\n", 1)[-1])) <= 3)
    if _TRAILING_OPERATOR_RE.search(text):
        return True
    last_line = text.rsplit("\n", 1)[-1]
    if not text[-1].isalnum() or textstats.is_list_item(last_line):
        return False
    if textstats.looks_like_code(text):
        return False
    if textstats.open_quote(text):
        return True  # the text stops inside a quotation
    last_words = words(last_line)
    last_token = last_line.rsplit(None, 1)[-1]
    # The last token must be a bare word ("$a" in shell code is no dangling article), and
    # not in capitals ("Plan A", "ORDER BY").
    return (
        len(last_words) >= 3
        and last_words[-1] in _DANGLING
        and last_token.isalpha()
        and not last_token.isupper()
    )


def unclear_instruction(prompt: str, response: str, threshold: float = 2) -> bool:
    """Fails a prompt of fewer than ``threshold`` words or 8 letters/digits ("pls", "?",
    "how u"), or a short one made of chat filler and text-speak."""
    tokens = prompts.prompt_words(prompt)
    if len(tokens) < threshold or sum(map(len, tokens)) < 8:
        return True
    return len(tokens) <= 5 and sum(t in _TEXTSPEAK for t in tokens) * 2 >= len(tokens)


def repeats_instruction(prompt: str, response: str, threshold: float = 0.8) -> bool:
    """Fails a response that restates the instruction (the prompt's first paragraph), alone
    or with its input, and adds next to no content word of its own: at least ``threshold``
    of its word trigrams occur in the instruction and it echoes the instruction's start; or
    it holds at least ``threshold`` of the instruction's trigrams and shares ``threshold`` of
    its trigrams with the prompt both ways (instruction and input copied back). Answers that
    restate a question around their answer ("... is Alaska.") or copy the input without the
    instruction (rewrites, extraction) pass."""
    p = prompts.instruction(prompt)
    if not p.head:
        return False
    tokens = words(response)
    grams = set(textstats.trigrams(tokens))
    if prompts.instruction_containment(prompt, response) >= threshold:
        if sum(g in grams for g in p.head) * 2 < len(p.head):
            return False
        known = p.head_words
    elif len(p.trigrams & grams) >= threshold * len(p.trigrams) and (
        min(prompts.prompt_overlap(prompt, response)) >= threshold
    ):
        known = frozenset(prompts.prompt_words(prompt))
    else:
        return False
    novel = sum(t not in known and t not in _FILLER for t in tokens)
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
    return not prompts.task_cues(prompt).asks_for_symbols()


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
    if prompts.task_cues(prompt).asks_for_markup() or textstats.markup_count(prompt):
        return False
    return hits + markup >= threshold


def unvisitable_url(prompt: str, response: str, threshold: float = 1) -> bool:
    """Fails a response citing at least ``threshold`` links to particular pages on sites the
    prompt never mentions (the author cannot have visited them). Home pages, placeholder
    hosts (localhost, example.com) and URLs used by code or tool calls are not citations."""
    found = urls.links(response)
    if not found:
        return False
    lower = prompt.lower()
    compact = _NON_ALNUM_RE.sub("", lower)
    unknown = 0
    for link in found:
        if not link.cited or urls.is_placeholder_host(link.host) or urls.is_home_page(link.url):
            continue
        # The site counts as given when the prompt names it ("the OpenWeatherMap API",
        # "Mystery Spot" for mysteryspot.com).
        site = urls.site_name(link.host)
        if site not in lower and site.replace("-", "") not in compact:
            unknown += 1
    return unknown >= threshold


def language_mismatch(prompt: str, response: str, threshold: float = 8) -> bool:
    """Fails a response in another language or script than its prompt, when both have at
    least ``threshold`` words and the prompt names no language (no translation asked)."""
    r_words = words(response)
    if len(r_words) < threshold and response.isascii():
        return False
    if prompts.names_language(prompt) or textstats.looks_like_code(response):
        return False
    if "http" in response or "www." in response:
        response = urls.strip_urls(response)
        r_words = words(response)
    p_scripts, p_counts, p_lang = _prompt_language(prompt)
    if response.isascii() and p_scripts.keys() <= {"latin"}:
        # Both texts are Latin script (the common case): only stopwords can tell.
        if min(len(r_words), len(prompts.prompt_words(prompt))) < threshold:
            return False
    else:
        r_scripts = lang.script_counts(response)
        # CJK and Thai write no spaces: enough letters also make a text long enough to judge.
        if min(len(r_words), len(prompts.prompt_words(prompt))) < threshold and (
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
    tokens = prompts.prompt_words(prompt)[:_LANGUAGE_SAMPLE]
    counts = lang.stopword_counts(tokens)
    scripts = lang.script_counts(prompt if len(prompt) <= 4000 else prompt[:4000])
    return scripts, counts, lang.guess_language(tokens, counts=counts)
