"""The XCom payloads between finetune, evaluate, gate and register: one typed definition each."""

from __future__ import annotations

import json

import pytest

from llmops.errors import PayloadError, PermanentError
from llmops.payloads import Decision, Evaluation, Trained


def test_a_payload_round_trips_through_json_with_its_details():
    xcom = {"snapshot_id": "4394c71abe63714e", "mlflow_run_id": "r1", "adapter_dir": "/runs/a/adapter",
            "base_model": "tiny", "snapshot_reason": "pinned", "train_loss": 0.25, "estimate": {"gpu_hours": 0.1}}
    trained = Trained.from_xcom(json.loads(json.dumps(xcom)))
    assert (trained.snapshot_id, trained.adapter_dir, trained.details["train_loss"]) == (
        "4394c71abe63714e", "/runs/a/adapter", 0.25)
    assert trained.to_xcom() == xcom
    assert Trained.from_xcom(trained) is trained


def test_a_missing_key_is_named_with_the_task_and_never_retried():
    with pytest.raises(PayloadError, match=r"Trained payload from the upstream task 'finetune' lacks "
                                           r"\['mlflow_run_id'\]") as e:
        Trained.from_xcom({"snapshot_id": "s", "adapter_dir": "a", "base_model": "b"})
    assert isinstance(e.value, PermanentError)  # the upstream payload will not change on a retry
    with pytest.raises(PayloadError, match=r"Evaluation payload from the upstream task 'evaluate' lacks "
                                           r"\['metrics'\]"):
        Evaluation.from_xcom(None)


def test_an_operator_fails_without_retry_on_a_payload_without_a_needed_key():
    from airflow.sdk.exceptions import AirflowFailException

    from llmops.operators import GateOperator

    op = GateOperator(task_id="gate", use_case="stackoverflow_qa", evaluation={"results": "/x/results.json"},
                      trained={"snapshot_id": "0123456789abcdef"})
    with pytest.raises(AirflowFailException, match=r"PayloadError: Evaluation payload from the upstream task "
                                                   r"'evaluate' lacks \['metrics'\]"):
        op.execute({"run_id": "manual__x"})


def test_a_decision_lists_the_failed_rules():
    d = Decision.from_xcom({"passed": False, "rules": [{"reason": "a", "passed": True},
                                                       {"reason": "b", "passed": False}], "reference": "base"})
    assert d.failed_reasons == ["b"] and d.to_xcom()["reference"] == "base"


def test_preferences_round_trip_through_xcom_serialisation_and_an_older_event_reads_back():
    from airflow.sdk.serde import deserialize, serialize

    from llmops.payloads import Preferences

    prefs = Preferences(preference_snapshot_id="0123456789abcdef", uri="file:///h/snapshots/qa_preferences/0123",
                        rows={"input": 9, "train": 6, "eval": 2}, interval={"start": "2026-03-02", "end": "2026-03-02"},
                        partition_key="2026-03-02T00:00:00", counts={"feedback": 9, "pairs": 5, "singles": 3},
                        model_versions=["1", "2"], inputs=["/h/serving_logs/qa/2026-03-02.jsonl"],
                        eval_snapshot_id="fedcba9876543210", eval_snapshot_uri="file:///h/snapshots/qa/fedc")
    xcom = deserialize(json.loads(json.dumps(serialize(prefs.to_xcom()))))
    assert Preferences.from_xcom(xcom) == prefs
    assert "kind" not in xcom and "snapshot_id" not in xcom  # the payload's type says what it is
    # an Asset event extra written before: a dataset snapshot payload marked details["kind"]
    older = {"snapshot_id": "0123456789abcdef", "uri": "file:///x", "rows": {"train": 6, "eval": 2},
             "interval": None, "partition_key": None, "preference_snapshot_id": "0123456789abcdef",
             "counts": {"feedback": 9, "pairs": 5, "singles": 3}, "model_versions": ["1"], "kind": "preferences"}
    old = Preferences.from_xcom(older)
    assert (old.preference_snapshot_id, old.counts["pairs"], old.inputs) == ("0123456789abcdef", 5, [])
    assert old.details == {"snapshot_id": "0123456789abcdef", "kind": "preferences"}
    assert old.to_xcom() == {**older, "inputs": [], "eval_snapshot_id": None, "eval_snapshot_uri": None}
    with pytest.raises(PayloadError, match=r"Preferences payload from the upstream task 'preferences' lacks "
                                           r"\['uri'\]"):
        Preferences.from_xcom({"preference_snapshot_id": "0123456789abcdef"})
