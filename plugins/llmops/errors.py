"""Small named exceptions that carry the context a user needs to fix the problem."""


class LLMOpsError(Exception):
    """Base class for the project's errors."""


class ConfigError(LLMOpsError):
    """A use-case file is invalid; the message names the file and the field."""


class DataError(LLMOpsError):
    """Input data cannot be used; the message names the file, the line or the column."""


class ValidationFailed(DataError):
    """The great-expectations suite failed; carries the summary of failed expectations."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


class SnapshotNotFound(LLMOpsError):
    """No snapshot with this id (or none at all) exists for the use case."""
