"""Snapshots: content-addressed ids, idempotent atomic writes, a stable split, and which snapshot a run uses."""

from __future__ import annotations

import json
import os
import shutil

import pandas as pd
import pytest

from llmops import paths
from llmops.config import SnapshotConfig, SplitConfig
from llmops.data.snapshots import store, writer
from llmops.data.snapshots.store import LocalStore
from llmops.data.snapshots.writer import split_of
from llmops.errors import InvalidName, SnapshotNotFound
from tests.data.conftest import local_snapshots

UC = "qa_case"
SPLIT = SplitConfig(eval_fraction=0.2, seed=0)
SOURCE = {"path": "include/data/qa/*.jsonl", "files": ["a.jsonl"]}
VALIDATION = {"suite": "qa_pairs", "success": True, "evaluated": 8, "successful": 8, "failed": []}


def snaps(choice: SnapshotConfig | None = None, use_case: str = UC):
    """A fresh handle (each call reads the manifests anew, as a new task would)."""
    return local_snapshots(use_case, SPLIT, choice)


def write(df: pd.DataFrame, split: SplitConfig = SPLIT, **kw) -> dict:
    return local_snapshots(UC, split).write_frame(df, source=SOURCE, validation=VALIDATION, **kw)


def tree(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def set_created_at(sid: str, when: str) -> None:
    path = paths.snapshots_root(UC) / sid / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "created_at": when}))


def test_manifest_and_files(llmops_home, good_rows):
    m = write(good_rows)
    final = llmops_home / "snapshots" / UC / m["snapshot_id"]
    assert sorted(p.name for p in final.iterdir()) == [
        "README.md", "eval.jsonl", "eval.parquet", "manifest.json", "train.jsonl", "train.parquet"]
    expected_eval = sum(split_of(p, SPLIT) == "eval" for p in good_rows["prompt"])
    assert 0 < expected_eval < 60
    assert m["rows"] == {"input": 60, "train": 60 - expected_eval, "eval": expected_eval}
    assert m["split"] == {"rule": writer.SPLIT_RULE, "eval_fraction": 0.2, "seed": 0}
    assert m["validation"] == VALIDATION and m["source"] == SOURCE
    assert m["code_version"] == "0.0.0+test"
    assert m["use_case"] == UC and m["uri"] == final.as_uri()
    assert snaps().manifest(m["snapshot_id"]) == json.loads((final / "manifest.json").read_text()) == m
    train, eval_ = snaps().load_split(m["snapshot_id"], "train"), snaps().load_split(m["snapshot_id"], "eval")
    assert len(train) == m["rows"]["train"] and len(eval_) == m["rows"]["eval"]
    assert set(train["prompt"]) | set(eval_["prompt"]) == set(good_rows["prompt"])
    assert all(split_of(p, SPLIT) == "eval" for p in eval_["prompt"])
    assert len(pd.read_json(final / "train.jsonl", lines=True)) == m["rows"]["train"]


def test_same_content_any_order_gives_same_id_and_writes_nothing(llmops_home, good_rows):
    first = write(good_rows)
    root = llmops_home / "snapshots" / UC
    before = tree(root)
    shuffled = good_rows.sample(frac=1, random_state=7).reset_index(drop=True)
    assert not shuffled["prompt"].equals(good_rows["prompt"])
    again = write(shuffled)
    assert again["snapshot_id"] == first["snapshot_id"]
    assert again["created_at"] == first["created_at"]
    assert tree(root) == before
    assert os.listdir(root) == [first["snapshot_id"]]


def test_different_content_or_split_gives_different_id(good_rows):
    base = write(good_rows)["snapshot_id"]
    changed = good_rows.copy()
    changed.loc[0, "response"] = "A different answer."
    assert write(changed)["snapshot_id"] != base
    assert write(good_rows.iloc[1:])["snapshot_id"] != base
    assert write(good_rows, SplitConfig(eval_fraction=0.2, seed=1))["snapshot_id"] != base
    assert len(snaps().manifests()) == 4


def test_source_columns_do_not_change_the_id(good_rows):
    moved = good_rows.assign(source_file="/elsewhere/b.jsonl", source_line=good_rows["source_line"] + 100)
    assert write(moved)["snapshot_id"] == write(good_rows)["snapshot_id"]


def test_split_is_stable_when_new_rows_arrive(rows):
    old = rows(60)
    grown = pd.concat([old, rows(200, start=60)], ignore_index=True)
    old_m, new_m = write(old), write(grown)
    assert old_m["snapshot_id"] != new_m["snapshot_id"]
    for part in ("train", "eval"):
        before = set(snaps().load_split(old_m["snapshot_id"], part)["prompt"])
        after = set(snaps().load_split(new_m["snapshot_id"], part)["prompt"])
        assert before <= after, f"a prompt left {part}"
    assert {split_of(p, SPLIT) for p in old["prompt"]} == {"train", "eval"}


def test_split_fraction_is_roughly_respected(rows):
    prompts = rows(2000)["prompt"]
    share = sum(split_of(p, SplitConfig(eval_fraction=0.1)) == "eval" for p in prompts) / len(prompts)
    assert 0.07 < share < 0.13


def test_no_temp_directories_are_left_behind(llmops_home, rows):
    write(rows(60))
    write(rows(70))
    names = os.listdir(llmops_home / "snapshots" / UC)
    assert len(names) == 2
    assert not [n for n in names if n.startswith(".")]


def test_concurrent_writer_wins_and_temp_is_removed(llmops_home, good_rows, monkeypatch):
    def racing_rename(src, dst):  # another process finished the same snapshot first: rename onto it fails
        shutil.copytree(src, dst)
        raise OSError(39, "Directory not empty")

    monkeypatch.setattr(store.os, "rename", racing_rename)
    m = write(good_rows)
    assert os.listdir(llmops_home / "snapshots" / UC) == [m["snapshot_id"]]
    assert snaps().manifest(m["snapshot_id"])["snapshot_id"] == m["snapshot_id"]


def test_list_and_latest(rows):
    with pytest.raises(SnapshotNotFound, match="has no snapshot yet"):
        snaps().latest_id()
    assert snaps().manifests() == []
    a, b = write(rows(60))["snapshot_id"], write(rows(61))["snapshot_id"]
    set_created_at(a, "2026-02-01T00:00:00+00:00")
    set_created_at(b, "2026-01-01T00:00:00+00:00")
    assert [m["snapshot_id"] for m in snaps().manifests()] == [b, a]
    assert snaps().latest_id() == a


def test_choose_snapshot_pinned_then_event_then_newest(rows):
    old, new = write(rows(60))["snapshot_id"], write(rows(61))["snapshot_id"]
    set_created_at(old, "2026-01-01T00:00:00+00:00")
    set_created_at(new, "2026-02-01T00:00:00+00:00")

    sid, why = snaps().choose(old, [{"snapshot_id": new}])
    assert (sid, why) == (old, "pinned by the snapshot_id param")
    sid, why = snaps().choose(None, [{"snapshot_id": new}, {"snapshot_id": old}, {"other": 1}])
    assert sid == old and "triggering dataset asset event" in why
    sid, why = snaps().choose(None, [{}])
    assert sid == new and why.startswith("newest snapshot")


def test_choose_snapshot_unknown_ids_raise(rows):
    write(rows(60))
    with pytest.raises(SnapshotNotFound, match="use case 'qa_case' has no snapshot 'deadbeefdeadbeef'"):
        snaps().choose("deadbeefdeadbeef", [])
    with pytest.raises(SnapshotNotFound, match="no snapshot 'cafebabecafebabe'"):
        snaps().choose(None, [{"snapshot_id": "cafebabecafebabe"}])
    with pytest.raises(SnapshotNotFound, match="has no snapshot yet"):
        snaps(use_case="other_case").choose(None, [])


def test_last_n_mode_trains_on_a_union_snapshot_of_the_newest_n(rows):
    ids = []
    for week in range(3):
        interval = {"start": f"2026-01-{5 + 7 * week:02d}T00:00:00+00:00", "end": "x"}
        m = write(rows(60, start=100 * week), interval=interval, partition_key=interval["start"][:19])
        ids.append(m["snapshot_id"])
    assert snaps().manifest(ids[1])["parents"] == [ids[0]]  # lineage: the previous snapshot
    last_2 = SnapshotConfig(train_on="last_n", last_n=2)
    sid, why = snaps(last_2).choose(None, [{"snapshot_id": ids[2]}])
    union = snaps().manifest(sid)
    assert union["parents"] == ids[1:] and union["source"] == {"kind": "union", "snapshots": ids[1:]}
    assert union["rows"]["input"] == 120 and "union of the last 2" in why
    # rows keep their split in the union, because the split is a hash of each row's key
    for i in ids[1:]:
        assert set(snaps().load_split(i, "eval")["prompt"]) <= set(snaps().load_split(sid, "eval")["prompt"])
    # anchored on an older event, the window ends there; a pin always wins
    assert snaps().manifest(snaps(last_2).choose(None, [{"snapshot_id": ids[1]}])[0])["parents"] == ids[:2]
    assert snaps(last_2).choose(ids[0], [])[0] == ids[0]



class CountingStore(LocalStore):
    """The real local store, counting the manifests it reads."""

    reads: list[str]

    def manifest(self, sid: str) -> dict | None:
        self.reads = [*getattr(self, "reads", []), sid]
        return super().manifest(sid)


def test_a_handle_reads_each_manifest_once(good_rows, rows):
    from llmops.data.snapshots.handle import Snapshots

    sid = write(good_rows)["snapshot_id"]
    other = write(rows(70))["snapshot_id"]
    counting = CountingStore(paths.snapshots_root(UC), UC)
    handle = Snapshots(counting, split=SPLIT)
    handle.split_path(sid, "train")
    assert len(handle.load_split(sid, "eval")) == handle.manifest(sid)["rows"]["eval"]
    handle.load_split(sid, "train")
    handle.dataset_folder(sid)
    assert handle.choose(sid, []) == (sid, "pinned by the snapshot_id param")
    assert counting.reads == [sid]
    assert {m["snapshot_id"] for m in handle.manifests()} == {sid, other}  # a listing reads only the new one
    handle.latest_id()
    assert sorted(counting.reads) == sorted([sid, other])
    with pytest.raises(SnapshotNotFound):  # a missing snapshot is not remembered: it may be written later
        handle.manifest("0123456789abcdef")
    with pytest.raises(SnapshotNotFound):
        handle.manifest("0123456789abcdef")
    assert counting.reads.count("0123456789abcdef") == 2


def test_a_written_snapshot_is_known_to_its_handle_without_a_read(good_rows):
    from llmops.data.snapshots.handle import Snapshots

    counting = CountingStore(paths.snapshots_root(UC), UC)
    handle = Snapshots(counting, split=SPLIT)
    m = handle.write_frame(good_rows, source=SOURCE, validation=VALIDATION)
    reads = list(counting.reads)  # the writer asks once whether the id exists
    assert handle.manifest(m["snapshot_id"]) == m and handle.load_split(m["snapshot_id"], "train") is not None
    assert counting.reads == reads


@pytest.mark.parametrize("bad", ["../4394c71abe63714e", "4394C71ABE63714E", "/etc", " ", "4394c71abe63714"])
def test_a_malformed_event_snapshot_id_is_refused_where_it_enters(good_rows, bad):
    write(good_rows)
    with pytest.raises(InvalidName, match=r"^asset event extra\.snapshot_id: .* is refused: a snapshot id is 16"):
        snaps().choose(None, [{"snapshot_id": bad}])
