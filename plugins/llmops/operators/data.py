"""ingest -> validate -> snapshot: the dataset DAG's operators. Rows travel by reference (a staged Parquet file)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import dataset_asset, fail_without_retry, load_config

log = logging.getLogger(__name__)


class IngestOperator(BaseOperator):
    """Read the use case's source into prompt/response rows, stage them as Parquet, push the staged file's URI."""

    template_fields: Sequence[str] = ("use_case",)
    ui_color = "#e8f4fd"

    def __init__(self, *, use_case: str, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case

    def execute(self, context):
        from llmops import paths
        from llmops.data.ingest import ingest

        cfg = load_config(self.use_case)
        with fail_without_retry():
            df = ingest(cfg.source)
        staged = paths.run_dir(self.use_case, context["run_id"]) / "ingested.parquet"
        staged.parent.mkdir(parents=True, exist_ok=True)
        tmp = staged.with_name(f".{staged.name}.tmp")
        df.to_parquet(tmp, index=False)
        os.replace(tmp, staged)
        files = sorted(df["source_file"].unique().tolist())
        log.info("staged %d rows from %d file(s) at %s", len(df), len(files), staged)
        return {"uri": str(staged), "rows": len(df), "files": files}


class ValidateOperator(BaseOperator):
    """Run the use case's great-expectations suite on the staged rows; fail without retry, naming rows."""

    template_fields: Sequence[str] = ("use_case", "ingested")
    ui_color = "#fdf1e8"

    def __init__(self, *, use_case: str, ingested, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.ingested = ingested

    def execute(self, context):
        import pandas as pd

        from llmops import paths
        from llmops.data.validate import validate

        cfg = load_config(self.use_case)
        df = pd.read_parquet(self.ingested["uri"])
        with fail_without_retry():
            return validate(df, paths.resolve(cfg.expectation_suite))


class SnapshotOperator(BaseOperator):
    """Write the validated rows as a content-addressed snapshot and emit the dataset Asset event."""

    template_fields: Sequence[str] = ("use_case", "ingested", "validation")
    ui_color = "#e8fdf0"

    def __init__(self, *, use_case: str, ingested, validation, **kwargs):
        kwargs.setdefault("outlets", [dataset_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.ingested = ingested
        self.validation = validation

    def execute(self, context):
        import pandas as pd

        from llmops.data.snapshot import write_snapshot
        from llmops.runs import record_step

        cfg = load_config(self.use_case)
        df = pd.read_parquet(self.ingested["uri"])
        interval = None
        if context.get("data_interval_start") and context.get("data_interval_end"):
            interval = {"start": str(context["data_interval_start"]), "end": str(context["data_interval_end"])}
        source = {"kind": cfg.source.kind, "path": cfg.source.path, "files": self.ingested["files"]}
        manifest = write_snapshot(df, use_case=self.use_case, split=cfg.split, source=source,
                                  validation=self.validation, interval=interval)
        extra = {"snapshot_id": manifest["snapshot_id"], "uri": manifest["uri"], "rows": manifest["rows"],
                 "interval": interval}
        context["outlet_events"][dataset_asset(self.use_case)].extra = extra
        record_step(self.use_case, context["run_id"], "snapshot", extra)
        log.info("snapshot %s: %s", manifest["snapshot_id"], manifest["rows"])
        return extra
