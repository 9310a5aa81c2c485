"""The gate: rules from the use-case config decide whether the challenger is registered and promoted.

Absolute rules bound one metric (``min``/``max``). Names: every challenger metric (``eval_loss``, ``token_f1``,
``rouge_l``, ``unsafe_rate``, ``recitation_rate``, ``golden_token_f1``, ...), the base model's as ``base_<name>``,
the champion's as ``champion_<name>``, and ``eval_loss_improvement`` = (base loss - challenger loss) / base loss.

Relative rules (``vs: champion`` or ``vs: base``) require the challenger to improve on the reference by at least
``margin`` in the metric's better direction; ``vs: champion`` falls back to the base model when there is no
champion yet. With ``ci: true`` the lower bound of the paired bootstrap confidence interval of the improvement
must clear the margin as well. Fail-closed: a missing or NaN value, or missing per-example scores, rejects.
"""

from __future__ import annotations

import math

from llmops.config import GateConfig, GateRule
from llmops.evaluate.bootstrap import paired_bootstrap

LOWER_IS_BETTER = ("loss", "perplexity", "latency", "unsafe", "recitation")


def higher_is_better(metric: str) -> bool:
    """The direction guessed from a metric's name (lower for loss, perplexity, latency, unsafe, recitation)."""
    return not any(word in metric for word in LOWER_IS_BETTER)


def rule_higher_is_better(rule: GateRule) -> bool:
    """The rule's own direction: its ``higher_is_better`` when set, else the one its metric's name implies."""
    return rule.higher_is_better if rule.higher_is_better is not None else higher_is_better(rule.metric)


def _bad(value) -> str | None:
    if value is None:
        return "missing"
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return None


def gate_metrics(candidates: dict[str, dict]) -> dict[str, float]:
    """Flat metric names for absolute rules, from ``{"base": {...}, "challenger": {...}, "champion": {...}}``."""
    challenger, base = candidates["challenger"], candidates["base"]
    out = {k: v for k, v in challenger.items() if isinstance(v, int | float)}
    for name in ("base", "champion"):
        out.update({f"{name}_{k}": v for k, v in (candidates.get(name) or {}).items() if isinstance(v, int | float)})
    if base.get("eval_loss"):
        out["eval_loss_improvement"] = (base["eval_loss"] - challenger.get("eval_loss", math.nan)) / base["eval_loss"]
    return out


def _bounds(rule: GateRule) -> str:
    return " and ".join(b for b in (f">= {rule.min:g}" if rule.min is not None else "",
                                    f"<= {rule.max:g}" if rule.max is not None else "") if b)


def _absolute(rule: GateRule, flat: dict) -> dict:
    value = flat.get(rule.metric)
    if bad := _bad(value):
        return {"value": value, "passed": False, "reason": f"{rule.metric} is {bad} (needs {_bounds(rule)})"}
    ok = (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)
    verdict = "meets" if ok else "fails"
    return {"value": value, "passed": ok, "reason": f"{rule.metric} = {value:.4g} {verdict} {_bounds(rule)}"}


def _relative(rule: GateRule, candidates: dict, per_example: dict, reference: str, boot: dict) -> dict:
    ref = reference if rule.vs == "champion" else "base"
    label = f"{rule.metric} vs {ref}"
    value, ref_value = candidates["challenger"].get(rule.metric), candidates[ref].get(rule.metric)
    out = {"value": value, "reference": ref, "reference_value": ref_value, "margin": rule.margin,
           "higher_is_better": rule_higher_is_better(rule)}  # the report shows the improvement this way round
    need = f"needs improvement >= {rule.margin:+g}{' with the CI lower bound' if rule.ci else ''}"
    for who, v in (("challenger", value), (ref, ref_value)):
        if bad := _bad(v):
            return {**out, "passed": False, "reason": f"{label}: {who}'s {rule.metric} is {bad} ({need})"}
    hib = rule_higher_is_better(rule)
    improvement = (value - ref_value) if hib else (ref_value - value)
    ok = improvement >= rule.margin
    text = f"{label}: {value:.4g} vs {ref_value:.4g}, improvement {improvement:+.4g}"
    if rule.ci:
        a = (per_example.get("challenger") or {}).get(rule.metric)
        b = (per_example.get(ref) or {}).get(rule.metric)
        if not a or not b or len(a) != len(b):
            return {**out, "improvement": improvement, "passed": False,
                    "reason": f"{text}: no paired per-example scores for a CI ({need})"}
        ci = paired_bootstrap(a, b, **boot) if hib else paired_bootstrap(b, a, **boot)
        out.update(ci_low=ci["low"], ci_high=ci["high"], ci_n=ci["n"])
        ok = ok and not math.isnan(ci["low"]) and ci["low"] >= rule.margin
        # the interval is of the per-example mean difference: say so, with that mean as its centre
        text += (f" [per-example mean {ci['mean']:+.4g}, {100 * boot['confidence']:.0f}% CI {ci['low']:+.4g} .. "
                 f"{ci['high']:+.4g}, n={ci['n']}]")
    return {**out, "improvement": improvement, "passed": ok,
            "reason": f"{text} {'meets' if ok else 'fails'} {need.removeprefix('needs ')}"}


def decide(candidates: dict[str, dict], gate: GateConfig, per_example: dict[str, dict] | None = None, *,
           bootstrap_samples: int = 1000, confidence: float = 0.95) -> dict:
    """``candidates``: metrics per candidate; ``per_example``: per-example scores per candidate (for CIs).

    Returns ``{"passed", "reference", "rules": [...], "reasons": [...]}``, one entry per rule."""
    flat = gate_metrics(candidates)
    reference = "champion" if candidates.get("champion") else "base"
    boot = {"samples": bootstrap_samples, "confidence": confidence}
    outcomes = []
    for rule in gate.rules:
        entry = {"metric": rule.metric, "vs": rule.vs, "min": rule.min, "max": rule.max}
        if rule.vs is None:
            entry.update(_absolute(rule, flat))
        else:
            entry.update(_relative(rule, candidates, per_example or {}, reference, boot))
            if entry["passed"] and (rule.min is not None or rule.max is not None):
                bound = _absolute(rule, flat)
                entry.update(passed=bound["passed"], reason=f"{entry['reason']}; {bound['reason']}")
        outcomes.append(entry)
    passed = bool(outcomes) and all(o["passed"] for o in outcomes)
    return {"passed": passed, "reference": reference, "rules": outcomes, "reasons": [o["reason"] for o in outcomes]}


def decision_text(decision: dict, *, title: str = "") -> str:
    """What a person reads in the task log, the run note and the approval form (Markdown)."""
    verdict = "PASSED" if decision["passed"] else "REJECTED"
    lines = [f"**Gate {verdict}**{' ' + title if title else ''} (relative rules against the {decision['reference']})"]
    lines += [f"- {'pass' if r['passed'] else 'FAIL'}: {r['reason']}" for r in decision["rules"]]
    if not decision["rules"]:
        lines.append("- FAIL: no rules configured (fail-closed)")
    return "\n".join(lines)
