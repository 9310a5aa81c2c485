"""Each step's lineage from its typed payloads, joined by identifiers, and as the provider's OperatorLineage."""

from __future__ import annotations

import json

from llmops.lineage import facets, steps
from llmops.lineage.steps import StepLineage
from llmops.payloads import (
    Decision,
    Evaluation,
    Predictions,
    Registered,
    RolledBack,
    Snapshot,
    Staged,
    Trained,
    Validation,
)

REGISTRY = "postgresql://mlflow:pw@db/mlflow"


def _key(ref):
    return ref.namespace, ref.name


def _ingest(staged: dict) -> StepLineage:
    staged = Staged.from_xcom(staged)
    return StepLineage.of(steps.ingest_inputs(staged), steps.ingest_outputs(staged))


def _validate(validation: dict, ingested: dict) -> StepLineage:
    validation = Validation.from_xcom(validation)
    return StepLineage.of(steps.validate_inputs(Staged.from_xcom(ingested), validation),
                          steps.validate_outputs(validation))


def _snapshot(snapshot: dict, ingested: dict, manifest: dict) -> StepLineage:
    return StepLineage.of(steps.snapshot_inputs(Staged.from_xcom(ingested)),
                          steps.snapshot_outputs(Snapshot.from_xcom(snapshot), manifest))


def _finetune(trained: dict, snap_uri: str) -> StepLineage:
    trained = Trained.from_xcom(trained)
    return StepLineage.of(steps.finetune_inputs(trained, snap_uri), steps.finetune_outputs(trained, REGISTRY))


def _register(registered: dict, trained: dict, snap_uri: str) -> StepLineage:
    trained = Trained.from_xcom(trained)
    return StepLineage.of(steps.register_inputs(trained, snap_uri),
                          steps.register_outputs(Registered.from_xcom(registered), trained, REGISTRY))


def _payloads(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"name": "s", "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "prompt"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 5}}]}))
    run = tmp_path / "runs" / "qa" / "r1"
    ingested = {"uri": str(run / "ingested.parquet"), "rows": 10, "partition_key": None, "interval": None,
                "source": {"kind": "files", "path": "data/*.jsonl", "files": ["/data/a.jsonl", "/data/b.jsonl"]},
                "steps": []}
    validation = {"suite": "s", "suite_path": str(suite), "rows": 10, "success": True, "evaluated": 2,
                  "successful": 2, "failed": [], "warnings": [], "report": (run / "validation/index.html").as_uri()}
    snap_uri = (tmp_path / "snapshots" / "qa" / "abc").as_uri()
    snapshot = {"snapshot_id": "abc", "uri": snap_uri, "rows": {"input": 10, "train": 9, "eval": 1}}
    trained = {"snapshot_id": "abc", "adapter_dir": str(run / "adapter"), "base_model": "org/base",
               "mlflow_run_id": "m1", "snapshot_reason": "newest"}
    return ingested, validation, snapshot, snap_uri, trained


def test_steps_join_from_source_files_to_the_model_version(tmp_path):
    ingested, validation, snapshot, snap_uri, trained = _payloads(tmp_path)
    ing = _ingest(ingested)
    val = _validate(validation, ingested)
    snap = _snapshot(snapshot, ingested, {"columns": {"prompt": "str"}, "parents": [], "validation": {}})
    fine = _finetune(trained, snap_uri)
    reg = _register({"name": "qa-lora", "version": "2", "aliases": ["challenger"]}, trained, snap_uri)

    assert [_key(r) for r in ing.inputs] == [("file", "/data/a.jsonl"), ("file", "/data/b.jsonl")]
    assert _key(val.inputs[0]) == _key(snap.inputs[0]) == _key(ing.outputs[0])
    assert _key(fine.inputs[0]) == _key(reg.inputs[0]) == _key(snap.outputs[0])
    assert _key(reg.inputs[2]) == _key(fine.outputs[0])
    assert _key(reg.outputs[0]) == ("postgresql://db/mlflow", "qa-lora/2")
    assert snap.outputs[0].rows == 10 and snap.outputs[0].version == "abc"
    assert val.inputs[0].assertions == [{"assertion": "expect_column_values_to_not_be_null", "success": True,
                                         "column": "prompt"},
                                        {"assertion": "expect_table_row_count_to_be_between", "success": True,
                                         "column": None}]
    assert "pw" not in json.dumps(fine.run) + json.dumps(reg.outputs[0].properties)


def test_a_failed_expectation_is_a_failed_assertion(tmp_path):
    ingested, validation, *_ = _payloads(tmp_path)
    validation["failed"] = [{"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "prompt"}}]
    assertions = _validate(validation, ingested).inputs[0].assertions
    assert [a["success"] for a in assertions] == [False, True]


def test_bigquery_ingest_reports_tables_and_the_query(tmp_path):
    query = "SELECT title AS q, body AS a FROM `p.so.posts` WHERE created >= @start AND created < @end"
    payload = {"uri": str(tmp_path / "staged.parquet"), "rows": 3,
               "source": {"kind": "bigquery", "query": query, "parameters": {"start": "2026-01-05"}}}
    lineage = _ingest(payload)
    assert [_key(r) for r in lineage.inputs] == [("bigquery", "p.so.posts")]
    ol = facets.operator_lineage(lineage)
    assert ol.job_facets["sql"].query == query
    assert ol.run_facets["llmops"].properties["parameters"] == {"start": "2026-01-05"}


def test_operator_lineage_has_standard_facets(tmp_path):
    ingested, validation, snapshot, snap_uri, trained = _payloads(tmp_path)
    manifest = {"columns": {"prompt": "str", "response": "str"}, "parents": ["old"], "validation": {"success": True}}
    ol = facets.operator_lineage(_snapshot(snapshot, ingested, manifest))
    out = ol.outputs[0]
    assert out.namespace == "file" and out.name == str(tmp_path / "snapshots" / "qa" / "abc")
    assert [f.name for f in out.facets["schema"].fields] == ["prompt", "response"]
    assert out.facets["version"].datasetVersion == "abc"
    assert out.outputFacets["outputStatistics"].rowCount == 10
    assert out.facets["llmops"].properties["parents"] == ["old"]
    val = facets.operator_lineage(_validate(validation, ingested)).inputs[0]
    assert [a.success for a in val.inputFacets["dataQualityAssertions"].assertions] == [True, True]
    assert val.inputFacets["dataQualityMetrics"].rowCount == 10


def test_rollback_and_batch_predictions_name_model_versions(tmp_path):
    rolled = RolledBack.from_xcom({"name": "qa-lora", "version": "1", "from_version": "2", "moved": True})
    rb = StepLineage.of(steps.rollback_inputs(rolled, REGISTRY), steps.rollback_outputs(rolled, REGISTRY))
    assert steps.rollback_inputs(None, REGISTRY) == []  # the START event: the version moved from is not known yet
    assert [_key(r) for r in rb.inputs] == [("postgresql://db/mlflow", "qa-lora/2")]
    assert _key(rb.outputs[0]) == ("postgresql://db/mlflow", "qa-lora/1")
    out = (tmp_path / "predictions" / "v1-x").as_uri()
    predictions = Predictions.from_xcom({"model_name": "qa-lora", "model_version": "1", "rows": 4, "blocked": 0,
                                         "input_files": ["/in/q.jsonl"], "uri": out})
    bp = StepLineage.of(steps.batch_predict_inputs(predictions, REGISTRY), steps.batch_predict_outputs(predictions))
    assert [_key(r) for r in bp.inputs] == [("postgresql://db/mlflow", "qa-lora/1"), ("file", "/in/q.jsonl")]
    assert _key(bp.outputs[0]) == ("file", str(tmp_path / "predictions" / "v1-x")) and bp.outputs[0].rows == 4


def test_evaluate_and_gate_read_the_eval_split_and_write_the_decision(tmp_path):
    *_, snap_uri, trained = _payloads(tmp_path)
    results = tmp_path / "runs" / "qa" / "r1" / "eval" / "results.json"
    evaluation = {"metrics": {"challenger": {"eval_loss": 0.5}}, "champion_version": "1",
                  "rows": {"eval": 48, "golden": 20}, "results": str(results)}
    typed_trained, typed_evaluation = Trained.from_xcom(trained), Evaluation.from_xcom(evaluation)
    ev = StepLineage.of(steps.evaluate_inputs(typed_trained, snap_uri, REGISTRY, "qa-lora", typed_evaluation),
                        steps.evaluate_outputs(typed_evaluation, typed_trained))
    before = steps.evaluate_inputs(typed_trained, snap_uri, REGISTRY, "qa-lora")  # START: no champion yet
    assert [_key(r) for r in before] == [_key(r) for r in ev.inputs[:2]]
    assert [_key(r) for r in ev.inputs] == [("file", str(tmp_path / "snapshots" / "qa" / "abc")),
                                           ("file", trained["adapter_dir"]), ("postgresql://db/mlflow", "qa-lora/1")]
    assert ev.outputs[0].rows == 48
    decision = {"passed": False, "reference": "champion", "report": str(results.parent / "report" / "report.md"),
                "rules": [{"reason": "token_f1 = 0.1 fails >= 0.2", "passed": False}]}
    g = StepLineage.of(steps.gate_inputs(typed_evaluation), steps.gate_outputs(Decision.from_xcom(decision)))
    assert _key(g.inputs[0]) == _key(ev.outputs[0])
    assert g.outputs[0].name == str(results.parent / "report" / "decision.json")
    assert g.run["gate"]["rules"] == [{"rule": "token_f1 = 0.1 fails >= 0.2", "passed": False}]
    ol = facets.operator_lineage(ev)
    assert ol.outputs[0].outputFacets["outputStatistics"].rowCount == 48


def test_operators_name_their_inputs_in_the_start_event(tmp_path):
    """What the provider calls when a task starts: the inputs from the rendered upstream payloads, no outputs;
    an unrendered payload gives an empty (not a failing) START lineage."""
    from llmops.operators.data import SnapshotOperator, ValidateOperator
    from llmops.operators.evaluation import EvaluateOperator, GateOperator
    from llmops.operators.register import RegisterOperator

    ingested, validation, snapshot, snap_uri, trained = _payloads(tmp_path)
    trained = {**trained, "snapshot_id": "0123456789abcdef"}
    evaluation = {"metrics": {}, "results": str(tmp_path / "eval" / "results.json")}
    uc = "stackoverflow_qa"
    ops = {
        "validate": ValidateOperator(task_id="validate", use_case=uc, ingested=ingested),
        "snapshot": SnapshotOperator(task_id="snapshot", use_case=uc, ingested=ingested, validation=validation),
        "evaluate": EvaluateOperator(task_id="evaluate", use_case=uc, trained=trained),
        "gate": GateOperator(task_id="gate", use_case=uc, evaluation=evaluation, trained=trained),
        "register": RegisterOperator(task_id="register", use_case=uc, decision={}, trained=trained,
                                     evaluation=evaluation),
    }
    started = {task: op.get_openlineage_facets_on_start() for task, op in ops.items()}
    assert all(not lin.outputs for lin in started.values())
    staged = ("file", ingested["uri"])
    assert [(d.namespace, d.name) for d in started["validate"].inputs] == [staged]
    assert [(d.namespace, d.name) for d in started["snapshot"].inputs] == [staged]
    assert [(d.namespace, d.name) for d in started["gate"].inputs] == [("file", evaluation["results"])]
    snap = started["register"].inputs[0]
    assert snap.name.endswith("/snapshots/stackoverflow_qa/0123456789abcdef")
    assert snap.facets["version"].datasetVersion == "0123456789abcdef"
    assert [(d.namespace, d.name) for d in started["register"].inputs[1:]] == [
        ("huggingface", "org/base"), ("file", trained["adapter_dir"])]
    assert [d.name for d in started["evaluate"].inputs] == [snap.name, trained["adapter_dir"]]
    unrendered = RegisterOperator(task_id="r2", use_case=uc, decision={}, trained="{{ ti.xcom_pull('x') }}",
                                  evaluation={})
    assert unrendered.get_openlineage_facets_on_start().inputs == []
