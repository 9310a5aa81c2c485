"""DAG integrity: every use case gets its DAGs, they import cleanly without heavy libraries, with tags, retries
and Params."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmops.config import load_all

ROOT = Path(__file__).resolve().parents[1]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_every_use_case_has_a_dataset_and_a_finetune_dag(dagbag):
    names = [c.name for c in load_all()]
    assert names, "no use case in include/use_cases"
    for name in names:
        assert f"{name}__dataset" in dagbag.dags
        assert f"{name}__finetune" in dagbag.dags


CHAINS = {
    "__dataset": ["ingest", "validate", "snapshot"],
    "__rollback": ["rollback"],
    "__finetune": ["finetune", "evaluate", "gate", "register"],
    "__batch_predict": ["batch_predict"],
    "__monitoring": ["check_serving"],
    "__compare_prompts": ["compare_prompts"],
    "__export": ["export"],
    "__feedback": ["preferences"],
    "__index": ["corpus", "build", "evaluate", "gate", "publish"],
}


def test_tasks_have_retries_tags_and_the_expected_chain(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert "llmops" in dag.tags, dag_id
        assert all(t.retries >= 1 for t in dag.tasks), dag_id
        expected = next(chain for suffix, chain in CHAINS.items() if dag_id.endswith(suffix))
        assert sorted(dag.task_ids) == sorted(expected), dag_id
        for upstream, downstream in zip(expected, expected[1:], strict=False):
            assert upstream in dag.get_task(downstream).upstream_task_ids, (dag_id, upstream, downstream)


def test_finetune_params_have_types_for_the_trigger_form(dagbag):
    for name in (c.name for c in load_all()):
        params = dagbag.dags[f"{name}__finetune"].params
        schema = {k: params.get_param(k).schema for k in params}
        assert schema["base_model"]["type"] == "string"
        assert schema["snapshot_id"]["type"] == ["null", "string"]  # optional: the UI trigger form accepts it empty
        assert schema["epochs"]["type"] == "number"
        assert schema["learning_rate"]["type"] == "number"
        assert schema["lora_rank"]["type"] == "integer"
        assert all(s.get("title") for s in schema.values())


def test_finetune_dag_is_scheduled_on_the_dataset_asset(dagbag):
    for name in (c.name for c in load_all()):
        producer = dagbag.dags[f"{name}__dataset"].get_task("snapshot")
        consumer = dagbag.dags[f"{name}__finetune"]
        assert [a.uri for a in producer.outlets] == [f"llmops://datasets/{name}"]
        assert f"llmops://datasets/{name}" in str(consumer.timetable.asset_condition)


HEAVY = ("torch", "transformers", "great_expectations", "mlflow", "pandas")


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_without_heavy_imports(dag_file):
    """Parse in a fresh interpreter (as the dag processor does): its DAGs are made, and none of the heavy
    libraries (torch, transformers, great-expectations, MLflow, pandas) is imported at parse time; they are
    imported inside the tasks that use them."""
    code = textwrap.dedent(f"""
        import json, sys
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag({str(dag_file)!r})
        print(json.dumps({{"dags": sorted(bag.dags), "errors": {{str(k): v for k, v in bag.import_errors.items()}},
                          "heavy": [m for m in {HEAVY!r} if m in sys.modules]}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin",
                              "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"], "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["heavy"] == [], f"{dag_file.name} imports {result['heavy']} at parse time"
    if dag_file.name != "config_errors.py":  # that one makes DAGs only for broken use-case files
        assert result["dags"], f"{dag_file.name} made no DAG"


def test_params_use_the_name_rules_of_llmops_names(dagbag):
    """The trigger forms' patterns are the shapes the tasks check, from their one definition."""
    from llmops import names

    for name in (c.name for c in load_all()):
        finetune = dagbag.dags[f"{name}__finetune"].params
        assert finetune.get_param("snapshot_id").schema["pattern"] == names.SNAPSHOT_ID_RE.pattern
        version = dagbag.dags[f"{name}__rollback"].params.get_param("version").schema["pattern"]
        assert version == names.param_pattern(names.VERSION_RE, optional=True) == r"^([1-9][0-9]{0,8})?$"
        templates = dagbag.dags[f"{name}__compare_prompts"].params.get_param("templates").schema
        assert templates["items"]["pattern"] == names.TEMPLATE_PARAM_RE.pattern


def test_an_index_dag_only_for_use_cases_with_a_retrieval_block(dagbag):
    from llmops import names

    grounded = {c.name for c in load_all() if c.retrieval is not None}
    assert grounded, "the sample has a grounded use case"
    assert {d.removesuffix("__index") for d in dagbag.dags if d.endswith("__index")} == grounded
    for name in grounded:
        dag = dagbag.dags[f"{name}__index"]
        assert dag.params.get_param("snapshot_id").schema["pattern"] == names.param_pattern(names.SNAPSHOT_ID_RE,
                                                                                            optional=True)
        assert [a.uri for a in dag.get_task("publish").outlets] == [f"llmops://indexes/{name}"]


def test_a_broken_use_case_file_takes_down_only_its_own_dags(use_case_file):
    """A broken file beside a good one: the good use case's DAGs all load; the broken one is a placeholder DAG
    (tagged config-error) whose doc names the file and the field and whose only task fails without retry."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.exceptions import AirflowFailException

    use_case_file("stackoverflow_qa")
    bad = use_case_file("broken_case", {"training.epochs": -3})
    odd = bad.parent / "Team B (draft).yaml"  # not even a valid use-case name: still shown, under a safe DAG id
    odd.write_text("name: [unclosed\n")

    bag = DagBag(str(ROOT / "dags"))
    assert bag.import_errors == {}
    healthy = {d for d in bag.dags if d.startswith("stackoverflow_qa__")}
    assert healthy == {f"stackoverflow_qa__{k}" for k in ("dataset", "finetune", "rollback", "monitoring",
                                                          "compare_prompts", "batch_predict", "export",
                                                          "feedback")}
    assert not any(d.startswith("broken_case__") and not d.endswith("__config_error") for d in bag.dags)

    placeholder = bag.dags["broken_case__config_error"]
    assert placeholder.tags == {"llmops", "config-error"}
    assert placeholder.timetable.__class__.__name__ == "NullTimetable"
    assert str(bad) in placeholder.doc_md and "training.epochs: Input should be greater than 0" in placeholder.doc_md
    task = placeholder.get_task("config_error")
    assert task.retries == 0
    with pytest.raises(AirflowFailException, match=r"broken_case\.yaml: training\.epochs"):
        task.execute({})

    odd_ids = [d for d in bag.dags if d.endswith("__config_error") and d != "broken_case__config_error"]
    assert len(odd_ids) == 1 and odd_ids[0].startswith("team_b_draft_")
    assert "is not valid YAML" in bag.dags[odd_ids[0]].doc_md and str(odd) in bag.dags[odd_ids[0]].doc_md


def test_a_judged_use_case_gets_the_approval_step_for_an_untrusted_judge(use_case_file):
    """With a pairwise judge the finetune DAG has the HITL `approve` task (asking only when the gate hands the
    decision to a person), with optional per-pair preference fields that become new human labels."""
    from airflow.dag_processing.dagbag import DagBag

    use_case_file("stackoverflow_qa", {"evaluation.judge": {"enabled": True}})
    dag = DagBag(str(ROOT / "dags")).dags["stackoverflow_qa__finetune"]
    approve = dag.get_task("approve")
    assert approve.always is False and approve.review_pairs == 3
    assert set(approve.params) >= {"preference_1", "preference_2", "preference_3"}
    assert {t.task_id for t in approve.downstream_list} == {"register"}
