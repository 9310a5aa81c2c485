"""Read a use case's source (local files, GCS objects, a BigQuery query or a Hugging Face dataset) into
prompt/response rows: the dispatch over the readers of :mod:`llmops.data.sources`, in batches of ``batch_rows()``.

The rows carry ``source_file`` and ``source_line`` so later steps can point back at the raw row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SourceConfig
from llmops.data.batches import batch_rows
from llmops.data.sources.files import iter_file, list_files
from llmops.data.sources.rows import in_interval, map_columns

log = logging.getLogger(__name__)


def ingest(source: SourceConfig, interval: tuple[datetime, datetime] | None = None) -> pd.DataFrame:
    """The rows of :func:`read_source`, without the lineage."""
    return read_source(source, interval)[0]


def iter_source(source: SourceConfig, interval: tuple[datetime, datetime] | None = None,
                work_dir: Path | None = None) -> tuple[Iterator[pd.DataFrame], dict]:
    """Every row the source names within ``interval``, in batches of at most ``batch_rows()``, and the lineage
    of the read. Rows keep their file and line for error messages and lineage. Local paths and URI schemes
    are checked (and GCS objects downloaded) before the first batch is read."""
    if source.kind == "bigquery":
        from llmops.data.sources.bigquery import read_query

        pages, lineage = read_query(source, interval, page_rows=batch_rows())
        return (map_columns(df, source, "bigquery") for df in pages), lineage
    if source.kind == "huggingface":
        from llmops.data.sources.huggingface import read_dataset

        return read_dataset(source, interval, batch_rows())
    if source.kind == "gcs":
        from llmops.data.sources.gcs import download

        pairs = download(source, work_dir or paths.llmops_home() / "tmp")
    else:
        pairs = [(p, str(p)) for p in list_files(source)]

    def batches() -> Iterator[pd.DataFrame]:
        total = 0
        for local, name in pairs:
            rows = 0
            for df in iter_file(local, source, name, batch=batch_rows()):
                df = in_interval(df, interval, source)
                rows += len(df)
                if len(df):
                    yield df
            log.info("read %d rows from %s", rows, name)
            total += rows
        log.info("ingested %d rows from %d file(s)", total, len(pairs))

    return batches(), {"kind": source.kind, "path": source.path, "files": [name for _, name in pairs]}


def read_source(source: SourceConfig, interval: tuple[datetime, datetime] | None = None,
                work_dir: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Every row of :func:`iter_source` in one frame, and the lineage."""
    batches, lineage = iter_source(source, interval, work_dir)
    frames = list(batches)
    if not frames:
        return pd.DataFrame(columns=["prompt", "response", "source_file", "source_line"]), lineage
    return pd.concat(frames, ignore_index=True), lineage
