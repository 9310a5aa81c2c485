"""The sweep shape of the finetune DAG, as parsed: mapped finetune/evaluate with named indices and throttles."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_use_case_with_a_sweep_gets_the_mapped_shape(use_case_file):
    from airflow.dag_processing.dagbag import DagBag

    use_case_file("plain_qa")
    use_case_file("sweep_qa", {"training.sweep": {"grid": {"lora_r": [4, 8]}, "max_parallel": 2},
                               "training.pool": "gpu"})
    bag = DagBag(str(ROOT / "dags" / "finetune.py"))
    assert bag.import_errors == {}
    plain, sweep = bag.dags["plain_qa__finetune"], bag.dags["sweep_qa__finetune"]
    assert sorted(plain.task_ids) == ["evaluate", "finetune", "gate", "register"]  # no sweep: as before
    assert "sweep" not in plain.params
    assert sorted(sweep.task_ids) == ["evaluate", "finetune", "gate", "plan", "reference", "register"]
    assert sweep.params.get_param("sweep").schema["type"] == ["null", "object", "array", "string"]
    for task_id in ("finetune", "evaluate"):
        task = sweep.get_task(task_id)
        assert type(task).__name__ == "MappedOperator", task_id
        assert task.map_index_template == "{{ task.trial['name'] }}"
        assert task.partial_kwargs["max_active_tis_per_dagrun"] == 2
    assert sweep.get_task("finetune").partial_kwargs["pool"] == "gpu"
    assert sweep.get_task("evaluate").partial_kwargs["trigger_rule"] == "all_done"
    assert sweep.get_task("evaluate").upstream_task_ids == {"finetune", "reference", "plan"}
    assert sweep.get_task("gate").trigger_rule == "all_done"
    assert sweep.get_task("register").upstream_task_ids == {"gate"}
