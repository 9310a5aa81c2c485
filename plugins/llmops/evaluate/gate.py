"""The gate: rules from the use-case config decide whether a tuned adapter is registered.

Fail-closed: a metric that is missing or NaN fails its rule. Metrics available to rules: every tuned metric by
name (``eval_loss``, ``perplexity``, ``exact_match``, ``token_f1``), every base metric as ``base_<name>``, and
``eval_loss_improvement`` = (base loss - tuned loss) / base loss.
"""

from __future__ import annotations

import math

from llmops.config import GateConfig


def gate_metrics(results: dict) -> dict[str, float]:
    tuned, base = results["tuned"], results["base"]
    out = {k: v for k, v in tuned.items() if isinstance(v, int | float)}
    out.update({f"base_{k}": v for k, v in base.items() if isinstance(v, int | float)})
    if base.get("eval_loss"):
        out["eval_loss_improvement"] = (base["eval_loss"] - tuned["eval_loss"]) / base["eval_loss"]
    return out


def decide(metrics: dict[str, float], gate: GateConfig) -> dict:
    """Return ``{"passed": bool, "rules": [...], "reasons": [...]}``, one entry per rule."""
    outcomes = []
    for rule in gate.rules:
        value = metrics.get(rule.metric)
        bounds = " and ".join(b for b in (f">= {rule.min:g}" if rule.min is not None else "",
                                          f"<= {rule.max:g}" if rule.max is not None else "") if b)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            ok, why = False, f"{rule.metric} is {'missing' if value is None else 'NaN'} (needs {bounds})"
        else:
            ok = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
            why = f"{rule.metric} = {value:.4g} {'meets' if ok else 'fails'} {bounds}"
        outcomes.append({"metric": rule.metric, "value": value, "min": rule.min, "max": rule.max, "passed": ok,
                         "reason": why})
    passed = bool(outcomes) and all(o["passed"] for o in outcomes)
    return {"passed": passed, "rules": outcomes, "reasons": [o["reason"] for o in outcomes]}
