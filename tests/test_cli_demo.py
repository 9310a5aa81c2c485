"""The demo pins finetune to the snapshot its own dataset run produced, never the newest by creation time."""

from __future__ import annotations

import os
import time

from llmops import runs
from llmops.cli import _snapshot_of_run_since


def _run(use_case: str, run_id: str, snapshot_id: str | None, mtime: float) -> None:
    path = runs.record_step(use_case, run_id, "snapshot", {"snapshot_id": snapshot_id} if snapshot_id else {})
    os.utime(path, (mtime, mtime))


def test_the_dataset_run_of_this_demo_decides_not_the_newest_snapshot():
    now = time.time()
    # an earlier dataset run made the newest snapshot (a later partition); this demo's re-run of an older
    # partition wrote nothing new and recorded the existing, older snapshot's id
    _run("uc", "manual__earlier", "snap-newer-partition", now - 3600)
    _run("uc", "manual__this-demo", "snap-older-partition", now)
    assert _snapshot_of_run_since("uc", now - 60) == "snap-older-partition"


def test_a_run_without_a_snapshot_step_is_skipped_and_nothing_before_the_start_counts():
    now = time.time()
    _run("uc", "manual__before", "snap-before", now - 3600)
    assert _snapshot_of_run_since("uc", now - 60) is None  # nothing pinned: finetune picks as it always did
    _run("uc", "manual__a", "snap-a", now - 10)
    _run("uc", "manual__b", None, now)  # a newer run that recorded no snapshot (failed before it)
    assert _snapshot_of_run_since("uc", now - 60) == "snap-a"
    assert _snapshot_of_run_since("other_use_case", 0) is None
