"""Operators that put the champion to work: batch predictions, and the daily monitoring check."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from llmops.operators.common import fail_without_retry, load_config
from llmops.operators.lineage import ReportsLineage

log = logging.getLogger(__name__)


@contextlib.contextmanager
def champion_model(cfg, purpose: str):
    """The registered `champion` loaded for this task (skips the task when there is none yet)."""
    from llmops import registry
    from llmops.serving.model_store import load_version

    version = registry.alias_version(cfg.model_name, "champion")
    if version is None:
        raise AirflowSkipException(f"{cfg.model_name} has no champion yet; nothing to {purpose}")
    with tempfile.TemporaryDirectory() as cache, fail_without_retry():
        yield load_version(cfg, "champion", version, Path(cache)), version


class BatchPredictOperator(ReportsLineage, BaseOperator):
    """Run the current `champion` over ``serving.batch_input``; a versioned, idempotent output."""

    template_fields: Sequence[str] = ("use_case",)

    def __init__(self, *, use_case: str, max_rows: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.max_rows = max_rows

    def execute(self, context):
        from llmops.serving.batch import predict_batch

        cfg = load_config(self.use_case)
        with champion_model(cfg, "predict with") as (model, version):
            return predict_batch(cfg, model, version, max_rows=self.max_rows)

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.batch_predict(result, lineage.registry_uri())


class MonitorServingOperator(BaseOperator):
    """Compute the day's serving figures from the prediction log, write the report, fail on a crossed threshold."""

    template_fields: Sequence[str] = ("use_case", "day")

    def __init__(self, *, use_case: str, day: str = "{{ ds }}", **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.day = day

    def execute(self, context):
        from llmops import paths, registry
        from llmops.data.snapshots.handle import Snapshots
        from llmops.monitoring.checks import breaches, daily_figures
        from llmops.monitoring.report import write_report
        from llmops.serving.prediction_log import read_day

        cfg = load_config(self.use_case)
        requests = read_day(self.use_case, self.day)
        snapshot_id = None
        version = registry.alias_version(cfg.model_name, "champion")
        if version is not None:
            snapshot_id = registry.client().get_model_version(cfg.model_name, version).tags.get("snapshot_id")
        with fail_without_retry():
            snapshots = Snapshots.of(cfg)
            train = snapshots.load_split(snapshot_id or snapshots.latest_id(), "train")
        figures = daily_figures(requests, train["prompt"])
        crossed = breaches(figures, cfg.serving.monitoring)
        report = write_report(paths.llmops_home() / "monitoring" / self.use_case / self.day, self.day, figures,
                              crossed, requests, train["prompt"])
        log.info("serving figures for %s: %s; report: %s", self.day, figures, report)
        if crossed:
            raise AirflowFailException("monitoring threshold crossed: " + "; ".join(crossed) + f" (report: {report})")
        return {"figures": figures, "report": str(report)}


class ComparePromptsOperator(BaseOperator):
    """Evaluate the champion with several prompt templates on the newest snapshot's eval split."""

    template_fields: Sequence[str] = ("use_case", "templates")

    def __init__(self, *, use_case: str, templates, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.templates = templates

    def execute(self, context):
        from llmops import names, paths
        from llmops.data.snapshots.handle import Snapshots
        from llmops.evaluate.prompt_compare import compare_templates, to_markdown

        cfg = load_config(self.use_case)
        requested = list(self.templates) if isinstance(self.templates, list | tuple) else [self.templates]
        prompts_dir = paths.PROJECT_ROOT / "include" / "prompts"
        with fail_without_retry():  # before any file is read
            templates = [str(names.prompt_template(t, prompts_dir, f"params.templates[{i}]")
                             .relative_to(paths.PROJECT_ROOT)) for i, t in enumerate(requested)]
        with champion_model(cfg, "compare prompts for") as (model, version):
            snapshots = Snapshots.of(cfg)
            rows = snapshots.load_split(snapshots.latest_id(), "eval").head(
                cfg.evaluation.max_eval_rows)
            table = compare_templates(model.model, model.tokenizer, templates, rows,
                                      max_len=cfg.training.max_seq_len, max_new_tokens=cfg.evaluation.max_new_tokens,
                                      batch_size=cfg.evaluation.batch_size,
                                      generation_samples=cfg.evaluation.generation_samples)
        out = paths.run_dir(self.use_case, context["run_id"]) / "prompt_comparison.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_markdown(table, cfg.model_name, version))
        log.info("prompt comparison:\n%s\nreport: %s", table.to_string(index=False), out)
        return table.to_dict(orient="records")
