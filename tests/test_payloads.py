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
