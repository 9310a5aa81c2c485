"""The validate step: the use case's great-expectations suite over the staged rows, with its HTML report."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import Staged, Validation

log = logging.getLogger(__name__)


def validate(cfg: UseCaseConfig, staged: Staged, *, run_id: str) -> Validation:
    """Validate the staged file batch by batch; a failed suite raises
    :class:`~llmops.errors.ValidationFailed` naming each failed expectation and the offending rows."""
    from llmops import paths
    from llmops.data.validate import validate_file

    report_dir = paths.run_dir(cfg.name, run_id) / "validation"
    summary = validate_file(staged.uri, paths.resolve(cfg.expectation_suite), report_dir=report_dir)
    log.info("validation report: %s", summary["report"])
    return Validation.from_xcom(summary)
