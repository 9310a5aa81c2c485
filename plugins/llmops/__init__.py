"""LLMOps on Airflow: dataset snapshots, LoRA and preference fine-tuning, evaluation, gating, an MLflow registry,
serving and retrieval.

The logic (config, data, model, train, evaluate, registry, export, serving, monitoring, lineage, retrieval) imports
and runs without Airflow, and ``steps`` holds one plain function per pipeline step over it (config in, a typed
payload of ``payloads`` out), so each is tested on its own. Airflow is imported by ``llmops.operators`` (the
operators over those steps, the DAG factory) and, inside the functions that need it, by the few modules that talk
to Airflow itself: ``data.sources.hooks`` (the Google provider's hooks), ``run_note`` (the REST API through the HTTP
provider's hook), ``evaluate.judge`` (the judge's connection through a hook), ``lineage.facets`` (the OpenLineage
provider) and ``view`` (the UI plugin's authentication).
"""

__version__ = "0.1.0"
