"""Errors a user can cause. Their messages name the problem and the fix; the CLI prints
them without a traceback."""


class FinesiftError(Exception):
    """Base class for user-facing errors (bad path, bad config value, bad model name...)."""


class InputError(FinesiftError):
    """An input path or format that cannot be read at all (as opposed to one bad row)."""


class ModelNotFoundError(FinesiftError):
    """A model id or directory that cannot be resolved offline."""
