"""URL helpers: site names under multi-part public suffixes, home pages, citations."""

from __future__ import annotations

import pytest

from quality.urls import is_home_page, is_placeholder_host, links, site_name, url_host


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("https://www.bbc.co.uk/news", "bbc"),  # not "co"
        ("http://news.bbc.co.uk/1/hi/uk/123.stm", "bbc"),
        ("https://www.evisa.gov.tr/en/", "evisa"),
        ("https://en.wikipedia.org/wiki/Tau", "wikipedia"),
        ("www.homeworkmate.co.uk/answer-12", "homeworkmate"),
        ("https://aws.amazon.com/training/", "amazon"),
        ("https://t.co/abc", "t"),  # "co" as a top-level domain is a site's own name
        ("http://localhost:5000/", "localhost"),
    ],
)
def test_site_name_skips_public_suffixes(url, site):
    assert site_name(url_host(url)) == site


def test_home_pages_are_told_from_particular_pages():
    assert is_home_page("https://www.bbc.co.uk/")
    assert is_home_page("www.tauday.com")
    assert is_home_page("https://www.evisa.gov.tr/en/")
    assert not is_home_page("https://www.bbc.co.uk/news")
    assert not is_home_page("https://example.org/?page=2")


def test_templates_and_localhost_are_placeholder_hosts():
    assert is_placeholder_host("${hostname}")
    assert is_placeholder_host("localhost")
    assert is_placeholder_host("api.example.com")
    assert not is_placeholder_host("bbc.co.uk")


def test_only_urls_given_in_prose_are_cited():
    text = (
        "See https://www.bbc.co.uk/news for more.\n"
        "url = 'https://api.site.com/v1/items'\n"
        "const u = fetch(https://api.other.com/x);\n"
        "```\ncurl https://api.fenced.io/y\n```"
    )
    assert [(link.host, link.cited) for link in links(text)] == [
        ("bbc.co.uk", True),
        ("api.site.com", False),
        ("api.other.com", False),
        ("api.fenced.io", False),
    ]
