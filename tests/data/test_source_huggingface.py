"""``source.kind: huggingface`` on a local dataset folder (offline): load_dataset reads it, the real ingest path maps
the columns and filters the interval batch by batch, and the manifest records the folder's content hash."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from llmops import paths
from llmops.config import PrepareConfig, SourceConfig, SplitConfig, load_use_case
from llmops.data.ingest import read_source
from llmops.data.sources.huggingface import folder_hash
from llmops.data.stage import stage
from llmops.errors import ConfigError, DataError
from tests.data.conftest import local_snapshots

CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
  - split: test
    path: data/test-*.parquet
---
# A local Q&A dataset
"""
START = pd.Timestamp("2026-01-05", tz="UTC")


def records(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "qid": [f"q{i}" for i in range(start, start + n)],
        "question": [f"How do I sort dictionary number {i} by value?" for i in range(start, start + n)],
        "answer": [f"Use sorted(d{i}.items(), key=lambda kv: kv[1])." for i in range(start, start + n)],
        "created_at": [(START + pd.Timedelta(hours=6 * i)).isoformat() for i in range(start, start + n)],
    })


@pytest.fixture
def folder(tmp_path):
    """A dataset folder as the Hub stores one: Parquet shards per split, named by a README card."""
    root = tmp_path / "hf_qa"
    (root / "data").mkdir(parents=True)
    records(40).to_parquet(root / "data" / "train-00000-of-00002.parquet", index=False)
    records(40, start=40).to_parquet(root / "data" / "train-00001-of-00002.parquet", index=False)
    records(10, start=100).to_parquet(root / "data" / "test-00000-of-00001.parquet", index=False)
    (root / "README.md").write_text(CARD)
    return root


def source(folder, **kw) -> SourceConfig:
    return SourceConfig(kind="huggingface", dataset=str(folder), prompt_column="question", response_column="answer",
                        timestamp_column="created_at", key_column="qid", **kw)


def test_rows_are_mapped_filtered_to_the_interval_and_streamed_in_batches(folder, monkeypatch):
    monkeypatch.setenv("LLMOPS_BATCH_ROWS", "7")
    interval = (datetime(2026, 1, 6, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))  # rows 4..27 (6h apart)
    df, lineage = read_source(source(folder), interval)
    assert list(df.columns) == ["prompt", "response", "timestamp", "key", "source_file", "source_line"]
    assert list(df["key"]) == [f"q{i}" for i in range(4, 28)]
    assert df["prompt"].iloc[0] == "How do I sort dictionary number 4 by value?"
    assert df["timestamp"].min() >= pd.Timestamp(interval[0]) and df["timestamp"].max() < pd.Timestamp(interval[1])
    assert list(df["source_line"]) == list(range(5, 29))  # the row's number in the split
    assert set(df["source_file"]) == {f"{folder}/train"}
    assert lineage["kind"] == "huggingface" and lineage["split"] == "train" and lineage["rows_in_split"] == 80
    assert lineage["resolved_revision"] == folder_hash(folder)


def test_another_split_and_no_interval(folder):
    df, lineage = read_source(source(folder, split="test"))
    assert list(df["key"]) == [f"q{i}" for i in range(100, 110)] and lineage["split"] == "test"


def test_through_stage_and_snapshot_the_manifest_records_the_revision(folder, tmp_path):
    interval = (datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC))  # rows 0..39
    staged = tmp_path / "staged.parquet"
    result = stage(source(folder), PrepareConfig(), staged, interval=interval)
    assert result["rows"] == 40
    m = local_snapshots("hf_case", SplitConfig()).write_file(
        staged, source=result["source"], validation={"success": True}, steps=result["steps"],
        interval={"start": interval[0].isoformat(), "end": interval[1].isoformat()})
    assert m["rows"]["train"] + m["rows"]["eval"] == 40
    assert m["source"]["resolved_revision"] == folder_hash(folder) and m["source"]["dataset"] == str(folder)
    snapshot_dir = paths.snapshots_root("hf_case") / m["snapshot_id"]
    assert json.loads((snapshot_dir / "manifest.json").read_text())["source"] == m["source"]
    assert folder_hash(folder) in (snapshot_dir / "README.md").read_text()


def test_a_changed_folder_has_another_resolved_revision(folder):
    before = folder_hash(folder)
    records(5, start=200).to_parquet(folder / "data" / "test-00000-of-00001.parquet", index=False)
    assert folder_hash(folder) != before
    (folder / ".cache").mkdir()
    (folder / ".cache" / "x").write_text("ignored")
    assert read_source(source(folder, split="test"))[1]["resolved_revision"] == folder_hash(folder)


def test_errors_name_the_field(folder, tmp_path):
    with pytest.raises(DataError, match="missing column"):
        read_source(source(folder).model_copy(update={"prompt_column": "title"}))
    with pytest.raises(DataError, match="source.dataset: .* cannot be loaded"):
        read_source(source(folder, split="validation"))
    with pytest.raises(DataError, match="outside the allowed roots"):
        read_source(source("/etc"))
    with pytest.raises(DataError, match="not a folder"):
        read_source(source(tmp_path / "missing"))




@pytest.mark.parametrize("src,field,message", [
    ({"kind": "huggingface"}, "source.dataset", "needs `dataset`"),
    ({"kind": "huggingface", "dataset": "owner/qa"}, "source.revision", "pinned `revision`"),
    ({"kind": "huggingface", "dataset": "not a valid id", "revision": "main"}, "source.dataset", "neither"),
    ({"kind": "huggingface", "dataset": "owner/qa", "revision": "bad revision"}, "source.revision", "not a commit"),
])
def test_config_errors_name_the_field(use_case_file, src, field, message):
    with pytest.raises(ConfigError, match=rf"{field}: .*{message}"):
        load_use_case(use_case_file(None, {"source": src}))


def test_config_accepts_a_pinned_hub_id_and_a_local_folder_without_revision(use_case_file):
    hub = load_use_case(use_case_file(None, {"source": {"kind": "huggingface", "dataset": "owner/qa",
                                                        "revision": "a" * 40, "name": "python",
                                                        "split": "train"}})).source
    assert (hub.dataset, hub.revision, hub.name, hub.split) == ("owner/qa", "a" * 40, "python", "train")
    local = load_use_case(use_case_file(None, {"source": {"kind": "huggingface",
                                                          "dataset": "./include/data/hf_qa"}})).source
    assert local.revision is None and local.split == "train"
