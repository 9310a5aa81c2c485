"""Data half of the pipeline: ingest -> validate -> snapshot.

``sources/`` reads (files, GCS, BigQuery, Hugging Face datasets); ``ingest`` dispatches over the readers,
``prepare`` and ``stage`` clean and stage the rows, ``validate`` runs the great-expectations suite, and
``snapshots/`` writes and reads the versioned, content-addressed snapshots (one :class:`Snapshots` handle).
"""
