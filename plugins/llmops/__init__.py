"""LLMOps on Airflow: dataset snapshots, LoRA fine-tuning, evaluation, gating and an MLflow registry.

The logic (config, data, train, evaluate, registry, serving) imports and runs without Airflow, so it is tested on
its own. Airflow is imported by ``llmops.operators`` (the operators, the DAG factory) and, inside the functions
that need it, by the few modules that talk to Airflow itself: ``data.sources.hooks`` (the Google provider's
hooks), ``run_note`` (the REST API through the HTTP provider's hook), ``lineage.facets`` (the OpenLineage
provider) and ``view`` (the UI plugin's authentication).
"""

__version__ = "0.1.0"
