"""The dataset pipeline streams in batches: results must not depend on the batch size, and what spans batches
(duplicates, uniqueness, row counts, leakage, line numbers) must be handled across them."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from llmops import paths
from llmops.config import PrepareConfig, SourceConfig, SplitConfig
from llmops.data.batches import SeenHashes, hash64, iter_parquet
from llmops.data.ingest import ingest
from llmops.data.snapshots.jsonl import write_jsonl as to_jsonl
from llmops.data.stage import stage
from llmops.data.validate import validate, validate_file
from llmops.errors import DataError, ValidationFailed
from tests.data.conftest import local_snapshots

SUITE = paths.PROJECT_ROOT / "include" / "expectations" / "qa_pairs.json"


def qa(i: int, answer: str | None = None) -> dict:
    return {"question": f"How do I solve problem number {i} in Python?", "answer": answer or f"<p>Answer {i}.</p>",
            "created_at": f"2026-01-{5 + i % 7:02d}T10:00:00Z", "qid": i}


def source(path, **kw) -> SourceConfig:
    return SourceConfig(path=str(path), prompt_column="question", response_column="answer",
                        timestamp_column="created_at", **kw)


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "7")


def write_lines(path, lines):
    path.write_text("".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines))
    return path


def test_seen_hashes_across_batches():
    seen = SeenHashes()
    first = seen.first_seen(np.array([5, 3, 5, 9], dtype=np.uint64))
    assert first.tolist() == [True, True, False, True]
    assert seen.first_seen(np.array([9, 1, 1, 3, 7], dtype=np.uint64)).tolist() == [False, True, False, False, True]
    assert len(seen) == 5
    assert seen.contains(np.array([1, 2, 7], dtype=np.uint64)).tolist() == [True, False, True]


def test_stage_deduplicates_across_batches_and_keeps_line_numbers(tmp_path, small_batches):
    rows = [qa(i) for i in range(30)]
    rows[25] = dict(rows[3])  # the same pair, 3 batches later
    path = write_lines(tmp_path / "qa.jsonl", rows)
    out = tmp_path / "staged.parquet"
    result = stage(source(path), PrepareConfig(strip_html=True), out)
    df = pd.read_parquet(out)
    assert result["rows"] == len(df) == 29
    steps = {s["step"]: s for s in result["steps"]}
    assert steps["ingest"]["rows_in"] == 30
    assert (steps["deduplicate"]["rows_in"], steps["deduplicate"]["rows_out"]) == (30, 29)
    assert 26 not in df["source_line"].tolist() and df["source_line"].tolist()[:5] == [1, 2, 3, 4, 5]
    assert df["response"].iloc[0] == "Answer 0."
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # written batch by batch


def test_blank_lines_keep_exact_line_numbers(tmp_path, small_batches):
    path = write_lines(tmp_path / "qa.jsonl", [qa(0), "", qa(1), "   ", *[qa(i) for i in range(2, 12)]])
    df = ingest(source(path))
    assert df["source_line"].tolist()[:3] == [1, 3, 5]
    assert df["source_line"].tolist()[-1] == 14


def test_an_error_after_the_first_batches_names_its_line_and_stages_nothing(tmp_path, small_batches):
    rows = [json.dumps(qa(i)) for i in range(40)]
    rows[33] = '{"question": "unterminated'
    path = write_lines(tmp_path / "qa.jsonl", rows)
    out = tmp_path / "staged.parquet"
    with pytest.raises(DataError, match=rf"{path}:34: not valid JSON"):
        stage(source(path), PrepareConfig(), out)
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


def test_a_type_change_late_in_the_file_is_named(tmp_path, small_batches):
    rows = [qa(i) for i in range(20)]
    rows[17]["question"] = 12345
    path = write_lines(tmp_path / "qa.jsonl", rows)
    with pytest.raises(DataError, match=rf"{path}:18: column 'question' must be text, got int 12345"):
        ingest(source(path))


def test_invalid_utf8_late_in_the_file_is_named(tmp_path, small_batches):
    lines = [json.dumps(qa(i)).encode() for i in range(20)]
    lines[15] = lines[15].replace(b"problem", b"probl\xffm")
    path = tmp_path / "qa.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"{path}:16: not UTF-8"):
        ingest(source(path))


def frame(n: int, start: int = 0) -> pd.DataFrame:
    rows = [{"prompt": f"How do I solve problem number {i} in Python?", "response": f"Answer {i}.",
             "source_file": "/data/qa.jsonl", "source_line": i + 1} for i in range(start, start + n)]
    return pd.DataFrame(rows)


def test_validation_counts_the_same_in_batches_as_whole(tmp_path, monkeypatch):
    df = frame(60)
    df.loc[2, "prompt"] = df.loc[50, "prompt"]     # duplicates 6 batches apart
    df.loc[40, "prompt"] = df.loc[41, "prompt"]    # duplicates within one batch
    df.loc[45, "prompt"] = None
    staged = tmp_path / "rows.parquet"
    df.to_parquet(staged)
    with pytest.raises(ValidationFailed) as whole:
        validate(df, SUITE)
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "7")
    with pytest.raises(ValidationFailed) as batched:
        validate_file(staged, SUITE)
    summary = batched.value.summary
    assert summary["batches"] == 9 and summary["rows"] == 60

    def counts(s):
        return {(f["expectation"], f["kwargs"].get("column")): f["unexpected_count"] for f in s["failed"]}

    assert counts(summary) == counts(whole.value.summary)
    assert counts(summary)[("expect_column_values_to_be_unique", "prompt")] == 4
    examples = next(f["examples"] for f in summary["failed"] if f["expectation"].endswith("unique"))
    assert "/data/qa.jsonl:51" in [e["where"] for e in examples]


def test_row_count_is_checked_on_the_whole_partition(tmp_path, monkeypatch):
    staged = tmp_path / "rows.parquet"
    frame(60).to_parquet(staged)
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "7")  # every batch is below the suite's minimum of 50 rows
    assert validate_file(staged, SUITE)["success"] is True
    frame(40).to_parquet(staged)
    with pytest.raises(ValidationFailed, match="expect_table_row_count_to_be_between"):
        validate_file(staged, SUITE)


def test_snapshot_is_the_same_for_any_batch_size(tmp_path, monkeypatch):
    df = frame(50).assign(timestamp=pd.Timestamp("2026-01-05T10:00:00Z"))
    staged = tmp_path / "rows.parquet"
    df.to_parquet(staged)
    split = SplitConfig(eval_fraction=0.3)
    one = local_snapshots("stream", split, root=tmp_path / "a").write_file(staged, source={}, validation={})
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "3")
    df.sample(frac=1, random_state=1).to_parquet(staged)
    many = local_snapshots("stream", split, root=tmp_path / "b").write_file(staged, source={}, validation={})
    assert one["snapshot_id"] == many["snapshot_id"]
    assert one["rows"] == many["rows"] and one["rows"]["eval"] > 0
    for part in ("train", "eval"):
        a = pd.read_parquet(tmp_path / "a" / one["snapshot_id"] / f"{part}.parquet")
        b = pd.read_parquet(tmp_path / "b" / many["snapshot_id"] / f"{part}.parquet")
        assert sorted(a["prompt"]) == sorted(b["prompt"])
        jsonl = pd.read_json(tmp_path / "b" / many["snapshot_id"] / f"{part}.jsonl", lines=True)
        assert jsonl["prompt"].tolist() == b["prompt"].tolist()


def test_leakage_is_checked_across_batches(tmp_path, monkeypatch):
    """With a key column, a prompt whose key falls in eval while the same prompt (another key) is in train,
    several batches apart, is dropped from eval and counted."""
    split = SplitConfig(eval_fraction=0.5)
    keys = [str(k) for k in range(200)]
    salt = f"{split.seed}:"
    h = hash64(keys, salt)
    limit = np.uint64(int(0.5 * 2**64))
    k_train = next(k for k, v in zip(keys, h, strict=True) if v >= limit)
    k_eval = next(k for k, v in zip(keys, h, strict=True) if v < limit and k != k_train)
    df = frame(30).assign(key=[f"u{i}" for i in range(30)])
    df.loc[1, ["key", "prompt"]] = [k_train, "Shared prompt across two ids?"]
    df.loc[28, ["key", "prompt"]] = [k_eval, "Shared prompt across two ids?"]
    staged = tmp_path / "rows.parquet"
    df.to_parquet(staged)
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "4")
    m = local_snapshots("leak", split, root=tmp_path / "s").write_file(staged, source={}, validation={})
    leakage = next(s for s in m["steps"] if s["step"] == "leakage_check")
    assert leakage["eval_prompts_in_train"] == 1
    eval_ = pd.read_parquet(tmp_path / "s" / m["snapshot_id"] / "eval.parquet")
    assert "Shared prompt across two ids?" not in eval_["prompt"].tolist()
    assert m["rows"]["train"] + m["rows"]["eval"] == 29


def test_jsonl_writer_round_trips_awkward_text():
    df = pd.DataFrame({"prompt": ['quote " backslash \\ newline \n tab \t', "ünïcode 😀 \x01 control", None],
                       "timestamp": pd.to_datetime(["2026-01-05T01:02:03Z", None, "2026-01-06T00:00:00Z"], utc=True),
                       "source_line": [1, 2, 3]})
    buf = io.BytesIO()
    to_jsonl(df, buf)
    rows = [json.loads(line) for line in buf.getvalue().decode("utf-8").split("\n") if line]
    assert [r["prompt"] for r in rows] == [df["prompt"][0], df["prompt"][1], None]
    assert "😀" in buf.getvalue().decode("utf-8")  # text stays UTF-8, not \\u escapes
    assert [r["source_line"] for r in rows] == [1, 2, 3]
    assert rows[0]["timestamp"].startswith("2026-01-05T01:02:03") and rows[0]["timestamp"].endswith("Z")
    assert rows[1]["timestamp"] is None


def test_iter_parquet_respects_the_batch_size(tmp_path):
    frame(25).to_parquet(tmp_path / "f.parquet")
    assert [len(b) for b in iter_parquet(tmp_path / "f.parquet", rows=10)] == [10, 10, 5]


def test_training_sees_the_same_rows_in_the_same_order_whatever_order_they_arrived_in(llmops_home):
    df = frame(50)
    split = SplitConfig(eval_fraction=0.3)
    a = local_snapshots("order", split).write_frame(df.sample(frac=1, random_state=1), source={}, validation={})
    first = {p: local_snapshots("order").load_split(a["snapshot_id"], p) for p in ("train", "eval")}
    shutil.rmtree(llmops_home / "snapshots" / "order")
    b = local_snapshots("order", split).write_frame(df.sample(frac=1, random_state=2), source={}, validation={})
    assert a["snapshot_id"] == b["snapshot_id"]
    for p in ("train", "eval"):
        again = local_snapshots("order").load_split(b["snapshot_id"], p)
        assert again["prompt"].tolist() == first[p]["prompt"].tolist()
        assert again["prompt"].tolist() == sorted(again["prompt"].tolist())
