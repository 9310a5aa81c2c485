"""Preference rows from real prediction-log and feedback files: pairs from corrections and from +1/-1 answers to
one prompt, singles for lone thumbs, the safety filter, the eval-leakage check, the GX suite, a content-addressed
snapshot that names its inputs, an idempotent re-run, and too few rows. The preference snapshot is a snapshot of
kind ``preferences`` written through the handle; one written before kinds existed is still read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from llmops.config import load_use_case
from llmops.data import preferences
from llmops.serving_logs import append_line, feedback_dir, log_dir

DAY = "2026-03-02"


def served(i: int, prompt: str, completion: str | None, version: str = "1", day: str = DAY,
           use_case: str = "stackoverflow_qa") -> str:
    """One answer in the prediction log, as the API writes it; its response id."""
    rid = f"chatcmpl-{i:024x}"
    append_line(log_dir(use_case) / f"{day}.jsonl", {
        "ts": f"{day}T10:00:{i:02d}.000+00:00", "id": rid, "choice": 0, "version": version, "prompt": prompt,
        "completion": completion, "blocked": completion is None})
    return rid


def rated(rid: str, rating: int, day: str = DAY, correction: str | None = None, ts: str = "11:00:00",
          use_case: str = "stackoverflow_qa") -> None:
    """One feedback line, as ``POST /v1/feedback`` writes it."""
    append_line(feedback_dir(use_case) / f"{day}.jsonl", {
        "ts": f"{day}T{ts}.000+00:00", "id": rid, "index": 0, "rating": rating, "correction": correction,
        "comment": None, "key": f"{rid}{rating}{correction}"})


@pytest.fixture
def cfg(use_case_file):
    return load_use_case(use_case_file(changes={"feedback.min_rows": 3,
                                                "evaluation.safety.blocked_patterns": [r"\bDROP TABLE\b"]}))


def _fill(eval_prompt: str) -> dict:
    q1, q2, q3 = "How do I reverse a list in Python?", "What does `yield` do?", "How to merge two dicts?"
    a = served(1, q1, "Use reversed(xs) or xs[::-1].", version="1")
    b = served(2, q1, "Lists cannot be reversed.", version="2")
    rated(a, 1)
    rated(b, -1)
    c = served(3, q2, "It returns a value.", day="2026-02-27")  # logged days before the feedback
    rated(c, -1, correction="It makes the function a generator that yields values lazily.")
    d = served(4, q3, "Use {**a, **b}.")
    rated(d, -1, ts="11:00:00")
    rated(d, 1, ts="12:00:00")  # changed their mind: the latest rating wins
    e = served(5, q3, "DROP TABLE users; then {**a, **b}")  # a preferred text the filter blocks
    rated(e, 1)
    f = served(6, eval_prompt, "something")  # an eval question: never a training row
    rated(f, 1)
    g = served(7, q2, None)  # withheld by the safety filter when served: never used
    rated(g, 1)
    return {"q1": q1, "q2": q2, "q3": q3}


def test_join_screen_validate_and_snapshot(cfg, sample_rows):
    from llmops.data.snapshots.handle import Snapshots

    dataset = Snapshots.of(cfg).write_frame(sample_rows.head(200), source={"kind": "test"},
                                            validation={"success": True})
    eval_prompt = Snapshots.of(cfg).load_split(dataset["snapshot_id"], "eval")["prompt"].iloc[0]
    q = _fill(eval_prompt)

    out = preferences.build(cfg, DAY)
    assert out["skipped"] is False and out["counts"]["feedback"] == 8
    snap = preferences.preference_snapshots(cfg)
    manifest = snap.manifest(out["snapshot_id"])
    rows = pd.concat([preferences.load(cfg, out["snapshot_id"], s) for s in ("train", "eval")])
    got = {(r.kind, r.prompt, r.completion, r.rejected if r.kind == "pair" else bool(r.label))
           for r in rows.itertuples()}
    assert got == {
        ("pair", q["q1"], "Use reversed(xs) or xs[::-1].", "Lists cannot be reversed."),
        ("pair", q["q2"], "It makes the function a generator that yields values lazily.", "It returns a value."),
        ("single", q["q3"], "Use {**a, **b}.", True),
    }
    assert manifest["source"]["prediction_logs"] == ["2026-02-27.jsonl", f"{DAY}.jsonl"]
    assert manifest["source"]["feedback_files"] == [f"{DAY}.jsonl"]
    assert manifest["source"]["model_versions"] == ["1", "2"]
    assert manifest["source"]["eval_snapshot_id"] == dataset["snapshot_id"]
    steps = {s["step"]: s for s in manifest["steps"]}
    assert steps["safety_filter"]["rows_out"] == steps["safety_filter"]["rows_in"] - 1
    assert steps["eval_leakage_check"]["eval_prompts_dropped"] == 1
    assert manifest["validation"]["suite"] == "preferences" and manifest["validation"]["success"]

    folder = snap.store.where(out["snapshot_id"])
    before = {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*")}
    again = preferences.build(cfg, DAY)
    assert again["snapshot_id"] == out["snapshot_id"]
    assert {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*")} == before


def test_too_few_rows_skips_and_says_how_many(cfg, caplog):
    rid = served(1, "How do I reverse a list?", "xs[::-1]")
    rated(rid, 1)
    with caplog.at_level("INFO"):
        out = preferences.build(cfg, DAY)
    assert out == {"skipped": True, "rows": 1, "min_rows": 3, "counts": {"feedback": 1, "pairs": 0, "singles": 1},
                   "day": DAY}
    assert "1 preference row(s)" in caplog.text and "min_rows is 3" in caplog.text
    assert not preferences.preference_snapshots(cfg).manifests()


def test_bad_rows_fail_the_suite_naming_the_field(cfg, tmp_path):
    from llmops import paths
    from llmops.data.validate import validate
    from llmops.errors import ValidationFailed

    rows = preferences.join([{"id": "chatcmpl-1", "prompt": "q", "completion": "a\x00b", "version": "1"}],
                            [{"id": "chatcmpl-1", "rating": 1}])
    with pytest.raises(ValidationFailed, match="completion"):
        validate(rows, paths.resolve(cfg.feedback.expectation_suite))
    json.dumps(rows.to_dict("records"))  # JSON-able rows


def _pairs(prompts: list[str], per_prompt: int, tag: str) -> pd.DataFrame:
    rows = [{"key": preferences._key(tag, p, k), "kind": "pair", "prompt": p, "completion": f"good {k} {tag}",
             "rejected": f"bad {k} {tag}", "label": True, "versions": "1", "ids": f"{tag}{k}"}
            for p in prompts for k in range(per_prompt)]
    return pd.DataFrame(rows, columns=preferences.COLUMNS)


def test_the_split_is_by_prompt_stable_and_disjoint(cfg):
    """Several pairs per prompt: every pair of a prompt on one side, no prompt on both, and the sides do not
    move when more feedback arrives (a new snapshot with more rows) or the snapshot is written again."""
    cfg = cfg.model_copy(update={"feedback": cfg.feedback.model_copy(update={"eval_fraction": 0.3})})
    handle = preferences.preference_snapshots(cfg)
    prompts = [f"question {i}?" for i in range(60)]

    def write(frame):
        m = handle.write_frame(frame, source={"kind": "test"}, validation={"success": True}, parents=[])
        return {s: preferences.load(cfg, m["snapshot_id"], s) for s in ("train", "eval")}

    first = write(_pairs(prompts, 3, "a"))
    train, held = set(first["train"]["prompt"]), set(first["eval"]["prompt"])
    assert held and train and not train & held and train | held == set(prompts)
    assert len(first["train"]) + len(first["eval"]) == 3 * len(prompts)  # nothing dropped as leaked
    assert all(preferences.split_of(cfg, p) == "eval" for p in held)
    again = write(_pairs(prompts, 3, "a"))
    assert again["eval"].equals(first["eval"]) and again["train"].equals(first["train"])
    more = write(pd.concat([_pairs(prompts, 3, "a"), _pairs(prompts + ["a new one?"], 2, "b")]))
    assert set(more["eval"]["prompt"]) - {"a new one?"} == held
    assert not set(more["train"]["prompt"]) & set(more["eval"]["prompt"])


def _mtimes(folder) -> dict:
    return {p: p.stat().st_mtime_ns for p in Path(folder).rglob("*")}


def test_the_handle_writes_a_preference_snapshot_with_its_kind(cfg):
    """Content column and sort key ``key``, split by prompt, in the use case's preference folder under its own
    name; the same rows in another order and other batches give the same id and write nothing."""
    handle = preferences.preference_snapshots(cfg)
    frame = _pairs([f"question {i}?" for i in range(40)], 2, "a")
    m = handle.write_frame(frame, source={"kind": "test"}, validation={"success": True}, parents=[])
    sid = m["snapshot_id"]
    assert (m["kind"], m["content_columns"], m["sort_key"], m["use_case"]) == (
        "preferences", ["key"], ["key"], cfg.name)
    assert Path(handle.store.where(sid)).parent.name == f"{cfg.name}_preferences"
    splits = {s: handle.load_split(sid, s) for s in ("train", "eval")}
    assert all(list(df["key"]) == sorted(df["key"]) for df in splits.values())  # the kind's order, not by hand
    assert not set(splits["train"]["prompt"]) & set(splits["eval"]["prompt"])  # split by prompt
    assert sum(map(len, splits.values())) == len(frame)

    before = _mtimes(handle.store.where(sid))
    shuffled = frame.sample(frac=1, random_state=3)
    again = preferences.preference_snapshots(cfg).write([shuffled.iloc[:29], shuffled.iloc[29:]],
                                                        source={"kind": "test"}, validation={"success": True})
    assert again["snapshot_id"] == sid and _mtimes(handle.store.where(sid)) == before
    assert [x["snapshot_id"] for x in preferences.preference_snapshots(cfg).manifests()] == [sid]


def test_a_preference_snapshot_written_before_kinds_is_read_and_another_kind_is_refused(cfg, sample_rows):
    """A manifest without ``kind`` (and with the old faked use case name) reads as a preference snapshot and its
    content is recognised (a re-run writes nothing); a dataset snapshot in the preference store is refused by name."""
    import shutil

    from llmops.data.snapshots.handle import Snapshots
    from llmops.errors import DataError

    handle = preferences.preference_snapshots(cfg)
    frame = _pairs([f"question {i}?" for i in range(30)], 2, "b")
    m = handle.write_frame(frame, source={"kind": "test"}, validation={"success": True}, parents=[])
    folder = Path(handle.store.where(m["snapshot_id"]))
    legacy = {k: v for k, v in m.items() if k not in ("kind", "content_columns", "sort_key")}
    legacy["use_case"] = f"{cfg.name}_preferences"
    (folder / "manifest.json").write_text(json.dumps(legacy))

    fresh = preferences.preference_snapshots(cfg)
    assert fresh.manifest(m["snapshot_id"]) == legacy
    rows = pd.concat([preferences.load(cfg, m["snapshot_id"], s) for s in ("train", "eval")])
    assert sorted(rows["key"]) == sorted(frame["key"])
    before = _mtimes(folder)
    assert fresh.write_frame(frame, source={"kind": "test"}, validation={"success": True}) == legacy
    assert _mtimes(folder) == before

    dataset = Snapshots.of(cfg)
    did = dataset.write_frame(sample_rows.head(40), source={"kind": "test"},
                              validation={"success": True})["snapshot_id"]
    shutil.copytree(dataset.store.where(did), handle.store.root / did)
    with pytest.raises(DataError, match=rf"snapshot '{did}' at .*_preferences/{did} is a dataset snapshot, not a "
                                        "preferences one"):
        preferences.preference_snapshots(cfg).manifest(did)
