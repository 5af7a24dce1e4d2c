"""Errors as clients see them: OpenAI's JSON error shape, and no server paths in messages.

A server-side failure (an adapter that cannot be read, an exception inside generation)
is logged in full on the server, but the message a client gets names things by their
place in the API (the adapter's name, the file's name), never by an absolute path on the
server: a path tells an unauthenticated caller how the machine is laid out.
"""

from __future__ import annotations

import re
from typing import Any

# An absolute path: a POSIX path of two or more components (/home/x/adapters/a) or a
# Windows drive path (C:\models\x). URL paths like /v1/models never reach these messages.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~:/\\-])(?:/(?:[^\s/'\"(),;:]+/)+|[A-Za-z]:\\(?:[^\s\\'\"(),;]+\\)*)"
    r"(?P<name>[^\s/\\'\"(),;:]*)"
)


def redact_paths(text: str) -> str:
    """``text`` with every absolute path shortened to ``…/NAME`` (its last component)."""
    return _ABSOLUTE_PATH.sub(lambda m: f"…/{m.group('name')}", text)


def shown(name: str, most: int = 80) -> str:
    """A client-given name (a field, a path in the body) as a one-line message may show it:
    as it is when short and printable, else quoted with escapes and cut to ``most``."""
    if name.isprintable() and len(name) <= most:
        return name
    return repr(name[:most]) + ("..." if len(name) > most else "")


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with an HTTP status, in OpenAI's shape.

    Messages of server errors (status >= 500) are passed through :func:`redact_paths`:
    they may carry an exception's text, which often holds a path.

    Args:
        status: HTTP status code.
        message: what went wrong and how to fix it.
        type: OpenAI error type, e.g. ``invalid_request_error``.
        param: the request field at fault, if any.
        code: a short machine-readable code, e.g. ``model_not_found``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        if status >= 500:
            message = redact_paths(message)
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI clients parse: ``{"error": {message, type, param, code}}``."""
        return error_body(self.message, self.type, self.param, self.code)


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_type_for(status: int) -> str:
    """The OpenAI error ``type`` conventionally used with an HTTP status."""
    return {
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "invalid_request_error" if status < 500 else "server_error")
