"""Preparation: HTML and whitespace normalization, length limits, exact de-duplication, leakage, partitions."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from llmops.config import PrepareConfig, SourceConfig, SplitConfig
from llmops.data.ingest import ingest, read_source
from llmops.data.partitions import partition_interval
from llmops.data.prepare import prepare
from llmops.data.snapshots.writer import split_of
from llmops.errors import ConfigError, DataError
from tests.data.conftest import local_snapshots


def frame(prompts, responses) -> pd.DataFrame:
    return pd.DataFrame({"prompt": prompts, "response": responses})


def test_html_bodies_become_plain_text_and_whitespace_collapses():
    df = frame(["<p>How do I   use <code>dict.get</code>&amp;co?</p>\n\n\n<p>Thanks</p>"],
               ["<pre><code>d.get(k,   0)</code></pre><br/>Done &lt;ok&gt;"])
    out, steps = prepare(df, PrepareConfig(strip_html=True))
    assert out["prompt"].iloc[0] == "How do I use dict.get&co?\nThanks"
    assert out["response"].iloc[0] == "d.get(k, 0)\nDone <ok>"
    assert steps[0]["step"] == "normalize" and steps[0]["strip_html"] is True


def test_length_limits_and_exact_duplicates_are_dropped_and_counted():
    df = frame(["short?", "a fine question", "a fine question", "a fine question", "x" * 500],
               ["ok answer", "the answer", "the answer", "another answer", "ok answer"])
    out, steps = prepare(df, PrepareConfig(min_prompt_chars=8, max_prompt_chars=100))
    assert out["response"].tolist() == ["the answer", "another answer"]
    counts = {s["step"]: (s["rows_in"], s["rows_out"]) for s in steps}
    assert counts["length_limits"] == (5, 3) and counts["deduplicate"] == (3, 2)


def test_nulls_are_kept_for_the_expectation_suite():
    out, _ = prepare(frame([None, "a question"], ["an answer", None]), PrepareConfig())
    assert len(out) == 2 and out["prompt"].isna().sum() == 1


def test_key_column_split_with_shared_prompt_records_leakage_in_the_manifest():
    split = SplitConfig(eval_fraction=0.5)
    keys = [str(i) for i in range(50)]
    k_train = next(k for k in keys if split_of(k, split) == "train")
    k_eval = next(k for k in keys if split_of(k, split) == "eval")
    others = [k for k in keys if k not in (k_train, k_eval)]
    df = pd.DataFrame({"prompt": ["same question?"] * 2 + [f"question {k}?" for k in others],
                       "response": ["answer A", "answer B"] + [f"answer {k}" for k in others],
                       "key": [k_train, k_eval, *others]})
    m = local_snapshots("leaky", split).write_frame(df, source={}, validation={"success": True})
    leak = [s for s in m["steps"] if s["step"] == "leakage_check"][0]
    assert leak["eval_prompts_in_train"] == 1
    assert local_snapshots("leaky").manifest(m["snapshot_id"])["rows"]["eval"] == leak["rows_out"]


def test_partition_interval_follows_the_cron():
    assert partition_interval("0 0 * * 1", "2026-01-05T00:00:00") == (
        datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))
    assert partition_interval("@daily", "2026-01-05T00:00:00")[1] == datetime(2026, 1, 6, tzinfo=UTC)
    with pytest.raises(ConfigError, match="not a date"):
        partition_interval("@daily", "week-1")


QA = [{"question": f"How do I do thing {i}?", "answer": f"Like this {i}.",
       "created_at": f"2026-01-{5 + i:02d}T01:00:00Z"} for i in range(10)]


def test_gzip_jsonl_and_csv_are_read(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in QA[:5]).encode()))
    pd.DataFrame(QA[5:]).to_csv(tmp_path / "b.csv.gz", index=False, compression="gzip")
    df = ingest(SourceConfig(path=str(tmp_path / "*.gz"), prompt_column="question", response_column="answer"))
    assert sorted(df["prompt"]) == sorted(r["question"] for r in QA)
    assert df.loc[df["source_file"].str.endswith("b.csv.gz"), "source_line"].tolist() == [2, 3, 4, 5, 6]


def test_interval_keeps_only_its_rows_and_an_empty_interval_is_empty(write_jsonl):
    path = write_jsonl("a.jsonl", QA)
    src = SourceConfig(path=str(path), prompt_column="question", response_column="answer",
                       timestamp_column="created_at")
    df, lineage = read_source(src, (datetime(2026, 1, 7, tzinfo=UTC), datetime(2026, 1, 9, tzinfo=UTC)))
    assert df["prompt"].tolist() == [QA[2]["question"], QA[3]["question"]]
    assert lineage["files"] == [str(path)]
    df, _ = read_source(src, (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 8, tzinfo=UTC)))
    assert len(df) == 0


@pytest.mark.parametrize("path", ["s3://bucket/qa.jsonl", "http://example.com/qa.jsonl", "gs://b/qa.jsonl"])
def test_unknown_scheme_is_rejected_before_any_read(path):
    with pytest.raises(DataError, match="is not a local file"):
        ingest(SourceConfig(path=path))


def test_path_outside_the_allowed_roots_is_rejected_before_any_read(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_DATA_ROOTS")
    (tmp_path / "secret.jsonl").write_text(json.dumps(QA[0]) + "\n")
    with pytest.raises(DataError, match="outside the allowed roots"):
        ingest(SourceConfig(path=str(tmp_path / "secret.jsonl")))
    with pytest.raises(DataError, match="outside the allowed roots"):
        ingest(SourceConfig(path="include/../../etc/*.conf"))
    df = ingest(SourceConfig(path=str(tmp_path / "secret.jsonl"), allowed_roots=[str(tmp_path)],
                             prompt_column="question", response_column="answer"))
    assert len(df) == 1


def test_source_kind_needs_its_location():
    with pytest.raises(ValueError, match="needs `query`"):
        SourceConfig(kind="bigquery")
    with pytest.raises(ValueError, match="must start with gs://"):
        SourceConfig(kind="gcs", path="bucket/x")
