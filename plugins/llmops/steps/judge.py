"""The pairwise judge inside the gate step: judge, record the verdicts (``judge.json``, MLflow), and decide which
rules the gate acts on. An untrusted judge (kappa below ``judge.min_kappa``, or no labels) has its rules set
aside and the decision sent to a person (``needs_approval`` with the reason); the register step refuses to
register such a decision without an approval."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.payloads import Evaluation

log = logging.getLogger(__name__)


def judge_for_gate(cfg: UseCaseConfig, results: dict, metrics: dict, per_example: dict, evaluation: Evaluation,
                   judge=None):
    """Returns ``(metrics, per_example, gate config, judged)`` for :func:`llmops.evaluate.gate.decide`."""
    from llmops.atomic import write_json
    from llmops.evaluate.judging import run_judge, with_judge

    judged = run_judge(cfg, results, judge)
    metrics, per_example = with_judge(metrics, per_example, judged)
    write_json(Path(evaluation.results).parent / "report" / "judge.json", judged)
    gate_cfg = cfg.gate
    if not judged["trusted"]:
        kept = [r for r in cfg.gate.rules if not r.metric.startswith("judge.")]
        judged["set_aside"] = [r.metric for r in cfg.gate.rules if r.metric.startswith("judge.")]
        gate_cfg = cfg.gate.model_copy(update={"rules": kept})
    return metrics, per_example, gate_cfg, judged


def mark_decision(decision: dict, cfg: UseCaseConfig, judged: dict) -> None:
    """The judge's figures, whether the gate acted on it, and the hand-off to a person, in the decision."""
    # NaN (kappa without labels) as None: the decision travels as strict JSON (XCom)
    m = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in judged["metrics"].items()}
    decision["judge"] = {k: judged[k] for k in ("endpoint", "model", "prompt_version", "trusted", "reason",
                                                "reference", "labels_path")} | {"metrics": m}
    if not judged["trusted"]:
        decision["needs_approval"] = True
        decision["approval_reason"] = (f"judge not trusted: {judged['reason']}; rules set aside: "
                                       f"{', '.join(judged.get('set_aside') or []) or 'none'}")


def fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def judge_text(decision: dict) -> str:
    j = decision.get("judge")
    if not j:
        return ""
    m = j["metrics"]
    lines = ["", f"**Judge** `{j['model']}` at {j['endpoint']} (prompt {j['prompt_version']}), challenger vs "
             f"{j['reference']}: win rate {fmt(m['judge.win_rate'])} [{fmt(m['judge.win_rate_low'])}, "
             f"{fmt(m['judge.win_rate_high'])}] over {m['judge.pairs']} prompts ({m['judge.ties']} ties); agreement "
             f"with people: kappa {fmt(m['judge.kappa'])}, accuracy {fmt(m['judge.accuracy'])} ({m['judge.labels']} "
             "labels)."]
    if decision.get("needs_approval"):
        lines.append(f"**A person decides**: {decision['approval_reason']}")
    return "\n".join(lines)


def verdict_lines(judged: dict, limit: int = 8) -> list[str]:
    """Report lines: each judged prompt with both orders' verdicts and explanations."""
    out = ["", "## Judge verdicts", "", "| prompt | challenger as A | challenger as B | score |", "|---|---|---|---|"]
    for v in judged["verdicts"][:limit]:
        cells = [v["prompt"], f"{v['x_as_a'].get('winner')}: {v['x_as_a'].get('explanation', '')}",
                 f"{v['x_as_b'].get('winner')}: {v['x_as_b'].get('explanation', '')}", str(v["score"])]
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")[:160] for c in cells) + " |")
    return out


REVIEW_PAIRS = 3  # judged pairs a reviewer can label in the approval form


def review_pairs(report: str | Path) -> list[dict]:
    """The judged pairs shown in the approval form (from ``judge.json`` next to the report)."""
    import json

    path = Path(report).parent / "judge.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["verdicts"][:REVIEW_PAIRS]


def review_text(pairs: list[dict]) -> str:
    lines = ["", "Optionally say which answer you prefer (fields `preference_N`: a, b or tie; `skip` leaves it "
             "out). Your choices are kept as new human labels for checking the judge."]
    for i, v in enumerate(pairs, 1):
        lines += ["", f"**Pair {i}**: {v['prompt']}", f"- a (challenger): {v['x']}", f"- b (reference): {v['y']}",
                  f"- judge: {v['score']} (1 = a, 0 = b, 0.5 = tie)"]
    return "\n".join(lines)


def labels_from_review(decision: dict, params_input: dict, who: str | None) -> int:
    """Append the reviewer's choices (``preference_N`` = a/b/tie) to the use case's labels; returns how many."""
    from llmops.evaluate.agreement import append_label

    judge = decision.get("judge") or {}
    pairs = review_pairs(decision.get("report") or "")
    n = 0
    for i, v in enumerate(pairs, 1):
        choice = (params_input or {}).get(f"preference_{i}")
        if choice in ("a", "b", "tie") and judge.get("labels_path"):
            append_label(judge["labels_path"], {"prompt": v["prompt"], "answer_a": v["x"], "answer_b": v["y"],
                                                "preferred": choice, "source": "approval", "by": who})
            n += 1
    return n
