"""ingest -> validate -> snapshot: the dataset DAG's operators. Rows travel by reference (a staged Parquet file)
and stream through each task in batches (``LLMOPS_BATCH_ROWS``, default 100,000), so memory stays flat.

A partitioned run (``dag_run.partition_key``, or ``{"partition_key": ...}`` in its conf) ingests only the rows
of its interval; a run without a key reads the whole source. A partition with no rows skips the rest of the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from llmops.operators.common import dataset_asset, fail_without_retry, load_config
from llmops.operators.lineage import ReportsLineage
from llmops.operators.links import SnapshotManifestLink, ValidationReportLink

log = logging.getLogger(__name__)


def run_partition(context) -> str | None:
    dag_run = context.get("dag_run")
    key = getattr(dag_run, "partition_key", None)
    if not key:
        key = ((getattr(dag_run, "conf", None) or {}).get("partition_key")) or None
    return key


class IngestOperator(ReportsLineage, BaseOperator):
    """Read the run's partition of the source, prepare it (normalize, limit, de-duplicate), stage it as Parquet."""

    template_fields: Sequence[str] = ("use_case",)
    ui_color = "#e8f4fd"

    def __init__(self, *, use_case: str, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case

    def execute(self, context):
        from llmops import paths
        from llmops.data.partitions import interval_dict, partition_interval
        from llmops.data.stage import stage

        cfg = load_config(self.use_case)
        key = run_partition(context)
        run_dir = paths.run_dir(self.use_case, context["run_id"])
        with fail_without_retry():
            interval = partition_interval(cfg.schedule or "@weekly", key) if key else None
            log.info("partition %s: interval %s", key or "(none: the whole source)", interval_dict(interval))
            staged = run_dir / "ingested.parquet"
            result = stage(cfg.source, cfg.prepare, staged, interval=interval, work_dir=run_dir / "download")
        if not result["rows"]:
            raise AirflowSkipException(f"no rows for partition {key} {interval_dict(interval)}: nothing to snapshot")
        log.info("staged %d rows at %s; steps %s", result["rows"], staged, result["steps"])
        return {"uri": str(staged), "rows": result["rows"], "source": result["source"], "steps": result["steps"],
                "partition_key": key, "interval": interval_dict(interval)}

    def lineage_of(self, result):
        from llmops.lineage import steps

        return steps.ingest(result)


class ValidateOperator(ReportsLineage, BaseOperator):
    """Run the use case's great-expectations suite on the staged rows; fail without retry, naming rows."""

    template_fields: Sequence[str] = ("use_case", "ingested")
    ui_color = "#fdf1e8"
    operator_extra_links = (ValidationReportLink(),)

    def __init__(self, *, use_case: str, ingested, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.ingested = ingested

    def execute(self, context):
        from llmops import paths
        from llmops.data.validate import validate_file

        cfg = load_config(self.use_case)
        report_dir = paths.run_dir(self.use_case, context["run_id"]) / "validation"
        with fail_without_retry():
            summary = validate_file(self.ingested["uri"], paths.resolve(cfg.expectation_suite), report_dir=report_dir)
        log.info("validation report: %s", summary["report"])
        return summary

    def lineage_of(self, result):
        from llmops.lineage import steps

        return steps.validate(result, self.ingested)

    def inputs_at_start(self):  # the assertions come with the COMPLETE event
        from llmops.lineage import naming, steps

        return [steps.Ref.of(naming.from_uri(self.ingested["uri"]))]


class SnapshotOperator(ReportsLineage, BaseOperator):
    """Write the validated rows as a content-addressed snapshot and emit the dataset Asset event."""

    template_fields: Sequence[str] = ("use_case", "ingested", "validation")
    ui_color = "#e8fdf0"
    operator_extra_links = (SnapshotManifestLink(),)

    def __init__(self, *, use_case: str, ingested, validation, **kwargs):
        kwargs.setdefault("outlets", [dataset_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.ingested = ingested
        self.validation = validation

    def execute(self, context):
        from pathlib import Path
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        from llmops.data.snapshots.handle import Snapshots
        from llmops.runs import record_step

        cfg = load_config(self.use_case)
        interval = self.ingested.get("interval")
        report = self.validation.get("report")
        manifest = Snapshots.of(cfg).write_file(
            self.ingested["uri"], source=self.ingested["source"],
            validation={k: v for k, v in self.validation.items() if k != "report"}, interval=interval,
            steps=self.ingested.get("steps"), partition_key=self.ingested.get("partition_key"),
            report_dir=Path(url2pathname(urlparse(report).path)).parent if report else None,
        )
        extra = {"snapshot_id": manifest["snapshot_id"], "uri": manifest["uri"], "rows": manifest["rows"],
                 "interval": interval, "partition_key": self.ingested.get("partition_key")}
        context["outlet_events"][dataset_asset(self.use_case)].extra = extra
        record_step(self.use_case, context["run_id"], "snapshot", extra)
        log.info("snapshot %s: %s", manifest["snapshot_id"], manifest["rows"])
        return extra

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.snapshot(
            result, self.ingested, lineage.snapshot_manifest(self.use_case, result["snapshot_id"]))

    def inputs_at_start(self):
        from llmops.lineage import naming, steps

        return [steps.Ref.of(naming.from_uri(self.ingested["uri"]))]
