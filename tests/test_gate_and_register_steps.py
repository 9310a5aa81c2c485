"""The gate and register steps as plain functions, without Airflow: what the operators only wire.

Real MLflow (SQLite in the test's LLMOPS_HOME), a real results file, the stackoverflow_qa gate rules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmops import registry, tracking
from llmops.config import load_by_name
from llmops.payloads import Decision, Evaluation


def _evaluation(tmp_path, challenger_loss: float) -> Evaluation:
    rng = np.random.default_rng(0)
    per = {"base": {"eval_loss": list(rng.normal(3.0, 0.1, 40)), "token_f1": list(rng.uniform(0, 0.1, 40))},
           "challenger": {"eval_loss": list(rng.normal(challenger_loss, 0.1, 40)),
                          "token_f1": list(rng.uniform(0.3, 0.5, 40))}}
    metrics = {name: {"eval_loss": float(np.mean(p["eval_loss"])), "token_f1": float(np.mean(p["token_f1"])),
                      "unsafe_rate": 0.0} for name, p in per.items()}
    samples = [{"prompt": "How do I sort?", "reference": "sorted(x)", "prediction": "use sorted", "set": "eval"}]
    results = {"rows": {"eval": 40}, "champion_version": None,
               "candidates": {n: {"metrics": metrics[n], "per_example": per[n], "samples": samples} for n in per}}
    path = tmp_path / "eval" / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(results))
    return Evaluation.from_xcom({"metrics": metrics, "results": str(path), "champion_version": None,
                                 "rows": results["rows"]})


@pytest.fixture
def cfg():
    return load_by_name("stackoverflow_qa")


def test_a_passing_gate_registers_one_version_with_its_lineage_tags(tmp_path, cfg, fake_adapter):
    from llmops.steps.gate import run_gate
    from llmops.steps.register import refusal_reasons, register_trained

    trained = fake_adapter(cfg.name, base_model_revision="gguf-sha256:ab:Q4_1")
    evaluation = _evaluation(tmp_path, challenger_loss=2.0)
    decision = run_gate(cfg, evaluation, trained, run_id="manual__1")
    assert isinstance(decision, Decision) and decision.passed and refusal_reasons(decision) == []
    assert len(decision.rules) == len(cfg.gate.rules)
    report = tmp_path / "eval" / "report"
    assert (report / "report.md").is_file() and json.loads((report / "decision.json").read_text())["passed"]
    assert tracking.client().get_run(trained.mlflow_run_id).data.tags["gate.decision"] == "PASSED"

    result = register_trained(cfg, trained, evaluation, decision, approval={"responded_by_user": "ana"})
    again = register_trained(cfg, trained, evaluation, decision)  # a retry converges on the same version
    assert result["version"] == again["version"] == "1"
    tags = tracking.client().get_model_version(cfg.model_name, "1").tags
    assert tags["snapshot_id"] == "0123456789abcdef" and tags["base_model_revision"] == "gguf-sha256:ab:Q4_1"
    assert tags["approved_by"] == "ana" and tags["gate.reference"] == "base" and tags["metric.token_f1"]
    assert registry.alias_version(cfg.model_name, "champion") == "1"


def test_a_rejecting_gate_gives_its_reasons_and_nothing_is_registered(tmp_path, cfg, fake_adapter):
    from llmops.steps.gate import run_gate
    from llmops.steps.register import refusal_reasons

    trained, evaluation = fake_adapter(cfg.name), _evaluation(tmp_path, challenger_loss=3.5)
    decision = run_gate(cfg, evaluation, trained, run_id="manual__1")
    reasons = refusal_reasons(decision)
    assert not decision.passed and reasons and all("eval_loss" in r for r in reasons)
    assert tracking.client().get_run(trained.mlflow_run_id).data.tags["gate.decision"] == "REJECTED"
    assert registry.alias_version(cfg.model_name, "champion") is None
    assert refusal_reasons(Decision.from_xcom({"passed": False, "rules": []})) == ["no gate rules (fail-closed)"]
