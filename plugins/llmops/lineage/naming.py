"""Dataset identifiers, following the OpenLineage naming conventions, with credentials never kept.

- a local file or folder: namespace ``file``, name its absolute path (a ``file://`` URI gives the same);
- a GCS object or prefix: namespace ``gs://<bucket>``, name the object path;
- a BigQuery table: namespace ``bigquery``, name ``project.dataset.table``;
- a model version in the MLflow registry: namespace the registry URI (without user, password or query),
  name ``<model>/<version>``;
- a Hugging Face base model: namespace ``huggingface``, name the model id; a Hub dataset: ``datasets/<id>``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def redact_uri(uri: str) -> str:
    """``uri`` without user, password, query string or fragment: what may be shown in lineage and the UI."""
    if not _SCHEME.match(uri or ""):
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def from_uri(uri: str) -> tuple[str, str]:
    """(namespace, name) of a ``file://`` or ``gs://`` URI, or of a plain local path."""
    m = _SCHEME.match(uri)
    if not m:
        return "file", str(Path(uri).absolute())
    scheme = m.group(1).lower()
    parts = urlsplit(uri)
    if scheme == "file":
        return "file", url2pathname(parts.path)
    return f"{scheme}://{parts.hostname or ''}", parts.path.lstrip("/")


def to_uri(namespace: str, name: str) -> str:
    """The URI a (namespace, name) pair of :func:`from_uri` stands for."""
    if namespace == "file":
        return Path(name).as_uri()
    return f"{namespace.rstrip('/')}/{name}"


def bigquery_tables(query: str) -> list[tuple[str, str]]:
    """The tables a BigQuery standard-SQL query reads, as (``bigquery``, ``project.dataset.table``)."""
    import openlineage_sql

    try:
        parsed = openlineage_sql.parse([query], dialect="bigquery")
    except Exception:  # an unparsable query: no table lineage, the query itself is still reported
        return []
    return sorted({("bigquery", t.qualified_name) for t in parsed.in_tables})


def source_datasets(source: dict) -> list[tuple[str, str]]:
    """The datasets an ingest read, from its lineage record (``kind``, ``files`` or ``query``)."""
    if source.get("kind") == "bigquery":
        return bigquery_tables(source.get("query") or "")
    if source.get("kind") == "huggingface" and not source.get("path"):  # a Hub dataset; a local one is a folder
        return [("huggingface", f"datasets/{source.get('dataset')}")]
    return [from_uri(f) for f in source.get("files") or []]


def model_version(registry_uri: str, model: str, version: str | int) -> tuple[str, str]:
    return redact_uri(registry_uri), f"{model}/{version}"


def base_model(ref: str) -> tuple[str, str]:
    """A local model folder is a file dataset; anything else a Hugging Face hub id."""
    if _SCHEME.match(ref) or os.path.isabs(ref) or os.path.exists(ref):
        return from_uri(ref)
    return "huggingface", ref
