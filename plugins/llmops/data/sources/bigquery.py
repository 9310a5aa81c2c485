"""BigQuery source: a standard-SQL query whose ``@start``/``@end`` TIMESTAMP parameters are the run's interval.

In the spirit of the Stack Overflow public data set: questions joined to their accepted answers, filtered by tag
and by creation date within the interval (see docs/data.md). Without an interval the bounds are the widest possible.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd

from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def read_query(source: SourceConfig, interval: tuple[datetime, datetime] | None,
               page_rows: int = 100_000) -> tuple[Iterator[pd.DataFrame], dict]:
    """Run the query; return its result as frames of at most ``page_rows`` rows (fetched page by page as they
    are consumed), and the lineage (query, parameters, row count)."""
    from google.api_core.exceptions import GoogleAPIError
    from google.cloud import bigquery

    from llmops.data.sources.hooks import EndpointBigQueryHook

    start, end = interval or (EARLIEST, LATEST)
    params = [bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
              bigquery.ScalarQueryParameter("end", "TIMESTAMP", end)]
    hook = EndpointBigQueryHook(gcp_conn_id=source.gcp_conn_id, use_legacy_sql=False)
    client = hook.get_client(project_id=hook.project_id)
    try:
        job = client.query(source.query, job_config=bigquery.QueryJobConfig(query_parameters=params))
        result = job.result(page_size=page_rows)
    except GoogleAPIError as e:
        raise DataError(f"source.query: BigQuery rejected the query: {e}") from None
    total = int(result.total_rows or 0)
    lineage = {"kind": "bigquery", "query": source.query,
               "parameters": {"start": start.isoformat(), "end": end.isoformat()}, "rows": total}
    log.info("BigQuery returned %d rows for [%s, %s)", total, start, end)

    def pages() -> Iterator[pd.DataFrame]:
        line = 1  # row number in the result
        for df in result.to_dataframe_iterable():
            df["source_line"] = range(line, line + len(df))
            line += len(df)
            if len(df):
                yield df

    return pages(), lineage
