"""The bundled great-expectations suite: passes good rows, names failed expectations and offending rows."""

from __future__ import annotations

import json

import pytest

from llmops import paths
from llmops.config import SourceConfig
from llmops.data.ingest import ingest
from llmops.data.validate import validate
from llmops.errors import ConfigError, DataError, ValidationFailed

SUITE = paths.PROJECT_ROOT / "include" / "expectations" / "qa_pairs.json"


def failures(exc: ValidationFailed) -> dict[tuple[str, str], dict]:
    return {(f["expectation"], f["kwargs"].get("column")): f for f in exc.summary["failed"]}


def test_bundled_suite_passes_good_rows(good_rows):
    summary = validate(good_rows, SUITE)
    assert summary["success"] is True
    assert summary["suite"] == "qa_pairs"
    assert summary["suite_path"] == str(SUITE)
    assert summary["evaluated"] == summary["successful"] == 8
    assert summary["failed"] == []
    json.dumps(summary)  # goes into the manifest as is


def test_bad_rows_fail_and_are_named_by_file_and_line(good_rows):
    df = good_rows.copy()
    df.loc[4, "prompt"] = None                     # /data/qa.jsonl:5
    df.loc[7, "prompt"] = "too short"              # /data/qa.jsonl:8 (9 chars < 10)
    df.loc[20, "prompt"] = df.loc[30, "prompt"]    # /data/qa.jsonl:21 and :31
    with pytest.raises(ValidationFailed) as exc:
        validate(df, SUITE)
    assert isinstance(exc.value, DataError)
    msg = str(exc.value)
    assert msg.startswith("great-expectations suite 'qa_pairs' failed 3 of 8 expectations:")
    for expectation in ("expect_column_values_to_not_be_null", "expect_column_value_lengths_to_be_between",
                        "expect_column_values_to_be_unique"):
        assert expectation in msg
    for where in ("/data/qa.jsonl:5", "/data/qa.jsonl:8", "/data/qa.jsonl:21", "/data/qa.jsonl:31"):
        assert where in msg

    summary = exc.value.summary
    assert summary["success"] is False and summary["successful"] == 5
    failed = failures(exc.value)
    assert set(failed) == {("expect_column_values_to_not_be_null", "prompt"),
                           ("expect_column_value_lengths_to_be_between", "prompt"),
                           ("expect_column_values_to_be_unique", "prompt")}
    assert failed["expect_column_values_to_not_be_null", "prompt"]["unexpected_count"] == 1
    assert failed["expect_column_value_lengths_to_be_between", "prompt"]["unexpected_count"] == 1
    assert failed["expect_column_values_to_be_unique", "prompt"]["unexpected_count"] == 2
    assert failed["expect_column_value_lengths_to_be_between", "prompt"]["examples"] == [
        {"where": "/data/qa.jsonl:8", "value": "too short"}
    ]
    assert failed["expect_column_values_to_not_be_null", "prompt"]["examples"] == [
        {"where": "/data/qa.jsonl:5", "value": None}
    ]


def test_too_few_rows_reports_the_observed_count(rows):
    with pytest.raises(ValidationFailed) as exc:
        validate(rows(10), SUITE)
    failed = failures(exc.value)
    assert list(failed) == [("expect_table_row_count_to_be_between", None)]
    assert failed["expect_table_row_count_to_be_between", None]["observed_value"] == 10
    assert "expect_table_row_count_to_be_between(min_value=50): observed 10" in str(exc.value)


def test_control_characters_in_response_fail(good_rows):
    df = good_rows.copy()
    df.loc[2, "response"] = "bell\x07 inside"
    with pytest.raises(ValidationFailed) as exc:
        validate(df, SUITE)
    failed = failures(exc.value)
    assert list(failed) == [("expect_column_values_to_not_match_regex", "response")]
    assert failed["expect_column_values_to_not_match_regex", "response"]["examples"][0]["where"] == "/data/qa.jsonl:3"


def test_null_prompt_from_a_real_file_is_named_by_the_suite(tmp_path, rows, write_jsonl):
    records = rows(59)[["prompt", "response"]].to_dict("records") + [{"prompt": None, "response": "Fine answer."}]
    path = write_jsonl("qa.jsonl", records)
    df = ingest(SourceConfig(path=str(path)))
    with pytest.raises(ValidationFailed) as exc:
        validate(df, SUITE)
    assert list(failures(exc.value)) == [("expect_column_values_to_not_be_null", "prompt")]
    assert f"{path}:60" in str(exc.value)


def test_malformed_suite_names_the_file(tmp_path, good_rows):
    path = tmp_path / "suite.json"
    path.write_text('{"name": "broken", "expectations": [')
    with pytest.raises(ConfigError) as exc:
        validate(good_rows, path)
    assert str(exc.value).startswith(f"{path}: not a valid great-expectations suite")


def test_missing_suite_names_the_file(tmp_path, good_rows):
    path = tmp_path / "absent.json"
    with pytest.raises(ConfigError, match=rf"{path}: not a valid great-expectations suite"):
        validate(good_rows, path)


def test_mostly_passes_with_a_recorded_warning_and_a_report(tmp_path, good_rows):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "mostly", "expectations": [
        {"type": "expect_column_value_lengths_to_be_between",
         "kwargs": {"column": "response", "min_value": 28, "mostly": 0.5}}]}))
    summary = validate(good_rows, suite, report_dir=tmp_path / "report")
    assert summary["success"] is True and summary["failed"] == []
    [warning] = summary["warnings"]
    assert warning["unexpected_count"] > 0 and warning["examples"][0]["where"].startswith("/data/qa.jsonl:")
    html = (tmp_path / "report" / "index.html").read_text()
    assert "Validation PASSED" in html and "warning" in html
    assert summary["report"].endswith("/report/index.html")


def test_failure_message_links_the_html_report(tmp_path, good_rows):
    bad = good_rows.copy()
    bad.loc[3, "prompt"] = None
    with pytest.raises(ValidationFailed) as exc:
        validate(bad, SUITE, report_dir=tmp_path / "report")
    assert "report: file://" in str(exc.value)
    assert "/data/qa.jsonl:4" in (tmp_path / "report" / "index.html").read_text()
