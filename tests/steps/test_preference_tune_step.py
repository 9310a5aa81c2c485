"""The feedback and finetune steps with ``training.method: dpo``: feedback files -> preference snapshot (its
payload is the Asset event's extra) -> DPO on top of the registered champion (a real MLflow registry), evaluated
on the champion's dataset snapshot; the adapter and the version tags record method, preference snapshot and
reference version. Too few rows skips the feedback task with the count."""

from __future__ import annotations

import pytest

from llmops.config import load_use_case
from llmops.errors import NothingToDo
from tests.data.test_preferences import DAY, rated, served


@pytest.fixture
def cfg(use_case_file, tiny_model_dir):
    return load_use_case(use_case_file(changes={
        "base_model": str(tiny_model_dir), "feedback.min_rows": 4, "training.method": "dpo",
        "training.max_seq_len": 64, "training.batch_size": 4, "training.epochs": 1, "training.learning_rate": 2e-3,
        "training.checkpoint_every_steps": 0, "training.queue": "default", "training.pool": "default_pool"}))


def test_feedback_then_dpo_on_the_champion(cfg, sample_rows, adapters):
    from llmops import registry, tracking
    from llmops.data.snapshots.handle import Snapshots
    from llmops.model import loading
    from llmops.payloads import Decision, Evaluation
    from llmops.steps.feedback import build_preferences
    from llmops.steps.preference_tune import run_preference_tune
    from llmops.steps.register import version_tags

    dataset = Snapshots.of(cfg).write_frame(sample_rows.head(200), source={"kind": "test"},
                                            validation={"success": True})
    run = tracking.run_for_dag_run(cfg.name, "champion_run")
    tracking.log_artifacts(run, adapters["champion"], "adapter")
    champion = registry.register_adapter(cfg.model_name, run_id=run, artifact_path="adapter", promote=True,
                                         tags={"snapshot_id": dataset["snapshot_id"]})["version"]
    rows = sample_rows.iloc[200:208].reset_index(drop=True)
    for i, r in rows.iterrows():  # each documented answer rated up, another question's answer rated down
        rated(served(2 * i, r["prompt"], r["response"]), 1)
        rated(served(2 * i + 1, r["prompt"], rows["response"].iloc[i - 1]), -1)

    with pytest.raises(NothingToDo, match=r"0 preference row\(s\).*min_rows is 4"):
        build_preferences(cfg, partition_key="2026-03-01T00:00:00", run_id="feedback_empty")
    snap = build_preferences(cfg, partition_key=f"{DAY}T00:00:00", run_id="feedback_1")
    extra = snap.to_xcom()
    assert extra["counts"]["pairs"] == 8 and extra["model_versions"] == ["1"]

    trained = run_preference_tune(cfg, params={}, event_extras=[extra], run_id="dpo_1")
    assert trained.snapshot_id == dataset["snapshot_id"]  # evaluated where the champion was
    assert trained.details["method"] == "dpo" and trained.details["reference_version"] == champion
    assert trained.details["preference_snapshot_id"] == snap.preference_snapshot_id
    meta = loading.adapter_metadata(trained.adapter_dir)
    assert (meta["training_method"], meta["preference_snapshot_id"], meta["reference_version"]) == (
        "dpo", snap.preference_snapshot_id, champion)
    tags = version_tags(cfg, meta, Evaluation(metrics={"challenger": {}}),
                        Decision(passed=True, rules=[], reference="champion", report_artifact=""), None)
    assert (tags["training_method"], tags["preference_snapshot_id"], tags["reference_version"]) == (
        "dpo", snap.preference_snapshot_id, champion)
