"""Data half of the pipeline: ingest -> validate -> snapshot."""
