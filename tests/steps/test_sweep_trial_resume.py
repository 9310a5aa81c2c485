"""A sweep's trials train in their own folders: a retried trial resumes from its own newest checkpoint, and no
other trial ever picks up its checkpoints (their fingerprints differ, and so do their folders)."""

from __future__ import annotations

import json
import shutil

from llmops import paths
from llmops.config import load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.steps.finetune import run_finetune
from llmops.train import checkpoints
from llmops.train.lora import RESULT_FILE


def _result(cfg, name: str) -> dict:
    return json.loads((paths.trial_dir(cfg.name, "manual__1", name) / RESULT_FILE).read_text())


def test_a_retried_trial_resumes_from_its_own_checkpoint(use_case_file, tiny_model_dir, sample_rows):
    use_case_file("sweep_qa", {
        "base_model": str(tiny_model_dir), "training.max_train_rows": 24, "training.batch_size": 4,
        "training.max_seq_len": 96, "training.checkpoint_every_steps": 2, "training.keep_checkpoints": 3,
        "training.sweep": {"grid": {"lora_r": [4, 8]}}})
    cfg = load_by_name("sweep_qa")
    rows = sample_rows.head(40).assign(source_file="qa.jsonl", source_line=range(1, 41))
    sid = Snapshots.of(cfg).write_frame(rows, source={"kind": "files"}, validation={"success": True})["snapshot_id"]
    r4, r8 = ({**t, "snapshot_id": sid} for t in cfg.training.sweep.trials_list())
    assert (r4["name"], r8["name"]) == ("r=4", "r=8")

    first = run_finetune(cfg, params={}, event_extras=[], run_id="manual__1", trial=r4)
    folder = paths.trial_dir(cfg.name, "manual__1", "r=4")
    assert first.adapter_dir.startswith(str(folder)) and first.snapshot_id == sid
    done = _result(cfg, "r=4")
    assert done["steps"] == 6 and done["resumed_from_step"] is None
    # the task's process was killed after checkpoint-4: the newer checkpoint, the adapter and the result are gone
    shutil.rmtree(folder / "checkpoints" / "checkpoint-6")
    shutil.rmtree(first.adapter_dir)
    (folder / RESULT_FILE).unlink()

    retried = run_finetune(cfg, params={}, event_extras=[], run_id="manual__1", try_number=2, trial=r4)
    assert retried.adapter_dir == first.adapter_dir
    resumed = _result(cfg, "r=4")
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 6

    other = run_finetune(cfg, params={}, event_extras=[], run_id="manual__1", trial=r8)
    theirs = _result(cfg, "r=8")
    assert not other.adapter_dir.startswith(str(folder)) and theirs["resumed_from_step"] is None
    assert theirs["fingerprint"] != resumed["fingerprint"]
    assert checkpoints.list_checkpoints(paths.trial_dir(cfg.name, "manual__1", "r=8") / "checkpoints")
    config = next(paths.trial_dir(cfg.name, "manual__1", "r=8").rglob("adapter_config.json"))
    assert json.loads(config.read_text())["r"] == 8
