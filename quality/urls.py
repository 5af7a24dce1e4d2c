"""URLs in answer text: finding them, their site names, and which of them are citations.

Behind the ``unvisitable_url`` rule and the URL stripping of ``language_mismatch``. Pure
Python on strings, importable without Ray.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`()\[\]{}|]+", re.IGNORECASE)
_URL_HOST_RE = re.compile(r"^(?:https?://)?(?:[^@/]*@)?([^/:?#]+)", re.IGNORECASE)
_TRAILING = ".,;:!?*_'\""
# A real host name: dotted labels of letters, digits and hyphens. Templates such as
# "${hostname}" or "{host}" are no site at all.
_HOST_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)+$")
# Hosts that name no real page: code samples and templates use them as placeholders.
_PLACEHOLDER_HOST_RE = re.compile(
    r"^(?:localhost|127\.\d+\.\d+\.\d+|0\.0\.0\.0|(?:[\w-]+\.)*example\.(?:com|org|net)|"
    r"(?:[\w-]+\.)*your[\w-]*\.\w+|(?:www\.)?(?:domain|site|website|mysite)\.com)$",
    re.IGNORECASE,
)
# Second-level labels under which country registries sell names: in "bbc.co.uk" the site
# is "bbc", not "co". (Public suffix list in miniature, for two-letter country codes only.)
_SECOND_LEVEL_RE = re.compile(
    r"ac|co|com|edu|gob|gov|govt|net|nic|or|org|ne|go|mil|ltd|plc|sch|nom|res|int"
)
# A path made only of a locale ("/en/", "/en-us/") still points at a site's home page.
_LOCALE_PATH_RE = re.compile(r"^/?(?:[a-z]{2}(?:[-_][a-z]{2})?/?)?(?:index\.\w+)?$", re.IGNORECASE)
# Lines that are code: a URL there is an endpoint the program calls, not a source cited.
_CODE_LINE_RE = re.compile(
    r"^\s*(?:import |from |def |class |const |let |var |return |curl |wget |fetch\(|"
    r"[\w.\[\]'\"]+\s*=[^=])|[;{}]\s*$"
)


@dataclass(frozen=True, slots=True)
class Link:
    """One URL found in a text."""

    url: str  # as written, trailing punctuation removed
    host: str  # lower-cased, without "www."
    cited: bool  # given as a source in prose, not used by code or quoted as a string


def urls(text: str) -> list[str]:
    """URLs in ``text`` (http(s):// or www.), trailing punctuation removed."""
    if "http" not in text and "www." not in text:
        return []
    return [u.rstrip(_TRAILING) for u in _URL_RE.findall(text)]


def strip_urls(text: str) -> str:
    """``text`` without its URLs (their words are no evidence of a language)."""
    if "http" not in text and "www." not in text:
        return text
    return _URL_RE.sub(" ", text)


def links(text: str) -> list[Link]:
    """The URLs of ``text`` with their hosts, and whether each is cited as a source.

    A URL is not cited when it is a string literal or a tool call's argument (right after a
    quote or backtick), inside a Markdown code fence, or on a line of code: a program's
    endpoint says nothing about pages its author claims to have read.
    """
    if "http" not in text and "www." not in text:
        return []
    found = []
    for m in _URL_RE.finditer(text):
        url = m.group(0).rstrip(_TRAILING)
        start = m.start()
        quoted = start > 0 and text[start - 1] in "'\"`="
        fenced = text.count("```", 0, start) % 2 == 1
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        line = text[line_start : line_end if line_end >= 0 else len(text)]
        code = _CODE_LINE_RE.search(line) is not None
        found.append(Link(url, url_host(url), not (quoted or fenced or code)))
    return found


def url_host(url: str) -> str:
    """The lower-cased host of ``url``, without a leading "www."."""
    m = _URL_HOST_RE.match(url)
    host = (m.group(1) if m else url).lower()
    return host[4:] if host.startswith("www.") else host


def is_placeholder_host(host: str) -> bool:
    """True for hosts that name no real page: localhost, example.com, yourdomain.com, and
    templates that are no host name at all ("${hostname}")."""
    return _PLACEHOLDER_HOST_RE.match(host) is not None or not _HOST_NAME_RE.match(host)


def site_name(host: str) -> str:
    """The name a host is registered under: "bbc" for "news.bbc.co.uk", "wikipedia" for
    "en.wikipedia.org"; the host itself when it has no dot."""
    labels = host.split(".")
    if len(labels) < 2:
        return host
    if len(labels) >= 3 and len(labels[-1]) == 2 and _SECOND_LEVEL_RE.fullmatch(labels[-2]):
        return labels[-3]
    return labels[-2]


def is_home_page(url: str) -> bool:
    """True when ``url`` names a site's home page ("https://www.bbc.co.uk/", ".../en/"),
    with no path to a particular page, query or fragment."""
    rest = re.sub(r"^(?:https?://)?[^/?#]*", "", url, flags=re.IGNORECASE)
    return _LOCALE_PATH_RE.match(rest) is not None
