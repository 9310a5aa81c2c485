"""The registration gate: derived metrics, every rule must pass, missing or NaN metrics fail closed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmops.config import GateConfig, GateRule
from llmops.evaluate.gate import decide, gate_metrics

RESULTS = {
    "base": {"eval_loss": 2.0, "perplexity": 7.39, "exact_match": 0.0, "token_f1": 0.1, "rows": 64, "model": "b"},
    "challenger": {"eval_loss": 1.5, "perplexity": 4.48, "exact_match": 0.25, "token_f1": 0.4, "rows": 64,
                   "model": "t"},
}


def cands(**challenger) -> dict:
    return {"base": {}, "challenger": challenger}


def gate(*rules: dict) -> GateConfig:
    return GateConfig(rules=[GateRule(**r) for r in rules])


def test_gate_metrics_names_and_derived_improvement():
    m = gate_metrics(RESULTS)
    assert m["eval_loss"] == 1.5 and m["token_f1"] == 0.4 and m["rows"] == 64
    assert m["base_eval_loss"] == 2.0 and m["base_token_f1"] == 0.1
    assert m["eval_loss_improvement"] == pytest.approx((2.0 - 1.5) / 2.0)  # 0.25
    assert "model" not in m and "base_model" not in m  # only numbers are metrics


def test_improvement_is_negative_when_tuned_is_worse():
    m = gate_metrics({"base": {"eval_loss": 2.0}, "challenger": {"eval_loss": 2.5}})
    assert m["eval_loss_improvement"] == pytest.approx(-0.25)


@pytest.mark.parametrize("base_loss", [None, 0.0])
def test_no_improvement_without_a_usable_base_loss(base_loss):
    base = {} if base_loss is None else {"eval_loss": base_loss}
    m = gate_metrics({"base": base, "challenger": {"eval_loss": 1.0}})
    assert "eval_loss_improvement" not in m
    # the default rule: eval_loss_improvement >= 0.05
    result = decide({"base": base, "challenger": {"eval_loss": 1.0}}, GateConfig())
    assert result["passed"] is False
    assert result["reasons"] == ["eval_loss_improvement is missing (needs >= 0.05)"]


def test_passes_when_every_rule_passes():
    result = decide(RESULTS, gate({"metric": "eval_loss_improvement", "min": 0.05},
                                                {"metric": "token_f1", "min": 0.2},
                                                {"metric": "perplexity", "max": 10}))
    assert result["passed"] is True
    assert [r["passed"] for r in result["rules"]] == [True, True, True]
    assert result["reasons"] == [
        "eval_loss_improvement = 0.25 meets >= 0.05",
        "token_f1 = 0.4 meets >= 0.2",
        "perplexity = 4.48 meets <= 10",
    ]


def test_rejects_when_one_rule_fails():
    result = decide(RESULTS, gate({"metric": "eval_loss_improvement", "min": 0.05},
                                                {"metric": "token_f1", "min": 0.5}))
    assert result["passed"] is False
    assert [r["passed"] for r in result["rules"]] == [True, False]
    failed = result["rules"][1]
    assert failed == {"metric": "token_f1", "vs": None, "value": 0.4, "min": 0.5, "max": None, "passed": False,
                      "reason": "token_f1 = 0.4 fails >= 0.5"}


def test_min_and_max_bounds_are_inclusive_and_both_checked():
    rule = {"metric": "token_f1", "min": 0.2, "max": 0.4}
    assert decide(cands(token_f1=0.4), gate(rule))["passed"] is True
    assert decide(cands(token_f1=0.2), gate(rule))["passed"] is True
    too_high = decide(cands(token_f1=0.41), gate(rule))
    assert too_high["passed"] is False
    assert too_high["reasons"] == ["token_f1 = 0.41 fails >= 0.2 and <= 0.4"]


@pytest.mark.parametrize("nan", [math.nan, float("nan"), np.float64("nan")])
def test_nan_metric_rejects(nan):
    result = decide(cands(token_f1=nan), gate({"metric": "token_f1", "min": 0.2}))
    assert result["passed"] is False
    assert result["reasons"] == ["token_f1 is NaN (needs >= 0.2)"]


def test_nan_tuned_loss_makes_improvement_nan_and_rejects():
    assert math.isnan(gate_metrics({"base": {"eval_loss": 2.0}, "challenger": {"eval_loss": math.nan}})[
        "eval_loss_improvement"])
    result = decide({"base": {"eval_loss": 2.0}, "challenger": {"eval_loss": math.nan}},
                    gate({"metric": "eval_loss_improvement", "min": 0.05}))
    assert result["passed"] is False
    assert "eval_loss_improvement is NaN" in result["reasons"][0]


def test_missing_metric_rejects_even_if_others_pass():
    result = decide(cands(token_f1=0.9), gate({"metric": "token_f1", "min": 0.2}, {"metric": "bleu", "min": 0.1}))
    assert result["passed"] is False
    assert result["rules"][1]["value"] is None
    assert result["reasons"][1] == "bleu is missing (needs >= 0.1)"


def test_no_rules_fails_closed():
    result = decide(cands(token_f1=1.0), GateConfig(rules=[]))
    assert result == {"passed": False, "reference": "base", "rules": [], "reasons": []}
