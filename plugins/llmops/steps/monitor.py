"""The monitoring step: one day's serving figures from the prediction log, against the training snapshot."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import ServingFigures

log = logging.getLogger(__name__)


def champion_snapshot(cfg: UseCaseConfig) -> str | None:
    """The snapshot the current champion was trained on (its ``snapshot_id`` tag); None without a champion."""
    from llmops import registry

    version = registry.alias_version(cfg.model_name, "champion")
    if version is None:
        return None
    return registry.client().get_model_version(cfg.model_name, version).tags.get("snapshot_id")


def monitor(cfg: UseCaseConfig, day: str) -> ServingFigures:
    """Latency, block and recitation rates and input drift of ``day``'s requests (drift against the champion's
    training snapshot, else the newest), the thresholds of ``serving.monitoring`` they cross, and the report in
    ``<LLMOPS_HOME>/monitoring/<use_case>/<day>/``. The caller decides what a crossed threshold does."""
    from llmops import paths
    from llmops.data.snapshots.handle import Snapshots
    from llmops.monitoring.checks import breaches, daily_figures
    from llmops.monitoring.report import write_report
    from llmops.serving_logs import read_day

    requests = read_day(cfg.name, day)
    snapshots = Snapshots.of(cfg)
    train = snapshots.load_split(champion_snapshot(cfg) or snapshots.latest_id(), "train")
    figures = daily_figures(requests, train["prompt"])
    crossed = breaches(figures, cfg.serving.monitoring)
    report = write_report(paths.llmops_home() / "monitoring" / cfg.name / day, day, figures, crossed, requests,
                          train["prompt"])
    log.info("serving figures for %s: %s; report: %s", day, figures, report)
    return ServingFigures(figures=figures, report=str(report), breaches=crossed)
