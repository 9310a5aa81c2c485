"""The sweep gate's plain functions: which trials finished, which one wins, Holm over them, all failed."""

from __future__ import annotations

import pytest

from llmops import paths
from llmops.atomic import write_json
from llmops.config import load_use_case
from llmops.evaluate.sweep import AllTrialsFailed, choose, primary_metric, sweep_decision
from llmops.payloads import Evaluation, Trained
from llmops.steps.sweep_gate import finished_trials

BASE = [2.0, 2.1, 1.9, 2.2, 2.0, 2.05, 1.95, 2.1]


def _trial(cfg, run_id: str, name: str, losses: list[float]) -> dict:
    """A finished trial's files as evaluate[trial] leaves them (references' and its own per-example losses)."""
    folder = paths.trial_dir(cfg.name, run_id, name)
    results = {"candidates": {
        "base": {"metrics": {"eval_loss": sum(BASE) / len(BASE)}, "per_example": {"eval_loss": BASE}},
        "challenger": {"metrics": {"eval_loss": sum(losses) / len(losses)}, "per_example": {"eval_loss": losses}},
    }, "champion_version": None, "rows": {"eval": len(BASE)}}
    write_json(folder / "eval" / "results.json", results)
    trained = Trained(snapshot_id="0123456789abcdef", mlflow_run_id=f"run-{name}", adapter_dir=str(folder / "adapter"),
                      base_model="tiny")
    ev = Evaluation(metrics={n: c["metrics"] for n, c in results["candidates"].items()},
                    results=str(folder / "eval" / "results.json"))
    write_json(folder / "eval" / "evaluation.json", {"trained": trained.to_xcom(), "evaluation": ev.to_xcom()})
    return {"trial": {"name": name, "overrides": {"lora_r": int(name.split("=")[1])}}}


@pytest.fixture
def cfg(use_case_file):
    return load_use_case(use_case_file("sweep_qa", {
        "training.sweep": {"grid": {"lora_r": [4, 8, 16]}},
        "gate.rules": [{"metric": "eval_loss", "vs": "champion", "ci": True}]}))


def test_the_best_finished_trial_wins_and_failed_ones_are_named(cfg):
    clearly = [x - 0.5 for x in BASE]  # better on every example
    slightly = [x - 0.3 + (0.4 if i % 2 else 0) for i, x in enumerate(BASE)]  # better on average, noisy
    trials = [_trial(cfg, "manual__1", "r=4", slightly), _trial(cfg, "manual__1", "r=8", clearly),
              {"trial": {"name": "r=16", "overrides": {"lora_r": 16}}}]  # no files: its training failed
    done, failed = finished_trials(cfg, trials, run_id="manual__1")
    assert sorted(done) == ["r=4", "r=8"] and failed == ["r=16"]
    assert primary_metric(cfg) == ("eval_loss", False, 0.0)
    winner, tests = choose(done, "eval_loss", False, 0.0, confidence=0.95, samples=500)
    assert winner == "r=8"
    assert tests["r=8"]["p"] == 0.0 and tests["r=8"]["divisor"] == 2 and tests["r=8"]["rejected"]
    assert tests["r=4"]["p"] > tests["r=8"]["p"]

    decision = sweep_decision(cfg, done, failed)
    assert decision["winner"] == "r=8" and decision["failed_trials"] == ["r=16"] and decision["passed"]
    holm = decision["rules"][-1]
    assert "best of 2 trials on eval_loss is r=8" in holm["reason"] and "alpha/2" in holm["reason"]


def test_all_trials_failed_fails_the_gate(cfg):
    trials = [{"trial": {"name": n, "overrides": {}}} for n in ("r=4", "r=8")]
    with pytest.raises(AllTrialsFailed, match=r"all 2 trials failed \(r=4, r=8\)"):
        sweep_decision(cfg, *finished_trials(cfg, trials, run_id="manual__2"))
