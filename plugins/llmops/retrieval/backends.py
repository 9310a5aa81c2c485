"""The retrieval backend a config or an index manifest names: ``embedded`` (files, :mod:`llmops.retrieval.backend`)
or ``pgvector`` (PostgreSQL, :mod:`llmops.retrieval.pgvector`). Above both, so neither imports the other back."""

from __future__ import annotations

from llmops.retrieval.backend import Backend, EmbeddedBackend


def backend(name: str, settings: dict | None = None) -> Backend:
    """The backend ``name`` (embedded, pgvector); ``settings``: the pgvector block (config or manifest)."""
    if name == "pgvector":
        from llmops.retrieval.pgvector import PgvectorBackend

        return PgvectorBackend(settings)
    if name != "embedded":
        raise ValueError(f"retrieval backend must be embedded or pgvector, not {name!r}")
    return EmbeddedBackend(settings)
