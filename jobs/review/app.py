"""The review server: a plain ASGI app (FastAPI) serving the page and its JSON API.

Why not Ray Serve, which serves finesift's models: a review is one person (or a few) on
one run directory, a few requests a minute, with state in a SQLite file beside the run.
Serve would start a Ray cluster, a controller and a proxy (seconds, and a few hundred MB)
to route them; an ASGI app under uvicorn starts in about a second and needs nothing but
the run directory. Handlers are plain ``def``: FastAPI runs them on its thread pool, where
SQLite and the encoder may block.

Routes: ``GET /`` the page, ``/static/*`` its script and style, ``GET /api/info``,
``GET /api/queue``, ``GET /api/rows/{id}``, ``POST /api/rows/{id}/verdict``,
``POST /api/export``, ``GET /healthz``.

Security: with a key (``FINESIFT_API_KEY``), every route but /healthz needs it, as
``Authorization: Bearer KEY`` or from a cookie the page sets when opened as ``/?key=KEY``
(HttpOnly, SameSite=Strict, holding a hash of the key, not the key). Writes must be JSON
from the page's own origin (a cross-site form cannot post one), requests must name an
allowed host (no DNS rebinding), and the page may run only its own script (CSP): row text
is data, never markup.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' types at runtime.

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from jobs.review import queue as review_queue
from jobs.review.errors import ReviewError
from jobs.review.session import ReviewSession
from jobs.review.store import StaleVersion, UnknownRow

API_KEY_ENV = "FINESIFT_API_KEY"
COOKIE = "finesift_review"
STATIC = Path(__file__).parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
UNAUTHORIZED_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>finesift review: key needed</title></head><body>
<h1>This review page needs its key</h1>
<p>The server was started with <code>FINESIFT_API_KEY</code> set. Open
<code>/?key=THE_KEY</code> once; the browser then keeps a cookie for this server.</p>
</body></html>"""


class Turn(BaseModel):
    """One turn of an edited conversation."""

    model_config = ConfigDict(extra="forbid")
    role: str
    content: str


class VerdictBody(BaseModel):
    """``POST /api/rows/{id}/verdict``."""

    model_config = ConfigDict(extra="forbid")
    verdict: str
    """accept, reject or edit."""
    version: int
    """The row version the reviewer saw; a stale one gets 409 with the current row."""
    reviewer: str
    reason: str | None = None
    messages: list[Turn] | None = None


def create_app(
    run_dir: str | Path | None = None,
    *,
    session: ReviewSession | None = None,
    api_key: str | None = None,
    allowed_hosts: list[str] | tuple[str, ...] | None = LOOPBACK_HOSTS,
) -> FastAPI:
    """The review app for one run directory.

    Args:
        run_dir: the curate run directory (ignored when ``session`` is given).
        session: an open :class:`ReviewSession` (tests, or a custom encoder).
        api_key: the key the page and API require; None reads ``FINESIFT_API_KEY`` (unset
            or empty: no key).
        allowed_hosts: Host header values accepted (DNS-rebinding guard); None allows any.

    Returns:
        The FastAPI app.
    """
    if session is None:
        if run_dir is None:
            raise ValueError("create_app needs run_dir or session")
        session = ReviewSession(run_dir)
    key = (api_key if api_key is not None else os.environ.get(API_KEY_ENV)) or None
    app = FastAPI(title="finesift review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.session = session
    _install_guards(app, key)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    _install_errors(app)
    _install_routes(app, session, key)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _cookie_value(key: str) -> str:
    """What the cookie holds: a hash of the key, so the cookie never reveals the key."""
    return hmac.new(key.encode(), b"finesift-review-cookie", hashlib.sha256).hexdigest()


def authorized(request: Request, key: str | None) -> bool:
    """Whether a request carries the key (bearer header, X-API-Key, or the page's cookie)."""
    if key is None:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), key.encode()):
        return True
    api_key = request.headers.get("x-api-key", "")
    if api_key and hmac.compare_digest(api_key.encode(), key.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _cookie_value(key).encode())


def _install_guards(app: FastAPI, key: str | None) -> None:
    @app.middleware("http")
    async def guard(request: Request, call_next) -> Response:
        path = request.url.path
        # /healthz is open; `/?key=` checks the key itself (and sets the cookie).
        exempt = path == "/healthz" or (path == "/" and "key" in request.query_params)
        if not exempt and not authorized(request, key):
            if path.startswith("/api/"):
                return _error(401, "this review needs its key: send Authorization: Bearer KEY")
            return HTMLResponse(UNAUTHORIZED_PAGE, status_code=401)
        if request.method == "POST":
            problem = _write_problem(request)
            if problem:
                return _error(problem[0], problem[1])
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _write_problem(request: Request) -> tuple[int, str] | None:
    """Why a POST may not write (another site's form or script), else None."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return 415, "send the request body as JSON (Content-Type: application/json)"
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        return 403, f"requests from {origin} may not write to this review"
    return None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(422, f"invalid request: {where or 'body'}: {first.get('msg', 'bad value')}")

    @app.exception_handler(UnknownRow)
    async def unknown(request: Request, exc: UnknownRow) -> JSONResponse:
        return _error(404, f"row {exc.args[0]!r} is not in this review's queue")

    @app.exception_handler(StaleVersion)
    async def stale(request: Request, exc: StaleVersion) -> JSONResponse:
        return _error(
            409,
            f"{exc}: your verdict was not recorded; look at the row again",
            current=exc.current.to_dict(),
        )

    @app.exception_handler(ReviewError)
    async def bad_request(request: Request, exc: ReviewError) -> JSONResponse:
        return _error(400, str(exc))


def _install_routes(app: FastAPI, session: ReviewSession, key: str | None) -> None:
    @app.get("/", include_in_schema=False)
    def page(request: Request) -> Response:
        given = request.query_params.get("key")
        if key is not None and given is not None:
            if not hmac.compare_digest(given.encode(), key.encode()):
                return HTMLResponse(UNAUTHORIZED_PAGE, status_code=401)
            # Set the cookie and drop the key from the address bar (and from history).
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, _cookie_value(key), httponly=True, samesite="strict")
            return response
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)  # no icon; answered so browsers do not log a 404

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        return session.info()

    @app.get("/api/queue")
    def queue(
        cluster: int | None = None,
        state: str | None = None,
        reason: str | None = None,
        flag: str | None = None,
        signal: str | None = None,
        low: float | None = None,
        high: float | None = None,
        q: str | None = None,
        order: str = "confidence",
    ) -> dict[str, Any]:
        filters = review_queue.Filters(
            cluster=cluster,
            state=state or None,
            reason=reason or None,
            flag=flag or None,
            signal=signal or None,
            low=low,
            high=high,
            search=q or None,
        )
        return session.queue(filters, order)

    @app.get("/api/rows/{row_id}")
    def row(row_id: str) -> dict[str, Any]:
        return session.card(row_id)

    @app.post("/api/rows/{row_id}/verdict")
    def verdict(row_id: str, body: VerdictBody) -> dict[str, Any]:
        result = session.verdict(
            row_id,
            verdict=body.verdict,
            version=body.version,
            reviewer=body.reviewer,
            reason=body.reason,
            messages=[t.model_dump() for t in body.messages] if body.messages else None,
        )
        return {
            "item": result.item.to_dict(),
            "refill": result.refill.to_dict() if result.refill else None,
        }

    @app.post("/api/export")
    def export() -> dict[str, Any]:
        from jobs.review.export import export_review

        return export_review(session)
