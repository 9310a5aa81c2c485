"""The judge in the gate: the challenger's answers against the reference's (champion, else base) on the same eval
prompts, and the judge's agreement with the use case's human labels, as gate metrics.

Gate metrics: ``judge.win_rate`` on the challenger, the reference's own ``judge.win_rate`` being 0.5 (a model
against itself), so ``{metric: judge.win_rate, vs: champion, min: 0.5, ci: true}`` asks the win rate and the
lower bound of its bootstrap interval to reach 0.5. ``judge.kappa`` and ``judge.accuracy`` against the labels.
Below ``min_kappa`` (or with no labels to check against) the judge is not trusted: its rules are not acted on,
and the decision goes to a person (the approval step) with the reason.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import DataError
from llmops.evaluate.agreement import agreement, read_labels, score_to_label, win_rate

log = logging.getLogger(__name__)


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


def run_judge(cfg: UseCaseConfig, results: dict, judge=None) -> dict:
    """Judge the pairs and the labels; ``judge`` defaults to the one the use case's connection names."""
    from llmops.evaluate.judge import Judge, endpoint_from_connection, load_judge_prompt

    j = cfg.evaluation.judge
    if judge is None:
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
