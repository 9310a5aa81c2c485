"""Readers only: local files (``files``), GCS objects (``gcs``), BigQuery queries (``bigquery``), Hugging Face
datasets (``huggingface``), the column mapping and interval filter they share (``rows``) and the Google hooks
(``hooks``). Nothing here imports from the rest of ``llmops.data``; ``llmops.data.ingest`` dispatches over them.

Google connections come from Airflow (``AIRFLOW_CONN_<ID>`` or the metadata DB); credentials stay inside the hooks
and never reach logs, XCom or manifests: only bucket/object names, the query text and its parameters are recorded.
"""
