"""Relative rules against the champion (or base), with paired bootstrap CIs; fail-closed on anything missing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmops.config import GateConfig, GateRule
from llmops.evaluate.gate import decide, decision_text, higher_is_better

RNG = np.random.default_rng(0)
BASE_F1 = RNG.uniform(0, 0.4, 64)
CHAMP_F1 = np.clip(BASE_F1 + 0.2 + RNG.normal(0, 0.02, 64), 0, 1)


def candidates(challenger_f1, champion=True):
    def entry(scores):
        return {"metrics": {"token_f1": float(np.mean(scores))}, "per_example": {"token_f1": list(map(float, scores))}}

    c = {"base": entry(BASE_F1), "challenger": entry(challenger_f1)}
    if champion:
        c["champion"] = entry(CHAMP_F1)
    return ({k: v["metrics"] for k, v in c.items()}, {k: v["per_example"] for k, v in c.items()})


def rule(**kw) -> GateConfig:
    return GateConfig(rules=[GateRule(metric="token_f1", vs="champion", **kw)])


def test_champion_better_than_challenger_rejects():
    metrics, pe = candidates(CHAMP_F1 - 0.05)
    d = decide(metrics, rule(margin=0.0, ci=True), pe)
    assert d["passed"] is False and d["reference"] == "champion"
    r = d["rules"][0]
    assert r["reference"] == "champion" and r["improvement"] == pytest.approx(-0.05)
    assert r["ci_high"] < 0 and "fails" in r["reason"]


def test_challenger_better_beyond_the_margin_at_the_ci_lower_bound_passes():
    metrics, pe = candidates(CHAMP_F1 + 0.1 + RNG.normal(0, 0.01, 64))
    d = decide(metrics, rule(margin=0.05, ci=True), pe)
    assert d["passed"] is True, d["reasons"]
    r = d["rules"][0]
    assert 0.05 < r["ci_low"] < r["improvement"] < r["ci_high"] and r["ci_n"] == 64


def test_point_estimate_clears_margin_but_ci_does_not_rejects():
    noisy = CHAMP_F1 + 0.06 + RNG.normal(0, 0.3, 64)  # better on average, far too noisy to be sure
    metrics, pe = candidates(noisy)
    assert decide(metrics, rule(margin=0.0), pe)["passed"] is True  # point estimate alone
    d = decide(metrics, rule(margin=0.0, ci=True), pe)
    assert d["passed"] is False and d["rules"][0]["ci_low"] < 0


def test_without_a_champion_the_base_model_is_the_reference():
    metrics, pe = candidates(BASE_F1 + 0.1, champion=False)
    d = decide(metrics, rule(margin=0.05, ci=True), pe)
    assert d["reference"] == "base" and d["rules"][0]["reference"] == "base" and d["passed"] is True


def test_lower_is_better_metrics_are_oriented():
    assert not higher_is_better("eval_loss") and not higher_is_better("golden_unsafe_rate")
    assert higher_is_better("token_f1") and higher_is_better("golden_rouge_l")
    metrics = {"base": {"eval_loss": 2.0}, "challenger": {"eval_loss": 1.5}, "champion": {"eval_loss": 1.6}}
    pe = {"base": {"eval_loss": [2.0] * 8}, "challenger": {"eval_loss": [1.5] * 8},
          "champion": {"eval_loss": [1.6] * 8}}
    d = decide(metrics, GateConfig(rules=[GateRule(metric="eval_loss", vs="champion", margin=0.05, ci=True)]), pe)
    assert d["passed"] is True and d["rules"][0]["improvement"] == pytest.approx(0.1)


@pytest.mark.parametrize("where", ["challenger", "champion"])
def test_nan_on_either_side_rejects(where):
    metrics, pe = candidates(CHAMP_F1 + 0.2)
    metrics[where]["token_f1"] = math.nan
    d = decide(metrics, rule(margin=0.0), pe)
    assert d["passed"] is False and f"{where}'s token_f1 is NaN" in d["reasons"][0]


def test_nan_in_per_example_scores_rejects_a_ci_rule():
    metrics, pe = candidates(CHAMP_F1 + 0.2)
    pe["challenger"]["token_f1"][3] = math.nan
    d = decide(metrics, rule(margin=0.0, ci=True), pe)
    assert d["passed"] is False and math.isnan(d["rules"][0]["ci_low"])


def test_missing_per_example_scores_reject_a_ci_rule():
    metrics, _ = candidates(CHAMP_F1 + 0.2)
    d = decide(metrics, rule(margin=0.0, ci=True), per_example=None)
    assert d["passed"] is False and "no paired per-example scores" in d["reasons"][0]


def test_relative_rule_can_also_bound_the_value():
    metrics, pe = candidates(CHAMP_F1 + 0.1)
    assert decide(metrics, rule(margin=0.0, min=0.99), pe)["passed"] is False
    assert decide(metrics, rule(margin=0.0, min=0.1), pe)["passed"] is True


def test_decision_text_lists_every_rule():
    metrics, pe = candidates(CHAMP_F1 - 0.05)
    d = decide(metrics, GateConfig(rules=[GateRule(metric="token_f1", min=0.0),
                                          GateRule(metric="token_f1", vs="champion", ci=True)]), pe)
    text = decision_text(d, title="for m")
    assert text.startswith("**Gate REJECTED** for m (relative rules against the champion)")
    assert "- pass: token_f1 = " in text and "- FAIL: token_f1 vs champion: " in text and "95% CI" in text


def test_the_report_shows_the_improvement_in_the_rules_own_direction(tmp_path):
    """A metric whose name reads lower-is-better but whose rule says higher: the report's improvement column
    follows the rule, like the gate (here `latency_score`, higher is better by the rule)."""
    from llmops.evaluate.report import write_report

    up = [0.2] * 8 + [0.3] * 8
    per = {"base": {"latency_score": [0.1] * 16}, "challenger": {"latency_score": up}}
    metrics = {n: {"latency_score": float(np.mean(v["latency_score"]))} for n, v in per.items()}
    gate = GateConfig(rules=[GateRule(metric="latency_score", vs="base", margin=0.0, higher_is_better=True)])
    d = decide(metrics, gate, per)
    assert d["passed"] is True and d["rules"][0]["improvement"] == pytest.approx(0.15)
    results = {"rows": {"eval": 16}, "champion_version": None,
               "candidates": {n: {"metrics": metrics[n], "per_example": per[n], "samples": []} for n in per}}
    from llmops.evaluate.report import improvements, rule_directions

    assert rule_directions(d) == {"latency_score": True}
    assert improvements(results, "base", samples=200, directions=rule_directions(d))["latency_score"]["mean"] \
        == pytest.approx(0.15)
    assert improvements(results, "base", samples=200)["latency_score"]["mean"] == pytest.approx(-0.15)  # by name
    write_report(tmp_path, results, d, title="t")
