"""Validate ingested rows with a great-expectations 1.x suite stored as JSON in include/expectations/.

The suite runs inside our own task (never at DAG parse time), batch by batch over a partition. A failure raises
:class:`ValidationFailed` whose message lists each failed expectation with its count and example rows, named by
source file and line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
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


ROW_COUNT = {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
UNIQUE = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}


def _where(df: pd.DataFrame, index) -> str:
    try:
        row = df.loc[index]
    except KeyError:
        return f"row {index}"
    if "source_file" in df.columns:
        return f"{row['source_file']}:{row['source_line']}"
    return f"row {index}"


def _value(v) -> str | None:
    return None if v is None or (not isinstance(v, (list, dict, tuple)) and pd.isna(v)) else str(v)[:120]


def _kind(expectation_type: str) -> str:
    """row_count: checked once on the partition's total; map (and unique): counts summed over the batches;
    batch: any other expectation (aggregates such as a column mean) is checked on each batch."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    if expectation_type in ROW_COUNT:
        return "row_count"
    if expectation_type in UNIQUE:
        return "unique"
    cls = get_expectation_impl(expectation_type)
    if issubclass(cls, (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)):
        return "map"
    return "batch"


class _Tally:
    """One expectation's result over all batches so far."""

    def __init__(self, config, kind: str):
        self.config, self.kind = config, kind
        self.kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
        self.element = self.missing = self.unexpected = 0
        self.examples: list[dict] = []
        self.observed = None
        self.check_failed = False
        if kind == "unique":
            from llmops.data.batches import SeenHashes

            self.columns = self.kwargs.get("column_list") or [self.kwargs["column"]]
            self.seen, self.counted = SeenHashes(), SeenHashes()

    def example(self, df: pd.DataFrame, index, value) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append({"where": _where(df, index), "value": _value(value)})

    def add(self, df: pd.DataFrame, res: dict, success: bool) -> None:
        if self.kind == "batch":
            if not success and not self.check_failed:
                self.check_failed, self.observed = True, res.get("observed_value")
            return
        self.element += int(res.get("element_count") or 0)
        self.missing += int(res.get("missing_count") or 0)
        self.unexpected += int(res.get("unexpected_count") or 0)
        for i, v in zip(res.get("partial_unexpected_index_list") or [], res.get("partial_unexpected_list") or [],
                        strict=False):
            self.example(df, i, v)
        if self.kind == "unique":
            self._across_batches(df)

    def _across_batches(self, df: pd.DataFrame) -> None:
        """Duplicates whose other occurrence lies in an earlier batch, counted as a whole-table run would count
        them: every row of a duplicated value, each once."""
        from llmops.data.batches import row_hash

        present = df[self.columns].notna().all(axis=1).to_numpy()
        h = row_hash(df[present], self.columns)
        rows = df.index[present]
        within = pd.Series(h).duplicated(keep=False).to_numpy()
        earlier = self.seen.contains(h)
        self.unexpected += int((earlier & ~within).sum())  # this batch's rows the batch run did not count
        # the earlier occurrence, once per value, unless an earlier batch already counted it
        first_time = np.unique(h[earlier])
        self.unexpected += int((~self.counted.contains(first_time)).sum())
        for i in np.flatnonzero(earlier)[:EXAMPLES]:
            self.example(df, rows[i], " | ".join(str(df.at[rows[i], c]) for c in self.columns))
        self.counted.add(h[earlier | within])
        self.seen.add(h)

    def entry(self, batch_rows: int) -> tuple[bool, dict]:
        detail = {"checked": f"on each batch of up to {batch_rows} rows"} if self.kind == "batch" else {}
        if self.kind in ("batch", "row_count"):
            success = not self.check_failed
        else:
            denom = self.element - self.missing
            mostly = float(self.kwargs.get("mostly", 1.0))
            success = denom == 0 or (denom - self.unexpected) / denom >= mostly
        return success, {
            "expectation": self.config.type,
            "kwargs": self.kwargs,
            "unexpected_count": None if self.kind in ("batch", "row_count") else self.unexpected,
            "observed_value": self.observed,
            "examples": self.examples,
            **detail,
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


def _key(config) -> str:
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    return json.dumps([config.type, kwargs], sort_keys=True, default=str)


def _matched(tallies: list[_Tally], results) -> list[tuple[_Tally, object]]:
    """Pair each tally with its result (great-expectations may return results in another order)."""
    by_key: dict[str, list] = {}
    for r in results:
        by_key.setdefault(_key(r.expectation_config), []).append(r)
    return [(t, by_key[_key(t.config)].pop(0)) for t in tallies]


def _context():
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return context.data_sources.add_pandas("llmops").add_dataframe_asset("rows").add_batch_definition_whole_dataframe(
        "all")


def validate_batches(batches: Iterable[pd.DataFrame], suite_path: str | Path, report_dir: Path | None = None) -> dict:
    """Run the suite over a partition given batch by batch; return a JSON-able summary or raise
    :class:`ValidationFailed`.

    Column-map expectations (nulls, lengths, regexes, sets...) run on each batch with great-expectations and
    their counts are summed, so ``mostly`` applies to the whole partition. Row-count expectations run once on
    the total; uniqueness also counts duplicates across batches. Any other expectation (an aggregate such as
    a column mean) is checked on each batch, which the summary says. With ``report_dir``, an HTML report
    (``index.html``) and the summary (``validation.json``) are written there first, pass or fail."""
    import great_expectations as gx

    from llmops.data.batches import batch_rows

    suite = load_suite(Path(suite_path))
    tallies = [_Tally(e.configuration, _kind(e.expectation_type)) for e in suite.expectations]
    per_batch = gx.ExpectationSuite(name=suite.name, expectations=[
        e for e, t in zip(suite.expectations, tallies, strict=True) if t.kind != "row_count"])
    batching = [t for t in tallies if t.kind != "row_count"]
    definition = _context()
    rows = n = 0
    for df in batches:
        df = df.reset_index(drop=True)
        n += 1
        rows += len(df)
        if per_batch.expectations and len(df):
            result = definition.get_batch(batch_parameters={"dataframe": df}).validate(
                per_batch, result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES})
            for tally, r in _matched(batching, result.results):
                tally.add(df, r.result or {}, bool(r.success))
        log.info("validated batch %d: %d rows (%d so far)", n, len(df), rows)
    counting = [t for t in tallies if t.kind == "row_count"]
    if counting:
        totals = gx.ExpectationSuite(name=suite.name, expectations=[
            e for e, t in zip(suite.expectations, tallies, strict=True) if t.kind == "row_count"])
        result = definition.get_batch(batch_parameters={"dataframe": pd.DataFrame(index=pd.RangeIndex(rows))}
                                      ).validate(totals)
        for tally, r in _matched(counting, result.results):
            tally.observed, tally.check_failed = (r.result or {}).get("observed_value"), not r.success
    failed, warnings = [], []
    for t in tallies:
        success, entry = t.entry(batch_rows())
        if not success:
            failed.append(entry)
        elif entry["unexpected_count"]:  # passed within its `mostly`: recorded as a warning
            warnings.append(entry)
    summary = {"suite": suite.name, "suite_path": str(suite_path), "rows": rows, "batches": n,
               "success": not failed, "evaluated": len(tallies), "successful": len(tallies) - len(failed),
               "failed": failed, "warnings": warnings}
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
    log.info("great-expectations suite '%s': %d/%d expectations passed over %d rows in %d batch(es)", suite.name,
             summary["successful"], summary["evaluated"], rows, n)
    return summary


def validate(df: pd.DataFrame, suite_path: str | Path, report_dir: Path | None = None) -> dict:
    """:func:`validate_batches` on one in-memory frame."""
    return validate_batches([df], suite_path, report_dir)


def validate_file(path: Path | str, suite_path: str | Path, report_dir: Path | None = None) -> dict:
    """:func:`validate_batches` on a staged Parquet file, read batch by batch."""
    from llmops.data.batches import iter_parquet

    return validate_batches(iter_parquet(path), suite_path, report_dir)
