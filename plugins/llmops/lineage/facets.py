"""A step's lineage (:mod:`llmops.lineage.steps`) as the OpenLineage provider's ``OperatorLineage``.

Standard facets through the provider's common-compat module (schema, output statistics, dataset version,
SQL job) and the client's data-quality facets; what has no standard facet goes to an ``llmops`` facet.
"""

from __future__ import annotations

import json

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet

from llmops.lineage.steps import Ref, StepLineage

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"  # generic facets: no schema of their own


@attr.define
class LLMOpsDatasetFacet(DatasetFacet):
    """What the pipeline knows about a dataset it made (snapshot id, rows per split, aliases, gate rules...)."""

    properties: dict = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return SPEC + "DatasetFacet"


@attr.define
class LLMOpsRunFacet(RunFacet):
    """The step's own facts: MLflow run id, snapshot choice, gate decision, query parameters..."""

    properties: dict = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return SPEC + "RunFacet"


def _plain(d: dict) -> dict:
    """JSON-safe and without empty values."""
    return json.loads(json.dumps({k: v for k, v in d.items() if v not in (None, [], {})}, default=str))


def _facets(ref: Ref) -> dict:
    from airflow.providers.common.compat.openlineage.facet import (
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet

    facets = {}
    if ref.schema:
        facets["schema"] = SchemaDatasetFacet(
            fields=[SchemaDatasetFacetFields(name=c, type=str(t)) for c, t in ref.schema.items()])
    if ref.version:
        facets["version"] = DatasetVersionDatasetFacet(datasetVersion=str(ref.version))
    if ref.properties and _plain(ref.properties):
        facets["llmops"] = LLMOpsDatasetFacet(properties=_plain(ref.properties))
    return facets


def input_dataset(ref: Ref):
    from airflow.providers.common.compat.openlineage.facet import InputDataset
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )
    from openlineage.client.generated.data_quality_metrics_input_dataset import DataQualityMetricsInputDatasetFacet

    input_facets = {}
    if ref.assertions is not None:
        input_facets["dataQualityAssertions"] = DataQualityAssertionsDatasetFacet(
            assertions=[Assertion(assertion=a["assertion"], success=bool(a["success"]), column=a.get("column"))
                        for a in ref.assertions])
        input_facets["dataQualityMetrics"] = DataQualityMetricsInputDatasetFacet(columnMetrics={}, rowCount=ref.rows)
    return InputDataset(namespace=ref.namespace, name=ref.name, facets=_facets(ref), inputFacets=input_facets)


def output_dataset(ref: Ref):
    from airflow.providers.common.compat.openlineage.facet import OutputDataset, OutputStatisticsOutputDatasetFacet

    output_facets = {}
    if ref.rows is not None:
        output_facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=int(ref.rows))
    return OutputDataset(namespace=ref.namespace, name=ref.name, facets=_facets(ref), outputFacets=output_facets)


def operator_lineage(step: StepLineage):
    from airflow.providers.common.compat.openlineage.facet import SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    run = _plain(step.run)
    return OperatorLineage(
        inputs=[input_dataset(r) for r in step.inputs],
        outputs=[output_dataset(r) for r in step.outputs],
        run_facets={"llmops": LLMOpsRunFacet(properties=run)} if run else {},
        job_facets={"sql": SQLJobFacet(query=step.sql)} if step.sql else {},
    )
