"""Ingest: JSONL/CSV/Parquet map to prompt/response/timestamp; every error names the file and the line."""

from __future__ import annotations

import pandas as pd
import pytest

from llmops.config import SourceConfig
from llmops.data.ingest import ingest
from llmops.data.sources.files import read_file
from llmops.errors import DataError

QA = [
    {"id": 1, "question": "How do I sort a list?", "answer": "Use sorted().", "created_at": "2026-01-05T02:22:17Z"},
    {"id": 2, "question": "How do I read a file?", "answer": "Use open().", "created_at": "2026-01-06T10:00:00Z"},
]


def source(path, **kw) -> SourceConfig:
    return SourceConfig(path=str(path), prompt_column="question", response_column="answer", **kw)


def test_jsonl_maps_columns_and_keeps_file_and_line(write_jsonl):
    path = write_jsonl("a.jsonl", [QA[0], "", QA[1]])  # a blank line is skipped but still counted
    df = ingest(source(path, timestamp_column="created_at"))
    assert list(df.columns) == ["prompt", "response", "timestamp", "source_file", "source_line"]
    assert df["prompt"].tolist() == ["How do I sort a list?", "How do I read a file?"]
    assert df["response"].tolist() == ["Use sorted().", "Use open()."]
    assert df["source_file"].tolist() == [str(path), str(path)]
    assert df["source_line"].tolist() == [1, 3]
    assert df["timestamp"].tolist() == [pd.Timestamp("2026-01-05T02:22:17Z"), pd.Timestamp("2026-01-06T10:00:00Z")]
    assert str(df["timestamp"].dt.tz) == "UTC"


def test_csv_lines_count_the_header(tmp_path):
    path = tmp_path / "a.csv"
    pd.DataFrame(QA).to_csv(path, index=False)
    df = ingest(source(path))
    assert list(df.columns) == ["prompt", "response", "source_file", "source_line"]
    assert df["prompt"].tolist() == [r["question"] for r in QA]
    assert df["source_line"].tolist() == [2, 3]
    assert set(df["source_file"]) == {str(path)}


def test_parquet_rows_are_numbered_from_one(tmp_path):
    path = tmp_path / "a.parquet"
    pd.DataFrame(QA).to_parquet(path, index=False)
    df = ingest(source(path, timestamp_column="created_at"))
    assert df["response"].tolist() == [r["answer"] for r in QA]
    assert df["source_line"].tolist() == [1, 2]
    assert df["timestamp"].iloc[1] == pd.Timestamp("2026-01-06T10:00:00Z")


def test_glob_reads_every_file_in_order(tmp_path, write_jsonl):
    write_jsonl("b.jsonl", [QA[1]])
    write_jsonl("a.jsonl", [QA[0]])
    df = ingest(source(tmp_path / "*.jsonl"))
    assert df["source_file"].tolist() == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    assert df["prompt"].tolist() == [QA[0]["question"], QA[1]["question"]]
    assert df.index.tolist() == [0, 1]


def test_declared_format_overrides_the_suffix(tmp_path, write_jsonl):
    path = write_jsonl("data.txt", QA)
    with pytest.raises(DataError, match=r"data\.txt: unknown file type '\.txt'"):
        ingest(source(path))
    assert len(ingest(source(path, format="jsonl"))) == 2


def test_malformed_jsonl_line_names_file_and_line(write_jsonl):
    path = write_jsonl("a.jsonl", [QA[0], QA[1], '{"question": "broken", '])
    with pytest.raises(DataError) as exc:
        ingest(source(path))
    assert str(exc.value).startswith(f"{path}:3: not valid JSON")


def test_jsonl_line_that_is_not_an_object(write_jsonl):
    path = write_jsonl("a.jsonl", [QA[0], "[1, 2]"])
    with pytest.raises(DataError, match=r"a\.jsonl:2: expected a JSON object, got list"):
        ingest(source(path))


def test_non_utf8_bytes_name_file_and_line(tmp_path, write_jsonl):
    path = write_jsonl("a.jsonl", [QA[0]])
    with open(path, "ab") as f:
        f.write(b'{"question": "caf\xe9?", "answer": "x"}\n')
    with pytest.raises(DataError) as exc:
        ingest(source(path))
    assert str(exc.value).startswith(f"{path}:2: not UTF-8")


def test_non_utf8_csv_names_the_file(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"question,answer\ncaf\xe9 question,answer\n")
    with pytest.raises(DataError, match=rf"{path}: not UTF-8"):
        ingest(source(path))


def test_missing_column_names_file_and_column(write_jsonl):
    path = write_jsonl("a.jsonl", [{"question": "q?", "reply": "r"}])
    with pytest.raises(DataError) as exc:
        ingest(source(path))
    msg = str(exc.value)
    assert msg.startswith(f"{path}: missing column(s) ['answer']")
    assert "found ['question', 'reply']" in msg


@pytest.mark.parametrize(("name", "content"), [("a.jsonl", ""), ("b.jsonl", "\n\n"), ("c.csv", ""),
                                                ("d.csv", "question,answer\n")])
def test_empty_file_is_an_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=rf"{path}: file has no rows"):
        ingest(source(path))


def test_glob_matching_nothing_mentions_source_path(tmp_path):
    with pytest.raises(DataError) as exc:
        ingest(source(tmp_path / "*.jsonl"))
    assert str(exc.value).startswith(f"source.path: '{tmp_path / '*.jsonl'}' matches no file")


@pytest.mark.parametrize("bad", [42, 1.5, ["a", "list"], {"a": 1}, True])
def test_non_text_prompt_names_file_and_line(write_jsonl, bad):
    path = write_jsonl("a.jsonl", [QA[0], QA[1], {"question": bad, "answer": "x"}])
    with pytest.raises(DataError) as exc:
        ingest(source(path))
    assert str(exc.value).startswith(f"{path}:3: column 'question' must be text, got {type(bad).__name__}")


def test_null_values_are_left_to_the_expectation_suite(write_jsonl):
    path = write_jsonl("a.jsonl", [QA[0], {"question": None, "answer": "x"}, {"question": "q?", "answer": None}])
    df = ingest(source(path))
    assert df["prompt"].isna().tolist() == [False, True, False]
    assert df["response"].isna().tolist() == [False, False, True]
    assert df["source_line"].tolist() == [1, 2, 3]


def test_bad_timestamp_names_file_and_column(write_jsonl):
    path = write_jsonl("a.jsonl", [{**QA[0], "created_at": "not a date"}])
    with pytest.raises(DataError, match=rf"{path}: column 'created_at' is not a timestamp"):
        read_file(path, source(path, timestamp_column="created_at"))


def test_broken_parquet_names_the_file(tmp_path):
    path = tmp_path / "a.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(DataError, match=rf"{path}: not a readable Parquet file"):
        ingest(source(path))
