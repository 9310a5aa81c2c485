"""Every exception of the project, in one place: small named errors that carry the context a user needs.

One marker decides what a retry can fix: a :class:`PermanentError` (bad config, bad data, a name of the wrong
shape, a missing snapshot or model version, a budget) will not get better on a retry, so the operators' shared code
(``llmops.operators.common.fail_without_retry``) fails the task for good with the message. Anything else (an
unreachable MLflow server, a crashed training process) is left to Airflow's retries.
"""


class LLMOpsError(Exception):
    """Base class for the project's errors."""


class PermanentError(LLMOpsError):
    """A retry cannot fix this: the task fails at once, without retry, with the message."""


class ConfigError(PermanentError):
    """A use-case file is invalid; the message names the file and the field."""


class DataError(PermanentError):
    """Input data cannot be used; the message names the file, the line or the column."""


class ValidationFailed(DataError):
    """The great-expectations suite failed; carries the summary of failed expectations."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


class EmbeddingMismatch(DataError):
    """A retrieval index and an embedding model (or a query vector) that do not belong together."""


class IndexNotFound(DataError):
    """No such retrieval index version, or no live index."""


class IndexUnavailable(LLMOpsError):
    """A retrieval index's backend (pgvector's PostgreSQL) cannot be reached or read now; a retry may succeed."""


class SnapshotNotFound(PermanentError):
    """No snapshot with this id (or none at all) exists for the use case."""


class InvalidName(PermanentError):
    """A user-supplied name (snapshot id, version, alias, use case, template, model) is not of its shape; the
    message names the field and the rule. Checked before any path, URI or query is built from the name."""


class RegistryError(PermanentError):
    """A model, version or alias the request names does not exist."""


class BaseModelNotFound(PermanentError):
    """A ``base_model`` written as a local path names no folder; the message gives the path as expanded and what
    creates it."""


class PayloadError(PermanentError):
    """An upstream task's XCom payload lacks a key its consumer needs; the message names the key and the task.
    The payload will not change on a retry of the consumer."""


class ExportError(PermanentError):
    """A model version could not be exported (merged weights, GGUF): the message says which step and why; nothing
    of that export is registered."""


class BudgetExceeded(PermanentError):
    """The estimated cost of a training run is over the use case's budget."""


class AllTrialsFailed(PermanentError):
    """No trial of the sweep finished training and evaluation: nothing to choose from."""


class FieldError(ValueError):
    """Raised by a config check that runs after all fields are read, naming the field (relative to its model) at
    fault; :mod:`llmops.config` turns it into a :class:`ConfigError` with the full field path. A ``ValueError`` so
    that pydantic's validators report it like their own."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


class NothingToDo(LLMOpsError):
    """A step has nothing to do this run (a partition without rows, no champion yet, a rejected gate): the task is
    skipped with the message, and the rest of the DAG run follows the skip."""


class MissingApiKeys(LLMOpsError):
    """The REST API refuses to start: no ``LLMOPS_API_KEYS`` outside the dev profile."""


class ServingError(LLMOpsError):
    """A request the serving API cannot answer; :mod:`llmops.serving.app` maps each kind to its HTTP status."""


class NotServed(ServingError):
    """The alias or version a request names is not served here (404)."""


class NoChampion(ServingError):
    """No `champion` is loaded yet, so a request naming no model cannot be served (503)."""


class QueueFull(ServingError):
    """The bounded request queue of a served model version is full (429 with ``Retry-After``)."""


class RequestTimedOut(ServingError):
    """A request was not answered within ``serving.request_timeout_s`` (503 with ``Retry-After``)."""


class PromptTooLong(ServingError):
    """The prompt is longer than ``serving.max_prompt_chars`` (413)."""


class BlankPrompt(ServingError):
    """The prompt is empty or only whitespace (422)."""


class EngineUnavailable(ServingError):
    """The vLLM server behind the gateway is down or restarting (503 with ``Retry-After``)."""


class RetrievalUnavailable(ServingError):
    """With a ``retrieval`` block: the live index is missing or cannot be read, or its embedding model is not the
    configured one (503, naming the index; ``serving.without_index: answer`` answers without context instead,
    except for an embedding mismatch, which is always refused)."""


class EngineRefused(ServingError, PermanentError):
    """The vLLM server behind the gateway refused a request (an HTTP 4xx other than 404 and 429: a prompt and
    ``max_tokens`` longer than its ``--max-model-len``, a key it does not accept). The same request gets the same
    answer, so it is never retried: the API answers 502 with vLLM's reason, and the merged-mode check of a version
    fails its registration with :class:`AdapterRefused`."""


class AdapterRefused(PermanentError):
    """A vLLM server refused a version's adapter (rank above ``--max-lora-rank``, another base model): the alias
    does not move and the registration fails without retry."""


class JudgeUnavailable(LLMOpsError):
    """The judge endpoint did not give enough parseable verdicts; a retry may succeed."""


class AdapterDigestMismatch(PermanentError):
    """A registered version's adapter files, as downloaded, are not the ones registered (their sha256 differs from
    the version's ``adapter.sha256`` tag): they are not loaded, and the alias keeps serving what it served."""


class TrackingUnavailable(LLMOpsError):
    """The MLflow tracking server could not be reached; a retry of the task may succeed once it is back."""


class TrainingProcessFailed(LLMOpsError):
    """The training child process exited with an error; the message carries the end of its output."""
