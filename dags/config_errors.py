"""One placeholder DAG per broken include/use_cases/*.yaml: ``<file stem>__config_error``, tagged ``config-error``.

A use-case file that does not load skips its own DAGs only; every other use case keeps loading and scheduling.
This DAG keeps the error where an Airflow user looks: its doc and its only task (which fails at once, without
retry) name the file and each bad field. Fix the file and, on the next parse, its real DAGs replace this one.
"""

from __future__ import annotations

from llmops.operators.dag_factory import broken_use_cases, config_error_dag

for broken in broken_use_cases():
    config_error_dag(broken)  # a DAG made in a `with` block registers itself with the DagBag
