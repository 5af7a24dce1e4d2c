"""The API key of both serving backends: one shared bearer token, compared by its hash.

With ``FINESIFT_API_KEY`` set in the process that builds the app, every ``/v1`` request
must send ``Authorization: Bearer <key>``. Only the key's SHA-256 reaches the replicas and
Serve's stored config, and the comparison takes constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from serving.errors import ApiError

API_KEY_ENV = "FINESIFT_API_KEY"
"""When set (in the process that builds the app), /v1 requests need this bearer token."""


def hash_key(key: str) -> str:
    """SHA-256 of an API key; only the hash travels to the replicas and Serve's config."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hash_from(api_key: str | None) -> str | None:
    """The hash replicas check: of ``api_key``, else of ``FINESIFT_API_KEY``; None (no
    authentication) when both are unset or empty."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "")
    return hash_key(key) if key else None


def check_bearer(authorization: str | None, key_hash: str | None) -> None:
    """Let a request through when it carries the key (or when there is no key).

    Args:
        authorization: the request's ``Authorization`` header, if any.
        key_hash: :func:`hash_key` of the server's key, or None for no authentication.

    Raises:
        ApiError: 401 for a missing or wrong key.
    """
    if key_hash is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(hash_key(token.strip()), key_hash):
        raise ApiError(
            401,
            f"missing or wrong API key; send Authorization: Bearer <key> (the value of "
            f"{API_KEY_ENV} on the server)",
            type="authentication_error",
            code="invalid_api_key",
        )
