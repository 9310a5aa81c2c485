"""Validate ingested rows with a great-expectations 1.x suite stored as JSON in include/expectations/.

The suite runs on the in-memory frame inside our own task (never at DAG parse time). A failure raises
:class:`ValidationFailed` whose message lists each failed expectation with its count and example rows, named by
source file and line.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from llmops.errors import ConfigError, ValidationFailed

log = logging.getLogger(__name__)
EXAMPLES = 3


def load_suite(path: Path):
    import great_expectations as gx

    try:
        return gx.ExpectationSuite(**json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(f"{path}: not a valid great-expectations suite: {e}") from None


def _where(df: pd.DataFrame, index) -> str:
    try:
        row = df.loc[index]
    except KeyError:
        return f"row {index}"
    if "source_file" in df.columns:
        return f"{row['source_file']}:{row['source_line']}"
    return f"row {index}"


def _summarize(df: pd.DataFrame, result) -> dict:
    failed, warnings = [], []
    for r in result.results:
        res = r.result or {}
        if r.success and not res.get("unexpected_count"):
            continue
        cfg = r.expectation_config
        kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
        indexes = (res.get("unexpected_index_list") or [])[:EXAMPLES]
        values = (res.get("unexpected_list") or [])[:EXAMPLES]
        # passed with unexpected rows: allowed by the expectation's `mostly`, recorded as a warning
        (warnings if r.success else failed).append({
            "expectation": cfg.type,
            "kwargs": kwargs,
            "unexpected_count": res.get("unexpected_count"),
            "observed_value": res.get("observed_value"),
            "examples": [
                {"where": _where(df, i), "value": None if pd.isna(v) else str(v)[:120]}
                for i, v in zip(indexes, values, strict=False)
            ],
        })
    stats = result.statistics
    return {
        "success": bool(result.success),
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "failed": failed,
        "warnings": warnings,
    }


def format_failure(suite_name: str, summary: dict) -> str:
    lines = [f"great-expectations suite '{suite_name}' failed {len(summary['failed'])} of {summary['evaluated']} "
             "expectations:"]
    for f in summary["failed"]:
        what = f"{f['expectation']}({', '.join(f'{k}={v!r}' for k, v in f['kwargs'].items())})"
        if f["unexpected_count"] is not None:
            what += f": {f['unexpected_count']} unexpected row(s)"
        elif f["observed_value"] is not None:
            what += f": observed {f['observed_value']!r}"
        lines.append(f"  - {what}")
        lines.extend(f"      {e['where']}: {e['value']!r}" for e in f["examples"])
    return "\n".join(lines)


def validate(df: pd.DataFrame, suite_path: str | Path, report_dir: Path | None = None) -> dict:
    """Run the suite on the frame; return a JSON-able summary or raise :class:`ValidationFailed`.

    With ``report_dir``, an HTML report (``index.html``) and the summary (``validation.json``) are written there
    first, pass or fail, and the summary's ``report`` names it."""
    import great_expectations as gx

    suite = load_suite(Path(suite_path))
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("llmops")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
        .get_batch(batch_parameters={"dataframe": df.reset_index(drop=True)})
    )
    result = batch.validate(suite, result_format={"result_format": "COMPLETE", "partial_unexpected_count": EXAMPLES})
    summary = {"suite": suite.name, "suite_path": str(suite_path), "rows": int(len(df)),
               **_summarize(df.reset_index(drop=True), result)}
    if report_dir is not None:
        from llmops.data.report import write_report

        summary["report"] = write_report(summary, Path(report_dir)).as_uri()
    if not summary["success"]:
        message = format_failure(suite.name, summary)
        if summary.get("report"):
            message += f"\nreport: {summary['report']}"
        raise ValidationFailed(message, summary)
    for w in summary["warnings"]:
        log.warning("expectation %s passed within its `mostly` but has %s unexpected row(s), e.g. %s",
                    w["expectation"], w["unexpected_count"], [e["where"] for e in w["examples"]])
    log.info("great-expectations suite '%s': %d/%d expectations passed", suite.name,
             summary["successful"], summary["evaluated"])
    return summary
