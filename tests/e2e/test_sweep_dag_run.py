"""A three-trial sweep through the real finetune DAG: mapped trials named after their overrides, one trial over
its budget (fails for good), the gate choosing between the other two, exactly one version registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import airflow_db
from tests.e2e.conftest import write_use_case
from tests.e2e.test_pipeline import _mlflow, _output, _task_states

pytestmark = pytest.mark.slow

TRIALS = [{"lora_r": 4}, {"lora_r": 8, "learning_rate": 1e-3}, {"epochs": 100}]  # the last is over budget
NAMES = ["r=4", "lr=0.001,r=8", "epochs=100"]


def test_a_sweep_registers_only_its_best_trial(airflow, tiny_model_dir):
    use_cases = Path(airflow.env["LLMOPS_USE_CASES_DIR"])
    data = {"path": str(Path(airflow.env["LLMOPS_DATA_ROOTS"]) / "data" / "qa.jsonl")}
    write_use_case(use_cases, "e2e_sweep", base_model=str(tiny_model_dir), source=data, retries=0,
                   training={"sweep": {"trials": TRIALS, "max_trials": 3, "max_parallel": 2},
                             "budget": {"max_tokens": 100_000}},
                   gate={"rules": [{"metric": "eval_loss", "vs": "champion", "ci": True}],
                         "promote_to_champion": True})
    assert airflow.dags_test("e2e_sweep__dataset").returncode == 0
    proc = airflow.dags_test("e2e_sweep__finetune")
    out = _output(proc)
    states = _task_states(airflow, "e2e_sweep__finetune")
    assert states["plan"] == "success" and states["reference"] == "success", (states, out[-4000:])
    assert states["gate"] == "success" and states["register"] == "success", (states, out[-4000:])

    finetune = airflow_db.map_indexes(airflow.env, "e2e_sweep__finetune", "finetune")
    assert finetune == {0: (NAMES[0], "success"), 1: (NAMES[1], "success"), 2: (NAMES[2], "failed")}, finetune
    evaluate = airflow_db.map_indexes(airflow.env, "e2e_sweep__finetune", "evaluate")
    assert {i: s for i, (_, s) in evaluate.items()} == {0: "success", 1: "success", 2: "skipped"}, evaluate
    assert [n for _, (n, _) in sorted(evaluate.items())] == NAMES
    assert "training.budget.max_tokens" in out

    run_dir = next((airflow.home / "runs" / "e2e_sweep").glob("*/sweep"))
    decision = json.loads(next(run_dir.parent.glob("trials/*/eval/report/decision.json")).read_text())
    assert decision["failed_trials"] == ["epochs=100"] and decision["winner"] in NAMES[:2]
    holm = decision["rules"][-1]
    assert holm["holm"]["divisor"] in (1, 2) and holm["passed"] is True, holm
    assert set(decision["trials"]) == set(NAMES[:2])
    comparison = (run_dir / "comparison" / "comparison.md").read_text()
    assert all(name in comparison for name in NAMES) and "(winner)" in comparison
    assert (run_dir / "comparison" / "loss_curves.png").stat().st_size > 0
    assert (run_dir / "comparison" / "eval_loss_vs_lora_r.png").exists()

    client = _mlflow(airflow)
    versions = client.search_model_versions("name = 'e2e_sweep-lora'")
    assert len(versions) == 1
    winner_run = client.get_run(versions[0].run_id)
    assert winner_run.info.run_name == decision["winner"]
    parent_id = winner_run.data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.data.tags["sweep.winner"] == decision["winner"]
    assert "base_eval_loss" in parent.data.metrics  # the references: scored once, on the parent run
    children = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    assert sorted(r.info.run_name for r in children) == sorted(NAMES)  # the failed trial's run is there too
    by_name = {r.info.run_name: r for r in children}
    assert by_name["epochs=100"].info.status == "FAILED"
    loser = next(n for n in NAMES[:2] if n != decision["winner"])
    assert by_name[loser].info.status == "FINISHED"  # its adapter stays as its run's artifact, not registered
    assert "adapter/adapter_model.safetensors" in {f.path for f in client.list_artifacts(by_name[loser].info.run_id,
                                                                                          "adapter")}
    assert {f.path for f in client.list_artifacts(parent_id, "sweep")} >= {"sweep/comparison.md",
                                                                             "sweep/loss_curves.png"}

    # the register task run again in the same DAG run registers no second version
    run_id = winner_run.data.tags["llmops.sweep_of"]
    again = airflow.run("tasks", "test", "e2e_sweep__finetune", "register", run_id)
    assert "registers no second version" in _output(again) or "already has version" in _output(again), \
        _output(again)[-3000:]
    assert len(client.search_model_versions("name = 'e2e_sweep-lora'")) == 1
