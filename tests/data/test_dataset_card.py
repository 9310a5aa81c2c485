"""Every snapshot is a Hugging Face dataset folder: its README.md card (derived from the manifest) lets
``datasets.load_dataset`` open the train and eval splits with the manifest's row counts and columns."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmops.config import SplitConfig
from llmops.data.snapshots import dataset_card
from llmops.errors import SnapshotNotFound
from tests.data.conftest import local_snapshots, make_rows

UC = "qa_case"
SPLIT = SplitConfig(eval_fraction=0.2, seed=0)
SOURCE = {"kind": "files", "path": "include/data/qa/*.jsonl", "files": ["a.jsonl"]}
VALIDATION = {"suite": "qa_pairs", "success": True, "evaluated": 8, "successful": 8, "failed": []}


def write(df: pd.DataFrame, **kw) -> dict:
    return local_snapshots(UC, SPLIT).write_frame(df, source=SOURCE, validation=VALIDATION, **kw)


def dataset_folder(snapshot_id: str):
    return local_snapshots(UC).dataset_folder(snapshot_id)


def load(folder, tmp_path):
    from datasets import load_dataset

    return load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))


def with_timestamps(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(timestamp=pd.Timestamp("2026-01-05", tz="UTC") + pd.to_timedelta(range(len(df)), unit="h"))


@pytest.mark.parametrize("timestamps", [False, True])
def test_load_dataset_gives_the_manifests_splits_rows_and_columns(tmp_path, timestamps):
    df = make_rows(80)
    m = write(with_timestamps(df) if timestamps else df)
    ds = load(dataset_folder(m["snapshot_id"]), tmp_path)
    assert set(ds) == {"train", "eval"}
    for split in ("train", "eval"):
        assert ds[split].num_rows == m["rows"][split]
        assert ds[split].column_names == list(m["columns"])
    assert ds["train"].features["prompt"].dtype == "string"
    assert ds["train"].features["source_line"].dtype == "int64"
    if timestamps:
        assert ds["train"].features["timestamp"].dtype == "timestamp[us, tz=UTC]"
    # the JSONL copies are not read as extra rows or splits
    assert ds["train"].num_rows + ds["eval"].num_rows == m["rows"]["train"] + m["rows"]["eval"]
    assert sorted([*ds["train"]["prompt"], *ds["eval"]["prompt"]]) == sorted(df["prompt"])


def test_the_card_declares_row_counts_that_load_dataset_checks(tmp_path):
    from datasets.exceptions import NonMatchingSplitsSizesError

    m = write(make_rows(40))
    folder = dataset_folder(m["snapshot_id"])
    card = (folder / "README.md").read_text()
    assert f"num_examples: {m['rows']['train']}" in card
    (folder / "README.md").write_text(card.replace(f"num_examples: {m['rows']['train']}",
                                                   f"num_examples: {m['rows']['train'] + 1}"))
    with pytest.raises(NonMatchingSplitsSizesError):
        load(folder, tmp_path)


def test_the_card_carries_the_lineage():
    first = write(make_rows(30))
    m = write(make_rows(30, start=30), interval={"start": "2026-01-05T00:00:00+00:00",
                                                 "end": "2026-01-12T00:00:00+00:00"},
              partition_key="2026-01-05T00:00:00")
    card = (dataset_folder(m["snapshot_id"]) / "README.md").read_text()
    assert m["parents"] == [first["snapshot_id"]] and f"`{first['snapshot_id']}`" in card
    assert "include/data/qa/*.jsonl" in card and "Source kind | `files`" in card
    assert "passed (suite `qa_pairs`)" in card and '"successful": 8' in card
    assert "2026-01-05T00:00:00+00:00 to 2026-01-12T00:00:00+00:00" in card and "2026-01-05T00:00:00 |" in card
    assert "0.0.0+test" in card and m["snapshot_id"] in card
    assert f"{m['rows']['train']} train, {m['rows']['eval']} eval" in card
    assert "load_dataset(" in card and "dataset_folder(" in card


def test_the_card_is_derived_from_the_manifest_which_is_unchanged():
    m = write(make_rows(30))
    folder = dataset_folder(m["snapshot_id"])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == m and "README" not in json.dumps(manifest)
    sizes = {s: (folder / f"{s}.parquet").stat().st_size for s in ("train", "eval")}
    assert (folder / "README.md").read_text() == dataset_card.render(manifest, sizes)


def test_a_rerun_writes_nothing(llmops_home):
    df = make_rows(50)
    m = write(df)
    folder = dataset_folder(m["snapshot_id"])
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert "README.md" in before
    again = write(df.sample(frac=1, random_state=1))
    assert again == m
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_dataset_folder_of_an_unknown_snapshot_is_a_clear_error():
    with pytest.raises(SnapshotNotFound, match="no snapshot"):
        dataset_folder("0123456789abcdef")


@pytest.mark.parametrize("dtype,expected", [
    ("object", "string"), ("str", "string"), ("string", "string"), ("int64", "int64"), ("Int64", "int64"),
    ("float64", "float64"), ("bool", "bool"), ("datetime64[ns, UTC]", "timestamp[ns, tz=UTC]"),
    ("datetime64[us]", "timestamp[us]"), ("category", None),
])
def test_feature_dtypes(dtype, expected):
    assert dataset_card.feature_dtype(dtype) == expected


def test_an_unmapped_column_leaves_the_features_to_the_parquet_schema():
    assert dataset_card.features({"prompt": "str", "odd": "category"}) is None
    assert dataset_card.features({}) is None
