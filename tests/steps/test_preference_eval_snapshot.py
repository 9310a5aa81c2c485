"""A preference run picks the dataset snapshot it is evaluated on without writing one: with no champion and
``snapshots.train_on: last_n`` it takes the newest dataset snapshot, and no union of the last N is written."""

from __future__ import annotations

import time

import pytest

from llmops.config import load_use_case


def test_the_eval_snapshot_is_picked_without_writing_a_union(use_case_file, sample_rows, monkeypatch):
    """No champion and ``snapshots.train_on: last_n``: the preference run is evaluated on the newest dataset
    snapshot, and picking it writes nothing (the union of the last N is for supervised runs)."""
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.steps import preference_tune
    from tests.data.test_preferences import _pairs

    cfg = load_use_case(use_case_file(changes={"training.method": "dpo", "snapshots.train_on": "last_n",
                                               "snapshots.last_n": 2}))
    dataset, ids = Snapshots.of(cfg), []
    for i in range(2):
        if ids:
            time.sleep(1.1)  # manifests record created_at to the second: the second snapshot is the newest
        ids.append(dataset.write_frame(sample_rows.iloc[60 * i:60 * (i + 1)], source={"kind": "test"},
                                       validation={"success": True},
                                       interval={"start": f"2026-03-0{i + 1}", "end": f"2026-03-0{i + 2}"}
                                       )["snapshot_id"])
    prefs = preferences.preference_snapshots(cfg).write_frame(
        _pairs([f"question {i}?" for i in range(12)], 1, "a"), source={"kind": "test"}, validation={"success": True})
    seen = {}

    class Picked(Exception):
        pass

    def stop(cfg, run_id, snapshot_id, *args, **kwargs):
        seen["eval"] = snapshot_id
        raise Picked

    monkeypatch.setattr(preference_tune, "lineage_of", stop)  # the run stops once the eval snapshot is picked
    with pytest.raises(Picked):
        preference_tune.run_preference_tune(cfg, params={"preference_snapshot_id": prefs["snapshot_id"]},
                                            event_extras=[], run_id="dpo_pick")
    assert seen["eval"] == ids[-1]
    assert sorted(Snapshots.of(cfg).store.ids()) == sorted(ids)  # no union snapshot written
