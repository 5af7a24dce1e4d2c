"""The error a reviewer's request can cause: a bad verdict, filter or edit (HTTP 400)."""


class ReviewError(ValueError):
    """A request the review cannot carry out; the message names the problem and the fix."""
