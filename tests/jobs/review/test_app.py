"""The review API: concurrency (409), restarts, HTML as data, the key, write guards."""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from jobs.review.app import COOKIE, create_app
from tests.jobs.review.runs import HTML_PROMPT, build_run

BASE = "http://127.0.0.1"


@pytest.fixture
def run_dir(tmp_path):
    return build_run(tmp_path / "run")


def client(run_dir, **kw) -> TestClient:
    kw.setdefault("api_key", "")
    return TestClient(create_app(run_dir, **kw), base_url=BASE)


def accept(c: TestClient, row_id: str, version: int, reviewer: str):
    body = {"verdict": "accept", "version": version, "reviewer": reviewer}
    return c.post(f"/api/rows/{row_id}/verdict", json=body)


def test_two_browsers_on_one_row_one_wins_the_other_gets_409(run_dir):
    app = create_app(run_dir, api_key="")
    browsers = [TestClient(app, base_url=BASE), TestClient(app, base_url=BASE)]
    seen = [b.get("/api/rows/c0-p1").json()["version"] for b in browsers]
    assert seen == [0, 0]
    barrier = threading.Barrier(2)
    answers = [None, None]

    def decide(i: int) -> None:
        barrier.wait()
        body = {"verdict": ["accept", "reject"][i], "version": seen[i], "reviewer": f"r{i}"}
        body |= {"reason": "wrong_answer"} if i else {}
        answers[i] = browsers[i].post("/api/rows/c0-p1/verdict", json=body)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 409]
    winner = next(a for a in answers if a.status_code == 200).json()["item"]
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["current"]["version"] == winner["version"] == 1
    assert loser["current"]["reviewer"] == winner["reviewer"]
    assert "not recorded" in loser["error"]
    now = browsers[0].get("/api/rows/c0-p1").json()
    assert (now["state"], now["reviewer"]) == (winner["state"], winner["reviewer"])


def test_a_restart_loses_no_verdict(run_dir):
    first = client(run_dir)
    assert accept(first, "c0-p0", 0, "ana").status_code == 200
    body = {"verdict": "reject", "version": 0, "reviewer": "bo", "reason": "off topic, free text"}
    rejected = first.post("/api/rows/c0-p1/verdict", json=body).json()
    refill = rejected["refill"]["row_id"]
    first.close()
    del first

    again = client(run_dir)  # a new app (a restarted server) over the same run directory
    assert again.get("/api/rows/c0-p0").json()["state"] == "accepted"
    card = again.get("/api/rows/c0-p1").json()
    assert (card["state"], card["reason"], card["reviewer"]) == (
        "rejected",
        "off topic, free text",
        "bo",
    )
    assert card["replaced_by"] == refill and card["time"].endswith("Z")
    queue = again.get("/api/queue").json()
    assert refill in [r["id"] for r in queue["rows"]]
    assert queue["progress"]["verified"] == 1 and queue["progress"]["rejected"] == 1


def test_html_in_a_row_is_data(run_dir):
    c = client(run_dir)
    card = c.get("/api/rows/c1-p0").json()
    assert card["original"][0]["content"] == HTML_PROMPT  # verbatim, for the page's textContent
    page = c.get("/")
    assert page.headers["content-type"].startswith("text/html")
    # The page may only run its own script file: no inline script, no inline handlers.
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert (
        c.get("/static/app.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_with_a_key_everything_needs_it(run_dir):
    c = client(run_dir, api_key="s3cret")
    for path in ("/", "/api/info", "/api/queue", "/api/rows/c0-p0", "/static/app.js"):
        assert c.get(path).status_code == 401, path
    assert "needs its key" in c.get("/api/queue").json()["error"]
    assert accept(c, "c0-p0", 0, "ana").status_code == 401
    assert c.post("/api/export", json={}).status_code == 401
    assert c.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/?key=wrong").status_code == 401
    assert c.get("/healthz").status_code == 200
    assert c.get("/api/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/api/info", headers={"X-API-Key": "s3cret"}).status_code == 200
    card = c.get("/api/rows/c0-p0", headers={"Authorization": "Bearer s3cret"}).json()
    assert card["version"] == 0  # the refused verdict was not stored


def test_opening_the_page_with_the_key_sets_a_cookie_without_the_key(run_dir):
    c = client(run_dir, api_key="s3cret")
    opened = c.get("/?key=s3cret", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == "/"
    cookie = opened.cookies[COOKIE]
    assert "s3cret" not in cookie
    assert "httponly" in opened.headers["set-cookie"].lower()
    assert "samesite=strict" in opened.headers["set-cookie"].lower()
    assert c.get("/").status_code == 200  # the client keeps the cookie
    assert accept(c, "c0-p0", 0, "ana").status_code == 200


def test_key_from_the_environment(run_dir, monkeypatch):
    monkeypatch.setenv("FINESIFT_API_KEY", "from-env")
    c = TestClient(create_app(run_dir), base_url=BASE)
    assert c.get("/api/info").status_code == 401
    assert c.get("/api/info", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_writes_must_be_json_from_this_origin(run_dir):
    c = client(run_dir)
    form = c.post(
        "/api/rows/c0-p0/verdict",
        content="verdict=accept&version=0&reviewer=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    cross = c.post(
        "/api/rows/c0-p0/verdict",
        json={"verdict": "accept", "version": 0, "reviewer": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert c.get("/api/rows/c0-p0").json()["version"] == 0
    assert c.get("/api/info", headers={"Host": "evil.example"}).status_code == 400


def test_bad_requests_name_the_problem(run_dir):
    c = client(run_dir)
    assert c.get("/api/rows/nope").status_code == 404
    missing = c.post("/api/rows/c0-p0/verdict", json={"verdict": "accept"})
    assert missing.status_code == 422 and "version" in missing.json()["error"]
    no_reason = c.post(
        "/api/rows/c0-p0/verdict", json={"verdict": "reject", "version": 0, "reviewer": "x"}
    )
    assert no_reason.status_code == 400 and "reason is required" in no_reason.json()["error"]
    bad_filter = c.get("/api/queue?signal=vibes")
    assert bad_filter.status_code == 400 and "signal must be one of" in bad_filter.json()["error"]


def test_export_through_the_api(run_dir):
    c = client(run_dir)
    accept(c, "c0-p0", 0, "ana")
    summary = c.post("/api/export", json={}).json()
    assert summary["rows"] == 1 and summary["paths"]["verified"].endswith("verified.jsonl")
    assert (run_dir / "verified.jsonl").read_text().count("\n") == 1
