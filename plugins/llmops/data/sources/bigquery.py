"""BigQuery source: a standard-SQL query whose ``@start``/``@end`` TIMESTAMP parameters are the run's interval.

In the spirit of the Stack Overflow public data set: questions joined to their accepted answers, filtered by tag
and by creation date within the interval (see README). Without an interval the bounds are the widest possible.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd

from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)


def read_query(source: SourceConfig, interval: tuple[datetime, datetime] | None) -> tuple[pd.DataFrame, dict]:
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
        df = job.result().to_dataframe(create_bqstorage_client=False)
    except GoogleAPIError as e:
        raise DataError(f"source.query: BigQuery rejected the query: {e}") from None
    df["source_line"] = range(1, len(df) + 1)  # row number in the result
    lineage = {"kind": "bigquery", "query": source.query,
               "parameters": {"start": start.isoformat(), "end": end.isoformat()}, "rows": int(len(df))}
    log.info("BigQuery returned %d rows for [%s, %s)", len(df), start, end)
    return df, lineage
