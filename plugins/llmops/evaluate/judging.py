"""The judge in the gate: the challenger's answers against the reference's (champion, else base) on the same eval
prompts, the judge checked against people, and what the gate acts on.

Gate metrics: ``judge.win_rate`` on the challenger, the reference's own ``judge.win_rate`` being 0.5 (a model
against itself), so ``{metric: judge.win_rate, vs: champion, min: 0.5, ci: true}`` asks the win rate and the
lower bound of its bootstrap interval to reach 0.5. ``judge.kappa`` and ``judge.accuracy`` against the labels.
Below ``min_kappa`` (or with no labels to check against) the judge is not trusted: its rules are set aside and the
decision goes to a person (``needs_approval`` with the reason; the register step refuses such a decision without
an approval). The verdicts are kept in ``judge.json`` beside the report.

Human labels (``include/labels/<use_case>.jsonl``): one JSON object a line with ``prompt``, ``answer_a``,
``answer_b`` and ``preferred`` (``a``, ``b`` or ``tie``); a reviewer's choices in the approval form are appended.
The judge labels the same pairs (both orders, an inconsistent pair is a tie); accuracy is the share of equal labels
and Cohen's kappa corrects it for chance: kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of
p_human(label) * p_judge(label).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)
LABELS = ("a", "b", "tie")
REVIEW_PAIRS = 3  # judged pairs a reviewer can label in the approval form


# --- the judge checked against people ---

def read_labels(path: str | Path) -> list[dict]:
    path = Path(path)
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: not JSON: {e.msg}") from None
        for field in ("prompt", "answer_a", "answer_b", "preferred"):
            if not isinstance(row.get(field), str):
                raise DataError(f"{path}:{i}: field '{field}' missing or not a string")
        if row["preferred"] not in LABELS:
            raise DataError(f"{path}:{i}: field 'preferred' is {row['preferred']!r}, not one of a, b, tie")
        rows.append(row)
    return rows


def append_label(path: str | Path, row: dict) -> None:
    """One more label (a reviewer's choice), appended: earlier lines are never rewritten."""
    if row.get("preferred") not in LABELS:
        raise DataError(f"{path}: a label's 'preferred' must be one of a, b, tie (got {row.get('preferred')!r})")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()


def score_to_label(score: float) -> str:
    """A pair's both-orders score from answer a's side: 1 -> a, 0 -> b, 0.5 -> tie."""
    return "a" if score == 1.0 else "b" if score == 0.0 else "tie"


def cohen_kappa(human: list[str], judge: list[str]) -> float:
    """Cohen's kappa of two raters over the same items; NaN for no items, 1.0 when both agree on one label only."""
    if len(human) != len(judge):
        raise ValueError(f"kappa needs the same items: {len(human)} vs {len(judge)}")
    n = len(human)
    if n == 0:
        return math.nan
    p_o = sum(h == j for h, j in zip(human, judge, strict=True)) / n
    cats = set(human) | set(judge)
    p_e = sum((human.count(c) / n) * (judge.count(c) / n) for c in cats)
    if p_e == 1.0:
        return 1.0 if p_o == 1.0 else math.nan
    return (p_o - p_e) / (1 - p_e)


def agreement(human: list[str], judge: list[str]) -> dict:
    n = len(human)
    acc = sum(h == j for h, j in zip(human, judge, strict=True)) / n if n else math.nan
    return {"n": n, "accuracy": acc, "kappa": cohen_kappa(human, judge)}


def win_rate(scores: list[float], *, samples: int = 1000, confidence: float = 0.95) -> dict:
    """Mean of the pair scores (ties as half) with a bootstrap interval over the pairs."""
    from llmops.evaluate.bootstrap import paired_bootstrap

    ci = paired_bootstrap(scores, [0.0] * len(scores), samples=samples, confidence=confidence)
    return {"win_rate": ci["mean"], "low": ci["low"], "high": ci["high"], "n": ci["n"],
            "wins": sum(s == 1.0 for s in scores), "losses": sum(s == 0.0 for s in scores),
            "ties": sum(s == 0.5 for s in scores)}


# --- judging the challenger ---

def labels_path(cfg: UseCaseConfig) -> Path:
    from llmops import paths

    j = cfg.evaluation.judge
    return paths.resolve(j.labels or f"include/labels/{cfg.name}.jsonl")


def judge_pairs(results: dict, max_prompts: int) -> tuple[str, list[tuple[str, str, str]]]:
    """(reference name, [(prompt, challenger answer, reference answer)]) from the eval samples."""
    cands = results["candidates"]
    ref = "champion" if "champion" in cands else "base"
    ch = [s for s in cands["challenger"]["samples"] if s.get("set", "eval") == "eval"]
    rf = [s for s in cands[ref]["samples"] if s.get("set", "eval") == "eval"]
    pairs = [(a["prompt"], a["prediction"], b["prediction"]) for a, b in zip(ch, rf, strict=True)]
    return ref, pairs[:max_prompts]


def run_judge(cfg: UseCaseConfig, results: dict) -> dict:
    """Judge the pairs and the labels with the judge the use case's connection names."""
    from llmops.evaluate.judge import Judge, endpoint_from_connection, load_judge_prompt

    j = cfg.evaluation.judge
    template, version = load_judge_prompt(j.prompt)
    judge = Judge(endpoint_from_connection(j.conn_id), template, version=version, timeout_s=j.timeout_s,
                  concurrency=j.concurrency, max_failed=j.max_failed)
    reference, pairs = judge_pairs(results, j.max_prompts)
    if not pairs:
        raise DataError("no generated eval answers to judge: the evaluation results hold no eval samples")
    out = judge.compare(pairs)
    wr = win_rate(out["scores"], samples=cfg.evaluation.bootstrap_samples, confidence=cfg.evaluation.confidence)
    path = labels_path(cfg)
    labels = read_labels(path) if path.exists() else []
    agree, label_verdicts = {"n": 0, "accuracy": math.nan, "kappa": math.nan}, []
    if labels:
        lab = judge.compare([(r["prompt"], r["answer_a"], r["answer_b"]) for r in labels])
        judged = [score_to_label(s) for s in lab["scores"]]
        agree = agreement([r["preferred"] for r in labels], judged)
        label_verdicts = [{**v, "human": r["preferred"], "judge": jl}
                          for v, r, jl in zip(lab["verdicts"], labels, judged, strict=True)]
    if not labels:
        trusted, reason = False, f"no human labels at {path} to check the judge against"
    elif j.min_kappa is not None and not (agree["kappa"] >= j.min_kappa):
        trusted, reason = False, (f"the judge agrees with people at Cohen's kappa {agree['kappa']:.3f} (accuracy "
                                  f"{agree['accuracy']:.3f}, {agree['n']} labels) < min_kappa {j.min_kappa:g}")
    else:
        trusted, reason = True, f"judge kappa {agree['kappa']:.3f} >= min_kappa {j.min_kappa}"
    log.info("judge %s: win rate %.3f [%.3f, %.3f] over %d prompts vs %s; %s", out["model"], wr["win_rate"],
             wr["low"], wr["high"], wr["n"], reference, reason)
    metrics = {"judge.win_rate": wr["win_rate"], "judge.win_rate_low": wr["low"], "judge.win_rate_high": wr["high"],
               "judge.pairs": wr["n"], "judge.ties": wr["ties"], "judge.kappa": agree["kappa"],
               "judge.accuracy": agree["accuracy"], "judge.labels": agree["n"], "judge.calls_per_s":
               out["calls"] / out["seconds"] if out["seconds"] else math.nan}
    return {"reference": reference, "metrics": metrics, "scores": out["scores"], "verdicts": out["verdicts"],
            "label_verdicts": label_verdicts, "trusted": trusted, "reason": reason, "endpoint": out["base_url"],
            "model": out["model"], "prompt_version": out["prompt_version"], "labels_path": str(path)}


def with_judge(metrics: dict, per_example: dict, judged: dict) -> tuple[dict, dict]:
    """Candidates' metrics and per-example scores with the judge's: the challenger's win rate and the
    reference's 0.5 (itself), so relative ``vs`` rules and their paired intervals work unchanged."""
    ref, n = judged["reference"], len(judged["scores"])
    metrics = {k: dict(v) for k, v in metrics.items()}
    per_example = {k: dict(v) for k, v in per_example.items()}
    metrics["challenger"].update(judged["metrics"])
    metrics[ref]["judge.win_rate"] = 0.5
    per_example["challenger"]["judge.win_rate"] = list(judged["scores"])
    per_example[ref]["judge.win_rate"] = [0.5] * n
    return metrics, per_example


# --- the judge in the gate's decision ---

def judge_for_gate(cfg: UseCaseConfig, results: dict, metrics: dict, per_example: dict, report_dir: Path):
    """Returns ``(metrics, per_example, gate config, judged)`` for :func:`llmops.evaluate.gate.decide`; the
    verdicts are written to ``report_dir/judge.json``. An untrusted judge's rules are left out of the config."""
    from llmops.atomic import write_json

    judged = run_judge(cfg, results)
    metrics, per_example = with_judge(metrics, per_example, judged)
    write_json(Path(report_dir) / "judge.json", judged)
    gate_cfg = cfg.gate
    if not judged["trusted"]:
        kept = [r for r in cfg.gate.rules if not r.metric.startswith("judge.")]
        judged["set_aside"] = [r.metric for r in cfg.gate.rules if r.metric.startswith("judge.")]
        gate_cfg = cfg.gate.model_copy(update={"rules": kept})
    return metrics, per_example, gate_cfg, judged


def mark_decision(decision: dict, judged: dict) -> None:
    """The judge's figures, whether the gate acted on it, and the hand-off to a person, in the decision."""
    # NaN (kappa without labels) as None: the decision travels as strict JSON (XCom)
    m = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in judged["metrics"].items()}
    decision["judge"] = {k: judged[k] for k in ("endpoint", "model", "prompt_version", "trusted", "reason",
                                                "reference", "labels_path")} | {"metrics": m}
    if not judged["trusted"]:
        decision["needs_approval"] = True
        decision["approval_reason"] = (f"judge not trusted: {judged['reason']}; rules set aside: "
                                       f"{', '.join(judged.get('set_aside') or []) or 'none'}")


# --- the judge in the report, the decision's text and the approval form ---

def fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def judge_text(decision: dict) -> str:
    """The judge's paragraph of the decision's text (and whether a person decides)."""
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


def review_pairs(report: str | Path) -> list[dict]:
    """The judged pairs a reviewer may label in the approval form (from ``judge.json`` next to the report)."""
    path = Path(report).parent / "judge.json"
    if not path.exists():
        return []
    return json.loads(path.read_text())["verdicts"][:REVIEW_PAIRS]


def labels_from_review(decision: dict, params_input: dict, who: str | None) -> int:
    """Append the reviewer's choices (``preference_N`` = a/b/tie) to the use case's labels; returns how many."""
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
