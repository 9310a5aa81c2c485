"""Thin subclasses of the provider's hooks that honour an ``api_endpoint`` connection extra.

The provider passes no endpoint to the Google clients; with this extra set (for example
``{"api_endpoint": "http://127.0.0.1:9050", "is_anonymous": true}``) the same hooks talk to a private endpoint
or a local emulator. Without it they behave exactly like the provider's.
"""

from __future__ import annotations

from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook
from airflow.providers.google.cloud.hooks.gcs import GCSHook


class _EndpointMixin:
    def get_client_options(self, api_endpoint_override: str | None = None):
        endpoint = api_endpoint_override or self._get_field("api_endpoint")  # type: ignore[attr-defined]
        return super().get_client_options(api_endpoint_override=endpoint)  # type: ignore[misc]


class EndpointGCSHook(_EndpointMixin, GCSHook):
    """GCSHook + the ``api_endpoint`` extra."""


class EndpointBigQueryHook(_EndpointMixin, BigQueryHook):
    """BigQueryHook + the ``api_endpoint`` extra."""
