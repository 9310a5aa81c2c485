"""The data blocks of a use case: where rows come from, how they are cleaned and split, where snapshots live, and
the feedback DAG's preference data."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from llmops.config._base import _Strict
from llmops.errors import FieldError

HF_DATASET_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
LOCAL_PREFIXES = ("/", "./", "../", "~", "${", "file://")


def is_local_dataset(dataset: str) -> bool:
    """A ``huggingface`` source's ``dataset`` names a local folder when written as a path (``/``, ``./``, ``../``,
    ``~``, ``${LLMOPS_HOME}``, ``file://``); anything else is a Hub dataset id (``owner/name``)."""
    return dataset.startswith(LOCAL_PREFIXES) or dataset in (".", "..")


class SourceConfig(_Strict):
    """Where the rows come from. ``files``: local paths/globs (.jsonl, .csv, .parquet, each optionally .gz);
    ``gcs``: ``gs://bucket/prefix*`` objects through a Google Cloud connection; ``bigquery``: a query whose
    ``@start``/``@end`` TIMESTAMP parameters are the run's partition interval; ``huggingface``: a Hugging Face
    dataset (a Hub id pinned to a ``revision``, or a local dataset folder) read with ``datasets.load_dataset``."""

    kind: Literal["files", "gcs", "bigquery", "huggingface"] = Field("files", description="Which reader: files, gcs, "
                                                                    "bigquery or huggingface")
    path: str | None = Field(None, description="files: path or glob (project-relative, ${LLMOPS_HOME} expanded); "
                                               "gcs: gs://bucket/prefix with * globs")
    query: str | None = Field(None, description="bigquery: standard SQL using @start and @end")
    dataset: str | None = Field(None, description="huggingface: a Hub dataset id (owner/name) or a local dataset "
                                "folder written as a path (./data/qa, /data/qa, ${LLMOPS_HOME}/qa)")
    revision: str | None = Field(None, description="huggingface: the Hub commit, tag or branch to read (required for "
                                 "a Hub id: pin a commit sha for reproducible snapshots); optional for a local folder")
    split: str = Field("train", description="huggingface: the split to read")
    name: str | None = Field(None, description="huggingface: the dataset's config name, if it has several")
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field("auto", description="files/gcs: the file format; "
                                                               "auto: from the extension (.gz allowed)")
    prompt_column: str = Field("prompt", description="Source column that becomes the prompt")
    response_column: str = Field("response", description="Source column that becomes the response")
    timestamp_column: str | None = Field(None, description="Source column with each row's time; partitions and "
                                         "backfills select rows by it (null: every run takes all rows)")
    key_column: str | None = Field(None, description="Stable row id for the split hash (default: the prompt)")
    gcp_conn_id: str = Field("google_cloud_default", description="Airflow connection for gcs/bigquery")
    allowed_roots: list[str] = Field(
        default_factory=lambda: [".", "${LLMOPS_HOME}"],
        description="files: local folders a path may resolve into (project-relative; ${LLMOPS_HOME} expanded); "
                    "folders in the LLMOPS_DATA_ROOTS environment variable (os.pathsep-separated) are added")

    @model_validator(mode="after")
    def _needs_location(self):
        """After every field is read, so the error names the field that is missing, not the one read last."""
        if self.kind == "bigquery" and not self.query:
            raise FieldError("query", "a bigquery source needs `query`")
        if self.kind in ("files", "gcs") and not self.path:
            raise FieldError("path", f"a {self.kind} source needs `path`")
        if self.kind == "gcs" and not str(self.path).startswith("gs://"):
            raise FieldError("path", "a gcs source's `path` must start with gs://")
        if self.kind == "huggingface":
            if not self.dataset:
                raise FieldError("dataset", "a huggingface source needs `dataset` (a Hub id or a local folder path)")
            local = is_local_dataset(self.dataset)
            if not local and not HF_DATASET_ID.match(self.dataset):
                raise FieldError("dataset", f"'{self.dataset}' is neither a Hub dataset id (owner/name) nor a local "
                                 "folder path (start it with ./, ../, / or ${LLMOPS_HOME})")
            if not local and not self.revision:
                raise FieldError("revision", f"the Hub dataset '{self.dataset}' needs a pinned `revision` (a commit "
                                 "sha, or a tag), so a re-run reads the same rows")
            if self.revision is not None and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", self.revision):
                raise FieldError("revision", f"'{self.revision}' is not a commit sha, tag or branch name")
        return self


class PrepareConfig(_Strict):
    """Normalization, length limits and exact de-duplication, applied after ingest and before validation."""

    strip_html: bool = Field(False, description="Turn HTML bodies (e.g. Stack Overflow) into plain text")
    normalize_whitespace: bool = Field(True, description="Runs of spaces become one, runs of blank lines one "
                                       "newline, ends trimmed")
    min_prompt_chars: int = Field(1, ge=0, description="Shorter prompts are dropped (counted)")
    max_prompt_chars: int | None = Field(None, gt=0, description="Longer prompts are dropped (counted)")
    min_response_chars: int = Field(1, ge=0, description="Shorter responses are dropped (counted)")
    max_response_chars: int | None = Field(None, gt=0, description="Longer responses are dropped (counted)")
    deduplicate: bool = Field(True, description="Drop exact duplicate prompt/response pairs")


class SplitConfig(_Strict):
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Share of rows in the eval split (by a hash of "
                                 "key_column, so a row never changes split)")
    seed: int = Field(0, description="Salt of the split hash; another seed gives another split")


class SnapshotConfig(_Strict):
    """Which snapshot(s) the finetune DAG trains on when a dataset event triggers it."""

    train_on: Literal["interval", "last_n"] = Field(
        "interval", description="interval: the triggering partition's snapshot; last_n: the union of the newest N")
    last_n: int = Field(4, gt=0, description="train_on last_n: how many of the newest snapshots are united")
    root: str | None = Field(
        None, description="Where snapshots are stored: a local folder or gs://bucket/prefix (default: "
                          "${LLMOPS_HOME}/snapshots); snapshots go under <root>/<use_case>/<snapshot_id>/")
    gcp_conn_id: str = Field("google_cloud_default", description="Airflow connection for a gs:// root")

    @field_validator("root")
    @classmethod
    def _known_scheme(cls, v: str | None) -> str | None:
        has_scheme = v and re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", v)
        if has_scheme and not re.match(r"^gs://[a-z0-9][a-z0-9._-]{1,220}(/|$)", v):
            raise ValueError(f"'{v}': use a local folder or gs://bucket/prefix")
        return v


class FeedbackConfig(_Strict):
    """Preference data from served answers and user feedback (the ``<use_case>__feedback`` DAG)."""

    min_rows: int = Field(20, gt=0, description="Fewer preference rows: the run says how many and skips downstream")
    eval_fraction: float | None = Field(0.25, gt=0, lt=1, description="Share of prompts whose preference rows "
                                        "are held out for evaluation (split by prompt; null: split.eval_fraction)")
    expectation_suite: str = Field("include/expectations/preferences.json",
                                   description="great-expectations suite for preference rows")
    schedule: str | None = Field("@daily", description="Cron of the feedback DAG (one partition per day)")
