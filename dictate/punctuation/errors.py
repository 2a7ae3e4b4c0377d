"""The punctuation package's one error type (a DictateError: one-line message, exit code 1)."""

from dictate.errors import DictateError


class PunctuationError(DictateError):
    """A corpus could not be read or is too small, or a model file is missing, corrupt or incompatible."""
