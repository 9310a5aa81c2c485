"""The LLMOps view inside the Airflow UI: snapshots, model versions and their lineage, per use case.

``records`` reads what already exists (snapshot manifests, run summaries, the MLflow registry) and writes
nothing; ``pages`` renders it as HTML; ``app`` is the FastAPI app the Airflow plugin mounts in the api-server.
"""
