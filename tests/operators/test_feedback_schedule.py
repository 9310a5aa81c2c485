"""Which Asset schedules preference tuning: the feedback DAG's preference Asset for dpo / kto, the dataset Asset
for sft; the feedback DAG itself runs on daily partitions. Which operator trains is chosen where the DAG is built."""

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


@pytest.mark.parametrize(("method", "operator"), [("sft", "FinetuneOperator"), ("dpo", "PreferenceTuneOperator"),
                                                  ("kto", "PreferenceTuneOperator")])
def test_the_finetune_dag_trains_with_the_methods_operator(use_case_file, method, operator):
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    use_case_file("stackoverflow_qa", {"training.method": method})
    dag_file = Path(__file__).resolve().parents[2] / "dags" / "finetune.py"
    dag = DagBag(str(dag_file)).dags["stackoverflow_qa__finetune"]
    assert type(dag.get_task("finetune")).__name__ == operator


def test_the_sft_step_refuses_a_preference_method(use_case_file):
    from llmops.errors import ConfigError
    from llmops.steps.finetune import run_finetune

    cfg = load_use_case(use_case_file(changes={"training.method": "dpo"}))
    with pytest.raises(ConfigError, match="training.method dpo: .*run_preference_tune"):
        run_finetune(cfg, params={}, event_extras=[], run_id="manual__1")


def test_the_preference_operator_hands_the_run_to_the_preference_step(use_case_file, monkeypatch):
    from types import SimpleNamespace

    from llmops.operators import PreferenceTuneOperator
    from llmops.steps import preference_tune

    seen = {}
    monkeypatch.setattr(preference_tune, "run_preference_tune", lambda cfg, **kw: seen.update(cfg=cfg, **kw) or "ok")
    cfg = load_use_case(use_case_file(changes={"training.method": "kto"}))
    extra = {"preference_snapshot_id": "ab" * 8}
    context = {"params": {"epochs": 1}, "run_id": "manual__1", "ti": SimpleNamespace(try_number=2),
               "triggering_asset_events": {"preferences": [SimpleNamespace(extra=extra)]}}
    assert PreferenceTuneOperator(task_id="finetune", use_case=cfg.name).run_step(context, cfg) == "ok"
    assert seen == {"cfg": cfg, "params": {"epochs": 1}, "event_extras": [extra], "run_id": "manual__1",
                    "try_number": 2}
