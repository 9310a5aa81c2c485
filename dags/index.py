"""One ``<use_case>__index`` DAG per use case with a ``retrieval`` block: corpus -> build -> evaluate -> gate ->
publish (docs/retrieval.md).

``corpus`` reads, validates and snapshots the corpus (or takes the snapshot id in the Params form); ``build``
chunks, embeds (reusing the vectors of unchanged passages) and writes the index version atomically; the index id
is a hash of its inputs, so a run over an unchanged corpus writes nothing. ``evaluate`` scores bm25, dense and
hybrid on the labelled questions (an MLflow run with the index id as a tag); ``gate`` applies the retrieval rules
against the live index; ``publish`` moves ``live`` only when they pass, and emits the ``<use_case>__index`` Asset.
"""

from __future__ import annotations

from airflow.sdk import Param

from llmops import names
from llmops.operators.dag_factory import use_case_dag, use_cases
from llmops.operators.index import (
    BuildIndexOperator,
    CorpusSnapshotOperator,
    EvaluateIndexOperator,
    IndexGateOperator,
    PublishIndexOperator,
)

for cfg in use_cases():
    if cfg.retrieval is None:
        continue
    with use_case_dag(
        cfg, "index", tag="index", description=f"Retrieval index for {cfg.name}: {cfg.description}",
        schedule=cfg.schedule, doc_md=__doc__,
        params={"snapshot_id": Param("", type="string", title="Corpus snapshot id",
                                     pattern=names.param_pattern(names.SNAPSHOT_ID_RE, optional=True),
                                     description="Index this corpus snapshot. Empty: snapshot the corpus now.")},
    ):
        snapshot = CorpusSnapshotOperator(task_id="corpus", use_case=cfg.name, snapshot_id="{{ params.snapshot_id }}")
        built = BuildIndexOperator(task_id="build", use_case=cfg.name, snapshot=snapshot.output)
        evaluated = EvaluateIndexOperator(task_id="evaluate", use_case=cfg.name, built=built.output)
        decision = IndexGateOperator(task_id="gate", use_case=cfg.name, evaluated=evaluated.output)
        PublishIndexOperator(task_id="publish", use_case=cfg.name, decision=decision.output)
