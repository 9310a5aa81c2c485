"""The judge checked against people, and the win rate with its interval.

Human labels (``include/labels/<use_case>.jsonl``): one JSON object a line with ``prompt``, ``answer_a``,
``answer_b`` and ``preferred`` (``a``, ``b`` or ``tie``). The judge labels the same pairs (both orders, an
inconsistent pair is a tie); accuracy is the share of equal labels and Cohen's kappa corrects it for chance:
kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of p_human(label) * p_judge(label).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from llmops.errors import DataError

LABELS = ("a", "b", "tie")


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
