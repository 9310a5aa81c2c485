"""Google Cloud sources (GCS objects, BigQuery queries) through the Airflow Google provider's hooks.

Connections come from Airflow (``AIRFLOW_CONN_<ID>`` or the metadata DB); credentials stay inside the hooks and
never reach logs, XCom or manifests: only bucket/object names, the query text and its parameters are recorded.
"""
