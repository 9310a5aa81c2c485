"""What each plot of the LLMOps view shows, on plain data: no Airflow, MLflow or HTTP (the module imports none)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from llmops.view import plots

ROOT = Path(__file__).resolve().parents[2]


def test_the_data_module_imports_without_airflow_mlflow_or_fastapi():
    code = ("import sys, llmops.view.plots; "
            "print([m for m in sys.modules if m.split('.')[0] in ('airflow', 'mlflow', 'fastapi', 'starlette')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "plugins")})
    assert out.stdout.strip() == "[]"


def _version(n, aliases=(), **metrics):
    return {"version": str(n), "aliases": list(aliases), "metrics": {k: str(v) for k, v in metrics.items()},
            "created_at": 1000 + n}


def test_versions_over_time_marks_champion_and_challenger_with_intervals():
    versions = [_version(3, ["challenger"], token_f1=0.4), _version(2, ["champion"], token_f1=0.35, eval_loss=1.2),
                _version(1, token_f1=0.3)]
    out = plots.versions_over_time(versions, ["token_f1", "eval_loss_improvement"], {"2": {"token_f1": (0.3, 0.4)}})
    [series] = out["series"]
    assert series["metric"] == "token_f1" and out["note"] is None
    assert [(p["x"], p["y"], p["role"]) for p in series["points"]] == \
        [(1, 0.3, "previous"), (2, 0.35, "champion"), (3, 0.4, "challenger")]
    assert (series["points"][1]["low"], series["points"][1]["high"]) == (0.3, 0.4)
    assert series["points"][0]["low"] is None


def test_versions_over_time_without_versions_or_gate_metrics_says_so():
    assert plots.versions_over_time([], ["token_f1"])["note"].startswith("no registered versions")
    out = plots.versions_over_time([_version(1, token_f1="nan", rouge_l=0.2)], ["eval_loss_improvement"])
    assert "no gate rule names" in out["note"] and [s["metric"] for s in out["series"]] == ["rouge_l", "token_f1"]
    assert out["series"][1]["points"] == []  # NaN is not plotted
    assert plots.role(["champion", "challenger"]) == "champion"


def test_the_gate_forest_splits_relative_and_absolute_rules_and_reports_the_judge():
    decision = {"passed": False, "rules": [
        {"metric": "token_f1", "vs": "champion", "reference": "champion", "improvement": 0.02, "ci_low": -0.01,
         "ci_high": 0.05, "margin": 0.01, "passed": False, "reason": "r1"},
        {"metric": "unsafe_rate", "vs": None, "min": None, "max": 0.05, "value": 0.0, "passed": True, "reason": "r2"},
        {"metric": "rouge_l", "vs": None, "min": 0.1, "max": 0.9, "value": None, "passed": False, "reason": "r3"}],
        "judge": {"model": "j", "reference": "champion", "trusted": True, "reason": "ok",
                  "metrics": {"judge.win_rate": 0.6, "judge.win_rate_low": 0.5, "judge.win_rate_high": 0.7,
                              "judge.kappa": 0.4, "judge.pairs": 20, "judge.labels": 10}}}
    out = plots.gate_forest(decision)
    [rel] = out["relative"]
    assert (rel["label"], rel["estimate"], rel["low"], rel["high"], rel["thresholds"], rel["passed"]) == \
        ("token_f1 vs champion", 0.02, -0.01, 0.05, [0.01], False)
    assert [(a["label"], a["estimate"], a["thresholds"]) for a in out["absolute"]] == \
        [("unsafe_rate", 0.0, [0.05]), ("rouge_l", None, [0.1, 0.9])]
    assert "no value for rouge_l" in out["note"]
    assert out["judge"]["win_rate"] == 0.6 and out["judge"]["kappa"] == 0.4 and out["judge_note"] is None


def test_a_gate_without_a_judge_or_without_a_decision_says_so():
    out = plots.gate_forest({"passed": True, "rules": []})
    assert out["judge"] is None and out["judge_note"] == "no judge ran for this gate"
    assert "no rules" in out["note"]
    assert plots.gate_forest(None)["note"] == "no gate decision recorded for this run"


def test_training_loss_overlays_runs_and_names_those_without_eval_loss():
    out = plots.training_loss({"t1": {"train_loss": [(2, 1.5), (1, 2.0)], "train_eval_loss": [(2, 1.8)]},
                               "t2": {"train_loss": [(1, 2.2), (2, float("nan"))], "train_eval_loss": []}})
    assert [r["run"] for r in out["runs"]] == ["t1", "t2"]
    assert out["runs"][0]["train"] == [{"x": 1, "y": 2.0}, {"x": 2, "y": 1.5}]
    assert out["runs"][0]["eval"] == [{"x": 2, "y": 1.8}] and out["runs"][1]["train"] == [{"x": 1, "y": 2.2}]
    assert out["note"] == "no eval loss logged for t2"
    assert plots.training_loss({})["note"] == "no training loss logged for this run"


def test_sweep_knobs_put_the_metric_against_each_knob():
    decision = {"metric": "token_f1", "winner": "b", "failed_trials": ["c"], "trials": {
        "a": {"overrides": {"learning_rate": 1e-4, "lora_r": 8}, "value": 0.3},
        "b": {"overrides": {"learning_rate": 2e-4, "lora_r": 8}, "value": 0.4}}}
    out = plots.sweep_knobs(decision)
    assert sorted(out["knobs"]) == ["learning_rate", "lora_r"]
    assert out["knobs"]["learning_rate"] == [{"x": 1e-4, "y": 0.3, "trial": "a", "winner": False},
                                             {"x": 2e-4, "y": 0.4, "trial": "b", "winner": True}]
    assert out["failed"] == ["c"] and plots.sweep_knobs({"passed": True})["note"] == "not a sweep: one training run"


def test_regression_suite_per_task_with_stderr():
    out = plots.regression_suite({"base": {"regression.arith.acc": 0.4, "regression.arith.acc_stderr": 0.05,
                                           "token_f1": 0.2},
                                  "challenger": {"regression.arith.acc": 0.5}})
    assert out["candidates"] == ["base", "challenger"]
    assert out["tasks"] == [{"task": "arith.acc", "base": {"y": 0.4, "stderr": 0.05},
                             "challenger": {"y": 0.5, "stderr": None}}]
    assert plots.regression_suite({"base": {"token_f1": 0.2}})["note"] == "no regression suite ran for this evaluation"


def test_snapshot_rows_per_split_oldest_first_with_validation():
    snaps = [{"snapshot_id": "bbbbbbbbbbbbbbbb", "created_at": "2026-01-02T00:00", "partition_key": "2026-01-02",
              "rows": {"input": 10, "train": 8, "eval": 2}, "validation": {"success": False}},
             {"snapshot_id": "aaaaaaaaaaaaaaaa", "created_at": "2026-01-01T00:00", "partition_key": None,
              "rows": {"input": 5, "train": 4, "eval": 1}, "validation": {"success": True}}]
    out = plots.snapshot_rows(snaps)
    assert out["ids"] == ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"] and out["validation"] == [True, False]
    assert out["splits"] == {"eval": [1, 2], "train": [4, 8]} and out["labels"][1].endswith("[2026-01-02]")
    assert plots.snapshot_rows([])["note"] == "no dataset snapshots yet"


def test_per_day_series_and_mean_interval():
    out = plots.per_day([{"day": "2026-01-02", "p95_latency_ms": 30}, {"day": "2026-01-01", "p95_latency_ms": 20},
                         {"p95_latency_ms": 1}], ["p95_latency_ms", "block_rate"])
    assert out["days"] == ["2026-01-01", "2026-01-02"] and out["series"] == {"p95_latency_ms": [20.0, 30.0],
                                                                          "block_rate": [None, None]}
    assert plots.per_day([], ["x"])["note"] == "nothing recorded yet"
    m, low, high = plots.mean_interval([1, 2, 3, None, "x"])
    assert m == 2 and low < 2 < high and plots.mean_interval([1]) is None


def test_feedback_per_day_counts_shares_and_corrections():
    out = plots.feedback_per_day([{"day": "2026-01-01", "rating": 1}, {"day": "2026-01-01", "rating": -1,
                                                                        "correction": "better"},
                                  {"ts": "2026-01-02T10:00:00.000+00:00", "rating": 1}])
    assert out["days"] == ["2026-01-01", "2026-01-02"]
    assert out["series"]["count"] == [2.0, 1.0] and out["series"]["corrections"] == [1.0, 0.0]
    assert out["series"]["up_share"] == [0.5, 1.0] and out["series"]["down_share"] == [0.5, 0.0]
    assert plots.feedback_per_day([])["note"].startswith("no feedback recorded yet")
