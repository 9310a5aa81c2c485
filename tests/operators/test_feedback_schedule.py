"""Which Asset schedules preference tuning: the feedback DAG's preference Asset for dpo / kto, the dataset Asset
for sft; the feedback DAG itself runs on daily partitions."""

from __future__ import annotations

import pytest

from llmops.config import load_use_case
from llmops.operators.common import dataset_schedule, feedback_timetable


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_preference_methods_run_on_the_preference_asset(use_case_file, method):
    cfg = load_use_case(use_case_file(changes={"training.method": method}))
    assert "llmops://preferences/stackoverflow_qa" in str(dataset_schedule(cfg).asset_condition)
    assert "llmops://datasets/" not in str(dataset_schedule(cfg).asset_condition)
    assert type(feedback_timetable(cfg)).__name__ == "CronPartitionTimetable"


def test_sft_stays_on_the_dataset_asset_and_feedback_can_be_manual(use_case_file):
    cfg = load_use_case(use_case_file(changes={"feedback.schedule": None}))
    assert "llmops://datasets/stackoverflow_qa" in str(dataset_schedule(cfg).asset_condition)
    assert feedback_timetable(cfg) is None
